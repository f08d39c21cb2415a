//! `tollgate licences show|set`: the seats in total, held, and who holds them.
use super::output::print_json;
use super::sessions::print_sessions;
use super::Ctx;
use crate::store::SessionRow;
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Subcommand)]
pub enum LicencesCmd {
    /// Seats in total, held, and the sessions that hold them.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Set the number of seats. Held sessions keep their seats if it goes below them.
    Set {
        /// The number of seats (0 refuses every licensed grant).
        seats: u32,
    },
}

pub fn run(ctx: &mut Ctx, cmd: LicencesCmd) -> Result<(), String> {
    let seats = ctx.wait(ctx.store.seats())?;
    let (total, held) = (seats.total, seats.held);
    match cmd {
        LicencesCmd::Show { json } => {
            let holders: Vec<SessionRow> = ctx
                .wait(ctx.store.live_sessions())?
                .into_iter()
                .filter(|s| s.seat)
                .collect();
            if json {
                return print_json(&json!({"seats": total, "held": held, "holders": holders}));
            }
            println!("seats: {total}\nheld:  {held}");
            if !holders.is_empty() {
                println!();
                print_sessions(&holders, ctx.now);
            }
            Ok(())
        }
        LicencesCmd::Set { seats } => {
            ctx.admin(|a| a.set_seats(seats.into()))?;
            println!("seats: {seats} (held: {held})");
            if i64::from(seats) < held {
                println!("{held} seats are held; they stay held, and licensed grants are refused until fewer than {seats} are");
            }
            Ok(())
        }
    }
}
