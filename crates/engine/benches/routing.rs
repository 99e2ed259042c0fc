//! Routing throughput: create a task, route it through its workflow and reserve a worker.
//!
//! Setup (not timed): one workspace, `QUEUES` queues each targeting `team == q`, one workflow per queue, and
//! N available workers spread over the teams; for `in_memory`, a warm-up that routes `TASKS` tasks and deletes
//! them, so the maps are at working size (see `warm_centre`). Timed: `TASKS` task creations, each of which
//! evaluates its workflow, enters the queue, picks the longest-idle eligible worker and creates a reservation.
//!
//! `in_memory` drives the sans-IO core directly; `durable` goes through the actor with the SQLite store, so
//! every task is on disk before its reply (group commit). Run: `cargo bench -p engine --bench routing`.
//!
//! What "as in production" means for `in_memory`: after each task the loop takes the events (each a compact
//! typed payload, see `engine::event`) and the changed records (typed copies, `engine::Record`) exactly as
//! the actor does. Turning those into bytes (record JSON, event binary form) happens on the store's writer
//! thread in production, so it is part of `durable`, not of `in_memory`.
//!
//! The benchmark runs on mimalloc, not glibc's malloc: on a heap holding 100k workers glibc spent most of the
//! time coalescing freed chunks (`malloc_consolidate`/`unlink_chunk`), which made the cost grow with the
//! number of workers although no routing step looks at more than the workers it reserves. The `trworker`
//! binary should use the same allocator to get these numbers.

use std::sync::Arc;

use divan::counter::ItemsCount;
use divan::Bencher;
use engine::command::{CreateTaskParams, TaskQueueParams, WorkerParams, WorkflowParams, WorkspaceParams};
use engine::core::{Core, CoreConfig, Reply};
use engine::handle::{Handle, Options};
use engine::{Command, Prefix, SequentialSids, Sid, Store, SystemClock, Timestamp};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const QUEUES: usize = 100;
const TASKS: usize = 1000;

fn main() {
    divan::main();
}

struct Centre {
    core: Core,
    workspace: Sid,
    workflows: Vec<Sid>,
}

fn apply(core: &mut Core, cmd: Command) -> Reply {
    match core.apply(Timestamp::from_secs(1_700_000_000), cmd) {
        Ok(reply) => reply,
        Err(e) => panic!("benchmark setup failed: {e}"),
    }
}

/// Applies a create command and returns the new resource's SID.
fn create(core: &mut Core, cmd: Command) -> Sid {
    apply(core, cmd).sid().unwrap_or_else(|| unreachable!("a create replies with what it created"))
}

