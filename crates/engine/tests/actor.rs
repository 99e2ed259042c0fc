//! The actor around the core: ordering, durability before acknowledgement, timers driven by an injected
//! clock, and recovery of state and timers from the data directory. No test waits for real time.

use std::path::PathBuf;
use std::sync::Arc;

use engine::command::{CreateTaskParams, TaskQueueParams, WorkerParams, WorkflowParams, WorkspaceParams};
use engine::core::{CoreConfig, Reply};
use engine::event::EventType;
use engine::handle::{self, Handle, Options};
use engine::{Command, ManualClock, Prefix, RandomSids, Sid, SidGen, Timestamp};

const START: Timestamp = Timestamp::from_secs(1_700_000_000);

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "trworker-actor-{name}-{}-{:x}",
            std::process::id(),
            RandomSids::new().next(Prefix::Call).number()
        ));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn account() -> Sid {
    Sid::new(Prefix::Account, 0xacc)
}

fn open(dir: &TempDir, clock: &ManualClock) -> Handle {
    let (handle, _) = handle::open(
        &dir.0,
        account(),
        Box::new(RandomSids::new()),
        CoreConfig::default(),
        Arc::new(clock.clone()),
        Options::default(),
    )
    .unwrap_or_else(|e| panic!("open failed: {e}"));
    handle
}

