//! The command line: `tollgate [--db FILE] [COMMAND]`, and the arguments of the
//! admin commands (docs/API.md §6).
use super::init::InitArgs;
use super::serve::ServeArgs;
use crate::crypto::DEFAULT_PBKDF2_ITERATIONS;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    about = "OAuth 2.0 token server, licence seats and product API on one SQLite file",
    after_help = "With no command, tollgate serves: `tollgate --listen 8082` is \
                  `tollgate serve --listen 8082`; `tollgate serve --help` lists serve's options."
)]
pub struct Cli {
    /// SQLite database file [default: ./tollgate.db]
    #[arg(long, global = true, env = "TOLLGATE_DB")]
    pub db: Option<PathBuf>,

    /// PBKDF2 iterations for newly hashed secrets (tests lower it to save time).
    #[arg(long, global = true, env = "TOLLGATE_PBKDF2_ITERATIONS", default_value_t = DEFAULT_PBKDF2_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(1..), hide = true)]
    pub pbkdf2_iterations: u32,

    /// With no command, `serve` runs.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the OAuth and product API.
    Serve(ServeArgs),
    /// Create a new, migrated database.
    Init(InitArgs),
    /// Manage users.
    #[command(subcommand)]
    User(UserCmd),
    /// Show or set the licence seats.
    #[command(subcommand)]
    Licences(LicencesCmd),
    /// List or revoke sessions.
    #[command(subcommand)]
    Sessions(SessionsCmd),
    /// Manage scopes.
    #[command(subcommand)]
    Scope(ScopeCmd),
    /// Read the audit trail.
    Audit(AuditArgs),
    /// Copy the database consistently while the server runs.
    Backup(BackupArgs),
    /// Publish and try GetData queries.
    #[command(subcommand)]
    Query(QueryCmd),
}

/// The options every command takes; anything else before the command is `serve`'s.
const GLOBAL_OPTIONS: [&str; 2] = ["--db", "--pbkdf2-iterations"];

/// `tollgate --listen ADDR` is `tollgate serve --listen ADDR`: when the first
/// argument after the global options is an option other than help or version,
/// `serve` goes in front of it.
pub fn with_implicit_serve(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut args: Vec<OsString> = args.into_iter().collect();
    let mut i = 1;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        let global = GLOBAL_OPTIONS
            .iter()
            .find(|g| arg == **g || arg.starts_with(&format!("{g}=")));
        match global {
            Some(g) if arg == *g => i += 2,
            Some(_) => i += 1,
            None => {
                let help = ["-h", "--help", "-V", "--version"].contains(&arg);
                if arg.starts_with('-') && !help {
                    args.insert(i, OsString::from("serve"));
                }
                break;
            }
        }
    }
    args
}

