//! Admin command arguments (API.md §6).
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Create a user; its secret is printed once.
    Add {
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
        #[arg(long)]
        json: bool,
    },
    /// List users (never their hashes).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: it can no longer authenticate and its live sessions end.
    Disable { name: String },
    /// Enable a disabled user.
    Enable { name: String },
    /// Give a user a new secret; the old one stops working at once.
    ResetSecret {
        name: String,
        #[arg(long)]
        secret_stdin: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum LicencesCmd {
    /// Seats in total, held, and the sessions that hold them.
    Show {
        #[arg(long)]
        json: bool,
    },
    /// Set the number of seats. Held sessions keep their seats if it goes below them.
    Set { seats: u32 },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCmd {
    /// Live sessions.
    List {
        #[arg(long)]
        json: bool,
    },
    /// End a session: its tokens die and its seat frees.
    Revoke { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum ScopeCmd {
    /// Add a scope.
    Add {
        name: String,
        /// Tokens with this scope hold a licence seat.
        #[arg(long)]
        licensed: bool,
        #[arg(long, default_value = "")]
        description: String,
    },
    /// List scopes.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// How far back: e.g. 30m, 12h, 7d [default: 1d].
    #[arg(long, default_value = "1d")]
    pub since: String,
    /// Only this client.
    #[arg(long)]
    pub client: Option<String>,
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
        name: String,
        /// One SELECT, with positional parameters ?1 to ?9.
        #[arg(long)]
        sql: String,
        /// The scope a token needs (a token with `all` passes any).
        #[arg(long, default_value = "view")]
        scope: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Attach this SQLite file read-only as schema `data` while checking.
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
    },
    /// List published queries.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Withdraw a query.
    Remove { name: String },
    /// Run a query and print its first page.
    Run {
        name: String,
        /// Values for ?1, ?2, …
        params: Vec<String>,
        #[arg(long, default_value_t = 1)]
        pageno: u32,
        #[arg(long, default_value_t = 50)]
        pagesize: u32,
        /// Print the same document as the HTTP answer.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "TOLLGATE_DATA_DB")]
        data_db: Option<PathBuf>,
        /// Time limit, milliseconds: the server's setting of the same name.
        #[arg(long, env = "TOLLGATE_QUERY_TIME_LIMIT_MS", default_value_t = 2000, value_parser = clap::value_parser!(u32).range(1..))]
        query_time_limit_ms: u32,
    },
}