/// A workspace with one available activity, one queue, a workflow with a 10 s reservation timeout and one
/// available worker. Returns (workspace, workflow, worker).
async fn call_centre(handle: &Handle) -> (Sid, Sid, Sid) {
    let Ok(Reply::Workspace(ws)) = handle
        .apply(Command::CreateWorkspace {
            params: WorkspaceParams { friendly_name: Some("actor".into()), ..Default::default() },
        })
        .await
    else {
        panic!("workspace")
    };
    let Ok(Reply::Activity(ready)) = handle
        .apply(Command::CreateActivity {
            workspace_sid: ws.sid,
            friendly_name: Some("Ready".into()),
            available: Some(true),
        })
        .await
    else {
        panic!("activity")
    };
    let Ok(Reply::TaskQueue(queue)) = handle
        .apply(Command::CreateTaskQueue {
            workspace_sid: ws.sid,
            params: TaskQueueParams {
                friendly_name: Some("support".into()),
                target_workers: Some(r#"skills HAS "support""#.into()),
                ..Default::default()
            },
        })
        .await
    else {
        panic!("queue")
    };
    let config = format!(r#"{{"task_routing":{{"default_filter":{{"queue":"{}"}}}}}}"#, queue.sid);
    let Ok(Reply::Workflow(workflow)) = handle
        .apply(Command::CreateWorkflow {
            workspace_sid: ws.sid,
            params: WorkflowParams {
                friendly_name: Some("support".into()),
                configuration: Some(config),
                task_reservation_timeout: Some(10),
                ..Default::default()
            },
        })
        .await
    else {
        panic!("workflow")
    };
    let Ok(Reply::Worker(worker)) = handle
        .apply(Command::CreateWorker {
            workspace_sid: ws.sid,
            params: WorkerParams {
                friendly_name: Some("charles".into()),
                activity_sid: Some(ready.sid),
                attributes: Some(r#"{"skills":["support"]}"#.into()),
                ..Default::default()
            },
        })
        .await
    else {
        panic!("worker")
    };
    (ws.sid, workflow.sid, worker.sid)
}

async fn create_call(handle: &Handle, ws: Sid, workflow: Sid) -> Sid {
    match handle
        .apply(Command::CreateTask {
            workspace_sid: ws,
            params: CreateTaskParams {
                workflow_sid: Some(workflow),
                attributes: Some(
                    r#"{"from":"+15551230001","call_sid":"CA00000000000000000000000000000001"}"#.into(),
                ),
                ..Default::default()
            },
        })
        .await
    {
        Ok(Reply::Task(task)) => task.sid,
        other => panic!("task creation failed: {other:?}"),
    }
}

#[tokio::test]
async fn events_are_published_in_order_once_durable() {
    let dir = TempDir::new("order");
    let clock = ManualClock::new(START);
    let handle = open(&dir, &clock);
    let mut events = handle.subscribe();
    let (ws, workflow, worker) = call_centre(&handle).await;
    let task = create_call(&handle, ws, workflow).await;
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        seen.push(event);
    }
    assert!(seen.windows(2).all(|w| w[0].seq + 1 == w[1].seq), "sequence numbers are consecutive");
    let reserved = seen.iter().find(|e| e.event_type == EventType::ReservationCreated).unwrap_or_else(|| {
        panic!("no reservation.created among {:?}", seen.iter().map(|e| e.event_type).collect::<Vec<_>>())
    });
    assert_eq!(reserved.field("TaskSid"), Some(task.to_string().as_str()));
    assert_eq!(reserved.field("WorkerSid"), Some(worker.to_string().as_str()));
    let retained = handle.events_after(0, usize::MAX).await.unwrap_or_default();
    assert_eq!(retained.len(), seen.len());
    handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(matches!(
        handle.apply(Command::DeleteWorkspace { workspace_sid: ws }).await,
        Err(handle::Error::Stopped)
    ));
}

/// Live views may follow events as applied: the same events, in the same order, each one out no later than
/// its durable twin (here: all of a command's applied events are there once its reply is).
#[tokio::test]
async fn applied_events_are_the_durable_events_released_sooner() {
    let dir = TempDir::new("applied");
    let clock = ManualClock::new(START);
    let handle = open(&dir, &clock);
    let mut durable = handle.subscribe();
    let mut applied = handle.subscribe_applied();
    let (ws, workflow, _) = call_centre(&handle).await;
    let task = create_call(&handle, ws, workflow).await;
    let drain = |rx: &mut tokio::sync::broadcast::Receiver<Arc<engine::Event>>| {
        let mut v = Vec::new();
        while let Ok(e) = rx.try_recv() {
            v.push((e.seq, e.event_type));
        }
        v
    };
    let early = drain(&mut applied);
    assert!(early.iter().any(|(_, t)| *t == EventType::ReservationCreated), "{early:?}");
    assert_eq!(early, drain(&mut durable));
    // Nothing held back: a reader at this moment sees the task the applied events spoke of.
    let seen = handle.read(move |state| state.core.task(ws, task).is_ok()).await.unwrap_or(false);
    assert!(seen);
}

#[tokio::test]
async fn a_refused_command_is_reported_and_changes_nothing() {
    let dir = TempDir::new("refused");
    let clock = ManualClock::new(START);
    let handle = open(&dir, &clock);
    let before = handle.events_after(0, usize::MAX).await.unwrap_or_default().len();
    let missing = Sid::new(Prefix::Workspace, 42);
    let result = handle
        .apply(Command::CreateActivity {
            workspace_sid: missing,
            friendly_name: Some("x".into()),
            available: None,
        })
        .await;
    match result {
        Err(handle::Error::Engine(e)) => assert_eq!(e.status(), 404),
        other => panic!("expected a 404 from the engine, got {other:?}"),
    }
    assert_eq!(handle.events_after(0, usize::MAX).await.unwrap_or_default().len(), before);
}

#[tokio::test]
async fn a_reservation_times_out_when_the_clock_passes_its_deadline() {
    let dir = TempDir::new("timeout");
    let clock = ManualClock::new(START);
    let handle = open(&dir, &clock);
    let (ws, workflow, _) = call_centre(&handle).await;
    create_call(&handle, ws, workflow).await;
    let mut events = handle.subscribe();
    clock.advance_millis(9_999);
    handle.tick().await.unwrap_or_else(|e| panic!("tick: {e}"));
    assert!(events.try_recv().is_err(), "nothing fires before the deadline");
    clock.advance_millis(1);
    handle.tick().await.unwrap_or_else(|e| panic!("tick: {e}"));
    let mut types = Vec::new();
    while let Ok(event) = events.try_recv() {
        types.push(event.event_type);
    }
    assert!(types.contains(&EventType::ReservationTimeout), "got {types:?}");
}

#[tokio::test]
async fn state_and_timers_survive_a_restart() {
    let dir = TempDir::new("restart");
    let clock = ManualClock::new(START);
    let (ws, workflow, last_seq, logged) = {
        let handle = open(&dir, &clock);
        let (ws, workflow, _) = call_centre(&handle).await;
        create_call(&handle, ws, workflow).await;
        let logged = handle.events_after(0, usize::MAX).await.unwrap_or_default();
        let last = logged.last().map(|e| e.seq);
        handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
        (ws, workflow, last.unwrap_or(0), logged)
    };
    // The reservation's deadline passes while the engine is down; it fires at recovery.
    clock.advance_millis(60_000);
    let handle = open(&dir, &clock);
    let restored = handle.events_after(0, usize::MAX).await.unwrap_or_default();
    let before: Vec<u64> = restored.iter().map(|e| e.seq).take_while(|seq| *seq <= last_seq).collect();
    assert_eq!(before, (1..=last_seq).collect::<Vec<_>>(), "the event log is restored");
    // Read back from the store's binary form: the same descriptions and fields, in the same order.
    for (stored, original) in restored.iter().zip(&logged) {
        assert_eq!(stored.description(), original.description());
        assert_eq!(stored.fields(), original.fields());
        assert_eq!(stored.workspace_name(), original.workspace_name());
        assert_eq!(**stored, **original);
    }
    // The actor fires overdue timers on its own as soon as it starts; the tick only makes sure it has.
    handle.tick().await.unwrap_or_else(|e| panic!("tick: {e}"));
    let after = handle.events_after(last_seq, usize::MAX).await.unwrap_or_default();
    assert!(
        after.first().is_some_and(|e| e.seq == last_seq + 1),
        "sequence numbers continue after a restart"
    );
    let types: Vec<_> = after.iter().map(|e| e.event_type).collect();
    assert!(types.contains(&EventType::ReservationTimeout), "got {types:?}");
    // The restored workspace still routes.
    create_call(&handle, ws, workflow).await;
}
