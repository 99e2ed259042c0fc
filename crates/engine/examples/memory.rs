//! Memory of a large engine: W workers (in the default, unavailable activity, so nothing is reserved) and T
//! pending tasks in one queue, in process, no store.
//!
//! `cargo run --release -p engine --example memory -- [WORKERS] [TASKS]` (default 100,000 and 1,000,000).
//! Prints the process's resident memory (VmRSS) and the live heap (bytes allocated and not freed, counted
//! by a wrapper around mimalloc) after the workers and after the tasks.

use engine::command::{CreateTaskParams, TaskQueueParams, WorkerParams, WorkflowParams, WorkspaceParams};
use engine::{Command, Core, CoreConfig, Prefix, SequentialSids, Sid, Timestamp};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};

/// mimalloc (as the binary), counting the bytes the program has asked for and not yet freed, so the
/// example can tell live data from what the allocator keeps around.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call forwards to mimalloc with the same arguments; the counter does not affect memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { mimalloc::MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size, Ordering::Relaxed);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is.
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn live_mib() -> f64 {
    LIVE.load(Ordering::Relaxed) as f64 / (1024.0 * 1024.0)
}

/// Events and store changes are taken every this many commands (the actor takes them after every batch).
const FLUSH: usize = 10_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

/// Applies a create command and returns the new resource's SID; a failure ends the example.
fn create(core: &mut Core, now: Timestamp, cmd: Command) -> Sid {
    match core.apply(now, cmd).map(|reply| reply.sid()) {
        Ok(Some(sid)) => sid,
        other => {
            eprintln!("memory: setup failed: {other:?}");
            std::process::exit(1);
        }
    }
}

/// Creates `n` resources, `make(i)` the command for the `i`th, taking the events and store changes every
/// [`FLUSH`] commands and at the end.
fn create_many(core: &mut Core, now: Timestamp, n: usize, make: impl Fn(usize) -> Command) {
    for i in 0..n {
        create(core, now, make(i));
        if i % FLUSH == 0 {
            core.take_events();
            core.take_changes();
        }
    }
    core.take_events();
    core.take_changes();
}

fn main() {
    let counts: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse().unwrap_or_else(|_| {
                eprintln!("memory: {a:?} is not a count; usage: memory [WORKERS] [TASKS]");
                std::process::exit(2);
            })
        })
        .collect();
    if counts.len() > 2 {
        eprintln!("memory: too many arguments; usage: memory [WORKERS] [TASKS]");
        std::process::exit(2);
    }
    let workers = counts.first().copied().unwrap_or(100_000);
    let tasks = counts.get(1).copied().unwrap_or(1_000_000);
    let now = Timestamp::from_secs(1_700_000_000);
    let mut core =
        Core::new(Sid::new(Prefix::Account, 1), Box::new(SequentialSids::new()), CoreConfig::default());
    let before = rss_mib();
    let params = WorkspaceParams { friendly_name: Some("memory".into()), ..Default::default() };
    let ws = create(&mut core, now, Command::CreateWorkspace { params });
    let params = TaskQueueParams {
        friendly_name: Some("support".into()),
        target_workers: Some(r#"skills HAS "support""#.into()),
        ..Default::default()
    };
    let queue = create(&mut core, now, Command::CreateTaskQueue { workspace_sid: ws, params });
    let params = WorkflowParams {
        task_reservation_timeout: Some(86_400),
        ..WorkflowParams::single_queue("support", queue)
    };
    let workflow = create(&mut core, now, Command::CreateWorkflow { workspace_sid: ws, params });
    create_many(&mut core, now, workers, |w| Command::CreateWorker {
        workspace_sid: ws,
        params: WorkerParams {
            friendly_name: Some(format!("worker{w}")),
            attributes: Some(r#"{"skills":["support"],"contact_uri":"+15005550006"}"#.into()),
            ..Default::default()
        },
    });
    let after_workers = rss_mib();
    let live_workers = live_mib();
    create_many(&mut core, now, tasks, |n| Command::CreateTask {
        workspace_sid: ws,
        params: CreateTaskParams {
            workflow_sid: Some(workflow),
            attributes: Some(format!(r#"{{"from":"+1555{n:07}","call_sid":"CA{n:032x}"}}"#)),
            ..Default::default()
        },
    });
    let after_tasks = rss_mib();
    let live_tasks = live_mib();
    println!("workers {workers}, pending tasks {tasks}");
    println!(
        "VmRSS: start {before:.1} MiB, with workers {after_workers:.1} MiB, with tasks {after_tasks:.1} MiB"
    );
    println!("live heap (requested, not freed): with workers {live_workers:.1} MiB, with tasks {live_tasks:.1} MiB");
}
