//! The engine's durable store: one SQLite file per data directory, written with group commit.
//!
//! The store owns durability and nothing else. It does not know the domain types: the actor hands it
//! records (`kind`, `key`, serialized `value`), events (bytes) with their sequence numbers, and small settings.
//! A value may come as a [`Value::Later`] closure that the writer thread runs, so serializing happens on the
//! store's thread instead of the caller's. What it guarantees:
//!
//! - **Durable before acknowledged.** A batch's `done` callback runs only after the SQLite transaction that
//!   holds it has committed with `synchronous=FULL` (the WAL is fsynced), so an `Ok` means the batch survives
//!   a crash of the process or the machine.
//! - **All or nothing, in order.** A batch is never half-written, and batches commit in submission order.
//! - **A prefix, always.** What is on disk is every batch up to some point in submission order, never a later
//!   batch without an earlier one: after a batch fails, every batch submitted after it is refused with the
//!   same error until the caller calls [`Store::resume`]. The caller built those batches on a state that now
//!   will never be on disk (the engine's memory held the failed change), so writing them would store changes
//!   that depend on one that is missing. The engine reloads its state from the store, then resumes.
//! - **Fast.** One writer thread takes the first queued batch, then everything else already queued (bounded),
//!   and writes the whole group in one transaction with statements prepared once: one fsync pays for
//!   thousands of batches. The caller keeps working while the disk syncs; only its replies wait.
//! - **No stalls for checkpoints.** SQLite's automatic checkpoint runs inside the commit that crosses its
//!   mark, holding up every reply waiting on that commit. Here a checkpointer thread copies the WAL into the
//!   database beside the writer, and the writer only finishes the little that is left, every few megabytes,
//!   so the WAL starts over (`Writer::after_commit`).
//! - **One process per directory.** An exclusive lock on `engine.lock` stops a second trworker from
//!   writing the same files.
//!
//! Reads (`load` at start, `events_after` for subscribers catching up and for the Events resource beyond
//! what the engine keeps in memory) go through a second, read-only connection, so they never wait behind a
//! group being written and see only committed data (WAL readers do not block the writer).
//!
//! # Files
//!
//! `DIR/engine.db` (with SQLite's `-wal` and `-shm` companions) and `DIR/engine.lock`. The lock file is
//! left in place on exit: removing it would race with a process that is just opening it.
//!
//! They hold callers' data (phone numbers in task attributes), so on Unix they are the owner's only: a new
//! data directory is made `0700` ([`create_data_dir`]), the lock file and the database `0600`. The database
//! file is made before SQLite opens it because SQLite gives its `-wal` and `-shm` the main file's mode. A
//! file an older trworker left readable by others (`0644` under the usual umask) is set to `0600` when the
//! store opens, without a word: there is no choice for the operator to make, and the engine has no log of
//! its own. An existing directory keeps its mode: it may be one the operator made and shares on purpose,
//! and what is in it is private anyway.
//!
//! # Schema (version 6, in `PRAGMA user_version`; `PRAGMA application_id` marks the file as trworker's)
//!
//! - Pages are 8 KiB (`PAGE_SIZE`), set when the file is created; a file keeps the page size it was made with.
//! - `records(seq INTEGER PRIMARY KEY, kind, key, value)`: one row per live record. `value` holds the bytes
//!   the engine put: JSON for most kinds, a binary form for tasks (`Task::encode`). `seq` is the rowid and
//!   only grows, so a new record is appended at the end of the b-tree, and an update rewrites the row where
//!   it is. The writer finds a record's row through an in-memory index of `(kind, key) -> seq`, built when
//!   the store opens; the file has no index on `(kind, key)`.
//! - `event_chunks(last_seq INTEGER PRIMARY KEY, max_at_ms, value BLOB)`: the event log, one row per
//!   transaction's events (split every [`CHUNK_BYTES`]), keyed by the highest `seq` in the row, so appends go
//!   to the end of the b-tree and `events_after` is a range scan from the row holding the first wanted event.
//!   `value` is the events one after the other, compressed with LZ4 ([`Chunk`]), `max_at_ms` the latest
//!   `at_ms` among them, so pruning reads only the one row that straddles its bound. One row per group
//!   instead of one per event saves the writer about a sixth of its time per task created over HTTP (three
//!   events each); compressing it makes the log about eight times smaller.
//! - `meta(key, value)`: small settings of the layers above.
//! - `store_state(key, value)`: the store's own bookkeeping, kept apart from `meta` so callers never see or
//!   clobber it. Today it holds `pruned_through`, the highest event `seq` ever pruned, so the sequence never
//!   goes backwards even when retention empties the event log.
//!
//! Why records are not keyed by `(kind, key)` on disk: keys are SIDs, which are random, so under a stream of
//! new tasks every insert landed on a different leaf page, and each commit rewrote dozens of whole pages to
//! the WAL (and again to the database at the checkpoint): about 56 KB written per 2 KB task. Appending by
//! `seq` writes each commit's new rows into the same few tail pages.
//!
//! Older versions are converted in place when opened, each in one transaction, so a crash half-way leaves
//! the file as it was, to be converted at the next open:
//! - version 5 (event rows uncompressed): only the number changes; those rows are read as they are, and new
//!   rows are compressed;
//! - version 4 (one `events` row per event): the events are gathered into `event_chunks`;
//! - version 3 (every record value JSON text): as version 4; `load` reads text values as well as blobs and
//!   the engine reads a JSON task as well as a binary one, so records stay as they are (the new number keeps
//!   older builds from misreading a binary value);
//! - version 2 (records keyed by `(kind, key)`, `WITHOUT ROWID`): the records are rewritten in `seq` order,
//!   then as version 3.
//!
//! Version 1 (events as JSON) is refused with [`StoreError::OldSchema`], which names the directory: there was
//! no release with version 1, so there is no conversion.

use std::collections::HashMap;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

use crate::codec::{put_varint, unzigzag, zigzag, DecodeError, Reader};
use crate::sharded::Sharded;

/// The schema version this build writes and understands.
const SCHEMA_VERSION: i64 = 6;

/// `PRAGMA application_id` of a trworker store ("trwk"), so a foreign SQLite file is recognised as such.
const APPLICATION_ID: i64 = 0x7472_776b;

/// Page size of a new database. Every commit rewrites whole pages: the new rows' tail pages, the b-trees'
/// interior pages on the way to them, and page 1 (the file's size is in its header), so small commits (HTTP
/// requests one by one) favour small pages; large groups (a burst through the actor) favour large ones,
/// which need fewer page allocations per row. 8 KiB was as good as 4 KiB or better over HTTP in alternating
/// runs and about 10% faster in the durable bench; 16 KiB gave clearly fewer HTTP creates (docs/PERFORMANCE.md).
const PAGE_SIZE: i64 = 8192;

/// File name of the database inside the data directory.
const DB_FILE: &str = "engine.db";

/// File name of the lock file inside the data directory.
const LOCK_FILE: &str = "engine.lock";

/// At most this many batches go into one transaction, so one group's callbacks are not held back for long.
const MAX_GROUP_BATCHES: usize = 4096;

/// At most about this many bytes of keys and values go into one transaction, for the same reason.
const MAX_GROUP_BYTES: usize = 8 << 20;

/// After about this many bytes of committed data, the checkpointer thread is asked to copy the WAL into the
/// database. It works beside the writer, so commits do not wait for it.
const CHECKPOINT_BYTES: usize = 1 << 20;

/// After about this many bytes of committed data since the WAL last started over, the writer finishes the
/// checkpoint itself (the little the checkpointer has not copied yet), so that its next transaction starts
/// the WAL from the beginning. Without this the WAL would never restart under a steady load: a checkpoint
/// running beside the writer never catches up with the frames committed while it runs.
const RESTART_BYTES: usize = 8 << 20;

/// A row of `event_chunks` is closed once it holds this many bytes of events, so a reader wanting one
/// event decodes at most this much beside it. A commit under HTTP load holds 20-60 events of about 320
/// bytes, one row.
const CHUNK_BYTES: usize = 64 << 10;

/// How long a statement waits for a SQLite lock before failing. Only this process writes (the lock file
/// makes sure), so waits are short: a checkpoint, or an external `sqlite3` shell reading the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// `max_page_count` meaning "no cap": SQLite's own largest page count, which it also uses as the default.
const UNCAPPED_PAGES: u64 = 0xFFFF_FFFE;

/// Called once, from the writer thread, with the outcome of the transaction that held the batch.
pub type Done = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// Produces a serialized value; run once, on the writer thread.
pub type Encoder<T> = Box<dyn Fn() -> T + Send>;

/// A serialized value, or the closure that serializes it on the writer thread.
pub enum Value<T> {
    /// Already serialized.
    Ready(T),
    /// Serialized by the writer thread just before it is written.
    Later(Encoder<T>),
}

impl<T> std::fmt::Debug for Value<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Ready(_) => f.write_str("Value::Ready(..)"),
            Value::Later(_) => f.write_str("Value::Later(..)"),
        }
    }
}

impl<T: AsRef<[u8]>> Value<T> {
    /// Rough size in bytes, to bound a group (a deferred value counts as 1 KiB).
    fn size(&self) -> usize {
        match self {
            Value::Ready(v) => v.as_ref().len(),
            Value::Later(_) => 1024,
        }
    }
}

/// One change to persist. A batch (`Vec<Write>`) is written atomically.
#[derive(Debug)]
pub enum Write {
    /// Insert or replace the record `(kind, key)`; `value` is its serialized form.
    Put {
        /// The record type, e.g. `"task"`.
        kind: &'static str,
        /// The record's identity within its kind, usually its SID.
        key: String,
        /// The serialized record (JSON or binary: the store does not look inside).
        value: Value<Vec<u8>>,
    },
    /// Remove the record `(kind, key)`; removing a record that does not exist is not an error.
    Delete {
        /// The record type.
        kind: &'static str,
        /// The record's identity within its kind.
        key: String,
    },
    /// Append an event to the log. `seq` must be greater than every `seq` submitted before (and below
    /// 2^63); a batch that breaks this is refused with [`StoreError::EventOrder`] and nothing of it is
    /// written.
    Event {
        /// The event's position in the log.
        seq: u64,
        /// When the event happened, in milliseconds since the Unix epoch.
        at_ms: i64,
        /// The serialized event.
        value: Value<Vec<u8>>,
    },
    /// Drop events older than `before_ms`, oldest first, stopping at the first event that is not older.
    /// Events are appended in time order, so this is "drop everything before `before_ms`" without scanning
    /// the whole log; an event stamped earlier than one before it (a clock step back) may be kept a little
    /// longer. The highest pruned `seq` is remembered, so [`Loaded::last_event_seq`] never goes backwards.
    PruneEvents {
        /// Events with `at_ms` below this are dropped.
        before_ms: i64,
    },
    /// Set a small setting (credentials, schema information, counters).
    Meta {
        /// The setting's name.
        key: String,
        /// Its value.
        value: String,
    },
}

impl Write {
    /// Rough size in bytes, to bound a group.
    fn size(&self) -> usize {
        match self {
            Write::Put { key, value, .. } => key.len() + value.size() + 16,
            Write::Delete { key, .. } => key.len() + 16,
            Write::Event { value, .. } => value.size() + 16,
            Write::PruneEvents { .. } => 16,
            Write::Meta { key, value } => key.len() + value.len() + 16,
        }
    }
}

/// One stored record, as returned by [`Store::load`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The record type, e.g. `"task"`.
    pub kind: String,
    /// The record's identity within its kind.
    pub key: String,
    /// The serialized record, as it was put.
    pub value: Vec<u8>,
}

/// One event from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The event's position in the log.
    pub seq: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// The serialized event.
    pub value: Vec<u8>,
}

/// Everything the engine needs to rebuild its state at start (events are read with
/// [`Store::events_after`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loaded {
    /// All records, ordered by `(kind, key)`.
    pub records: Vec<Record>,
    /// All settings, ordered by key.
    pub meta: Vec<(String, String)>,
    /// The highest event `seq` ever written (also counting pruned events); 0 for a new store. The next
    /// event must have a greater `seq`.
    pub last_event_seq: u64,
}

