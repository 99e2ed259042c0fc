//! The writer thread: takes groups of batches off the queue and commits each group in one transaction with
//! statements prepared once (group commit), refusing every batch after a failure until resumed.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc::Receiver;

use rusqlite::{params, Connection, OptionalExtension};

use super::checkpoint::{Checkpointer, WalGrowth};
use super::chunk::chunk_bytes;
use super::chunk::{Chunk, INSERT_CHUNK};
use super::{Done, SizeCap, StoreError, Value, Write};
use crate::sharded::Sharded;

/// At most this many batches go into one transaction, so one group's callbacks are not held back for long.
pub(super) const MAX_GROUP_BATCHES: usize = 4096;

/// At most about this many bytes of keys and values go into one transaction, for the same reason.
pub(super) const MAX_GROUP_BYTES: usize = 8 << 20;

/// A batch waiting for the writer thread.
pub(super) struct Job {
    pub(super) batch: Vec<Write>,
    pub(super) done: Done,
}

/// What the writer thread is asked to do, in submission order.
pub(super) enum Request {
    /// Write a batch.
    Write(Job),
    /// Accept batches again after a failure ([`Store::resume`]).
    Resume,
}

/// The writer thread's statements, prepared once for the life of the thread.
pub(super) struct Writer<'c> {
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
    records: RecordStatements<'c>,
    /// The events of the transaction being written, not yet in `event_chunks`.
    chunk: Chunk,
    log: LogStatements<'c>,
    meta: rusqlite::Statement<'c>,
}

/// The statements on `records`: a resource per row, found by its `seq` ([`RowIndex`]).
struct RecordStatements<'c> {
    insert: rusqlite::Statement<'c>,
    update: rusqlite::Statement<'c>,
    delete: rusqlite::Statement<'c>,
}

/// The statements on the event log: its rows (`event_chunks`) and how far pruning has gone (`store_state`).
struct LogStatements<'c> {
    insert_chunk: rusqlite::Statement<'c>,
    update_chunk: rusqlite::Statement<'c>,
    first_kept: rusqlite::Statement<'c>,
    prune_before: rusqlite::Statement<'c>,
    max_seq: rusqlite::Statement<'c>,
    pruned_through: rusqlite::Statement<'c>,
}

impl<'c> Writer<'c> {
    /// The writer thread: takes groups of jobs off the queue and commits each group in one transaction,
    /// until the queue is closed and drained.
    pub(super) fn run(
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
            let Some(request) = carried.take().or_else(|| jobs.recv().ok()) else {
                break;
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
            records: RecordStatements {
                insert: conn.prepare("INSERT INTO records (seq, kind, key, value) VALUES (?1, ?2, ?3, ?4)")?,
                update: conn.prepare("UPDATE records SET value = ?2 WHERE seq = ?1")?,
                delete: conn.prepare("DELETE FROM records WHERE seq = ?1")?,
            },
            chunk: Chunk::default(),
            log: LogStatements {
                insert_chunk: conn.prepare(INSERT_CHUNK)?,
                update_chunk: conn.prepare("UPDATE event_chunks SET value = ?2 WHERE last_seq = ?1")?,
                // Walks the log from the oldest row and stops at the first one holding an event to keep: the
                // cost is the number of rows dropped, not the size of the log.
                first_kept: conn.prepare(
                    "SELECT last_seq, value FROM event_chunks WHERE max_at_ms >= ?1 ORDER BY last_seq LIMIT 1",
                )?,
                prune_before: conn.prepare("DELETE FROM event_chunks WHERE last_seq < ?1")?,
                max_seq: conn.prepare("SELECT max(last_seq) FROM event_chunks WHERE last_seq < ?1")?,
                pruned_through: conn.prepare(
                    "INSERT INTO store_state (key, value) VALUES ('pruned_through', ?1) \
                     ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                )?,
            },
            meta: conn.prepare(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )?,
        })
    }

