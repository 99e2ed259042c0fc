//! The file's schema: checking that a file is a trworker store this build understands, creating the tables
//! in a new one, converting older versions in place, and reading values back (see the module doc of
//! [`store`](super), # Schema).

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::chunk::{Chunk, INSERT_CHUNK};
use super::StoreError;

/// The schema version this build writes and understands.
pub(super) const SCHEMA_VERSION: i64 = 6;

/// `PRAGMA application_id` of a trworker store ("trwk"), so a foreign SQLite file is recognised as such.
pub(super) const APPLICATION_ID: i64 = 0x7472_776b;

/// Page size of a new database. Every commit rewrites whole pages: the new rows' tail pages, the b-trees'
/// interior pages on the way to them, and page 1 (the file's size is in its header), so small commits (HTTP
/// requests one by one) favour small pages; large groups (a burst through the actor) favour large ones,
/// which need fewer page allocations per row. 8 KiB was as good as 4 KiB or better over HTTP in alternating
/// runs and about 10% faster in the durable bench; 16 KiB gave clearly fewer HTTP creates
/// (docs/PERFORMANCE.md, "SQLite pages of 8 KiB").
pub(super) const PAGE_SIZE: i64 = 8192;

/// Checks that `conn` is a trworker database this build understands, creating the schema in a new file.
pub(super) fn ensure_schema(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
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
pub(super) const RECORDS_COLUMNS: &str =
    "(seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, key TEXT NOT NULL, value BLOB NOT NULL)";

/// The columns of the `event_chunks` table (see the module doc).
pub(super) const EVENT_CHUNKS_COLUMNS: &str =
    "(last_seq INTEGER PRIMARY KEY, max_at_ms INTEGER NOT NULL, value BLOB NOT NULL)";

/// Converts a file of version 2, 3 or 4 to the current version in one transaction: a crash half-way leaves
/// the file as it was, to be converted at the next open. `records_by_key` says the records are still keyed
/// by `(kind, key)` (version 2) and must be rewritten in `seq` order; the event log of every older version
/// is one row per event, gathered here into `event_chunks`.
pub(super) fn upgrade(conn: &mut Connection, path: &Path, records_by_key: bool) -> Result<(), StoreError> {
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
pub(super) fn bytes(row: &rusqlite::Row<'_>, column: usize) -> rusqlite::Result<Vec<u8>> {
    match row.get_ref(column)? {
        ValueRef::Text(b) | ValueRef::Blob(b) => Ok(b.to_vec()),
        other => Err(damaged(format!("a record's value is {}, not text or bytes", other.data_type()))),
    }
}

/// Content this module did not write (a file edited by hand, or damaged), reported as SQLite reports a
/// corrupt file, so the caller gets [`StoreError::Corrupt`] and its advice (move the file away or restore a
/// backup) rather than a failed write.
pub(super) fn damaged(what: String) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT), Some(what))
}

/// The highest event seq ever written: the newest event, or the highest pruned one if the log is empty.
pub(super) fn last_event_seq(conn: &Connection) -> rusqlite::Result<u64> {
    let seq: i64 = conn.query_row(
        "SELECT max(coalesce((SELECT max(last_seq) FROM event_chunks), 0), \
                    coalesce((SELECT value FROM store_state WHERE key = 'pruned_through'), 0))",
        [],
        |row| row.get(0),
    )?;
    Ok(seq.unsigned_abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::*;
    use crate::store::*;

    /// The records table as version 2 declared it: keyed by kind and key, values as text.
    const V2_RECORDS: &str = "CREATE TABLE records (kind TEXT NOT NULL, key TEXT NOT NULL, \
        value TEXT NOT NULL, PRIMARY KEY (kind, key)) WITHOUT ROWID";
    /// The records table as version 3 declared it: in write order, values declared (and stored) as text.
    const V3_RECORDS: &str = "CREATE TABLE records (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, \
        key TEXT NOT NULL, value TEXT NOT NULL)";

    #[test]
    fn a_version_2_store_is_converted_and_keeps_its_records() {
        let dir = TempDir::new("v2");
        let rows =
            "INSERT INTO records VALUES ('worker', 'WK1', 'w'), ('task', 'WT2', 't2'), ('task', 'WT1', 't1');
             INSERT INTO events VALUES (7, 100, x'01');
             INSERT INTO meta VALUES ('auth_token', 'secret')";
        old_store(dir.path(), 2, V2_RECORDS, rows);
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
        let rows = "INSERT INTO records (kind, key, value) \
            VALUES ('task', 'WT1', '{\"sid\":1}'), ('worker', 'WK1', 'w')";
        old_store(dir.path(), 3, V3_RECORDS, rows);
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

    /// A store whose file is then marked as schema `version`, opened again: its directory and the error.
    fn reopened_as_version(name: &str, version: i64) -> (TempDir, StoreError) {
        let dir = TempDir::new(name);
        drop(Store::open(dir.path()).unwrap());
        let db = dir.path().join(DB_FILE);
        Connection::open(&db).unwrap().pragma_update(None, "user_version", version).unwrap();
        let err = Store::open(dir.path()).unwrap_err();
        (dir, err)
    }

    #[test]
    fn a_newer_schema_is_refused_with_the_versions() {
        let (_dir, err) = reopened_as_version("newer", 7);
        assert!(
            matches!(err, StoreError::NewerSchema { found: 7, supported: SCHEMA_VERSION, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("upgrade trworker"), "{err}");
    }

    #[test]
    fn an_older_schema_is_refused_naming_the_directory() {
        let (dir, err) = reopened_as_version("older", 1);
        assert!(
            matches!(err, StoreError::OldSchema { found: 1, supported: SCHEMA_VERSION, dir: ref d } if d.as_path() == dir.path()),
            "{err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&dir.path().display().to_string()), "{message}");
        assert!(message.contains("move the directory aside or delete it"), "{message}");
    }
}
