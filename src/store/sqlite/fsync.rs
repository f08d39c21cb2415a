//! Syncing a connection's database file to disk, outside any SQLite operation.
//!
//! SQLite syncs the database file itself only when a checkpoint copies the WAL to
//! its very end. The checkpointer thread (writer/checkpointer.rs) copies while the
//! writer goes on appending, so it seldom reaches that end, and its copies would
//! otherwise all be synced by the writer's own checkpoint, while grants wait. It syncs
//! them itself, through the connection's own file handle: a second descriptor of our
//! own would do the same fsync, but closing it would drop every POSIX lock this
//! process holds on the file, SQLite's included (fcntl(2)).
use crate::store::StoreError;
use rusqlite::{ffi, Connection};

/// Syncs the main database file of `c` (as SQLite would, `SQLITE_SYNC_NORMAL`).
/// Call it on the thread that uses `c`, between statements.
#[allow(unsafe_code)] // a documented file-control call and the VFS method it returns
pub fn sync_main_db(c: &Connection) -> Result<(), StoreError> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: `c.handle()` is a live connection that `c` keeps open for the call; "main"
    // is a NUL-terminated name; SQLITE_FCNTL_FILE_POINTER writes one `sqlite3_file *`
    // through its argument, which points at `file`.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            c.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&raw mut file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(StoreError::Invalid(format!(
            "cannot reach the database file (SQLite code {rc})"
        )));
    }
    // SAFETY: SQLite returned the connection's open main-database file (or null if it
    // has none); it stays open while `c` lives and, on this thread, nothing else uses
    // it during the call. `pMethods` is null for a file that failed to open.
    let rc = unsafe {
        match file
            .as_ref()
            .and_then(|f| f.pMethods.as_ref())
            .and_then(|m| m.xSync)
        {
            Some(x_sync) => x_sync(file, ffi::SQLITE_SYNC_NORMAL),
            None => ffi::SQLITE_OK,
        }
    };
    if rc != ffi::SQLITE_OK {
        return Err(StoreError::Invalid(format!(
            "cannot sync the database file (SQLite code {rc})"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syncs_a_file_database_and_an_in_memory_one() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("t.db")).unwrap();
        c.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);")
            .unwrap();
        sync_main_db(&c).unwrap();
        sync_main_db(&Connection::open_in_memory().unwrap()).unwrap();
    }
}