/// Whether `--db` was typed on this command line (not taken from `TOLLGATE_DB`).
pub fn db_on_command_line(m: &ArgMatches) -> bool {
    let typed = |m: &ArgMatches| m.value_source("db") == Some(ValueSource::CommandLine);
    typed(m) || m.subcommand().is_some_and(|(_, sub)| typed(sub))
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user; its secret is printed once.
    Add {
        /// The user's name: the OAuth client_id (1 to 64 characters, no ':').
        name: String,
        /// Comma-separated allowed scopes.
        #[arg(long, default_value = "view", value_delimiter = ',')]
        scopes: Vec<String>,
        /// An ordinary user (APIUSER = 0): it cannot obtain tokens.
        #[arg(long)]
        no_api: bool,
        /// Read the secret from standard input instead of generating one.
        #[arg(long)]
        secret_stdin: bool,
        /// Print {"client_id", "client_secret"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List users (never their hashes).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: it can no longer authenticate and its live sessions end.
    Disable {
        /// The user's name (client_id).
        name: String,
    },
    /// Enable a disabled user.
    Enable {
        /// The user's name (client_id).
        name: String,
    },
    /// Give a user a new secret; the old one stops working at once.
    ResetSecret {
        /// The user's name (client_id).
        name: String,
        /// Read the secret from standard input instead of generating one.
        #[arg(long)]
        secret_stdin: bool,
        /// Print {"client_id", "client_secret"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace a user's allowed scopes; its live sessions keep what they were granted.
    SetScopes {
        /// The user's name (client_id).
        name: String,
        /// Comma-separated allowed scopes, e.g. view,all.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
    },
    /// Delete a user: its sessions end and its tokens die. The audit trail keeps its name.
    Remove {
        /// The user's name (client_id).
        name: String,
    },
}

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

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// Live sessions.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End sessions: their tokens die and their seats free.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["id", "all", "client"])))]
    Revoke {
        /// The session's ID, as `tollgate sessions list` shows it.
        id: Option<i64>,
        /// Every live session.
        #[arg(long)]
        all: bool,
        /// Every live session of this client (its user name).
        #[arg(long, value_name = "NAME")]
        client: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    /// Add a scope.
    Add {
        /// The scope's name, as clients ask for it.
        name: String,
        /// Tokens with this scope hold a licence seat.
        #[arg(long)]
        licensed: bool,
        /// What the scope allows, for people.
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List scopes.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How far back: seconds, or a number and a unit (30m, 12h, 7d).
    #[arg(long, default_value = "1d", value_name = "DURATION")]
    pub since: String,
    /// Only this client.
    #[arg(long, value_name = "NAME")]
    pub client: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The copy to write; it must not exist.
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum QueryCmd {
    /// Publish a read-only query; it is checked now and refused with the reason if unsafe.
    Add {
        /// The query's name: [A-Za-z0-9_-], 1 to 64 characters.
        name: String,
        /// One SELECT, with positional parameters ?1 to ?9.
        #[arg(long)]
        sql: String,
        /// The scope a token needs (a token with `all` passes any).
        #[arg(long, default_value = "view")]
        scope: String,
        /// What the query answers, for people.
        #[arg(long, default_value = "")]
        description: String,
        /// Attach this SQLite file read-only as schema `data` while checking.
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
    },
    /// List published queries.
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a query.
    Remove {
        /// The query's name.
        name: String,
    },
    /// Run a query and print its first page.
    Run {
        /// The query's name.
        name: String,
        /// Values for ?1, ?2, …
        params: Vec<String>,
        /// The page, from 1.
        #[arg(long, default_value_t = 1)]
        pageno: u32,
        /// Rows per page, 1 to 500.
        #[arg(long, default_value_t = 50)]
        pagesize: u32,
        /// Print the same document as the HTTP answer.
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Attach this SQLite file read-only as schema `data`.
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
        /// Time limit, milliseconds: the server's setting of the same name.
        #[arg(long, env = "TOLLGATE_QUERY_TIME_LIMIT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
        query_time_limit_ms: u32,
    },
}

#[cfg(test)]
mod tests {
    use super::with_implicit_serve;

    fn implicit(line: &str) -> String {
        let args = line.split(' ').map(std::ffi::OsString::from);
        let out: Vec<String> = with_implicit_serve(args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect();
        out.join(" ")
    }

    #[test]
    fn serve_flags_need_no_serve() {
        assert_eq!(
            implicit("tollgate --listen 9000"),
            "tollgate serve --listen 9000"
        );
        assert_eq!(
            implicit("tollgate --db a.db --listen 9000"),
            "tollgate --db a.db serve --listen 9000"
        );
        assert_eq!(
            implicit("tollgate --db=a.db --access-ttl 5m"),
            "tollgate --db=a.db serve --access-ttl 5m"
        );
        for unchanged in [
            "tollgate",
            "tollgate --db a.db",
            "tollgate serve --listen 9000",
            "tollgate --db a.db user list",
            "tollgate --help",
            "tollgate -V",
            "tollgate user --listen 1",
        ] {
            assert_eq!(implicit(unchanged), unchanged);
        }
    }
}