/// What went wrong in the store. Every message names the file or directory and says what to do.
///
/// Errors are `Clone` (causes are shared behind `Arc`) because one failed transaction is reported to every
/// batch it held.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {dir}: {cause}; check the path and its permissions")]
    CreateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        cause: Arc<io::Error>,
    },
    /// A file of the store could not be made, or made readable by its owner only.
    #[error(
        "cannot make {} readable by its owner only ({cause}); run trworker as the user who owns the data \
         directory, or fix the file's owner and permissions",
        .path.display()
    )]
    Private {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: Arc<io::Error>,
    },
    /// The lock file could not be opened or locked (other than being held by another process).
    #[error(
        "cannot lock {path}: {cause}; the data directory must be writable and on a local file system that \
         supports file locks"
    )]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        cause: Arc<io::Error>,
    },
    /// Another process (or another `Store` in this process) has the directory open.
    #[error("{} is in use by another trworker process; stop that process or choose another data directory", .dir.display())]
    InUse {
        /// The data directory.
        dir: PathBuf,
    },
    /// The database file is not an SQLite database, or is damaged.
    #[error(
        "{} is not a readable trworker database ({cause}); it is corrupt or not a database: move it (and any \
         engine.db-wal file) away to start with an empty store, or restore it from a backup",
        .path.display()
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: Arc<rusqlite::Error>,
    },
    /// The database file is an SQLite database that trworker did not create.
    #[error(
        "{} is an SQLite database that trworker did not create; choose another data directory or move the file away",
        .path.display()
    )]
    Foreign {
        /// The database file.
        path: PathBuf,
    },
    /// The database was written by a newer trworker.
    #[error(
        "{} was written by a newer trworker (schema version {found}; this build knows up to {supported}); \
         upgrade trworker or choose another data directory",
        .path.display()
    )]
    NewerSchema {
        /// The database file.
        path: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The newest schema version this build understands.
        supported: i64,
    },
    /// The database was written by an older trworker whose format this build cannot read.
    #[error(
        "the data directory {} holds a store written by an older trworker (schema version {found}; this \
         build uses version {supported} and cannot convert it): move the directory aside or delete it to \
         start with an empty store, or run the older trworker",
        .dir.display()
    )]
    OldSchema {
        /// The data directory.
        dir: PathBuf,
        /// The schema version found in the file.
        found: i64,
        /// The schema version this build uses.
        supported: i64,
    },
    /// SQLite could not put the database in WAL mode.
    #[error(
        "cannot use write-ahead logging for {} (SQLite kept journal mode '{mode}'); put the data directory on \
         a local file system",
        .path.display()
    )]
    NoWal {
        /// The database file.
        path: PathBuf,
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The disk is full; nothing of the failed transaction was written. Later batches are refused until
    /// [`Store::resume`].
    #[error("the disk holding {} is full; the write was not saved: free some space", .path.display())]
    DiskFull {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: Arc<rusqlite::Error>,
    },
    /// The operating system reported an I/O error; nothing of the failed transaction was written.
    #[error("I/O error on {} ({cause}); the write was not saved: check the disk and the file system", .path.display())]
    Io {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: Arc<rusqlite::Error>,
    },
    /// The database file or its directory cannot be written.
    #[error("{} is read-only ({cause}); the write was not saved: check the file's permissions", .path.display())]
    ReadOnly {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: Arc<rusqlite::Error>,
    },
    /// Any other SQLite failure.
    #[error("SQLite failed on {} ({cause}); the write was not saved", .path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        cause: Arc<rusqlite::Error>,
    },
    /// A batch held an event whose `seq` does not follow the last one (a bug in the caller); nothing of the
    /// batch was written.
    #[error(
        "event seq {seq} does not follow seq {last}: events must be appended with strictly increasing seq \
         below 2^63; the batch was not saved"
    )]
    EventOrder {
        /// The offending seq.
        seq: u64,
        /// The seq it had to exceed.
        last: u64,
    },
    /// The writer or checkpointer thread could not be started.
    #[error("cannot start the store's writer or checkpointer thread: {cause}; the system is short of threads or memory")]
    Thread {
        /// Why.
        cause: Arc<io::Error>,
    },
    /// The writer thread is gone (it can only stop when the store is dropped).
    #[error("the store writer for {} has stopped; the write was not saved: restart trworker", .path.display())]
    WriterStopped {
        /// The database file.
        path: PathBuf,
    },
}

/// The class of a [`StoreError`], for a caller that must choose how to answer: the environment refused the
/// write (the operator can fix it, and a retry then succeeds), or the store itself is damaged or misused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The disk is full (or the store's size cap is reached).
    Full,
    /// The database file or its directory cannot be written.
    ReadOnly,
    /// The operating system reported an I/O error.
    Io,
    /// The database file is damaged or not a trworker database.
    Corrupt,
    /// Anything else: a bug, a refused batch, a stopped writer, a failure while opening.
    Other,
}

impl ErrorKind {
    /// The disk or file system refused the write: nothing is wrong with the data, and once the operator has
    /// freed space or fixed the file system, the same request succeeds.
    pub fn is_exhaustion(self) -> bool {
        matches!(self, ErrorKind::Full | ErrorKind::ReadOnly | ErrorKind::Io)
    }
}

impl StoreError {
    /// Which class of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::DiskFull { .. } => ErrorKind::Full,
            StoreError::ReadOnly { .. } => ErrorKind::ReadOnly,
            StoreError::Io { .. } => ErrorKind::Io,
            StoreError::Corrupt { .. } | StoreError::Foreign { .. } => ErrorKind::Corrupt,
            StoreError::CreateDir { .. }
            | StoreError::Private { .. }
            | StoreError::Lock { .. }
            | StoreError::InUse { .. }
            | StoreError::NewerSchema { .. }
            | StoreError::OldSchema { .. }
            | StoreError::NoWal { .. }
            | StoreError::Sqlite { .. }
            | StoreError::EventOrder { .. }
            | StoreError::Thread { .. }
            | StoreError::WriterStopped { .. } => ErrorKind::Other,
        }
    }

    /// Classifies an SQLite error on `path` into the variant that tells the user what to do.
    fn sqlite(path: &Path, err: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        let code = match &err {
            rusqlite::Error::SqliteFailure(e, _) => Some(e.code),
            _ => None,
        };
        let cause = Arc::new(err);
        match code {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StoreError::Corrupt { path, cause },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path, cause },
            Some(ErrorCode::SystemIoFailure | ErrorCode::CannotOpen) => StoreError::Io { path, cause },
            Some(ErrorCode::ReadOnly) => StoreError::ReadOnly { path, cause },
            _ => StoreError::Sqlite { path, cause },
        }
    }
}

/// A batch waiting for the writer thread.
struct Job {
    batch: Vec<Write>,
    done: Done,
}

/// What the writer thread is asked to do, in submission order.
enum Request {
    /// Write a batch.
    Write(Job),
    /// Accept batches again after a failure ([`Store::resume`]).
    Resume,
}

/// The cap on the database file's size, which may be changed while the store runs ([`Store::size_cap`]).
/// How tests give the store a full disk, and free it again, without filling a disk.
///
/// Read by the writer once per transaction (one relaxed load), not per batch.
#[derive(Debug, Clone, Default)]
pub struct SizeCap(Arc<AtomicU64>);

impl SizeCap {
    /// From the next transaction on, the file stops growing at `max_bytes` (rounded down to whole pages, and
    /// never below its size then); `None` lifts the cap. A transaction that needs more fails with
    /// [`StoreError::DiskFull`] and changes nothing, exactly as on a full disk.
    pub fn set(&self, max_bytes: Option<u64>) {
        self.0.store(cap_pages(max_bytes), Ordering::Relaxed);
    }
}

/// `max_page_count` for a cap in bytes. SQLite takes 0 as "no change", and raises a cap below the file's
/// size to that size.
fn cap_pages(max_bytes: Option<u64>) -> u64 {
    match max_bytes {
        Some(bytes) => (bytes / PAGE_SIZE as u64).clamp(1, UNCAPPED_PAGES),
        None => UNCAPPED_PAGES,
    }
}

