//! What went wrong in the store ([`StoreError`]) and its class ([`ErrorKind`]).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rusqlite::ErrorCode;

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
    /// [`Store::resume`](super::Store::resume).
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
    pub(super) fn sqlite(path: &Path, err: rusqlite::Error) -> StoreError {
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
