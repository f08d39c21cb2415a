//! The database file the writer has open, watched for removal or replacement.

/// The database file as the writer opened it: a path that names another file (or
/// none) means the file was removed or replaced while serving, and every write
/// would go to a file nobody can open again.
pub(super) struct Watched {
    path: std::path::PathBuf,
    id: Option<(u64, u64)>,
}

impl Watched {
    pub(super) fn new(path: &std::path::Path) -> Self {
        Self {
            path: path.to_owned(),
            id: file_id(path),
        }
    }

    /// Why the path no longer names the file the writer has open.
    pub(super) fn gone(&self) -> Option<String> {
        if self.id.is_none() || file_id(&self.path) == self.id {
            return None;
        }
        Some(format!(
            "the database file {} was removed or replaced while serving; writes are refused \
             until tollgate is restarted on a database file",
            self.path.display()
        ))
    }
}

#[cfg(unix)]
fn file_id(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_: &std::path::Path) -> Option<(u64, u64)> {
    None
}
