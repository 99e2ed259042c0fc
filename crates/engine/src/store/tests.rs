//! Test support shared by the store's test modules (a temporary directory, batches, old files), and the
//! tests of the store as a whole.

use super::schema::APPLICATION_ID;
use super::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A unique directory under the system temp dir, removed on drop.
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        TempDir(
            std::env::temp_dir().join(format!("trworker-store-{name}-{}-{nanos}-{n}", std::process::id())),
        )
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A store opened in a fresh temporary directory, which is removed when dropped (after the store, when the
/// pair is bound as `let (dir, store)`).
pub(super) fn opened(name: &str) -> (TempDir, Store) {
    let dir = TempDir::new(name);
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// Submits task `WT{i}` with event `i + 1`, counting the batch into `durable` once it is written.
fn submit_counted(store: &Store, i: u64, durable: &Arc<AtomicUsize>) {
    let durable = Arc::clone(durable);
    let batch = vec![put("task", &format!("WT{i}"), "{}"), event(i + 1, 0)];
    store.submit(
        batch,
        Box::new(move |r| {
            if r.is_ok() {
                durable.fetch_add(1, Ordering::SeqCst);
            }
        }),
    );
}

pub(super) fn put(kind: &'static str, key: &str, value: &str) -> Write {
    Write::Put { kind, key: key.to_owned(), value: Value::Ready(value.as_bytes().to_vec()) }
}

pub(super) fn event(seq: u64, at_ms: i64) -> Write {
    Write::Event { seq, at_ms, value: Value::Ready(format!("{{\"seq\":{seq}}}").into_bytes()) }
}

/// Submits a batch and waits for its `done`.
pub(super) fn write(store: &Store, batch: Vec<Write>) -> Result<(), StoreError> {
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
pub(super) fn hold_writer(store: &Store) -> mpsc::Sender<()> {
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
pub(super) fn submit_tagged(
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

pub(super) fn seqs(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Rows in `table`: `records` for checking that updates rewrite a row and deletes remove it,
/// `event_chunks` for checking how events are grouped.
pub(super) fn rows_in(dir: &Path, table: &str) -> i64 {
    Connection::open(dir.join(DB_FILE))
        .unwrap()
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0))
        .unwrap()
}

pub(super) fn row_count(dir: &Path) -> i64 {
    rows_in(dir, "records")
}

pub(super) fn user_version(dir: &Path) -> i64 {
    Connection::open(dir.join(DB_FILE))
        .unwrap()
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

/// Makes a store file as an earlier build did: its `records` table (`records_sql`), the other tables
/// (unchanged since version 2), then `rows_sql`, stamped with `version`.
pub(super) fn old_store(dir: &Path, version: i64, records_sql: &str, rows_sql: &str) {
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

/// SQLite 3.50.2 fixed CVE-2025-29087 (`concat_ws` overflow) and CVE-2025-6965 (aggregate terms beyond
/// a limit corrupting memory). The store links the SQLite that rusqlite's `bundled` feature builds, so a
/// downgrade of rusqlite that brings back an older SQLite fails here.
#[test]
fn the_linked_sqlite_has_the_2025_security_fixes() {
    assert!(rusqlite::version_number() >= 3_050_002, "SQLite {} is older than 3.50.2", rusqlite::version());
    let reported: String = Connection::open_in_memory()
        .unwrap()
        .query_row("SELECT sqlite_version()", [], |row| row.get(0))
        .unwrap();
    assert_eq!(reported, rusqlite::version());
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
            StoredRecord { kind: "task".into(), key: "WT1".into(), value: "{\"v\":2}".into() },
            StoredRecord { kind: "worker".into(), key: "WK1".into(), value: "{\"w\":true}".into() },
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

#[test]
fn batches_commit_in_order_and_each_done_runs_once() {
    let (_dir, store) = opened("order");
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
    let (_dir, store) = opened("flush");
    let done = Arc::new(AtomicUsize::new(0));
    for i in 0..500u64 {
        submit_counted(&store, i, &done);
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
            submit_counted(&store, i, &acked);
        }
    }
    assert_eq!(acked.load(Ordering::SeqCst), 1000);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.load().unwrap().records.len(), 1000);
    assert_eq!(store.load().unwrap().last_event_seq, 1000);
}

#[test]
fn deferred_values_are_encoded_by_the_writer() {
    let (_dir, store) = opened("deferred");
    write(
        &store,
        vec![
            Write::Put { kind: "task", key: "WT1".into(), value: Value::Later(Box::new(|| b"{}".to_vec())) },
            Write::Event { seq: 1, at_ms: 5, value: Value::Later(Box::new(|| vec![0, 159, 146, 150])) },
        ],
    )
    .unwrap();
    assert_eq!(store.load().unwrap().records[0].value, b"{}");
    assert_eq!(store.events_after(0, 10).unwrap()[0].value, vec![0, 159, 146, 150]);
}

#[test]
fn events_after_pages_through_the_log() {
    let (_dir, store) = opened("paging");
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
fn a_panicking_done_does_not_stop_the_store() {
    let (_dir, store) = opened("panic");
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