    /// After a commit of `bytes`: keeps the WAL short ([`WalGrowth::committed`]).
    fn after_commit(&mut self, bytes: usize) {
        self.wal.committed(bytes, self.conn, &self.checkpointer);
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
        self.chunk.insert(&mut self.log.insert_chunk)?;
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
                    Some(seq) => self.records.update.execute(params![seq, value])? == 1,
                    None => false,
                };
                // Not found, or (the file changed behind the index, e.g. by hand) its row is gone: a new row.
                if !updated {
                    let seq = rows.next;
                    self.records.insert.execute(params![seq, kind, key, value])?;
                    rows.next += 1;
                    rows.insert(kind, key, seq);
                }
            }
            Write::Delete { kind, key } => {
                if let Some(seq) = rows.find(kind, key) {
                    self.records.delete.execute([seq])?;
                    rows.remove(kind, key);
                }
            }
            Write::Event { seq, at_ms, value } => {
                match value {
                    Value::Ready(v) => self.chunk.push(*seq, *at_ms, v),
                    Value::Later(encode) => self.chunk.push(*seq, *at_ms, &encode()),
                };
                if self.chunk.is_full() {
                    self.chunk.insert(&mut self.log.insert_chunk)?;
                }
            }
            Write::Meta { key, value } => {
                self.meta.execute(params![key, value])?;
            }
            Write::PruneEvents { before_ms } => {
                // The events of this transaction so far are part of the log being pruned.
                self.chunk.insert(&mut self.log.insert_chunk)?;
                // The row holding the first event to keep; every row before it goes whole.
                let boundary: Option<(i64, Vec<u8>)> = self
                    .log
                    .first_kept
                    .query_row([before_ms], |row| Ok((row.get(0)?, chunk_bytes(row, 1)?.to_vec())))
                    .optional()?;
                // With nothing to keep, everything goes (the bound is above any seq).
                let keep_from = boundary.as_ref().map_or(i64::MAX, |(last_seq, _)| *last_seq);
                let mut dropped_through: Option<i64> =
                    self.log.max_seq.query_row([keep_from], |row| row.get(0))?;
                if dropped_through.is_some() {
                    self.log.prune_before.execute([keep_from])?;
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
                        self.log.update_chunk.execute(params![last_seq, kept.pack()?])?;
                        dropped_through = Some(events[old - 1].seq as i64);
                    }
                }
                if let Some(through) = dropped_through {
                    self.log.pruned_through.execute([through])?;
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

/// Where each record lives: kind, then key, to the `seq` of its row in `records`. About 100 bytes per record
/// (1,000,000 pending tasks: about 100 MB); in exchange no write has to look a record up in the file. Each
/// kind's keys are [`Sharded`], so the tasks' table does not stall the writer when it grows.
pub(super) struct RowIndex {
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
pub(super) fn report(done: Done, result: Result<(), StoreError>) {
    // The default panic hook has already printed the panic; the store has nothing to add.
    let _ = catch_unwind(AssertUnwindSafe(move || done(result)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::*;
    use crate::store::*;

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
        let (dir, store) = opened("stale");
        write(&store, vec![put("task", "WT1", "1")]).unwrap();
        // Someone deletes the row with the sqlite3 shell while trworker runs.
        Connection::open(dir.path().join(DB_FILE)).unwrap().execute("DELETE FROM records", []).unwrap();
        write(&store, vec![put("task", "WT1", "2")]).unwrap();
        let records = store.load().unwrap().records;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].value, b"2");
    }

    #[test]
    fn a_prune_in_the_same_transaction_sees_its_events() {
        let (dir, store) = opened("prunetx");
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
    fn an_event_out_of_order_refuses_its_batch_and_every_later_one_until_resumed() {
        let (_dir, store) = opened("eventorder");
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
        let (dir, store) = opened("txfail");
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
        let (_dir, store) = opened("cap");
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
}
