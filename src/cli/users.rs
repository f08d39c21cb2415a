//! `tollgate user ...`: add, list, disable, enable, reset-secret, set-scopes, remove.
use super::output::{count, print_json, print_table, yes_no};
use super::{audit_admin, Ctx};
use crate::crypto::{hash_password, new_secret, Secret};
use crate::oauth::scopes::valid_token;
use crate::store::NewUser;
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

/// Nicknames travel in HTTP Basic, where ':' separates id from secret.
fn check_nickname(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.chars().count())
        && name.trim() == name
        && !name.contains(':')
        && !name.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(format!("user name {name:?}: use 1 to 64 characters, no ':' or control characters, no leading or trailing spaces"))
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

fn user_id(ctx: &Ctx, name: &str) -> Result<i64, String> {
    ctx.wait(ctx.store.user_id(name))?
        .ok_or_else(|| format!("no user named {name:?}; `tollgate user list` shows who exists"))
}

fn add(
    ctx: &mut Ctx,
    name: &str,
    scopes: &[String],
    api: bool,
    stdin: bool,
    json: bool,
) -> Result<(), String> {
    check_nickname(name)?;
    let scopes = known_scopes(ctx, scopes)?;
    if ctx.wait(ctx.store.user_id(name))?.is_some() {
        return Err(format!("a user named {name:?} exists already"));
    }
    let secret = read_secret(stdin)?;
    let hash = hash_password(secret.expose(), ctx.iterations);
    let new = NewUser {
        nickname: name.to_owned(),
        password_hash: hash,
        api_user: api,
        scopes: scopes.clone(),
    };
    ctx.wait(ctx.store.add_user(new))?;
    audit_admin(
        ctx,
        "user.add",
        name,
        &format!("scopes: {}; api user: {}", scopes.join(" "), yes_no(api)),
    );
    print_credentials(name, &secret, stdin, json)
}

/// The scopes named on the command line, each one that exists.
fn known_scopes(ctx: &Ctx, scopes: &[String]) -> Result<Vec<String>, String> {
    let known: Vec<String> = ctx
        .wait(ctx.store.scopes())?
        .into_iter()
        .map(|s| s.name)
        .collect();
    let scopes: Vec<&str> = scopes
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if let Some(bad) = scopes
        .iter()
        .find(|s| !valid_token(s) || !known.iter().any(|k| k == *s))
    {
        return Err(format!(
            "unknown scope {bad:?}; known scopes: {} (add one with `tollgate scope add`)",
            known.join(", ")
        ));
    }
    Ok(scopes.into_iter().map(str::to_owned).collect())
}

fn set_scopes(ctx: &mut Ctx, name: &str, scopes: &[String]) -> Result<(), String> {
    let id = user_id(ctx, name)?;
    let scopes = known_scopes(ctx, scopes)?;
    ctx.wait(ctx.store.set_user_scopes(id, scopes.clone()))?;
    let list = scopes.join(" ");
    audit_admin(ctx, "user.set-scopes", name, &format!("scopes: {list}"));
    println!("{name}: scopes {list}");
    Ok(())
}

fn remove(ctx: &mut Ctx, name: &str) -> Result<(), String> {
    let id = user_id(ctx, name)?;
    let ended = ctx.wait(ctx.store.remove_user(id))?;
    let ended = count(ended, "live session");
    audit_admin(ctx, "user.remove", name, &format!("{ended} ended"));
    println!("{name}: removed; {ended} ended");
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
    let id = user_id(ctx, name)?;
    let ended = ctx.wait(ctx.store.set_user_enabled(id, enabled))?;
    let (event, detail) = if enabled {
        ("user.enable", String::new())
    } else {
        (
            "user.disable",
            format!("{} ended", count(ended, "live session")),
        )
    };
    audit_admin(ctx, event, name, &detail);
    if enabled {
        println!("{name}: enabled");
    } else {
        println!("{name}: disabled; {} ended", count(ended, "live session"));
    }
    Ok(())
}

fn reset_secret(ctx: &mut Ctx, name: &str, stdin: bool, json: bool) -> Result<(), String> {
    let id = user_id(ctx, name)?;
    let secret = read_secret(stdin)?;
    let hash = hash_password(secret.expose(), ctx.iterations);
    ctx.wait(ctx.store.set_user_secret(id, hash))?;
    audit_admin(ctx, "user.reset-secret", name, "");
    print_credentials(name, &secret, stdin, json)
}
