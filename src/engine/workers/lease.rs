//! One set of workers per home. The workers' crash recovery treats every operation left
//! `running` as interrupted, so two processes running workers on one database (serve and
//! a console, say) would each "recover" the other's operations in flight and could do
//! them twice. Whoever runs workers holds an exclusive `flock` on `<database>.workers`
//! beside the database; a second process finds it held, names the holder (the pid and
//! what it is, written into the file), and leaves the queue to it: its actions (approve,
//! retry, import) still land in the queue, where the holder's workers carry them out.
//!
//! The lock is the kernel's: it goes when the holder exits, however it exits (kill -9
//! included), so a stale file never blocks anyone.

use crate::{Error, Result};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The held lock (released when dropped, or when the process ends).
#[derive(Debug)]
pub struct WorkersLock {
    _file: Option<File>,
}

/// What trying for the lock found.
#[derive(Debug)]
pub enum Acquired {
    Held(WorkersLock),
    /// Another process holds it: who (as it wrote itself: `pid 123, accessdesk serve`).
    Busy(String),
}

/// The lock file of the database at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".workers");
    db.with_file_name(name)
}

/// Take the lock without waiting; `who` is written into it for others to read. An
/// in-memory database (`:memory:`) has no one to share with: always held.
pub fn try_acquire(db: &Path, who: &str) -> Result<Acquired> {
    if db.as_os_str() == ":memory:" {
        return Ok(Acquired::Held(WorkersLock { _file: None }));
    }
    let path = lock_path(db);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    // SAFETY: flock on a file descriptor this function owns; no memory is shared.
    let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            return Ok(Acquired::Busy(if holder.is_empty() {
                "another process".into()
            } else {
                holder.to_string()
            }));
        }
        return Err(Error::io(format!("locking {}", path.display()), err));
    }
    let note = format!("pid {}, {who}", std::process::id());
    let _ = file.set_len(0);
    let _ = file.rewind();
    let _ = file.write_all(note.as_bytes());
    let _ = file.flush();
    Ok(Acquired::Held(WorkersLock { _file: Some(file) }))
}

/// Who runs this database's workers now, if another process does (the lock is taken and
/// dropped at once when it is free).
pub fn holder(db: &Path) -> Result<Option<String>> {
    Ok(match try_acquire(db, "a check")? {
        Acquired::Held(_) => None,
        Acquired::Busy(who) => Some(who),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("accessdesk.db");
        let first = match try_acquire(&db, "accessdesk serve").unwrap() {
            Acquired::Held(l) => l,
            Acquired::Busy(w) => panic!("busy: {w}"),
        };
        assert_eq!(lock_path(&db), dir.path().join("accessdesk.db.workers"));
        // flock locks belong to the open file description: a second open is refused even
        // within one process, as another process would be.
        match try_acquire(&db, "the console").unwrap() {
            Acquired::Busy(who) => {
                assert_eq!(who, format!("pid {}, accessdesk serve", std::process::id()))
            }
            Acquired::Held(_) => panic!("two holders"),
        }
        assert!(holder(&db).unwrap().unwrap().contains("accessdesk serve"));
        drop(first);
        assert_eq!(holder(&db).unwrap(), None);
        assert!(matches!(
            try_acquire(Path::new(":memory:"), "x").unwrap(),
            Acquired::Held(_)
        ));
    }
}
