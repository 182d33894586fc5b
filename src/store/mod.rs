//! The embedded store: SQLite with versioned migrations, WAL and foreign keys.
//!
//! Every write that changes access state goes through [`Store::write`], which hands out a
//! [`Tx`]; the Tx's mutators append their audit event in the same transaction, so state and
//! audit commit or roll back together.

pub mod access;
pub mod audit;
pub mod backlog;
pub mod catalog;
pub mod grants;
pub mod identity;
pub mod inbox;
pub mod migrations;
pub mod pack;
pub mod people;
pub mod queue;
pub mod reconcile;
pub mod scan;
pub mod secrets_index;
pub mod signals;

use crate::{Error, Result};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};

pub use audit::{AuditEvent, AuditProblem, NewAuditEvent};

/// The writer connection's page cache, in KiB (negative: SQLite's "KiB" form).
const WRITER_CACHE_KIB: i64 = -8192;

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 128;

pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// How this connection reads, and how the readers it opens read by default.
    read_mode: std::cell::Cell<ReadMode>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating if needed, with mode 0600) and migrate the database at `path`.
    /// A database written by a newer accessdesk is refused without being modified.
    pub fn open(path: &Path) -> Result<Store> {
        if !path.exists() {
            create_private_file(path)?;
        } else {
            check_not_newer(path)?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // The engine's hot path uses a few dozen distinct statements; rusqlite's default
        // cache of 16 would re-prepare them over and over.
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        tune_for_scans(&conn)?;
        // The writer's own page cache stays modest: SQLite walks the cache at every commit,
        // so a large one costs each of the engine's many small transactions (64 MiB made
        // `bench engine` 25% slower); the memory map already serves the big scans, and the
        // planner's parallel readers keep the large cache.
        conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        let mut store = Store {
            conn,
            path: path.to_path_buf(),
            read_mode: std::cell::Cell::new(ReadMode::Mapped),
        };
        store.migrate()?;
        Ok(store)
    }

    /// An in-memory store, for tests and benchmarks.
    pub fn open_in_memory() -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let mut store = Store {
            conn,
            path: PathBuf::from(":memory:"),
            read_mode: std::cell::Cell::new(ReadMode::Mapped),
        };
        store.migrate()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let current = self.schema_version()?;
        let latest = migrations::latest();
        if current > latest {
            return Err(newer_error(&self.path, current, latest));
        }
        for (i, sql) in migrations::MIGRATIONS
            .iter()
            .enumerate()
            .skip(current as usize)
        {
            let version = i as i64 + 1;
            let tx = self
                .conn
                .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            tx.execute_batch(sql).map_err(|e| Error::Database {
                path: self.path.clone(),
                message: format!("migration {version} failed: {e}"),
            })?;
            tx.pragma_update(None, "user_version", version)?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Read-only access for queries.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Run `f` in one transaction. Anything it writes, including audit events, commits
    /// together or not at all.
    ///
    /// The transaction takes the write lock when it begins (`BEGIN IMMEDIATE`), waiting
    /// up to the busy timeout for another writer (serve's workers, its inbox, the console
    /// and the CLI may share the home). A deferred one that read first would fail at once
    /// with "database is locked" when another connection had written meanwhile.
    pub fn write<T>(&mut self, f: impl FnOnce(&mut Tx<'_>) -> Result<T>) -> Result<T> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut w = Tx {
            tx,
            now: chrono::Utc::now(),
            audit_head: None,
            op_count_deltas: std::collections::HashMap::new(),
        };
        let out = f(&mut w)?;
        w.flush_op_counts()?;
        w.flush_audit_head()?;
        w.tx.commit()?;
        Ok(out)
    }
}

/// How much of the database file a connection may map into memory.
const MMAP_BYTES: i64 = 1 << 30;

/// Large scans (the planner reads millions of rows) go faster straight from the OS page
/// cache (mmap) and with a bigger page cache.
fn tune_for_scans(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "mmap_size", MMAP_BYTES)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    Ok(())
}

/// No memory map and a modest page cache: resident memory stays small however much is
/// read ([`ReadMode::Paged`]).
fn tune_paged(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
    Ok(())
}

/// How a reader connection reads the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadMode {
    /// Through a memory map and a large page cache: fastest for big scans, but every
    /// page it touches counts as the process's resident memory.
    Mapped,
    /// Through a small page cache, from the OS's page cache: resident memory stays small
    /// however much is read (reconciling a million memberships within its memory budget).
    Paged,
}

