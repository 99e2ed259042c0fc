//! Throughput of the durable store: batches of 6 writes (5 record upserts and 1 event, the shape of a
//! routed task) through `Store::submit`, each acknowledged only after its transaction is fsynced.
//!
//! Run with `cargo bench -p engine --bench store`. The database lives under cargo's target tmp directory
//! (a real disk, not tmpfs, so the fsyncs are real); set `TRWORKER_BENCH_DIR` to measure another disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use divan::counter::ItemsCount;
use divan::Bencher;
use engine::store::{Store, Value, Write};

fn main() {
    divan::main();
}

/// Batches per measured iteration.
const BATCHES: u64 = 10_000;

/// Distinct tasks the batches cycle through, so most upserts replace an existing row as in a live engine.
const TASKS: u64 = 10_000;

/// A fresh store in its own directory, removed on drop.
struct Bench {
    store: Option<Store>,
    dir: PathBuf,
    seq: AtomicU64,
    record: Vec<u8>,
    event: Vec<u8>,
}

impl Bench {
    fn new(name: &str) -> Bench {
        let root = std::env::var_os("TRWORKER_BENCH_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_TARGET_TMPDIR")));
        let dir = root.join(format!("store-bench-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Store::open(&dir).expect("open the benchmark store");
        // About the size of a record (a task's binary form with a few attributes, a worker's JSON).
        let record = format!("{{\"attributes\":\"{}\",\"assignment_status\":\"reserved\"}}", "a".repeat(350))
            .into_bytes();
        let event = format!("{{\"event_type\":\"reservation.created\",\"data\":\"{}\"}}", "e".repeat(250))
            .into_bytes();
        Bench { store: Some(store), dir, seq: AtomicU64::new(0), record, event }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("the store lives as long as the bench")
    }

    /// One command's writes.
    fn batch(&self) -> Vec<Write> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let task = format!("WT{:032x}", seq % TASKS);
        let worker = format!("WK{:032x}", seq % 1000);
        vec![
            Write::Put { kind: "task", key: task.clone(), value: Value::Ready(self.record.clone()) },
            Write::Put {
                kind: "reservation",
                key: format!("WR{seq:032x}"),
                value: Value::Ready(self.record.clone()),
            },
            Write::Put { kind: "worker", key: worker, value: Value::Ready(self.record.clone()) },
            Write::Put {
                kind: "queue",
                key: format!("WQ{:032x}", seq % 8),
                value: Value::Ready(self.record.clone()),
            },
            Write::Put { kind: "workspace", key: "WS0".into(), value: Value::Ready(self.record.clone()) },
            Write::Event { seq, at_ms: seq as i64, value: Value::Ready(self.event.clone()) },
        ]
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        drop(self.store.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The actor's pattern under heavy load: submit every command's batch without waiting, replies go out as
/// `done`s arrive. Measures batches per second until the last one is durable.
#[divan::bench(sample_count = 10, sample_size = 1)]
fn pipelined(bencher: Bencher) {
    let bench = Bench::new("pipelined");
    bencher.counter(ItemsCount::new(BATCHES)).bench_local(|| {
        for _ in 0..BATCHES {
            bench.store().submit(bench.batch(), Box::new(|r| assert!(r.is_ok(), "{r:?}")));
        }
        bench.store().flush().expect("flush");
    });
}

/// At most `in_flight` batches waiting for their fsync, as with that many HTTP clients each waiting for its
/// reply before sending the next request.
#[divan::bench(args = [16, 256], sample_count = 10, sample_size = 1)]
fn windowed(bencher: Bencher, in_flight: usize) {
    let bench = Bench::new("windowed");
    let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
    bencher.counter(ItemsCount::new(BATCHES)).bench_local(|| {
        for _ in 0..BATCHES {
            let (lock, cvar) = &*pending;
            let mut n = cvar.wait_while(lock.lock().unwrap(), |n| *n >= in_flight).unwrap();
            *n += 1;
            drop(n);
            let pending = Arc::clone(&pending);
            bench.store().submit(
                bench.batch(),
                Box::new(move |r| {
                    assert!(r.is_ok(), "{r:?}");
                    let (lock, cvar) = &*pending;
                    *lock.lock().unwrap() -= 1;
                    cvar.notify_one();
                }),
            );
        }
        bench.store().flush().expect("flush");
    });
}

/// One batch at a time: the latency of one durable commit (one fsync), the floor of a lone request.
#[divan::bench(sample_count = 100, sample_size = 1)]
fn one_at_a_time(bencher: Bencher) {
    let bench = Bench::new("single");
    bencher.bench_local(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        bench.store().submit(
            bench.batch(),
            Box::new(move |r| {
                let _ = tx.send(r);
            }),
        );
        rx.recv().expect("done").expect("committed");
    });
}
