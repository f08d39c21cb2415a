//! The command line: `tollgate [--db FILE] [COMMAND]` (docs/API.md §6). Each
//! command's own arguments are in the file that runs it.
use super::audit::AuditArgs;
use super::backup::BackupArgs;
use super::init::InitArgs;
use super::keys::KeysCmd;
use super::licences::LicencesCmd;
use super::queries::QueryCmd;
use super::scopes::ScopeCmd;
use super::scripts::ScriptCmd;
use super::serve::ServeArgs;
use super::sessions::SessionsCmd;
use super::users::UserCmd;
use crate::crypto::DEFAULT_PBKDF2_ITERATIONS;
use clap::parser::ValueSource;
use clap::{ArgMatches, Parser, Subcommand};
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
    /// SQLite database file, or a PostgreSQL URL (postgres://user@host/db) [default: ./tollgate.db]
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
    /// List or rotate the JWT signing keys.
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Publish and try script URL handlers (Rhai).
    #[command(subcommand)]
    Script(ScriptCmd),
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