impl Store {
    /// A long-lived reader that does small indexed reads (the console): a modest page
    /// cache and no memory map, so its resident memory stays small on a big database.
    pub fn tune_for_small_reads(&self) -> Result<()> {
        tune_paged(&self.conn)?;
        self.read_mode.set(ReadMode::Paged);
        Ok(())
    }

    /// Map the file into memory for reads (the default) or read it through the page
    /// cache only. Turning the map off releases the pages it holds.
    pub fn set_read_mode(&self, mode: ReadMode) -> Result<()> {
        let bytes = match mode {
            ReadMode::Mapped => MMAP_BYTES,
            ReadMode::Paged => 0,
        };
        self.conn.pragma_update(None, "mmap_size", bytes)?;
        self.read_mode.set(mode);
        Ok(())
    }

    /// How this store reads (see [`Store::set_read_mode`]).
    pub fn read_mode(&self) -> ReadMode {
        self.read_mode.get()
    }

    /// A second, read-only connection to the same database, for reading in parallel on
    /// another thread (WAL lets readers run beside each other), tuned for large scans.
    /// None for in-memory stores.
    pub fn open_reader(&self) -> Result<Option<Connection>> {
        self.open_reader_in(ReadMode::Mapped)
    }

    /// [`Store::open_reader`] reading in `mode`.
    pub fn open_reader_in(&self, mode: ReadMode) -> Result<Option<Connection>> {
        if self.path.as_os_str() == ":memory:" {
            return Ok(None);
        }
        let c = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        c.busy_timeout(std::time::Duration::from_secs(10))?;
        match mode {
            ReadMode::Mapped => tune_for_scans(&c)?,
            ReadMode::Paged => tune_paged(&c)?,
        }
        Ok(Some(c))
    }
}

/// A write transaction. Mutators live in the per-table modules.
pub struct Tx<'c> {
    pub(crate) tx: rusqlite::Transaction<'c>,
    /// The timestamp all writes in this transaction carry.
    pub now: chrono::DateTime<chrono::Utc>,
    /// The audit chain's head as this transaction last appended it (seq, hash): read once,
    /// then carried, and written to `meta.audit_head` once, at commit.
    pub(crate) audit_head: Option<(i64, String)>,
    /// Changes to the queue's kept counts (`op_counts`) by (system, status), written once,
    /// at commit: enqueue and transition add to them.
    pub(crate) op_count_deltas: std::collections::HashMap<(String, &'static str), i64>,
}

impl Tx<'_> {
    pub fn conn(&self) -> &Connection {
        &self.tx
    }
}

fn create_private_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
    Ok(())
}

fn newer_error(path: &Path, found: i64, latest: i64) -> Error {
    Error::Database {
        path: path.to_path_buf(),
        message: format!(
            "schema version {found} was written by a newer accessdesk (this build knows up to {latest}); \
             refusing to open it so it is not modified. Upgrade accessdesk"
        ),
    }
}

/// Check the schema version through a read-only connection before anything writes.
fn check_not_newer(path: &Path) -> Result<()> {
    let ro = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let version: i64 = ro
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::Database {
            path: path.to_path_buf(),
            message: format!("not a readable accessdesk database: {e}"),
        })?;
    if version > migrations::latest() {
        return Err(newer_error(path, version, migrations::latest()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_0600_with_wal_and_fks() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/accessdesk.db");
        let s = Store::open(&p).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let jm: String = s
            .conn()
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .unwrap();
        assert_eq!(jm, "wal");
        let fk: i64 = s
            .conn()
            .pragma_query_value(None, "foreign_keys", |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        assert_eq!(s.schema_version().unwrap(), migrations::latest());
    }

    #[test]
    fn reopening_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.db");
        drop(Store::open(&p).unwrap());
        let s = Store::open(&p).unwrap();
        assert_eq!(s.schema_version().unwrap(), migrations::latest());
    }

    #[test]
    fn newer_database_is_refused_and_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.db");
        drop(Store::open(&p).unwrap());
        {
            let c = Connection::open(&p).unwrap();
            c.pragma_update(None, "user_version", 999).unwrap();
            c.pragma_update(None, "journal_mode", "DELETE").unwrap();
        }
        let before = std::fs::read(&p).unwrap();
        let err = Store::open(&p).unwrap_err().to_string();
        assert!(err.contains("newer accessdesk"), "{err}");
        assert!(err.contains("999"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), before, "database bytes changed");
        assert!(!dir.path().join("a.db-wal").exists());
    }
}
