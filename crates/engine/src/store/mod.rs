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
//!   so the WAL starts over (`WalGrowth::committed` in `checkpoint`).
//! - **One process per directory.** An exclusive lock on `engine.lock` stops a second trworker from
//!   writing the same files.
//!
//! Reads (`load` at start, `events_after` for subscribers catching up and for the Events resource beyond
//! what the engine keeps in memory) go through a second, read-only connection, so they never wait behind a
//! group being written and see only committed data (WAL readers do not block the writer).
//!
//! # Parts
//!
//! This file holds the public API ([`Store`] and what it takes and returns); the rest is in one file per
//! part: `writer` (the writer thread, group commit, the record index), `chunk` (packing the event log into
//! LZ4-compressed rows), `schema` (checking, creating and converting the file), `checkpoint` (the
//! checkpointer thread and when the WAL starts over), `dir` (the directory lock and owner-only modes) and
//! `error` ([`StoreError`]). Each part's tests are beside it; `tests` holds what they share and the tests of
//! the store as a whole.
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
//!   transaction's events (split every `CHUNK_BYTES`), keyed by the highest `seq` in the row, so appends go
//!   to the end of the b-tree and `events_after` is a range scan from the row holding the first wanted event.
//!   `value` is the events one after the other, compressed with LZ4 (`Chunk`, in `chunk`), `max_at_ms` the
//!   latest `at_ms` among them, so pruning reads only the one row that straddles its bound. One row per group
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

mod checkpoint;
mod chunk;
mod dir;
mod error;
mod schema;
#[cfg(test)]
mod tests;
mod writer;

pub use dir::create_data_dir;
pub use error::{ErrorKind, StoreError};

use checkpoint::Checkpointer;
use chunk::{chunk_bytes, Chunk};
use dir::{lock_dir, make_private, DB_FILE};
use schema::{bytes, ensure_schema, last_event_seq, PAGE_SIZE};
use writer::{Job, Request, Writer};

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

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
pub struct StoredRecord {
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
    pub records: Vec<StoredRecord>,
    /// All settings, ordered by key.
    pub meta: Vec<(String, String)>,
    /// The highest event `seq` ever written (also counting pruned events); 0 for a new store. The next
    /// event must have a greater `seq`.
    pub last_event_seq: u64,
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
        // checkpointer thread and the writer's restarts (`WalGrowth::committed`) take over.
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
                    Ok(StoredRecord { kind: row.get(0)?, key: row.get(1)?, value: bytes(row, 2)? })
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