fn centre(workers: usize) -> Centre {
    let mut core =
        Core::new(Sid::new(Prefix::Account, 1), Box::new(SequentialSids::new()), CoreConfig::default());
    let params = WorkspaceParams { friendly_name: Some("bench".into()), ..Default::default() };
    let workspace = create(&mut core, Command::CreateWorkspace { params });
    let ready = Command::CreateActivity {
        workspace_sid: workspace,
        friendly_name: Some("Ready".into()),
        available: Some(true),
    };
    let ready = create(&mut core, ready);
    let mut workflows = Vec::with_capacity(QUEUES);
    for q in 0..QUEUES {
        let params = TaskQueueParams {
            friendly_name: Some(format!("team{q}")),
            target_workers: Some(format!("team == {q}")),
            ..Default::default()
        };
        let queue = create(&mut core, Command::CreateTaskQueue { workspace_sid: workspace, params });
        let params = WorkflowParams::single_queue(format!("team{q}"), queue);
        workflows.push(create(&mut core, Command::CreateWorkflow { workspace_sid: workspace, params }));
    }
    for w in 0..workers {
        let params = WorkerParams {
            friendly_name: Some(format!("worker{w}")),
            activity_sid: Some(ready),
            attributes: Some(format!(r#"{{"team":{},"skills":["support"]}}"#, w % QUEUES)),
            ..Default::default()
        };
        create(&mut core, Command::CreateWorker { workspace_sid: workspace, params });
    }
    core.take_events();
    core.take_changes();
    Centre { core, workspace, workflows }
}

fn create_task(workspace: Sid, workflow: Sid, n: usize) -> Command {
    Command::CreateTask {
        workspace_sid: workspace,
        params: CreateTaskParams {
            workflow_sid: Some(workflow),
            attributes: Some(format!(r#"{{"from":"+1555{n:07}","call_sid":"CA{n:032x}"}}"#)),
            ..Default::default()
        },
    }
}

/// A centre as a running engine has it: its maps (tasks, reservations, timers, queue indexes) already at
/// working size. A fresh centre's maps start empty, so its first 1,000 tasks also paid for growing them
/// (rehashing into freshly faulted memory), which made samples swing by 2-4x with the machine's memory state
/// and is not a cost of routing. The warm-up routes 1,000 tasks and deletes them: the workers are available
/// again, in a different idle order, and every task and timer is gone.
fn warm_centre(workers: usize) -> Centre {
    let mut c = centre(workers);
    let mut created = Vec::with_capacity(TASKS);
    for n in 0..TASKS {
        if let Reply::Task(t) = apply(&mut c.core, create_task(c.workspace, c.workflows[n % QUEUES], n)) {
            created.push(t.sid);
        }
    }
    for sid in created {
        apply(&mut c.core, Command::DeleteTask { workspace_sid: c.workspace, sid, if_match: None });
    }
    c.core.take_events();
    c.core.take_changes();
    c
}

/// Sans-IO: the routing decision itself. Its cost should stay flat as the number of workers grows. The
/// commands are built before the clock starts (formatting 1,000 attribute strings is the bench's work, not
/// the engine's).
#[divan::bench(args = [1_000, 10_000, 100_000], sample_count = 30, sample_size = 1)]
fn in_memory(bencher: Bencher, workers: usize) {
    bencher
        .counter(ItemsCount::new(TASKS))
        .with_inputs(|| {
            let c = warm_centre(workers);
            let commands: Vec<Command> =
                (0..TASKS).map(|n| create_task(c.workspace, c.workflows[n % QUEUES], TASKS + n)).collect();
            (c, commands)
        })
        .bench_local_values(|(mut c, commands)| {
            for cmd in commands {
                let reply = apply(&mut c.core, cmd);
                debug_assert!(
                    matches!(reply, Reply::Task(ref t) if t.assignment_status.as_str() == "reserved")
                );
                // Events and changes are produced as they would be for the store and subscribers.
                c.core.take_events();
                c.core.take_changes();
            }
            c
        });
}

/// Through the actor and the SQLite store: each reply waits until its task is durable.
#[divan::bench(sample_count = 5, sample_size = 1)]
fn durable(bencher: Bencher) {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a runtime: {e}"),
    };
    let tasks = 10 * TASKS;
    bencher
        .counter(ItemsCount::new(tasks))
        .with_inputs(|| {
            let dir = std::env::temp_dir().join(format!("trworker-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let store = Store::open(&dir).unwrap_or_else(|e| panic!("{e}"));
            let c = centre(10_000);
            let handle = Handle::start(c.core, Some(store), Arc::new(SystemClock), Options::default());
            (handle, c.workspace, c.workflows, dir)
        })
        .bench_local_values(|(handle, workspace, workflows, dir)| {
            runtime.block_on(async {
                let mut pending = Vec::with_capacity(tasks);
                for n in 0..tasks {
                    let h = handle.clone();
                    let cmd = create_task(workspace, workflows[n % QUEUES], n);
                    pending.push(tokio::spawn(async move { h.apply(cmd).await }));
                }
                for p in pending {
                    match p.await {
                        Ok(Ok(_)) => {}
                        other => panic!("task creation failed: {other:?}"),
                    }
                }
                let _ = handle.stop().await;
            });
            dir
        });
    let _ =
        std::fs::remove_dir_all(std::env::temp_dir().join(format!("trworker-bench-{}", std::process::id())));
}
