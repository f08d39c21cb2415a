//! Admin command arguments (API.md §6).
use clap::{Args, Subcommand};
use std::path::PathBuf;

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
