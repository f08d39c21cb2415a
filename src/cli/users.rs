//! `tollgate user ...`: add, list, disable, enable, reset-secret, set-scopes, remove.
use super::output::{count, print_json, print_table, yes_no};
use super::{cli_err, Ctx};
use crate::admin::{check_user_name, UserRequest};
use crate::crypto::{new_secret, Secret};
use clap::Subcommand;
use serde_json::json;
use std::io::Read;

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

pub fn run(ctx: &mut Ctx, cmd: UserCmd) -> Result<(), String> {
    match cmd {
        UserCmd::Add {
            name,
            scopes,
            no_api,
            secret_stdin,
            json,
        } => add(ctx, &name, &scopes, !no_api, secret_stdin, json),
        UserCmd::List { json } => list(ctx, json),
        UserCmd::Disable { name } => set_enabled(ctx, &name, false),
        UserCmd::Enable { name } => set_enabled(ctx, &name, true),
        UserCmd::ResetSecret {
            name,
            secret_stdin,
            json,
        } => reset_secret(ctx, &name, secret_stdin, json),
        UserCmd::SetScopes { name, scopes } => set_scopes(ctx, &name, &scopes),
        UserCmd::Remove { name } => remove(ctx, &name),
    }
}

/// A new secret: made here, or read from standard input (without its line end).
fn read_secret(from_stdin: bool) -> Result<Secret, String> {
    if !from_stdin {
        return Ok(new_secret());
    }
    let mut buf = String::new();
    std::io::stdin()
        .take(4096)
        .read_to_string(&mut buf)
        .map_err(|e| format!("reading the secret from standard input: {e}"))?;
    let secret = buf.strip_suffix('\n').unwrap_or(&buf);
    let secret = secret.strip_suffix('\r').unwrap_or(secret);
    if secret.is_empty() || secret.len() > 1024 {
        return Err("the secret on standard input must be 1 to 1024 bytes".into());
    }
    // The token endpoint refuses such secrets (PBKDF2 would take `s\0` for `s`).
    if secret.chars().any(char::is_control) {
        return Err(
            "the secret on standard input must not contain control characters (tab, NUL, …)".into(),
        );
    }
    Ok(Secret::new(secret))
}

/// The new credentials, once; a secret the administrator chose (`--secret-stdin`)
/// is not echoed back to the terminal or a log of it.
fn print_credentials(name: &str, secret: &Secret, chosen: bool, json: bool) -> Result<(), String> {
    match (json, chosen) {
        (true, false) => print_json(&json!({"client_id": name, "client_secret": secret.expose()})),
        (true, true) => print_json(&json!({"client_id": name})),
        (false, false) => {
            println!("client_id: {name}\nclient_secret: {}", secret.expose());
            Ok(())
        }
        (false, true) => {
            println!("client_id: {name}\nclient_secret: as given on standard input (not shown)");
            Ok(())
        }
    }
}

fn add(
    ctx: &mut Ctx,
    name: &str,
    scopes: &[String],
    api: bool,
    stdin: bool,
    json: bool,
) -> Result<(), String> {
    // The name is checked before a secret is read from standard input.
    check_user_name(name).map_err(cli_err)?;
    let secret = read_secret(stdin)?;
    let req = UserRequest {
        name: name.to_owned(),
        scopes: scopes.to_vec(),
        api_user: api,
        secret: Some(secret),
    };
    let (_, secret) = ctx.admin(|a| a.add_user(req))?;
    print_credentials(name, &secret, stdin, json)
}

fn set_scopes(ctx: &mut Ctx, name: &str, scopes: &[String]) -> Result<(), String> {
    let scopes = ctx.admin(|a| a.set_scopes(name, scopes))?;
    println!("{name}: scopes {}", scopes.join(" "));
    Ok(())
}

fn remove(ctx: &mut Ctx, name: &str) -> Result<(), String> {
    let ended = ctx.admin(|a| a.remove_user(name))?;
    println!("{name}: removed; {} ended", count(ended, "live session"));
    Ok(())
}

fn list(ctx: &Ctx, json: bool) -> Result<(), String> {
    let rows = ctx.wait(ctx.store.users())?;
    if json {
        return print_json(&rows);
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|u| {
            vec![
                u.nickname.clone(),
                yes_no(u.api_user),
                u.scopes.join(","),
                yes_no(u.enabled),
                u.live_sessions.to_string(),
            ]
        })
        .collect();
    print_table(
        &["NICKNAME", "API", "SCOPES", "ENABLED", "SESSIONS"],
        &table,
    );
    Ok(())
}

fn set_enabled(ctx: &mut Ctx, name: &str, enabled: bool) -> Result<(), String> {
    let (_, ended) = ctx.admin(|a| a.set_enabled(name, enabled))?;
    if enabled {
        println!("{name}: enabled");
    } else {
        println!("{name}: disabled; {} ended", count(ended, "live session"));
    }
    Ok(())
}

fn reset_secret(ctx: &mut Ctx, name: &str, stdin: bool, json: bool) -> Result<(), String> {
    // An unknown name is refused before a secret is read from standard input.
    ctx.admin(|a| a.user(name))?;
    let secret = read_secret(stdin)?;
    let secret = ctx.admin(|a| a.new_secret(name, Some(secret)))?;
    print_credentials(name, &secret, stdin, json)
}
