//! API.md §12: several databases in one process, each served under a path of its
//! own (`--mount PATH=DB`). This module turns the flags into one `Settings` per
//! mount and refuses what cannot work: a malformed `PATH=DB`, two mounts on one
//! path, two mounts on one database.
use crate::config::{db_label, normalize_base_path, postgres_url, Settings};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One `--mount PATH=DB`: a database served under `/PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `/Jim_Test`: one path segment, no trailing slash.
    pub path: String,
    /// A SQLite file or a PostgreSQL URL, as `--db` takes either.
    pub db: PathBuf,
}

/// API.md §12: `PATH=DB`, PATH one segment (`/Jim_Test` or `Jim_Test`).
pub fn parse_mount(raw: &str) -> Result<Mount, String> {
    let usage = "give PATH=DB, PATH one path segment such as /Jim_Test and DB a SQLite \
                 file or a PostgreSQL URL, e.g. --mount /Jim_Test=test.db";
    let (path, db) = raw
        .split_once('=')
        .ok_or_else(|| format!("--mount {raw:?}: no `=`; {usage}"))?;
    let path = normalize_base_path(path).map_err(|_| format!("--mount {raw:?}: {usage}"))?;
    if path.is_empty() || path[1..].contains('/') || path == "/.well-known" {
        return Err(format!("--mount {raw:?}: {usage}"));
    }
    if db.trim().is_empty() {
        return Err(format!("--mount {raw:?}: no database after `=`; {usage}"));
    }
    Ok(Mount {
        path,
        db: PathBuf::from(db.trim()),
    })
}

/// One `Settings` per mount: `settings` itself when no `--mount` was given (the
/// `--db` + `--base-path` shorthand), else a copy per mount with its database, its
/// path and its issuer (`--issuer` is then the origin the paths go under).
pub fn split(settings: &Settings) -> Result<Vec<Settings>, String> {
    if settings.mounts.is_empty() {
        return Ok(vec![settings.clone()]);
    }
    check_distinct(&settings.mounts)?;
    Ok(settings
        .mounts
        .iter()
        .map(|m| {
            let mut s = settings.clone();
            s.mounts = Vec::new();
            s.db = m.db.clone();
            s.base_path = m.path.clone();
            s.create_demo_if_missing = false;
            s.issuer = settings
                .issuer
                .as_ref()
                .map(|origin| format!("{}{}", origin.trim_end_matches('/'), m.path));
            s
        })
        .collect())
}

/// API.md §12: two mounts on the same path or the same database are refused.
pub fn check_distinct(mounts: &[Mount]) -> Result<(), String> {
    let mut paths: HashMap<String, &Mount> = HashMap::new();
    let mut dbs: HashMap<String, &Mount> = HashMap::new();
    for m in mounts {
        // Paths differ by case only would be told apart by tollgate but not by a
        // person reading the configuration, nor by Jim2 on Windows.
        if let Some(other) = paths.insert(m.path.to_ascii_lowercase(), m) {
            return Err(format!(
                "--mount {}={} and --mount {}={}: two mounts on one path; give each its own",
                other.path,
                db_label(&other.db),
                m.path,
                db_label(&m.db)
            ));
        }
        if let Some(other) = dbs.insert(identity(&m.db), m) {
            return Err(format!(
                "--mount {} and --mount {} both serve {}: a database belongs to one mount",
                other.path,
                m.path,
                db_label(&m.db)
            ));
        }
    }
    Ok(())
}

/// What tells two databases apart: the URL without its password, or the file's
/// canonical path (the path as given when the file does not exist yet).
fn identity(db: &Path) -> String {
    match postgres_url(db) {
        Some(_) => db_label(db),
        None => std::fs::canonicalize(db)
            .unwrap_or_else(|_| db.to_path_buf())
            .display()
            .to_string(),
    }
}

/// How a mount is named in metrics and messages: its path, `/` for the root.
pub fn label(base_path: &str) -> &str {
    if base_path.is_empty() {
        "/"
    } else {
        base_path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mount_is_one_segment_and_a_database() {
        let m = parse_mount("/Jim_Test=test.db").unwrap();
        assert_eq!(
            (m.path.as_str(), m.db.as_path()),
            ("/Jim_Test", Path::new("test.db"))
        );
        assert_eq!(parse_mount("Jim_Live/=live.db").unwrap().path, "/Jim_Live");
        let pg = parse_mount("/P=postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!(pg.db, Path::new("postgres://u@h/db?sslmode=disable"));
        for bad in [
            "test.db",
            "/=x.db",
            "/a/b=x.db",
            "/a b=x.db",
            "/a=",
            "/.well-known=x.db",
        ] {
            assert!(parse_mount(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn paths_and_databases_are_distinct() {
        let m = |s: &str| parse_mount(s).unwrap();
        assert!(check_distinct(&[m("/a=a.db"), m("/b=b.db")]).is_ok());
        let e = check_distinct(&[m("/a=a.db"), m("/A=b.db")]).unwrap_err();
        assert!(e.contains("one path"), "{e}");
        let e = check_distinct(&[m("/a=x.db"), m("/b=./x.db")]);
        assert!(e.is_ok() || e.unwrap_err().contains("x.db"));
        let e = check_distinct(&[m("/a=x.db"), m("/b=x.db")]).unwrap_err();
        assert!(
            e.contains("/a") && e.contains("/b") && e.contains("x.db"),
            "{e}"
        );
    }

    #[test]
    fn each_mount_has_its_own_issuer() {
        let mut s = Settings::for_db("unused.db");
        s.mounts = vec![
            parse_mount("/T=t.db").unwrap(),
            parse_mount("/L=l.db").unwrap(),
        ];
        s.issuer = Some("https://auth.example/".into());
        let per = split(&s).unwrap();
        assert_eq!(per[1].base_path, "/L");
        assert_eq!(per[1].db, Path::new("l.db"));
        assert_eq!(per[1].issuer.as_deref(), Some("https://auth.example/L"));
    }
}
