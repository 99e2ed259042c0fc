//! The data directory's files: the lock that keeps a second process out, and the owner-only modes of the
//! directory and of every file in it (see the module doc of [`store`](super), # Files).

use super::StoreError;
use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// File name of the database inside the data directory.
pub(super) const DB_FILE: &str = "engine.db";

/// File name of the lock file inside the data directory.
pub(super) const LOCK_FILE: &str = "engine.lock";

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
pub(super) fn private_file() -> OpenOptions {
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
pub(super) fn make_private(db: &Path) -> Result<(), StoreError> {
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
pub(super) fn lock_dir(dir: &Path) -> Result<File, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::*;
    use crate::store::*;

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
}