/// The durable store of one data directory. `Send + Sync`: share it behind an `Arc`.
///
/// Dropping it writes everything already submitted, calls every pending `done`, stops the writer and
/// checkpointer threads and releases the directory lock.
pub struct Store {
    /// `DIR/engine.db`, for error messages.
    path: PathBuf,
    /// The writer's queue. Unbounded on purpose: `submit` is called from the engine's actor, which must
    /// never block; the callers' own concurrency (requests waiting for their reply) bounds what is queued.
    /// `None` only while dropping.
    queue: Option<Sender<Request>>,
    /// The writer thread, joined on drop.
    writer: Option<JoinHandle<()>>,
    /// The file's size cap, applied by the writer.
    cap: SizeCap,
    /// The read-only connection. A `std` mutex because reads are short, synchronous and rare next to writes.
    reader: Mutex<Connection>,
    /// Holds the exclusive lock on `engine.lock` for as long as the store lives; declared last so it is
    /// released only after the writer has finished.
    _lock: File,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`: creates the directory and `dir/engine.db`, takes the
    /// directory's lock, checks or creates the schema and starts the writer and checkpointer threads.
    ///
    /// Fails with [`StoreError::InUse`] if another process holds the directory, [`StoreError::Corrupt`] or
    /// [`StoreError::Foreign`] if `engine.db` is not a trworker database, and [`StoreError::NewerSchema`] if
    /// a newer trworker wrote it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_capped(dir, None)
    }

    /// As [`Store::open`], but with `max_bytes` the database file stops growing at that size (rounded down
    /// to whole pages, and never below its size now): a transaction that needs more fails with
    /// [`StoreError::DiskFull`] and changes nothing, exactly as on a full disk. SQLite enforces the cap
    /// (`PRAGMA max_page_count`), so tests reach the real full-disk path without filling a disk. The cap can
    /// be changed later through [`Store::size_cap`].
    pub fn open_capped(dir: &Path, max_bytes: Option<u64>) -> Result<Store, StoreError> {
        create_data_dir(dir)
            .map_err(|e| StoreError::CreateDir { dir: dir.to_path_buf(), cause: Arc::new(e) })?;
        let lock = lock_dir(dir)?;
        let path = dir.join(DB_FILE);
        make_private(&path)?;
        let sql = |e| StoreError::sqlite(&path, e);

        let mut conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // Only takes effect in a new file (before its first write); an existing file keeps its page size.
        conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(sql)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)).map_err(sql)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NoWal { path, mode });
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        // Keep the WAL file from staying large after a burst; it is truncated to this after checkpoints.
        conn.pragma_update(None, "journal_size_limit", 64i64 << 20).map_err(sql)?;
        // A 32 MiB page cache (instead of 2 MiB) keeps the hot records' b-tree pages in memory.
        conn.pragma_update(None, "cache_size", -32768i64).map_err(sql)?;
        // No checkpoints inside commits: SQLite's automatic one (every 1,000 pages) made the commit that
        // crossed the mark copy and sync megabytes, stalling every request waiting on it for 5-20 ms. The
        // checkpointer thread and the writer's restarts (`Writer::after_commit`) take over.
        conn.pragma_update(None, "wal_autocheckpoint", 0i64).map_err(sql)?;
        ensure_schema(&mut conn, &path)?;
        let cap = SizeCap::default();
        cap.set(max_bytes);
        if max_bytes.is_some() {
            // After the schema, so a new file gets its tables whatever the cap.
            conn.pragma_update(None, "max_page_count", cap_pages(max_bytes) as i64).map_err(sql)?;
        }
        let last_seq = last_event_seq(&conn).map_err(sql)?;

        let reader = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        reader.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        let checkpointer = Checkpointer::start(&path)?;

        let (queue, jobs) = mpsc::channel();
        let writer_path = path.clone();
        let writer_cap = cap.clone();
        let writer = thread::Builder::new()
            .name("trworker-store".into())
            .spawn(move || Writer::run(conn, writer_path, last_seq, jobs, checkpointer, writer_cap))
            .map_err(|e| StoreError::Thread { cause: Arc::new(e) })?;

        Ok(Store {
            path,
            queue: Some(queue),
            writer: Some(writer),
            cap,
            reader: Mutex::new(reader),
            _lock: lock,
        })
    }

    /// Reads everything needed to rebuild the engine's state: all records, all settings and the last event
    /// seq, from one consistent snapshot.
    pub fn load(&self) -> Result<Loaded, StoreError> {
        let sql = |e| StoreError::sqlite(&self.path, e);
        let mut reader = self.reader();
        let tx = reader.transaction().map_err(sql)?;
        let records = {
            let mut stmt = tx.prepare("SELECT kind, key, value FROM records").map_err(sql)?;
            let rows = stmt
                .query_map([], |row| {
                    Ok(Record { kind: row.get(0)?, key: row.get(1)?, value: bytes(row, 2)? })
                })
                .map_err(sql)?;
            let mut records = rows.collect::<Result<Vec<_>, _>>().map_err(sql)?;
            // The file has no index on (kind, key) (see the module doc); sorting here is cheaper than
            // SQLite's sorter, which may spill a large table to temporary files.
            records.sort_unstable_by(|a, b| (&a.kind, &a.key).cmp(&(&b.kind, &b.key)));
            records
        };
        let meta = {
            let mut stmt = tx.prepare("SELECT key, value FROM meta ORDER BY key").map_err(sql)?;
            let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?))).map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)?
        };
        let last_event_seq = last_event_seq(&tx).map_err(sql)?;
        tx.finish().map_err(sql)?;
        Ok(Loaded { records, meta, last_event_seq })
    }

    /// Up to `limit` committed events with `seq > after_seq`, in seq order. Page by passing the last `seq`
    /// returned; an empty result means the caller has caught up.
    pub fn events_after(&self, after_seq: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let sql = |e| StoreError::sqlite(&self.path, e);
        let Ok(after) = i64::try_from(after_seq) else {
            return Ok(Vec::new());
        };
        let mut events = Vec::new();
        if limit == 0 {
            return Ok(events);
        }
        let reader = self.reader();
        // The first row is the one holding `after_seq + 1` (or the next event after it).
        let mut stmt = reader
            .prepare_cached("SELECT value FROM event_chunks WHERE last_seq > ?1 ORDER BY last_seq")
            .map_err(sql)?;
        let mut rows = stmt.query([after]).map_err(sql)?;
        while events.len() < limit {
            let Some(row) = rows.next().map_err(sql)? else { break };
            let chunk = chunk_bytes(row, 0).map_err(sql)?;
            let wanted = Chunk::decode(chunk).map_err(sql)?.into_iter().filter(|e| e.seq > after_seq);
            events.extend(wanted.take(limit - events.len()));
        }
        Ok(events)
    }

    /// Queues a batch. `done` is called exactly once, from the writer thread, after the transaction holding
    /// the batch has committed (`Ok`) or failed and been rolled back (`Err`, nothing of the batch written).
    /// Batches commit in the order they are submitted. Never blocks.
    ///
    /// After a batch has failed, every later one is refused with the same error, and nothing of it written,
    /// until [`Store::resume`] (see the module doc).
    ///
    /// `done` should be quick (send on a channel): the next group waits for it. If it panics, the panic is
    /// contained so the other batches are still reported and the store keeps working.
    pub fn submit(&self, batch: Vec<Write>, done: Done) {
        let Some(queue) = &self.queue else {
            done(Err(StoreError::WriterStopped { path: self.path.clone() }));
            return;
        };
        if let Err(mpsc::SendError(Request::Write(job))) = queue.send(Request::Write(Job { batch, done })) {
            (job.done)(Err(StoreError::WriterStopped { path: self.path.clone() }));
        }
    }

    /// Lets the batches submitted from now on be written again after a failure had the store refuse every
    /// batch (see [`Store::submit`]). Call it once what those batches build on agrees with the disk again:
    /// the engine first reloads its state with [`Store::load`]. Batches submitted before the call are still
    /// refused. Harmless when nothing failed.
    pub fn resume(&self) {
        if let Some(queue) = &self.queue {
            // A writer that is gone refuses every batch anyway.
            let _ = queue.send(Request::Resume);
        }
    }

    /// The file's size cap, to change it while the store runs (see [`Store::open_capped`]).
    pub fn size_cap(&self) -> SizeCap {
        self.cap.clone()
    }

    /// The data directory, for messages that name it.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(&self.path)
    }

    /// Blocks until everything submitted before the call is durable (their `done`s have been called).
    /// Returns the outcome of the transaction that carried the flush: an `Err` means something submitted
    /// just before it was not saved (errors of earlier transactions went to their own `done`s), or that the
    /// store refuses batches after a failure and has not been resumed.
    pub fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(
            Vec::new(),
            Box::new(move |result| {
                // The receiver only goes away if flush itself is gone; nothing to report then.
                let _ = tx.send(result);
            }),
        );
        rx.recv().unwrap_or_else(|_| Err(StoreError::WriterStopped { path: self.path.clone() }))
    }

    /// The read connection; a panic while it was held cannot leave it in a bad state, so poisoning is
    /// ignored.
    fn reader(&self) -> MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain what is queued, then return.
        self.queue = None;
        if let Some(writer) = self.writer.take() {
            // The last reference may be dropped inside a `done` callback, on the writer thread itself:
            // joining would deadlock there, and the thread ends on its own once the queue is drained.
            if writer.thread().id() != thread::current().id() {
                let _ = writer.join();
            }
        }
    }
}

// The actor shares the store between its task and the writer's callbacks.
const _: fn() = || {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};

/// Creates `dir` and any missing parents, readable by the owner only (`0700` on Unix; each directory made
/// gets that mode, an existing one keeps its own). The one way trworker makes its data directory, also for
/// the configuration files it writes there.
pub fn create_data_dir(dir: &Path) -> io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Options that create a file readable and writable by its owner only (`0600` on Unix) without truncating
/// an existing one. The mode applies only to a file they create; see [`make_private`] for one that exists.
fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes sure `DIR/engine.db` exists and is its owner's only before SQLite opens it, and takes back what an
/// older trworker left readable by others: the database and, if a crash left them, its `-wal` and `-shm`.
///
/// SQLite treats the empty file made here as a new database. Called with the directory lock held and
/// before any connection of this store exists: closing this file releases the process's POSIX locks on the
/// database, which would matter only to a connection already open on it.
fn make_private(db: &Path) -> Result<(), StoreError> {
    let failed =
        |path: &Path, e: io::Error| StoreError::Private { path: path.to_path_buf(), cause: Arc::new(e) };
    let file = private_file().open(db).map_err(|e| failed(db, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let private = |mode: u32| mode & 0o077 == 0;
        let mode = file.metadata().map_err(|e| failed(db, e))?.permissions().mode();
        if !private(mode) {
            file.set_permissions(std::fs::Permissions::from_mode(0o600)).map_err(|e| failed(db, e))?;
        }
        for suffix in ["-wal", "-shm"] {
            let mut companion = db.as_os_str().to_owned();
            companion.push(suffix);
            let companion = PathBuf::from(companion);
            // Only a regular file: a symbolic link is left alone, so its target's mode is never changed.
            match std::fs::symlink_metadata(&companion) {
                Ok(meta) if meta.is_file() && !private(meta.permissions().mode()) => {
                    std::fs::set_permissions(&companion, std::fs::Permissions::from_mode(0o600))
                        .map_err(|e| failed(&companion, e))?;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(failed(&companion, e)),
            }
        }
    }
    drop(file);
    Ok(())
}

/// Opens `DIR/engine.lock` and takes an exclusive, non-blocking lock on it.
fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let file = private_file()
        .open(&path)
        .map_err(|e| StoreError::Lock { path: path.clone(), cause: Arc::new(e) })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::InUse { dir: dir.to_path_buf() }),
        Err(TryLockError::Error(e)) => Err(StoreError::Lock { path, cause: Arc::new(e) }),
    }
}

/// Checks that `conn` is a trworker database this build understands, creating the schema in a new file.
fn ensure_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let app_id: i64 = conn.pragma_query_value(None, "application_id", |row| row.get(0)).map_err(sql)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0)).map_err(sql)?;
    if app_id == APPLICATION_ID {
        return match version {
            SCHEMA_VERSION => Ok(()),
            // Its event rows are all in the plain form, which this build reads as it is. The number is raised
            // so that a build that knows only the plain form refuses the file once rows in the LZ4 form are
            // in it, rather than call them damaged.
            5 => conn.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql),
            3 | 4 => upgrade(conn, path, false),
            2 => upgrade(conn, path, true),
            v if v > SCHEMA_VERSION => {
                Err(StoreError::NewerSchema { path: path.to_path_buf(), found: v, supported: SCHEMA_VERSION })
            }
            v if v >= 1 => Err(StoreError::OldSchema {
                dir: path.parent().unwrap_or(path).to_path_buf(),
                found: v,
                supported: SCHEMA_VERSION,
            }),
            _ => Err(StoreError::Foreign { path: path.to_path_buf() }),
        };
    }
    let tables: i64 =
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |row| row.get(0)).map_err(sql)?;
    if app_id != 0 || version != 0 || tables != 0 {
        return Err(StoreError::Foreign { path: path.to_path_buf() });
    }
    let tx = conn.transaction().map_err(sql)?;
    tx.execute_batch(&format!(
        "CREATE TABLE records {RECORDS_COLUMNS};
         CREATE TABLE event_chunks {EVENT_CHUNKS_COLUMNS};
         CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
         CREATE TABLE store_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
         PRAGMA application_id = {APPLICATION_ID};
         PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(sql)?;
    tx.commit().map_err(sql)
}

/// The columns of the `records` table, for creating it and for converting to it. Files made by version 3 declare
/// `value TEXT`; SQLite keeps a blob a blob in either, so they need no change.
const RECORDS_COLUMNS: &str =
    "(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL)";

/// The columns of the `event_chunks` table (see the module doc).
const EVENT_CHUNKS_COLUMNS: &str =
    "(last_seq INTEGER PRIMARY KEY, max_at_ms INTEGER NOT NULL, value BLOB NOT NULL)";

/// Converts a file of version 2, 3 or 4 to the current version in one transaction: a crash half-way leaves
/// the file as it was, to be converted at the next open. `records_by_key` says the records are still keyed
/// by `(kind, key)` (version 2) and must be rewritten in `seq` order; the event log of every older version
/// is one row per event, gathered here into `event_chunks`.
fn upgrade(conn: &mut Connection, path: &Path, records_by_key: bool) -> Result<(), StoreError> {
    let sql = |e| StoreError::sqlite(path, e);
    let tx = conn.transaction().map_err(sql)?;
    if records_by_key {
        tx.execute_batch(&format!(
            "CREATE TABLE records_new {RECORDS_COLUMNS};
             INSERT INTO records_new (kind, key, value) SELECT kind, key, value FROM records ORDER BY kind, key;
             DROP TABLE records;
             ALTER TABLE records_new RENAME TO records;"
        ))
        .map_err(sql)?;
    }
    tx.execute_batch(&format!("CREATE TABLE event_chunks {EVENT_CHUNKS_COLUMNS};")).map_err(sql)?;
    {
        let mut insert = tx.prepare(INSERT_CHUNK).map_err(sql)?;
        let mut read = tx.prepare("SELECT seq, at_ms, value FROM events ORDER BY seq").map_err(sql)?;
        let mut rows = read.query([]).map_err(sql)?;
        let mut chunk = Chunk::default();
        while let Some(row) = rows.next().map_err(sql)? {
            let seq: i64 = row.get(0).map_err(sql)?;
            chunk.push(seq.unsigned_abs(), row.get(1).map_err(sql)?, &bytes(row, 2).map_err(sql)?);
            if chunk.is_full() {
                chunk.insert(&mut insert).map_err(sql)?;
            }
        }
        chunk.insert(&mut insert).map_err(sql)?;
    }
    tx.execute_batch(&format!("DROP TABLE events; PRAGMA user_version = {SCHEMA_VERSION};")).map_err(sql)?;
    tx.commit().map_err(sql)
}

/// A column's bytes, whether SQLite holds them as text (records written before version 4) or as a blob.
/// Anything else (a number, put there by hand) is damage: see [`damaged`].
fn bytes(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(column)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => Ok(b.to_vec()),
        other => Err(damaged(format!("a record's value is {}, not text or bytes", other.data_type()))),
    }
}

/// A row of `event_chunks`, which only this module writes, as a blob.
fn chunk_bytes<'r>(row: &'r rusqlite::Row<'_>, column: usize) -> rusqlite::Result<&'r [u8]> {
    match row.get_ref(column)? {
        ValueRef::Blob(b) => Ok(b),
        other => Err(damaged(format!("a row of the event log is {}, not bytes", other.data_type()))),
    }
}

/// Content this module did not write (a file edited by hand, or damaged), reported as SQLite reports a
/// corrupt file, so the caller gets [`StoreError::Corrupt`] and its advice (move the file away or restore a
/// backup) rather than a failed write.
fn damaged(what: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT), Some(what))
}

/// Inserts a row of `event_chunks`: `last_seq`, `max_at_ms`, `value`.
const INSERT_CHUNK: &str = "INSERT INTO event_chunks (last_seq, max_at_ms, value) VALUES (?1, ?2, ?3)";

/// Events on their way into one row of `event_chunks`, and the forms of that row.
///
/// The events' *plain form*: per event its `seq` as the difference from the previous event's (the first
/// from 0), its `at_ms` likewise (zigzagged, as a clock may step back), and its value's length and bytes;
/// all numbers varints. A row is a form byte, then:
/// - [`CHUNK_PLAIN`] (written by schema version 5): the plain form;
/// - [`CHUNK_LZ4`] (since version 6): the plain form's length as a varint, then the plain form compressed as
///   one LZ4 block.
///
/// Why compressed: the events of a row repeat each other (the same SIDs, the task's attributes in each of its
/// events, the same field names), so a row of task creates shrinks about eightfold, from about 325 bytes
/// an event to about 40. Every byte is written twice (to the WAL, then by the checkpoint into the
/// database), and LZ4 costs less than a microsecond per event to pack. Under task creates over HTTP the
/// database took about 0.5 KB per task instead of 1.4 (docs/PERFORMANCE.md, eighth session).
#[derive(Default)]
struct Chunk {
    /// The plain form of the events gathered so far.
    plain: Vec<u8>,
    /// The last row packed ([`Chunk::pack`]), kept to reuse its allocation.
    packed: Vec<u8>,
    last_seq: u64,
    last_at_ms: i64,
    max_at_ms: i64,
}

/// The first byte of a row of `event_chunks` in the plain form.
const CHUNK_PLAIN: u8 = 1;

/// The first byte of a row of `event_chunks` in the LZ4 form.
const CHUNK_LZ4: u8 = 2;

/// An LZ4 block expands to at most about 255 times its size, so a row claiming more is damaged; it is
/// refused before anything that size is allocated.
const LZ4_MAX_RATIO: usize = 255;

impl Chunk {
    /// Appends an event; `seq` must be above the previous one's (the writer has checked the batch).
    fn push(&mut self, seq: u64, at_ms: i64, value: &[u8]) {
        if self.plain.is_empty() {
            self.last_seq = 0;
            self.last_at_ms = 0;
            self.max_at_ms = at_ms;
        }
        // Seqs only grow (the writer checks each batch; a converted table is read in `seq` order), so this
        // does not wrap; if a hand-edited file made it, the row would read back as damaged, not panic here.
        put_varint(&mut self.plain, seq.wrapping_sub(self.last_seq));
        put_varint(&mut self.plain, zigzag(at_ms.wrapping_sub(self.last_at_ms)));
        put_varint(&mut self.plain, value.len() as u64);
        self.plain.extend_from_slice(value);
        self.last_seq = seq;
        self.last_at_ms = at_ms;
        self.max_at_ms = self.max_at_ms.max(at_ms);
    }

    /// Whether the row should be closed ([`CHUNK_BYTES`]).
    fn is_full(&self) -> bool {
        self.plain.len() >= CHUNK_BYTES
    }

    /// Writes the events gathered so far as one row (nothing if there are none) and starts over.
    fn insert(&mut self, insert: &mut rusqlite::Statement<'_>) -> rusqlite::Result<()> {
        if !self.plain.is_empty() {
            // The writer refused seqs above i64::MAX, so this conversion is exact.
            let (last_seq, max_at_ms) = (self.last_seq as i64, self.max_at_ms);
            insert.execute(params![last_seq, max_at_ms, self.pack()?])?;
            self.plain.clear();
        }
        Ok(())
    }

    /// The row for the events gathered so far, in the LZ4 form.
    fn pack(&mut self) -> rusqlite::Result<&[u8]> {
        let packed = &mut self.packed;
        packed.clear();
        packed.push(CHUNK_LZ4);
        put_varint(packed, self.plain.len() as u64);
        let start = packed.len();
        packed.resize(start + lz4_flex::block::get_maximum_output_size(self.plain.len()), 0);
        // The room is the most LZ4 can need, so this does not fail; if it did, the transaction would.
        let len = lz4_flex::block::compress_into(&self.plain, &mut packed[start..])
            .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
        packed.truncate(start + len);
        Ok(packed)
    }

    /// Forgets the events gathered so far (their transaction failed).
    fn clear(&mut self) {
        self.plain.clear();
    }

    /// The events of a stored row, in order.
    fn decode(row: &[u8]) -> rusqlite::Result<Vec<StoredEvent>> {
        let bad = |e: DecodeError| damaged(format!("a row of the event log is not readable: {}", e.0));
        let unpacked;
        let plain = match row.split_first() {
            Some((&CHUNK_PLAIN, plain)) => plain,
            Some((&CHUNK_LZ4, packed)) => {
                unpacked = unpack(packed).map_err(bad)?;
                &unpacked[..]
            }
            Some(_) => return Err(bad(DecodeError("unknown version"))),
            None => return Err(bad(DecodeError("truncated"))),
        };
        let mut reader = Reader { bytes: plain };
        let (mut seq, mut at_ms) = (0u64, 0i64);
        let mut events: Vec<StoredEvent> = Vec::new();
        while !reader.bytes.is_empty() {
            let step = reader.varint().map_err(bad)?;
            // Only the first event may have seq 0 (a step of 0 from the start); after it, seqs grow.
            let in_order = step > 0 || events.is_empty();
            seq = seq
                .checked_add(step)
                .filter(|s| in_order && i64::try_from(*s).is_ok())
                .ok_or_else(|| bad(DecodeError("a seq out of order or out of range")))?;
            at_ms = at_ms.wrapping_add(unzigzag(reader.varint().map_err(bad)?));
            let len = reader.varint().map_err(bad)?;
            let len = usize::try_from(len).map_err(|_| bad(DecodeError("a length out of range")))?;
            let value = reader.take(len).map_err(bad)?.to_vec();
            events.push(StoredEvent { seq, at_ms, value });
        }
        Ok(events)
    }
}

/// The plain form inside a row of the LZ4 form (after its first byte).
fn unpack(packed: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let mut reader = Reader { bytes: packed };
    let len = reader.varint()?;
    let len = usize::try_from(len)
        .ok()
        .filter(|len| *len <= reader.bytes.len().saturating_mul(LZ4_MAX_RATIO))
        .ok_or(DecodeError("a length out of range"))?;
    match lz4_flex::block::decompress(reader.bytes, len) {
        Ok(plain) if plain.len() == len => Ok(plain),
        _ => Err(DecodeError("compressed events that do not decompress")),
    }
}

/// The highest event seq ever written: the newest event, or the highest pruned one if the log is empty.
fn last_event_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(last_seq) FROM event_chunks), 0), \
                    coalesce((SELECT value FROM store_state WHERE key = 'pruned_through'), 0))",
        [],
        |row| row.get(0),
    )?;
    Ok(seq.unsigned_abs())
}

/// The writer thread's statements, prepared once for the life of the thread.
struct Writer<'c> {
    conn: &'c Connection,
    path: PathBuf,
    /// The highest event seq committed or in the current transaction.
    last_seq: u64,
    /// Where each record lives in the file. `None` after a failed transaction (the index may then be ahead of
    /// the rolled-back file), so it is read again before the next write.
    rows: Option<RowIndex>,
    /// Copies the WAL into the database beside the writer; stopped when the writer is dropped.
    checkpointer: Checkpointer,
    /// The failure every batch is refused with until [`Request::Resume`] (see [`Store::submit`]).
    fenced: Option<StoreError>,
    /// The cap the file should have, and the `max_page_count` last given to SQLite.
    cap: SizeCap,
    applied_cap: u64,
    /// Committed bytes since the checkpointer was last nudged and since the WAL last restarted.
    wal: WalGrowth,
    begin: rusqlite::Statement<'c>,
    commit: rusqlite::Statement<'c>,
    insert: rusqlite::Statement<'c>,
    update: rusqlite::Statement<'c>,
    delete: rusqlite::Statement<'c>,
    /// The events of the transaction being written, not yet in `event_chunks`.
    chunk: Chunk,
    insert_chunk: rusqlite::Statement<'c>,
    update_chunk: rusqlite::Statement<'c>,
    meta: rusqlite::Statement<'c>,
    first_kept: rusqlite::Statement<'c>,
    prune_before: rusqlite::Statement<'c>,
    max_seq: rusqlite::Statement<'c>,
    pruned_through: rusqlite::Statement<'c>,
}

impl<'c> Writer<'c> {
    /// The writer thread: takes groups of jobs off the queue and commits each group in one transaction,
    /// until the queue is closed and drained.
    fn run(
        conn: Connection,
        path: PathBuf,
        last_seq: u64,
        jobs: Receiver<Request>,
        checkpointer: Checkpointer,
        cap: SizeCap,
    ) {
        let mut writer = match Writer::new(&conn, path.clone(), last_seq, checkpointer, cap) {
            Ok(writer) => writer,
            Err(e) => {
                let err = StoreError::sqlite(&path, e);
                for request in jobs {
                    if let Request::Write(job) = request {
                        report(job.done, Err(err.clone()));
                    }
                }
                return;
            }
        };
        let mut group: Vec<Job> = Vec::new();
        let mut carried = None;
        loop {
            let request = match carried.take() {
                Some(request) => request,
                None => match jobs.recv() {
                    Ok(request) => request,
                    Err(_) => break,
                },
            };
            let first = match request {
                Request::Write(job) => job,
                Request::Resume => {
                    writer.fenced = None;
                    continue;
                }
            };
            writer.apply_cap();
            let mut bytes = first.batch.iter().map(Write::size).sum::<usize>();
            group.push(first);
            while group.len() < MAX_GROUP_BATCHES && bytes < MAX_GROUP_BYTES {
                match jobs.try_recv() {
                    Ok(Request::Write(job)) => {
                        bytes += job.batch.iter().map(Write::size).sum::<usize>();
                        group.push(job);
                    }
                    // A resume is for the batches after it: they go in the next group.
                    Ok(resume) => {
                        carried = Some(resume);
                        break;
                    }
                    Err(_) => break,
                }
            }
            writer.commit_group(&mut group);
            writer.after_commit(bytes);
        }
        // Dropping the writer stops its checkpointer, so the last checkpoint has the WAL to itself.
        drop(writer);
        // A clean stop folds the WAL back into engine.db and empties it, so a stopped store is one file.
        // Failing here loses nothing: the next open replays the WAL.
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    }

    fn new(
        conn: &'c Connection,
        path: PathBuf,
        last_seq: u64,
        checkpointer: Checkpointer,
        cap: SizeCap,
    ) -> rusqlite::Result<Writer<'c>> {
        // `open_capped` has given SQLite the cap it started with.
        let applied_cap = cap.0.load(Ordering::Relaxed);
        Ok(Writer {
            conn,
            path,
            last_seq,
            checkpointer,
            fenced: None,
            cap,
            applied_cap,
            wal: WalGrowth::default(),
            rows: Some(RowIndex::read(conn)?),
            // IMMEDIATE takes the write lock at the start, so a transaction never fails half-way for a lock.
            begin: conn.prepare("BEGIN IMMEDIATE")?,
            commit: conn.prepare("COMMIT")?,
            insert: conn.prepare("INSERT INTO records (seq, kind, key, value) VALUES (?1, ?2, ?3, ?4)")?,
            update: conn.prepare("UPDATE records SET value = ?2 WHERE seq = ?1")?,
            delete: conn.prepare("DELETE FROM records WHERE seq = ?1")?,
            chunk: Chunk::default(),
            insert_chunk: conn.prepare(INSERT_CHUNK)?,
            update_chunk: conn.prepare("UPDATE event_chunks SET value = ?2 WHERE last_seq = ?1")?,
            meta: conn.prepare(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?,
            // Walks the log from the oldest row and stops at the first one holding an event to keep: the cost
            // is the number of rows dropped, not the size of the log.
            first_kept: conn.prepare(
                "SELECT last_seq, value FROM event_chunks WHERE max_at_ms >= ?1 ORDER BY last_seq LIMIT 1",
            )?,
            prune_before: conn.prepare("DELETE FROM event_chunks WHERE last_seq < ?1")?,
            max_seq: conn.prepare("SELECT max(last_seq) FROM event_chunks WHERE last_seq < ?1")?,
            pruned_through: conn.prepare(
                "INSERT INTO store_state (key, value) VALUES ('pruned_through', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            )?,
        })
    }

    /// Keeps the WAL short without stalling commits: every [`CHECKPOINT_BYTES`] the checkpointer thread is
    /// asked to copy it into the database, and every [`RESTART_BYTES`] the writer checkpoints what is left,
    /// which is little, so that its next transaction starts the WAL over. Sizes are those of the groups
    /// (`Write::size`), an estimate of what reached the WAL that errs high: a value the writer encodes
    /// counts as 1 KiB (a task is about 280 bytes, an event about 325), and events count before their row
    /// is compressed (about an eighth of that). Under task creates a nudge comes after a quarter to a third of
    /// [`CHECKPOINT_BYTES`] of real WAL; the WAL stays shorter than the constants say, never longer.
    ///
    /// A failed or blocked checkpoint (the checkpointer at work, or a reader still on old frames) costs only
    /// WAL length: the writer tries again after another [`CHECKPOINT_BYTES`], not after every commit, and a
    /// commit that cannot write reports its own error.
    fn after_commit(&mut self, bytes: usize) {
        let wal = &mut self.wal;
        wal.since_nudge += bytes;
        wal.since_restart += bytes;
        if wal.since_nudge >= CHECKPOINT_BYTES {
            wal.since_nudge = 0;
            self.checkpointer.nudge();
        }
        if wal.since_restart >= RESTART_BYTES {
            // Everything copied means the next write transaction restarts the WAL.
            let done = checkpoint_passive(self.conn).unwrap_or(false);
            wal.since_restart = if done { 0 } else { RESTART_BYTES - CHECKPOINT_BYTES };
        }
    }

    /// Gives SQLite the size cap [`SizeCap::set`] asked for, if it changed. A failure leaves the old cap and
    /// is tried again at the next transaction.
    fn apply_cap(&mut self) {
        let wanted = self.cap.0.load(Ordering::Relaxed);
        if wanted != self.applied_cap
            && self.conn.pragma_update(None, "max_page_count", wanted as i64).is_ok()
        {
            self.applied_cap = wanted;
        }
    }

    /// Writes every admitted batch of `group` in one transaction, commits, then reports to every `done` in
    /// submission order. Empties `group`.
    fn commit_group(&mut self, group: &mut Vec<Job>) {
        let start_seq = self.last_seq;
        // Batches are admitted before anything is written, so one that breaks the event order is refused
        // without taking the batches before it down with it.
        let verdicts: Vec<Result<(), StoreError>> = group.iter().map(|job| self.admit(&job.batch)).collect();
        let has_writes = group.iter().zip(&verdicts).any(|(job, ok)| ok.is_ok() && !job.batch.is_empty());
        let outcome = if has_writes {
            self.write_group(group, &verdicts).map_err(|e| {
                self.rollback();
                self.last_seq = start_seq;
                self.rows = None;
                let failure = StoreError::sqlite(&self.path, e);
                self.fenced = Some(failure.clone());
                failure
            })
        } else {
            // Only flushes (or refused batches): everything before them is already committed.
            Ok(())
        };
        for (job, verdict) in group.drain(..).zip(verdicts) {
            let result = match verdict {
                Ok(()) => outcome.clone(),
                Err(refused) => Err(refused),
            };
            report(job.done, result);
        }
    }

    /// Whether a batch may be written: none while the store is fenced by an earlier failure, and one that
    /// breaks the event order is refused and fences the store (the batches after it were built on it).
    fn admit(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        if let Some(failure) = &self.fenced {
            return Err(failure.clone());
        }
        let verdict = self.check(batch);
        if let Err(refused) = &verdict {
            self.fenced = Some(refused.clone());
        }
        verdict
    }

    /// Checks a batch's events against the log's order, advancing `last_seq` if it is accepted.
    fn check(&mut self, batch: &[Write]) -> Result<(), StoreError> {
        let mut last = self.last_seq;
        for write in batch {
            if let Write::Event { seq, .. } = write {
                if *seq <= last || i64::try_from(*seq).is_err() {
                    return Err(StoreError::EventOrder { seq: *seq, last });
                }
                last = *seq;
            }
        }
        self.last_seq = last;
        Ok(())
    }

    /// One transaction holding every accepted batch of the group.
    fn write_group(&mut self, group: &[Job], verdicts: &[Result<(), StoreError>]) -> rusqlite::Result<()> {
        self.begin.execute([])?;
        // Left over if the previous transaction failed half-way.
        self.chunk.clear();
        // Taken out for the transaction and put back only if it commits: after a failure `rows` stays `None`
        // and the next group reads it again from the rolled-back file.
        let mut rows = match self.rows.take() {
            Some(rows) => rows,
            None => RowIndex::read(self.conn)?,
        };
        for (job, _) in group.iter().zip(verdicts).filter(|(_, ok)| ok.is_ok()) {
            for write in &job.batch {
                self.apply(&mut rows, write)?;
            }
        }
        self.chunk.insert(&mut self.insert_chunk)?;
        self.commit.execute([])?;
        self.rows = Some(rows);
        Ok(())
    }

    fn apply(&mut self, rows: &mut RowIndex, write: &Write) -> rusqlite::Result<()> {
        match write {
            Write::Put { kind, key, value } => {
                let encoded;
                let value = match value {
                    Value::Ready(v) => v,
                    Value::Later(encode) => {
                        encoded = encode();
                        &encoded
                    }
                };
                let updated = match rows.find(kind, key) {
                    Some(seq) => self.update.execute(params![seq, value])? == 1,
                    None => false,
                };
                // Not found, or (the file changed behind the index, e.g. by hand) its row is gone: a new row.
                if !updated {
                    let seq = rows.next;
                    self.insert.execute(params![seq, kind, key, value])?;
                    rows.next += 1;
                    rows.insert(kind, key, seq);
                }
            }
            Write::Delete { kind, key } => {
                if let Some(seq) = rows.find(kind, key) {
                    self.delete.execute([seq])?;
                    rows.remove(kind, key);
                }
            }
            Write::Event { seq, at_ms, value } => {
                match value {
                    Value::Ready(v) => self.chunk.push(*seq, *at_ms, v),
                    Value::Later(encode) => self.chunk.push(*seq, *at_ms, &encode()),
                };
                if self.chunk.is_full() {
                    self.chunk.insert(&mut self.insert_chunk)?;
                }
            }
            Write::Meta { key, value } => {
                self.meta.execute(params![key, value])?;
            }
            Write::PruneEvents { before_ms } => {
                // The events of this transaction so far are part of the log being pruned.
                self.chunk.insert(&mut self.insert_chunk)?;
                // The row holding the first event to keep; every row before it goes whole.
                let boundary: Option<(i64, Vec<u8>)> = self
                    .first_kept
                    .query_row([before_ms], |row| Ok((row.get(0)?, chunk_bytes(row, 1)?.to_vec())))
                    .optional()?;
                // With nothing to keep, everything goes (the bound is above any seq).
                let keep_from = boundary.as_ref().map_or(i64::MAX, |(last_seq, _)| *last_seq);
                let mut dropped_through: Option<i64> =
                    self.max_seq.query_row([keep_from], |row| row.get(0))?;
                if dropped_through.is_some() {
                    self.prune_before.execute([keep_from])?;
                }
                // In the boundary row, the events before the first one to keep go too.
                if let Some((last_seq, stored)) = boundary {
                    let events = Chunk::decode(&stored)?;
                    let old = events.iter().take_while(|e| e.at_ms < *before_ms).count();
                    if old > 0 {
                        let mut kept = Chunk::default();
                        for e in &events[old..] {
                            kept.push(e.seq, e.at_ms, &e.value);
                        }
                        // The row's last event is kept, and so is its latest (every event dropped is older than
                        // the bound, which the latest is not): the row keeps its key and its `max_at_ms`.
                        self.update_chunk.execute(params![last_seq, kept.pack()?])?;
                        dropped_through = Some(events[old - 1].seq as i64);
                    }
                }
                if let Some(through) = dropped_through {
                    self.pruned_through.execute([through])?;
                }
            }
        }
        Ok(())
    }

    /// Ends a failed transaction. SQLite may already have rolled it back itself (after an I/O error or a
    /// full disk), in which case there is nothing to do.
    fn rollback(&self) {
        if !self.conn.is_autocommit() {
            // If even the rollback fails the connection is beyond repair; the next group's BEGIN will fail
            // and report that to its batches.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// Copies what it can of the WAL into the database without waiting for, or blocking, anyone (`PASSIVE`), and
/// says whether every frame is now copied (nothing blocked it: no other checkpoint running, no reader on old
/// frames).
fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<bool> {
    // The row is (busy, frames in the WAL, frames copied).
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(row.get::<_, i64>(0)? == 0 && row.get::<_, i64>(1)? == row.get::<_, i64>(2)?)
    })
}

/// Bytes committed since the writer last nudged the checkpointer, and since the WAL last started over.
#[derive(Default)]
struct WalGrowth {
    since_nudge: usize,
    since_restart: usize,
}

/// A thread with its own connection that copies the WAL into the database when nudged (`PASSIVE`: it never
/// waits for, nor blocks, the writer or the readers). Dropping it stops and joins the thread.
struct Checkpointer {
    nudges: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let sql = |e| StoreError::sqlite(path, e);
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sql)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
        // A checkpoint syncs the database file before the WAL may be reused; FULL is SQLite's default, stated.
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        conn.pragma_update(None, "wal_autocheckpoint", 0i64).map_err(sql)?;
        // One pending nudge is enough: a nudge that finds the channel full is already answered by that one.
        let (nudges, wakeups) = mpsc::sync_channel::<()>(1);
        let thread = thread::Builder::new()
            .name("trworker-checkpoint".into())
            .spawn(move || {
                for () in wakeups {
                    // Errors are left to the writer: its own checkpoint and its next commit meet the same
                    // disk and report what is wrong with it.
                    let _ = checkpoint_passive(&conn);
                }
            })
            .map_err(|e| StoreError::Thread { cause: Arc::new(e) })?;
        Ok(Checkpointer { nudges: Some(nudges), thread: Some(thread) })
    }

    fn nudge(&self) {
        if let Some(nudges) = &self.nudges {
            let _ = nudges.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.nudges = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Where each record lives: kind, then key, to the `seq` of its row in `records`. About 100 bytes per record
/// (1,000,000 pending tasks: about 100 MB); in exchange no write has to look a record up in the file. Each
/// kind's keys are [`Sharded`], so the tasks' table does not stall the writer when it grows.
struct RowIndex {
    keys: HashMap<String, Sharded<Box<str>, i64>>,
    /// The `seq` the next new record gets.
    next: i64,
}

impl RowIndex {
    fn read(conn: &Connection) -> rusqlite::Result<RowIndex> {
        let mut index = RowIndex { keys: HashMap::new(), next: 1 };
        let mut scan = conn.prepare("SELECT seq, kind, key FROM records")?;
        let mut found = scan.query([])?;
        while let Some(row) = found.next()? {
            let seq: i64 = row.get(0)?;
            let kind = row.get_ref(1)?.as_str()?;
            let key = row.get_ref(2)?.as_str()?;
            index.next = index.next.max(seq + 1);
            index.insert(kind, key, seq);
        }
        Ok(index)
    }

    fn find(&self, kind: &str, key: &str) -> Option<i64> {
        self.keys.get(kind).and_then(|keys| keys.get(key)).copied()
    }

    fn insert(&mut self, kind: &str, key: &str, seq: i64) {
        // A dozen kinds: the kind's name is allocated once, when first seen.
        if !self.keys.contains_key(kind) {
            self.keys.insert(kind.to_owned(), Sharded::default());
        }
        if let Some(keys) = self.keys.get_mut(kind) {
            keys.insert(key.into(), seq);
        }
    }

    fn remove(&mut self, kind: &str, key: &str) {
        if let Some(keys) = self.keys.get_mut(kind) {
            keys.remove(key);
        }
    }
}

/// Calls a `done`, containing a panic so the writer thread survives to report the other batches.
fn report(done: Done, result: Result<(), StoreError>) {
    // The default panic hook has already printed the panic; the store has nothing to add.
    let _ = catch_unwind(AssertUnwindSafe(move || done(result)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A unique directory under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> TempDir {
            static COUNTER: AtomicUsize = AtomicUsize::new(0);
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            TempDir(
                std::env::temp_dir()
                    .join(format!("trworker-store-{name}-{}-{nanos}-{n}", std::process::id())),
            )
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn put(kind: &'static str, key: &str, value: &str) -> Write {
        Write::Put { kind, key: key.to_owned(), value: Value::Ready(value.as_bytes().to_vec()) }
    }

    fn event(seq: u64, at_ms: i64) -> Write {
        Write::Event { seq, at_ms, value: Value::Ready(format!("{{\"seq\":{seq}}}").into_bytes()) }
    }

    /// Submits a batch and waits for its `done`.
    fn write(store: &Store, batch: Vec<Write>) -> Result<(), StoreError> {
        let (tx, rx) = mpsc::channel();
        store.submit(
            batch,
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().expect("done is always called")
    }

    /// Submits a batch whose `done` parks the writer thread until the returned sender is used (or dropped),
    /// so the batches submitted meanwhile are certain to land in one group.
    fn hold_writer(store: &Store) -> mpsc::Sender<()> {
        let (entered_tx, entered_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        store.submit(
            Vec::new(),
            Box::new(move |_| {
                let _ = entered_tx.send(());
                let _ = release_rx.recv();
            }),
        );
        entered_rx.recv().expect("the writer runs the holding batch");
        release_tx
    }

    /// Submits a batch, sending its outcome on `results` tagged with `tag`.
    fn submit_tagged(
        store: &Store,
        batch: Vec<Write>,
        tag: usize,
        results: &mpsc::Sender<(usize, Result<(), StoreError>)>,
    ) {
        let results = results.clone();
        store.submit(
            batch,
            Box::new(move |r| {
                let _ = results.send((tag, r));
            }),
        );
    }

    fn seqs(events: &[StoredEvent]) -> Vec<u64> {
        events.iter().map(|e| e.seq).collect()
    }

    /// SQLite 3.50.2 fixed CVE-2025-29087 (`concat_ws` overflow) and CVE-2025-6965 (aggregate terms beyond
    /// a limit corrupting memory). The store links the SQLite that rusqlite's `bundled` feature builds, so a
    /// downgrade of rusqlite that brings back an older SQLite fails here.
    #[test]
    fn the_linked_sqlite_has_the_2025_security_fixes() {
        assert!(
            rusqlite::version_number() >= 3_050_002,
            "SQLite {} is older than 3.50.2",
            rusqlite::version()
        );
        let reported: String = Connection::open_in_memory()
            .unwrap()
            .query_row("SELECT sqlite_version()", [], |row| row.get(0))
            .unwrap();
        assert_eq!(reported, rusqlite::version());
    }

    /// The name and mode bits of every entry of `dir` (of a symbolic link itself, not of its target).
    #[cfg(unix)]
    fn modes(dir: &Path) -> Vec<(String, u32)> {
        use std::os::unix::fs::PermissionsExt;
        let mut modes: Vec<(String, u32)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| {
                let entry = entry.unwrap();
                let mode = entry.path().symlink_metadata().unwrap().permissions().mode() & 0o777;
                (entry.file_name().to_string_lossy().into_owned(), mode)
            })
            .collect();
        modes.sort();
        modes
    }

    #[cfg(unix)]
    #[test]
    fn a_new_data_dir_and_every_file_in_it_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("private");
        let data = dir.path().join("nested").join("data");
        let store = Store::open(&data).unwrap();
        write(&store, vec![put("task", "WT1", "{\"from\":\"+15551234567\"}"), event(1, 0)]).unwrap();
        // While the store is open SQLite's companions exist, and hold the data.
        let private = |names: &[&str]| names.iter().map(|n| (n.to_string(), 0o600)).collect::<Vec<_>>();
        assert_eq!(modes(&data), private(&["engine.db", "engine.db-shm", "engine.db-wal", "engine.lock"]));
        for made in [&data, &dir.path().join("nested")] {
            assert_eq!(std::fs::metadata(made).unwrap().permissions().mode() & 0o777, 0o700, "{made:?}");
        }
        drop(store);
        assert_eq!(modes(&data), private(&["engine.db", "engine.lock"]));
    }

    #[cfg(unix)]
    #[test]
    fn files_an_older_version_left_readable_are_made_private_and_links_left_alone() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("tighten");
        drop(Store::open(dir.path()).unwrap());
        let db = dir.path().join(DB_FILE);
        let wal = dir.path().join("engine.db-wal");
        // What an older build, and a crash of it, left: everything world-readable.
        std::fs::write(&wal, b"").unwrap();
        for path in [dir.path(), &db, &wal] {
            let mode = if path.is_dir() { 0o755 } else { 0o644 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        }
        // A link named like a companion: its target is not the store's to change.
        let target = TempDir::new("tighten-target");
        std::fs::create_dir_all(target.path()).unwrap();
        let elsewhere = target.path().join("shared");
        std::fs::write(&elsewhere, b"").unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.path().join("engine.db-shm")).unwrap();

        // Whether SQLite then works with a link as its `-shm` does not matter here: only the modes do.
        let _ = Store::open(dir.path());
        let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
        assert_eq!(mode(&elsewhere), 0o644);
        assert_eq!(mode(dir.path()), 0o755, "an existing directory keeps its mode");
    }

    #[test]
    fn round_trip_survives_close_and_reopen() {
        let dir = TempDir::new("roundtrip");
        {
            let store = Store::open(dir.path()).unwrap();
            assert_eq!(store.load().unwrap(), Loaded::default());
            write(&store, vec![put("task", "WT1", "{\"v\":1}"), put("task", "WT2", "{}"), event(1, 100)])
                .unwrap();
            write(
                &store,
                vec![
                    put("task", "WT1", "{\"v\":2}"),
                    Write::Delete { kind: "task", key: "WT2".into() },
                    Write::Delete { kind: "task", key: "never-existed".into() },
                    put("worker", "WK1", "{\"w\":true}"),
                    Write::Meta { key: "auth_token".into(), value: "secret".into() },
                    event(2, 200),
                    event(5, 300),
                ],
            )
            .unwrap();
            write(&store, vec![Write::Meta { key: "auth_token".into(), value: "rotated".into() }]).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        assert_eq!(
            loaded.records,
            vec![
                Record { kind: "task".into(), key: "WT1".into(), value: "{\"v\":2}".into() },
                Record { kind: "worker".into(), key: "WK1".into(), value: "{\"w\":true}".into() },
            ]
        );
        assert_eq!(loaded.meta, vec![("auth_token".to_owned(), "rotated".to_owned())]);
        assert_eq!(loaded.last_event_seq, 5);
        let events = store.events_after(0, 10).unwrap();
        assert_eq!(
            events,
            vec![
                StoredEvent { seq: 1, at_ms: 100, value: b"{\"seq\":1}".to_vec() },
                StoredEvent { seq: 2, at_ms: 200, value: b"{\"seq\":2}".to_vec() },
                StoredEvent { seq: 5, at_ms: 300, value: b"{\"seq\":5}".to_vec() },
            ]
        );
    }

    /// Rows in `table`: `records` for checking that updates rewrite a row and deletes remove it,
    /// `event_chunks` for checking how events are grouped.
    fn rows_in(dir: &Path, table: &str) -> i64 {
        Connection::open(dir.join(DB_FILE))
            .unwrap()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
            .unwrap()
    }

    fn row_count(dir: &Path) -> i64 {
        rows_in(dir, "records")
    }

    fn user_version(dir: &Path) -> i64 {
        Connection::open(dir.join(DB_FILE))
            .unwrap()
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .unwrap()
    }

    /// Makes a store file as an earlier build did: its `records` table (`records_sql`), the other tables
    /// (unchanged since version 2), then `rows_sql`, stamped with `version`.
    fn old_store(dir: &Path, version: i64, records_sql: &str, rows_sql: &str) {
        std::fs::create_dir_all(dir).unwrap();
        let conn = Connection::open(dir.join(DB_FILE)).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL;
             {records_sql};
             CREATE TABLE events (seq INTEGER PRIMARY KEY, at_ms INTEGER NOT NULL, value BLOB NOT NULL);
             CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
             CREATE TABLE store_state (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
             {rows_sql};
             PRAGMA application_id = {APPLICATION_ID};
             PRAGMA user_version = {version};"
        ))
        .unwrap();
    }

    #[test]
    fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        let dir = TempDir::new("walrestart");
        let store = Store::open(dir.path()).unwrap();
        let value = "x".repeat(64 << 10);
        // Four restart distances, committed 256 KiB at a time as a steady load would.
        let batches = 4 * RESTART_BYTES / (256 << 10);
        for i in 0..batches {
            write(&store, (0..4).map(|j| put("task", &format!("T{i}-{j}"), &value)).collect()).unwrap();
        }
        // Never restarted, the WAL would hold every page written: over 32 MiB.
        let wal = std::fs::metadata(dir.path().join("engine.db-wal")).unwrap().len();
        assert!(wal < 2 * RESTART_BYTES as u64, "the WAL grew to {wal} bytes");
        drop(store);
        assert_eq!(row_count(dir.path()), 4 * batches as i64);
    }

    #[test]
    fn records_written_before_a_reopen_are_updated_and_deleted_in_place() {
        let dir = TempDir::new("rowindex");
        {
            let store = Store::open(dir.path()).unwrap();
            write(&store, vec![put("task", "WT1", "1"), put("task", "WT2", "1"), put("worker", "WT1", "w")])
                .unwrap();
        }
        // The reopened writer finds the rows from the file, not from what it wrote itself.
        let store = Store::open(dir.path()).unwrap();
        write(&store, vec![put("task", "WT1", "2"), Write::Delete { kind: "task", key: "WT2".into() }])
            .unwrap();
        write(&store, vec![put("task", "WT1", "3"), put("task", "WT3", "1")]).unwrap();
        drop(store);
        assert_eq!(row_count(dir.path()), 3, "one row per live record");
        let loaded = Store::open(dir.path()).unwrap().load().unwrap();
        let got: Vec<_> =
            loaded.records.iter().map(|r| (r.kind.as_str(), r.key.as_str(), r.value.as_slice())).collect();
        assert_eq!(got, vec![("task", "WT1", &b"3"[..]), ("task", "WT3", b"1"), ("worker", "WT1", b"w")]);
    }

    #[test]
    fn a_row_removed_behind_the_writers_back_is_written_again() {
        let dir = TempDir::new("stale");
        let store = Store::open(dir.path()).unwrap();
        write(&store, vec![put("task", "WT1", "1")]).unwrap();
        // Someone deletes the row with the sqlite3 shell while trworker runs.
        Connection::open(dir.path().join(DB_FILE)).unwrap().execute("DELETE FROM records", []).unwrap();
        write(&store, vec![put("task", "WT1", "2")]).unwrap();
        let records = store.load().unwrap().records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].value, b"2");
    }

    #[test]
    fn a_version_2_store_is_converted_and_keeps_its_records() {
        let dir = TempDir::new("v2");
        old_store(
            dir.path(),
            2,
            "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, \
                 PRIMARY KEY (kind, key)) WITHOUT ROWID",
            "INSERT INTO records VALUES ('worker', 'WK1', 'w'), ('task', 'WT2', 't2'), ('task', 'WT1', 't1');
             INSERT INTO events VALUES (7, 100, x'01');
             INSERT INTO meta VALUES ('auth_token', 'secret')",
        );
        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        let keys: Vec<_> = loaded.records.iter().map(|r| (r.kind.as_str(), r.key.as_str())).collect();
        assert_eq!(keys, vec![("task", "WT1"), ("task", "WT2"), ("worker", "WK1")]);
        assert_eq!(loaded.meta, vec![("auth_token".to_owned(), "secret".to_owned())]);
        assert_eq!(loaded.last_event_seq, 7);
        // The converted rows are found by the writer: an update replaces, a delete removes.
        write(&store, vec![put("task", "WT1", "new"), Write::Delete { kind: "worker", key: "WK1".into() }])
            .unwrap();
        drop(store);
        assert_eq!(row_count(dir.path()), 2);
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        let loaded = Store::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(loaded.records[0].value, b"new");
        assert_eq!(loaded.records.len(), 2);
    }

    #[test]
    fn a_version_3_store_is_upgraded_and_reads_its_text_values_beside_new_binary_ones() {
        let dir = TempDir::new("v3");
        // Version 3 declared the values as text and stored them as text.
        old_store(
            dir.path(),
            3,
            "CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, \
                 value TEXT NOT NULL)",
            "INSERT INTO records (kind, key, value) VALUES ('task', 'WT1', '{\"sid\":1}'), ('worker', 'WK1', 'w')",
        );
        let store = Store::open(dir.path()).unwrap();
        let binary = vec![1, 0, 0xff, 0x7b];
        write(
            &store,
            vec![Write::Put { kind: "task", key: "WT2".into(), value: Value::Ready(binary.clone()) }],
        )
        .unwrap();
        drop(store);
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        let loaded = Store::open(dir.path()).unwrap().load().unwrap();
        let got: Vec<_> =
            loaded.records.iter().map(|r| (r.kind.as_str(), r.key.as_str(), r.value.as_slice())).collect();
        assert_eq!(
            got,
            vec![("task", "WT1", &b"{\"sid\":1}"[..]), ("task", "WT2", &binary), ("worker", "WK1", b"w")]
        );
    }

    #[test]
    fn a_version_4_store_keeps_its_events_in_the_chunked_log() {
        let dir = TempDir::new("v4");
        // 700 events of 300 bytes: more than three rows' worth.
        let rows: Vec<String> =
            (1..=700).map(|seq| format!("({seq}, {}, randomblob(300))", 1000 + seq)).collect();
        old_store(
            dir.path(),
            4,
            &format!("CREATE TABLE records {RECORDS_COLUMNS}"),
            &format!(
                "INSERT INTO events VALUES {}; INSERT INTO records VALUES (1, 'task', 'WT1', x'01')",
                rows.join(", ")
            ),
        );
        let before: Vec<(i64, i64, Vec<u8>)> = {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            let mut stmt = conn.prepare("SELECT seq, at_ms, value FROM events ORDER BY seq").unwrap();
            stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect()
        };
        let store = Store::open(dir.path()).unwrap();
        let events = store.events_after(0, usize::MAX).unwrap();
        let got: Vec<(i64, i64, Vec<u8>)> =
            events.into_iter().map(|e| (e.seq as i64, e.at_ms, e.value)).collect();
        assert_eq!(got, before);
        assert_eq!(store.load().unwrap().last_event_seq, 700);
        assert_eq!(store.load().unwrap().records.len(), 1);
        write(&store, vec![event(701, 5000)]).unwrap();
        assert_eq!(seqs(&store.events_after(699, 10).unwrap()), vec![700, 701]);
        drop(store);
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        let n = rows_in(dir.path(), "event_chunks");
        assert!((4..=6).contains(&n), "{n} rows");
        let old_table: i64 = Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'events'", [], |row| row.get(0))
            .unwrap();
        assert_eq!(old_table, 0, "the old table is dropped");
    }

    #[test]
    fn the_events_of_one_transaction_share_a_row_and_each_is_read_back() {
        let dir = TempDir::new("chunks");
        let store = Store::open(dir.path()).unwrap();
        let (results_tx, results) = mpsc::channel();
        let release = hold_writer(&store);
        // Seqs with gaps and a clock that steps back, in three batches of one group.
        submit_tagged(&store, vec![event(3, 1_000), put("task", "a", "{}"), event(4, 990)], 0, &results_tx);
        submit_tagged(&store, vec![event(9, -5)], 1, &results_tx);
        submit_tagged(&store, vec![event(10, i64::MAX), event(11, i64::MIN)], 2, &results_tx);
        drop(release);
        for _ in 0..3 {
            results.recv().unwrap().1.unwrap();
        }
        assert_eq!(rows_in(dir.path(), "event_chunks"), 1);
        let all = store.events_after(0, 100).unwrap();
        let got: Vec<(u64, i64)> = all.iter().map(|e| (e.seq, e.at_ms)).collect();
        assert_eq!(got, vec![(3, 1_000), (4, 990), (9, -5), (10, i64::MAX), (11, i64::MIN)]);
        assert_eq!(all[2].value, b"{\"seq\":9}");
        // From anywhere inside the row, with any limit.
        assert_eq!(seqs(&store.events_after(4, 100).unwrap()), vec![9, 10, 11]);
        assert_eq!(seqs(&store.events_after(5, 2).unwrap()), vec![9, 10]);
        assert_eq!(seqs(&store.events_after(10, 100).unwrap()), vec![11]);
        assert!(store.events_after(11, 100).unwrap().is_empty());

        // A group bigger than a row is split, and read back across the rows.
        let big = |seq: u64| Write::Event { seq, at_ms: 0, value: Value::Ready(vec![seq as u8; 10_000]) };
        write(&store, (12..=41).map(big).collect()).unwrap();
        // 300 KB of events beside the first row.
        assert!(rows_in(dir.path(), "event_chunks") > 300_000 / CHUNK_BYTES as i64);
        let read = store.events_after(11, 100).unwrap();
        assert_eq!(seqs(&read), (12..=41).collect::<Vec<_>>());
        assert!(read.iter().all(|e| e.value == vec![e.seq as u8; 10_000]));
        assert_eq!(seqs(&store.events_after(20, 3).unwrap()), vec![21, 22, 23]);
    }

    #[test]
    fn a_prune_in_the_same_transaction_sees_its_events() {
        let dir = TempDir::new("prunetx");
        let store = Store::open(dir.path()).unwrap();
        write(&store, vec![event(1, 10)]).unwrap();
        write(&store, vec![event(2, 20), event(3, 30), Write::PruneEvents { before_ms: 25 }, event(4, 15)])
            .unwrap();
        assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![3, 4]);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().last_event_seq, 4);
        assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![3, 4]);
    }

    #[test]
    fn a_damaged_row_of_the_event_log_is_reported_as_a_corrupt_file() {
        for (value, says) in [
            ("x''", "truncated"),
            ("x'03'", "unknown version"),
            ("x'0105000403'", "truncated"),
            // The LZ4 form: no length; a length beyond what the block could hold; a block that is not LZ4;
            // a valid block ("a49") shorter than the length says.
            ("x'02'", "truncated"),
            ("x'02ff7f00'", "out of range"),
            ("x'0205ffffffffff'", "do not decompress"),
            ("x'020a30613439'", "do not decompress"),
            ("x'0101000000000000'", "out of order"),
            // A step of 2^63.
            ("x'01808080808080808080010000'", "out of range"),
            ("42", "not bytes"),
        ] {
            let dir = TempDir::new("badchunk");
            {
                let store = Store::open(dir.path()).unwrap();
                write(&store, vec![event(1, 10)]).unwrap();
            }
            Connection::open(dir.path().join(DB_FILE))
                .unwrap()
                .execute(&format!("INSERT INTO event_chunks VALUES (9, 0, {value})"), [])
                .unwrap();
            let store = Store::open(dir.path()).unwrap();
            let err = store.events_after(0, 10).unwrap_err();
            assert!(matches!(err, StoreError::Corrupt { .. }), "{value}: {err:?}");
            let message = err.to_string();
            assert!(
                message.contains(says) && message.contains("restore it from a backup"),
                "{value}: {message}"
            );
            // What is before the damage is still readable.
            assert_eq!(seqs(&store.events_after(0, 1).unwrap()), vec![1]);
        }
    }

    #[test]
    fn event_rows_are_compressed_and_read_back_whole() {
        let dir = TempDir::new("lz4");
        let store = Store::open(dir.path()).unwrap();
        // Events like a task's: the same SIDs and field names over and over.
        let value = |seq: u64| {
            format!(
                "{{\"seq\":{seq},\"workspace_sid\":\"WS0123456789abcdef0123456789abcdef\",\
                 \"task_sid\":\"WT{seq:032}\",\"attributes\":{{\"selected_product\":\"support\"}}}}"
            )
            .into_bytes()
        };
        let batch =
            (1..=200).map(|seq| Write::Event { seq, at_ms: seq as i64, value: Value::Ready(value(seq)) });
        write(&store, batch.collect()).unwrap();
        let plain: usize = (1..=200).map(|seq| value(seq).len()).sum();
        let (rows, stored, first): (i64, i64, Vec<u8>) = Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .query_row(
                "SELECT count(*), sum(length(value)), (SELECT substr(value, 1, 1) FROM event_chunks) \
                 FROM event_chunks",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .unwrap();
        assert_eq!((rows, first), (1, vec![CHUNK_LZ4]));
        assert!((stored as usize) * 4 < plain, "{stored} bytes stored for {plain}");
        let read = store.events_after(0, 1000).unwrap();
        assert_eq!(seqs(&read), (1..=200).collect::<Vec<_>>());
        assert!(read.iter().all(|e| e.value == value(e.seq) && e.at_ms == e.seq as i64));
    }

    #[test]
    fn a_version_5_file_keeps_its_plain_rows_and_compresses_new_ones() {
        let dir = TempDir::new("v5");
        {
            let store = Store::open(dir.path()).unwrap();
            write(&store, vec![put("task", "WT1", "{}"), event(1, 10), event(2, 20)]).unwrap();
            write(&store, vec![event(3, 30)]).unwrap();
        }
        // As version 5 wrote them: each row in the plain form.
        {
            let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
            let rows: Vec<(i64, Vec<u8>)> = conn
                .prepare("SELECT last_seq, value FROM event_chunks")
                .unwrap()
                .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows.len(), 2);
            for (last_seq, row) in rows {
                let mut chunk = Chunk::default();
                for e in Chunk::decode(&row).unwrap() {
                    chunk.push(e.seq, e.at_ms, &e.value);
                }
                let plain = [&[CHUNK_PLAIN][..], &chunk.plain].concat();
                conn.execute(
                    "UPDATE event_chunks SET value = ?2 WHERE last_seq = ?1",
                    params![last_seq, plain],
                )
                .unwrap();
            }
            conn.pragma_update(None, "user_version", 5).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(user_version(dir.path()), SCHEMA_VERSION);
        let loaded = store.load().unwrap();
        assert_eq!((loaded.records.len(), loaded.last_event_seq), (1, 3));
        write(&store, vec![event(4, 40), event(5, 50), Write::PruneEvents { before_ms: 15 }]).unwrap();
        // The plain rows and the new compressed one, read together; the prune rewrote the first row.
        let read = store.events_after(0, 10).unwrap();
        assert_eq!(seqs(&read), vec![2, 3, 4, 5]);
        assert_eq!(read[0].value, b"{\"seq\":2}");
        let forms: Vec<Vec<u8>> = Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .prepare("SELECT substr(value, 1, 1) FROM event_chunks ORDER BY last_seq")
            .unwrap()
            .query_map([], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(forms, vec![vec![CHUNK_LZ4], vec![CHUNK_PLAIN], vec![CHUNK_LZ4]]);
    }

    proptest::proptest! {
        /// Any events come back from a packed row as they went in, and a row with any one byte changed is
        /// read or refused, never a panic.
        #[test]
        fn a_packed_row_round_trips_and_damage_never_panics(
            events in proptest::collection::vec(
                (1u64..1000, proptest::num::i64::ANY, proptest::collection::vec(0u8..4, 0..200)),
                1..40,
            ),
            at in proptest::num::usize::ANY,
            flip in 1u8..=255,
        ) {
            let mut chunk = Chunk::default();
            let mut seq = 0;
            let mut want = Vec::new();
            for (step, at_ms, value) in events {
                seq += step;
                chunk.push(seq, at_ms, &value);
                want.push(StoredEvent { seq, at_ms, value });
            }
            let mut row = chunk.pack().unwrap().to_vec();
            proptest::prop_assert_eq!(Chunk::decode(&row).unwrap(), want);
            let i = at % row.len();
            row[i] ^= flip;
            let _ = Chunk::decode(&row);
        }
    }

    #[test]
    fn a_record_value_that_is_not_text_or_bytes_is_reported_as_a_corrupt_file() {
        let dir = TempDir::new("badvalue");
        drop(Store::open(dir.path()).unwrap());
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute("INSERT INTO records (kind, key, value) VALUES ('task', 'WT1', 42)", [])
            .unwrap();
        let err = Store::open(dir.path()).unwrap().load().unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains("not text or bytes") && message.contains("restore it from a backup"),
            "{message}"
        );
    }

    #[test]
    fn batches_commit_in_order_and_each_done_runs_once() {
        let dir = TempDir::new("order");
        let store = Store::open(dir.path()).unwrap();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let n = 3000u64;
        for i in 0..n {
            let calls = Arc::clone(&calls);
            store.submit(
                vec![put("counter", "c", &i.to_string()), event(i + 1, 0)],
                Box::new(move |r| calls.lock().unwrap().push((i, r.is_ok()))),
            );
        }
        store.flush().unwrap();
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls, (0..n).map(|i| (i, true)).collect::<Vec<_>>());
        let loaded = store.load().unwrap();
        assert_eq!(loaded.records.len(), 1);
        assert_eq!(loaded.records[0].value, (n - 1).to_string().into_bytes());
        assert_eq!(loaded.last_event_seq, n);
        assert_eq!(store.events_after(0, usize::MAX).unwrap().len(), n as usize);
    }

    #[test]
    fn flush_returns_after_everything_submitted_is_durable() {
        let dir = TempDir::new("flush");
        let store = Store::open(dir.path()).unwrap();
        let done = Arc::new(AtomicUsize::new(0));
        for i in 0..500u64 {
            let done = Arc::clone(&done);
            store.submit(
                vec![put("task", &format!("WT{i}"), "{}"), event(i + 1, 0)],
                Box::new(move |r| {
                    if r.is_ok() {
                        done.fetch_add(1, Ordering::SeqCst);
                    }
                }),
            );
        }
        store.flush().unwrap();
        assert_eq!(done.load(Ordering::SeqCst), 500);
        // The read connection sees only committed data.
        assert_eq!(store.events_after(0, 1000).unwrap().len(), 500);
        assert_eq!(store.load().unwrap().records.len(), 500);
        // A flush with nothing pending returns at once.
        store.flush().unwrap();
    }

    #[test]
    fn drop_writes_everything_already_submitted() {
        let dir = TempDir::new("drop");
        let acked = Arc::new(AtomicUsize::new(0));
        {
            let store = Store::open(dir.path()).unwrap();
            for i in 0..1000u64 {
                let acked = Arc::clone(&acked);
                store.submit(
                    vec![put("task", &format!("WT{i}"), "{}"), event(i + 1, 0)],
                    Box::new(move |r| {
                        if r.is_ok() {
                            acked.fetch_add(1, Ordering::SeqCst);
                        }
                    }),
                );
            }
        }
        assert_eq!(acked.load(Ordering::SeqCst), 1000);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().records.len(), 1000);
        assert_eq!(store.load().unwrap().last_event_seq, 1000);
    }

    #[test]
    fn a_second_open_of_the_same_dir_fails_clearly() {
        let dir = TempDir::new("lock");
        let first = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::InUse { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("{} is in use by another trworker process", dir.path().display())),
            "{message}"
        );
        drop(first);
        let reopened = Store::open(dir.path()).unwrap();
        write(&reopened, vec![put("k", "a", "b")]).unwrap();
    }

    #[test]
    fn a_file_that_is_not_sqlite_is_reported_as_corrupt() {
        let dir = TempDir::new("notadb");
        std::fs::create_dir_all(dir.path()).unwrap();
        let db = dir.path().join(DB_FILE);
        std::fs::write(&db, "this is not a database\n".repeat(500)).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&db.display().to_string()), "{message}");
        assert!(message.contains("move it"), "{message}");
    }

    #[test]
    fn a_damaged_database_gives_an_error_not_a_panic() {
        let dir = TempDir::new("damaged");
        {
            let store = Store::open(dir.path()).unwrap();
            let value = "x".repeat(500);
            let batch = (0..2000).map(|i| put("task", &format!("WT{i:05}"), &value)).collect();
            write(&store, batch).unwrap();
        }
        // Everything past the first page (the header and the schema) is overwritten.
        let db = dir.path().join(DB_FILE);
        let len = std::fs::metadata(&db).unwrap().len() as usize;
        assert!(len > 100_000, "the records should be in engine.db after a clean close, not in the WAL");
        let mut bytes = std::fs::read(&db).unwrap();
        bytes[PAGE_SIZE as usize..].fill(0x5a);
        std::fs::write(&db, bytes).unwrap();

        let result = Store::open(dir.path()).and_then(|store| store.load());
        let err = result.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert!(err.to_string().contains(&db.display().to_string()), "{err}");
    }

    #[test]
    fn a_foreign_sqlite_database_is_refused() {
        let dir = TempDir::new("foreign");
        std::fs::create_dir_all(dir.path()).unwrap();
        let db = dir.path().join(DB_FILE);
        Connection::open(&db).unwrap().execute_batch("CREATE TABLE accounts (id INTEGER)").unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(matches!(err, StoreError::Foreign { .. }), "{err:?}");
        assert!(err.to_string().contains("trworker did not create"), "{err}");
    }

    #[test]
    fn a_newer_schema_is_refused_with_the_versions() {
        let dir = TempDir::new("newer");
        drop(Store::open(dir.path()).unwrap());
        let db = dir.path().join(DB_FILE);
        Connection::open(&db).unwrap().pragma_update(None, "user_version", 7).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::NewerSchema { found: 7, supported: SCHEMA_VERSION, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("upgrade trworker"), "{err}");
    }

    #[test]
    fn an_older_schema_is_refused_naming_the_directory() {
        let dir = TempDir::new("older");
        drop(Store::open(dir.path()).unwrap());
        let db = dir.path().join(DB_FILE);
        Connection::open(&db).unwrap().pragma_update(None, "user_version", 1).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::OldSchema { found: 1, supported: SCHEMA_VERSION, dir: ref d } if d.as_path() == dir.path()),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        assert!(message.contains("move the directory aside or delete it"), "{message}");
    }

    #[test]
    fn deferred_values_are_encoded_by_the_writer() {
        let dir = TempDir::new("deferred");
        let store = Store::open(dir.path()).unwrap();
        write(
            &store,
            vec![
                Write::Put {
                    kind: "task",
                    key: "WT1".into(),
                    value: Value::Later(Box::new(|| b"{}".to_vec())),
                },
                Write::Event { seq: 1, at_ms: 5, value: Value::Later(Box::new(|| vec![0, 159, 146, 150])) },
            ],
        )
        .unwrap();
        assert_eq!(store.load().unwrap().records[0].value, b"{}");
        assert_eq!(store.events_after(0, 10).unwrap()[0].value, vec![0, 159, 146, 150]);
    }

    #[test]
    fn prune_drops_old_events_and_the_seq_never_goes_back() {
        let dir = TempDir::new("prune");
        {
            let store = Store::open(dir.path()).unwrap();
            write(&store, vec![event(1, 10), event(2, 20), event(3, 30), event(4, 40)]).unwrap();
            write(&store, vec![Write::PruneEvents { before_ms: 25 }]).unwrap();
            assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![3, 4]);
            // An event exactly at the bound is kept.
            write(&store, vec![Write::PruneEvents { before_ms: 30 }]).unwrap();
            assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![3, 4]);
            write(&store, vec![Write::PruneEvents { before_ms: 1000 }]).unwrap();
            assert!(store.events_after(0, 10).unwrap().is_empty());
            // Pruning an empty log is harmless.
            write(&store, vec![Write::PruneEvents { before_ms: 2000 }]).unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.load().unwrap().last_event_seq, 4);
        let err = write(&store, vec![event(4, 50)]).unwrap_err();
        assert!(matches!(err, StoreError::EventOrder { seq: 4, last: 4 }), "{err:?}");
        store.resume();
        write(&store, vec![event(5, 50)]).unwrap();
        assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![5]);
    }

    #[test]
    fn events_after_pages_through_the_log() {
        let dir = TempDir::new("paging");
        let store = Store::open(dir.path()).unwrap();
        write(&store, (1..=250).map(|seq| event(seq, seq as i64)).collect()).unwrap();
        let mut after = 0;
        let mut pages = Vec::new();
        let mut all = Vec::new();
        loop {
            let page = store.events_after(after, 100).unwrap();
            let Some(last) = page.last() else { break };
            after = last.seq;
            pages.push(page.len());
            all.extend(seqs(&page));
        }
        assert_eq!(pages, vec![100, 100, 50]);
        assert_eq!(all, (1..=250).collect::<Vec<_>>());
        assert_eq!(seqs(&store.events_after(247, 100).unwrap()), vec![248, 249, 250]);
        assert!(store.events_after(u64::MAX, 100).unwrap().is_empty());
        assert!(store.events_after(0, 0).unwrap().is_empty());
    }

    #[test]
    fn an_event_out_of_order_refuses_its_batch_and_every_later_one_until_resumed() {
        let dir = TempDir::new("eventorder");
        let store = Store::open(dir.path()).unwrap();
        write(&store, vec![event(1, 0)]).unwrap();
        let (results_tx, results) = mpsc::channel();
        let release = hold_writer(&store);
        submit_tagged(&store, vec![put("task", "a", "{}"), event(2, 0)], 0, &results_tx);
        submit_tagged(&store, vec![put("task", "b", "{}"), event(2, 0)], 1, &results_tx);
        submit_tagged(&store, vec![put("task", "c", "{}"), event(u64::MAX, 0)], 2, &results_tx);
        submit_tagged(&store, vec![put("task", "d", "{}"), event(3, 0)], 3, &results_tx);
        drop(release);
        let got: Vec<_> = (0..4).map(|_| results.recv().unwrap()).collect();
        assert_eq!(got.iter().map(|(tag, _)| *tag).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
        assert!(got[0].1.is_ok());
        // The batches after the refused one were built on it: refused with the same error, even one
        // whose own events are in order.
        for (_, result) in &got[1..] {
            assert!(matches!(result, Err(StoreError::EventOrder { seq: 2, last: 2 })), "{result:?}");
        }
        let keys: Vec<_> = store.load().unwrap().records.into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec!["a"]);
        assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![1, 2]);
        store.resume();
        write(&store, vec![put("task", "d", "{}"), event(3, 0)]).unwrap();
        let keys: Vec<_> = store.load().unwrap().records.into_iter().map(|r| r.key).collect();
        assert_eq!(keys, vec!["a", "d"]);
    }

    #[test]
    fn a_failed_transaction_fails_every_batch_in_it_and_the_store_recovers() {
        let dir = TempDir::new("txfail");
        let store = Store::open(dir.path()).unwrap();
        write(&store, vec![event(1, 0)]).unwrap();
        // Make one kind of write fail inside SQLite, as a full disk or an I/O error would.
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER fail BEFORE INSERT ON records WHEN NEW.kind = 'boom' \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            )
            .unwrap();
        let (results_tx, results) = mpsc::channel();
        let release = hold_writer(&store);
        submit_tagged(&store, vec![put("task", "a", "{}"), event(2, 0)], 0, &results_tx);
        submit_tagged(&store, vec![put("boom", "b", "{}")], 1, &results_tx);
        submit_tagged(&store, vec![put("task", "c", "{}"), event(3, 0)], 2, &results_tx);
        drop(release);
        for expected in 0..3 {
            let (tag, result) = results.recv().unwrap();
            assert_eq!(tag, expected);
            let err = result.unwrap_err();
            assert!(matches!(err, StoreError::Sqlite { .. }), "{err:?}");
            assert!(err.to_string().contains("injected failure"), "{err}");
        }
        // Nothing of the group was written, and the event seqs it used are free again.
        assert!(store.load().unwrap().records.is_empty());
        assert_eq!(store.load().unwrap().last_event_seq, 1);
        store.resume();
        // The failed group's new records are not remembered as written: putting one again inserts it.
        write(&store, vec![put("task", "a", "{}"), event(2, 0)]).unwrap();
        write(&store, vec![put("task", "a", "{\"v\":2}"), put("task", "c", "{}")]).unwrap();
        let records = store.load().unwrap().records;
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].value, b"{\"v\":2}");
        assert_eq!(seqs(&store.events_after(0, 10).unwrap()), vec![1, 2]);
    }

    #[test]
    fn a_full_database_fails_the_write_as_disk_full_and_keeps_what_was_saved() {
        let dir = TempDir::new("full");
        {
            let store = Store::open(dir.path()).unwrap();
            write(&store, vec![put("task", "WT1", "{}"), event(1, 0)]).unwrap();
        }
        // Capped at its size now: a row that needs new pages cannot be written.
        let store = Store::open_capped(dir.path(), Some(0)).unwrap();
        let big = "x".repeat(64 << 10);
        let err = write(&store, vec![put("task", "WT2", &big), event(2, 0)]).unwrap_err();
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Full);
        assert!(err.kind().is_exhaustion());
        let message = err.to_string();
        assert!(message.contains("is full") && message.contains("not saved"), "{message}");
        let loaded = store.load().unwrap();
        assert_eq!((loaded.records.len(), loaded.last_event_seq), (1, 1));
        // A later batch that would fit, in a transaction of its own, is refused as well: the caller built it
        // on the failed one.
        let err = write(&store, vec![put("task", "WT1", "{\"v\":2}"), event(2, 0)]).unwrap_err();
        assert!(matches!(err, StoreError::DiskFull { .. }), "{err:?}");
        assert!(store.flush().is_err(), "a flush says the store refuses batches");
        assert_eq!(store.load().unwrap().records[0].value, b"{}");
        // Once resumed, what fits in the pages the file has is written.
        store.resume();
        write(&store, vec![put("task", "WT1", "{\"v\":2}"), event(2, 0)]).unwrap();
        // And once the cap is lifted, the big row too, without reopening.
        store.size_cap().set(None);
        write(&store, vec![put("task", "WT2", &big), event(3, 0)]).unwrap();
        drop(store);
        let loaded = Store::open(dir.path()).unwrap().load().unwrap();
        assert_eq!((loaded.records[0].value.as_slice(), loaded.last_event_seq), (&b"{\"v\":2}"[..], 3));
        assert_eq!(loaded.records[1].value.len(), big.len());
    }

    #[test]
    fn a_size_cap_set_while_running_applies_from_the_next_transaction() {
        let dir = TempDir::new("cap");
        let store = Store::open(dir.path()).unwrap();
        write(&store, vec![put("task", "a", "{}")]).unwrap();
        store.size_cap().set(Some(0));
        let big = "x".repeat(64 << 10);
        let err = write(&store, vec![put("task", "b", &big)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Full, "{err}");
        store.resume();
        store.size_cap().set(None);
        write(&store, vec![put("task", "b", &big)]).unwrap();
        assert_eq!(store.load().unwrap().records.len(), 2);
    }

    #[test]
    fn a_panicking_done_does_not_stop_the_store() {
        let dir = TempDir::new("panic");
        let store = Store::open(dir.path()).unwrap();
        store.submit(vec![put("task", "a", "{}")], Box::new(|_| panic!("a callback that panics")));
        write(&store, vec![put("task", "b", "{}")]).unwrap();
        assert_eq!(store.load().unwrap().records.len(), 2);
    }

    const CRASH_DIR_VAR: &str = "TRWORKER_STORE_CRASH_DIR";
    const CRASH_AFTER: u64 = 1000;

    /// The child half of `a_crash_keeps_every_acknowledged_batch`: writes batches and aborts the process
    /// from inside the `done` of batch `CRASH_AFTER`, while later batches are still queued or being written.
    #[test]
    #[ignore = "run as a child process by a_crash_keeps_every_acknowledged_batch"]
    fn crash_child() {
        let Some(dir) = std::env::var_os(CRASH_DIR_VAR) else { return };
        let store = Store::open(Path::new(&dir)).unwrap();
        let value = "y".repeat(300);
        for i in 0..20 * CRASH_AFTER {
            store.submit(
                vec![put("n", &format!("{i:06}"), &value), event(i + 1, 0)],
                Box::new(move |r| {
                    if r.is_ok() && i == CRASH_AFTER {
                        std::process::abort();
                    }
                }),
            );
        }
        store.flush().unwrap();
    }

    #[test]
    fn a_crash_keeps_every_acknowledged_batch() {
        let dir = TempDir::new("crash");
        let exe = std::env::current_exe().unwrap();
        let output = std::process::Command::new(exe)
            .args(["--exact", "store::tests::crash_child", "--ignored", "--test-threads=1"])
            .env(CRASH_DIR_VAR, dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "the child should have aborted: {output:?}");

        let store = Store::open(dir.path()).unwrap();
        let loaded = store.load().unwrap();
        let batches: Vec<u64> = loaded.records.iter().map(|r| r.key.parse().unwrap()).collect::<Vec<u64>>();
        let events = seqs(&store.events_after(0, usize::MAX).unwrap());
        // Every acknowledged batch is there, batches form a prefix (order), and each is whole.
        assert!(batches.len() as u64 > CRASH_AFTER, "only {} batches survived", batches.len());
        assert_eq!(batches, (0..batches.len() as u64).collect::<Vec<_>>());
        assert_eq!(events, (1..=batches.len() as u64).collect::<Vec<_>>());
    }
}
