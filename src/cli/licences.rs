//! `tollgate licences ...`, `tollgate sessions ...`, `tollgate scope ...`
use super::args::{LicencesCmd, ScopeCmd, SessionsCmd};
use super::output::{count, print_json, print_table, yes_no};
use super::{audit_admin, err, Ctx};
use crate::clock::rfc3339;
use crate::oauth::scopes::valid_token;
use crate::store::sessions::{self, SessionRow};
use crate::store::users::{self, ScopeRow};
use serde_json::json;

pub fn licences(ctx: &mut Ctx, cmd: LicencesCmd) -> Result<(), String> {
    let total = sessions::seats_total(&ctx.conn).map_err(err)?;
    let held = sessions::seats_held(&ctx.conn, ctx.now).map_err(err)?;
    match cmd {
        LicencesCmd::Show { json } => {
            let holders: Vec<SessionRow> = sessions::list_live(&ctx.conn, ctx.now)
                .map_err(err)?
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
            sessions::set_seats(&ctx.conn, seats.into()).map_err(err)?;
            audit_admin(
                ctx,
                "licences.set",
                "",
                &format!("{total} -> {seats} seats"),
            );
            println!("seats: {seats} (held: {held})");
            if i64::from(seats) < held {
                println!("{held} seats are held; they stay held, and licensed grants are refused until fewer than {seats} are");
            }
            Ok(())
        }
    }
}

fn print_sessions(rows: &[SessionRow], now: i64) {
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|s| {
            vec![
                s.id.to_string(),
                s.client_id.clone(),
                s.scope.clone(),
                yes_no(s.seat),
                rfc3339(s.created_at),
                format!("{} (in {} s)", rfc3339(s.expires_at), s.expires_at - now),
            ]
        })
        .collect();
    print_table(
        &["ID", "CLIENT", "SCOPE", "SEAT", "CREATED", "EXPIRES"],
        &table,
    );
}

pub fn sessions_cmd(ctx: &mut Ctx, cmd: SessionsCmd) -> Result<(), String> {
    match cmd {
        SessionsCmd::List { json } => {
            let rows = sessions::list_live(&ctx.conn, ctx.now).map_err(err)?;
            if json {
                return print_json(&rows);
            }
            print_sessions(&rows, ctx.now);
            Ok(())
        }
        SessionsCmd::Revoke { id: Some(id), .. } => {
            if !sessions::revoke_session(&mut ctx.conn, id, ctx.now, None).map_err(err)? {
                return Err(format!(
                    "no live session {id}; `tollgate sessions list` shows them"
                ));
            }
            audit_admin(ctx, "sessions.revoke", "", &format!("session {id}"));
            println!("session {id} revoked");
            Ok(())
        }
        SessionsCmd::Revoke { client, .. } => revoke_many(ctx, client.as_deref()),
    }
}

/// `sessions revoke --all` (no client) or `--client NAME`.
fn revoke_many(ctx: &mut Ctx, client: Option<&str>) -> Result<(), String> {
    let user_id = match client {
        Some(name) => Some(users::id_of(&ctx.conn, name).map_err(err)?.ok_or_else(|| {
            format!("no user named {name:?}; `tollgate user list` shows who exists")
        })?),
        None => None,
    };
    let ended = sessions::revoke_live(&mut ctx.conn, user_id, ctx.now).map_err(err)?;
    let whose = client.map_or(String::new(), |name| format!(" of {name}"));
    let what = format!("{}{whose}", count(ended, "live session"));
    audit_admin(ctx, "sessions.revoke", client.unwrap_or_default(), &what);
    println!("{what} revoked");
    Ok(())
}

pub fn scope(ctx: &mut Ctx, cmd: ScopeCmd) -> Result<(), String> {
    match cmd {
        ScopeCmd::List { json } => {
            let rows = users::scopes(&ctx.conn).map_err(err)?;
            if json {
                return print_json(&rows);
            }
            let table: Vec<Vec<String>> = rows
                .iter()
                .map(|s| vec![s.name.clone(), yes_no(s.licensed), s.description.clone()])
                .collect();
            print_table(&["NAME", "LICENSED", "DESCRIPTION"], &table);
            Ok(())
        }
        ScopeCmd::Add {
            name,
            licensed,
            description,
        } => {
            if name.len() > 64 || !valid_token(&name) {
                return Err(format!(
                    "scope name {name:?}: use 1 to 64 printable ASCII characters without spaces, '\"' or '\\' (RFC 6749 §3.3)"
                ));
            }
            let row = ScopeRow {
                name: name.clone(),
                description,
                licensed,
            };
            if !users::add_scope(&ctx.conn, &row).map_err(err)? {
                return Err(format!("a scope named {name:?} exists already"));
            }
            audit_admin(
                ctx,
                "scope.add",
                "",
                &format!("{name} (licensed: {})", yes_no(licensed)),
            );
            println!("scope {name} added");
            Ok(())
        }
    }
}
