//! Memory of a large engine: W available-then-busy workers and T pending tasks, in process, no store.
//!
//! `cargo run --release -p engine --example memory -- [WORKERS] [TASKS]` (default 100,000 and 1,000,000).
//! Prints the process's resident memory (VmRSS) after the workers and after the tasks.

use engine::command::{CreateTaskParams, TaskQueueParams, WorkerParams, WorkflowParams, WorkspaceParams};
use engine::{Command, Core, CoreConfig, Prefix, Reply, SequentialSids, Sid, Timestamp};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn apply(core: &mut Core, now: Timestamp, cmd: Command) -> Reply {
    match core.apply(now, cmd) {
        Ok(reply) => reply,
        Err(e) => {
            eprintln!("memory: setup failed: {e}");
            std::process::exit(1);
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let workers = args.next().and_then(Result::ok).unwrap_or(100_000);
    let tasks = args.next().and_then(Result::ok).unwrap_or(1_000_000);
    let now = Timestamp::from_secs(1_700_000_000);
    let mut core =
        Core::new(Sid::new(Prefix::Account, 1), Box::new(SequentialSids::new()), CoreConfig::default());
    let before = rss_mib();
    let Reply::Workspace(ws) = apply(
        &mut core,
        now,
        Command::CreateWorkspace {
            params: WorkspaceParams { friendly_name: Some("memory".into()), ..Default::default() },
        },
    ) else {
        return;
    };
    let Reply::TaskQueue(queue) = apply(
        &mut core,
        now,
        Command::CreateTaskQueue {
            workspace_sid: ws.sid,
            params: TaskQueueParams {
                friendly_name: Some("support".into()),
                target_workers: Some(r#"skills HAS "support""#.into()),
                ..Default::default()
            },
        },
    ) else {
        return;
    };
    let config = format!(r#"{{"task_routing":{{"default_filter":{{"queue":"{}"}}}}}}"#, queue.sid);
    let Reply::Workflow(workflow) = apply(
        &mut core,
        now,
        Command::CreateWorkflow {
            workspace_sid: ws.sid,
            params: WorkflowParams {
                friendly_name: Some("support".into()),
                configuration: Some(config),
                task_reservation_timeout: Some(86_400),
                ..Default::default()
            },
        },
    ) else {
        return;
    };
    for w in 0..workers {
        apply(
            &mut core,
            now,
            Command::CreateWorker {
                workspace_sid: ws.sid,
                params: WorkerParams {
                    friendly_name: Some(format!("worker{w}")),
                    attributes: Some(r#"{"skills":["support"],"contact_uri":"+15005550006"}"#.into()),
                    ..Default::default()
                },
            },
        );
        if w % 10_000 == 0 {
            core.take_events();
            core.take_changes();
        }
    }
    core.take_events();
    core.take_changes();
    let after_workers = rss_mib();
    for n in 0..tasks {
        apply(
            &mut core,
            now,
            Command::CreateTask {
                workspace_sid: ws.sid,
                params: CreateTaskParams {
                    workflow_sid: Some(workflow.sid),
                    attributes: Some(format!(r#"{{"from":"+1555{n:07}","call_sid":"CA{n:032x}"}}"#)),
                    ..Default::default()
                },
            },
        );
        if n % 10_000 == 0 {
            core.take_events();
            core.take_changes();
        }
    }
    core.take_events();
    core.take_changes();
    let after_tasks = rss_mib();
    println!("workers {workers}, pending tasks {tasks}");
    println!(
        "VmRSS: start {before:.1} MiB, with workers {after_workers:.1} MiB, with tasks {after_tasks:.1} MiB"
    );
}
