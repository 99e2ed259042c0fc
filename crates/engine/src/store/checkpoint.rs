//! Keeping the WAL short without stalling commits: a checkpointer thread that copies the WAL into the
//! database beside the writer, and the byte counts that say when to nudge it and when the writer finishes
//! the checkpoint itself so the WAL starts over.

use std::path::Path;
use std::sync::mpsc::{self};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use super::{StoreError, BUSY_TIMEOUT};
use rusqlite::{Connection, OpenFlags};

/// After about this many bytes of committed data, the checkpointer thread is asked to copy the WAL into the
/// database. It works beside the writer, so commits do not wait for it.
pub(super) const CHECKPOINT_BYTES: usize = 1 << 20;

/// After about this many bytes of committed data since the WAL last started over, the writer finishes the
/// checkpoint itself (the little the checkpointer has not copied yet), so that its next transaction starts
/// the WAL from the beginning. Without this the WAL would never restart under a steady load: a checkpoint
/// running beside the writer never catches up with the frames committed while it runs.
pub(super) const RESTART_BYTES: usize = 8 << 20;

/// Copies what it can of the WAL into the database without waiting for, or blocking, anyone (`PASSIVE`), and
/// says whether every frame is now copied (nothing blocked it: no other checkpoint running, no reader on old
/// frames).
pub(super) fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<bool> {
    // The row is (busy, frames in the WAL, frames copied).
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok(row.get::<_, i64>(0)? == 0 && row.get::<_, i64>(1)? == row.get::<_, i64>(2)?)
    })
}

/// Bytes committed since the writer last nudged the checkpointer, and since the WAL last started over.
#[derive(Default)]
pub(super) struct WalGrowth {
    since_nudge: usize,
    since_restart: usize,
}

impl WalGrowth {
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
    pub(super) fn committed(&mut self, bytes: usize, conn: &Connection, checkpointer: &Checkpointer) {
        self.since_nudge += bytes;
        self.since_restart += bytes;
        if self.since_nudge >= CHECKPOINT_BYTES {
            self.since_nudge = 0;
            checkpointer.nudge();
        }
        if self.since_restart >= RESTART_BYTES {
            // Everything copied means the next write transaction restarts the WAL.
            let done = checkpoint_passive(conn).unwrap_or(false);
            self.since_restart = if done { 0 } else { RESTART_BYTES - CHECKPOINT_BYTES };
        }
    }
}

/// A thread with its own connection that copies the WAL into the database when nudged (`PASSIVE`: it never
/// waits for, nor blocks, the writer or the readers). Dropping it stops and joins the thread.
pub(super) struct Checkpointer {
    nudges: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub(super) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
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

    pub(super) fn nudge(&self) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::*;

    #[test]
    fn the_wal_starts_over_under_a_steady_stream_of_commits() {
        let (dir, store) = opened("walrestart");
        let value = "x".repeat(64 << 10);
        // Four restart distances, committed 256 KiB at a time as a steady load would.
        let batches = 4 * RESTART_BYTES / (256 << 10);
        for i in 0..batches {
            write(&store, (0..4).map(|j| put("task", &format!("T{i}-{j}"), &value)).collect()).unwrap();
        }
        // Never restarted, the WAL would hold every page written: over 32 MiB. How much shorter it stays
        // depends on how often the checkpointer thread got the CPU (on an idle machine under two restart
        // distances; 23.8 MB once under CI's parallel tests), so what is asserted is only that it started
        // over: a bound that holds whatever the scheduling.
        let wal = std::fs::metadata(dir.path().join("engine.db-wal")).unwrap().len();
        assert!(wal < 4 * RESTART_BYTES as u64, "the WAL never started over: it grew to {wal} bytes");
        drop(store);
        assert_eq!(row_count(dir.path()), 4 * batches as i64);
    }
}
