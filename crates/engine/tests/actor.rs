//! The actor around the core: ordering, durability before acknowledgement, timers driven by an injected
//! clock, and recovery of state and timers from the data directory. No test waits for real time.

use std::path::PathBuf;
use std::sync::Arc;

use engine::command::{CreateTaskParams, TaskQueueParams, WorkerParams, WorkflowParams, WorkspaceParams};
use engine::core::{Core, CoreConfig, Reply};
use engine::event::EventType;
use engine::handle::{self, Handle, Options, Stats};
use engine::store::Store;
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

/// A fresh engine in its own data directory, on a manual clock at [`START`].
fn start(name: &str) -> (TempDir, ManualClock, Handle) {
    let dir = TempDir::new(name);
    let clock = ManualClock::new(START);
    let handle = open(&dir, &clock);
    (dir, clock, handle)
}

/// Applies a create command and returns the new resource's SID.
async fn create(handle: &Handle, cmd: Command) -> Sid {
    match handle.apply(cmd).await {
        Ok(reply) => reply.sid().unwrap_or_else(|| panic!("nothing created: {reply:?}")),
        Err(e) => panic!("create failed: {e}"),
    }
}

/// Applies a command on a task of its own, so that it can wait in the actor's mailbox.
fn spawn_apply(handle: &Handle, cmd: Command) -> tokio::task::JoinHandle<Result<Reply, handle::Error>> {
    let handle = handle.clone();
    tokio::spawn(async move { handle.apply(cmd).await })
}

/// Holds the actor up in a read that waits for the returned sender (used or dropped), so what is sent
/// next stays queued. The task ends once the read has run.
async fn hold_actor(
    handle: &Handle,
) -> (tokio::task::JoinHandle<Result<(), handle::Error>>, std::sync::mpsc::Sender<()>) {
    let (release, held) = std::sync::mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel::<()>();
    let blocked = tokio::spawn({
        let handle = handle.clone();
        async move {
            handle
                .read(move |_| {
                    let _ = started.send(());
                    let _ = held.recv();
                })
                .await
        }
    });
    running.await.unwrap_or_else(|_| panic!("the read did not start"));
    (blocked, release)
}

/// Parks the store's writer inside a holding batch's `done`, so every batch submitted after it stays
/// unsaved until the returned sender is used or dropped.
fn park_writer(store: &Store) -> std::sync::mpsc::Sender<()> {
    let (parked_tx, parked) = std::sync::mpsc::channel::<()>();
    let (release_writer, writer_held) = std::sync::mpsc::channel::<()>();
    store.submit(
        Vec::new(),
        Box::new(move |_| {
            let _ = parked_tx.send(());
            let _ = writer_held.recv();
        }),
    );
    parked.recv().unwrap_or_else(|_| panic!("the writer did not take the holding batch"));
    release_writer
}

/// Waits until the actor's mailbox holds at least `n` messages.
async fn wait_for_mailbox(handle: &Handle, n: usize) {
    while handle.stats().mailbox < n {
        tokio::task::yield_now().await;
    }
}

/// A workspace with one available activity, one queue, a workflow with a 10 s reservation timeout and one
/// available worker. Returns (workspace, workflow, worker).
async fn call_centre(handle: &Handle) -> (Sid, Sid, Sid) {
    let params = WorkspaceParams { friendly_name: Some("actor".into()), ..Default::default() };
    let ws = create(handle, Command::CreateWorkspace { params }).await;
    let ready = Command::CreateActivity {
        workspace_sid: ws,
        friendly_name: Some("Ready".into()),
        available: Some(true),
    };
    let ready = create(handle, ready).await;
    let params = TaskQueueParams {
        friendly_name: Some("support".into()),
        target_workers: Some(r#"skills HAS "support""#.into()),
        ..Default::default()
    };
    let queue = create(handle, Command::CreateTaskQueue { workspace_sid: ws, params }).await;
    let params = WorkflowParams {
        task_reservation_timeout: Some(10),
        ..WorkflowParams::single_queue("support", queue)
    };
    let workflow = create(handle, Command::CreateWorkflow { workspace_sid: ws, params }).await;
    let params = WorkerParams {
        friendly_name: Some("charles".into()),
        activity_sid: Some(ready),
        attributes: Some(r#"{"skills":["support"]}"#.into()),
        ..Default::default()
    };
    let worker = create(handle, Command::CreateWorker { workspace_sid: ws, params }).await;
    (ws, workflow, worker)
}

async fn create_call(handle: &Handle, ws: Sid, workflow: Sid) -> Sid {
    let params = CreateTaskParams {
        workflow_sid: Some(workflow),
        attributes: Some(r#"{"from":"+15551230001","call_sid":"CA00000000000000000000000000000001"}"#.into()),
        ..Default::default()
    };
    create(handle, Command::CreateTask { workspace_sid: ws, params }).await
}

#[tokio::test]
async fn events_are_published_in_order_once_durable() {
    let (_dir, _clock, handle) = start("order");
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
    let (_dir, _clock, handle) = start("applied");
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
    let (_dir, _clock, handle) = start("refused");
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
    let (_dir, clock, handle) = start("timeout");
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

#[tokio::test]
async fn api_keys_survive_a_restart_and_a_deleted_one_stays_deleted() {
    let dir = TempDir::new("api-keys");
    let clock = ManualClock::new(START);
    let create = |name: &str| Command::CreateApiKey {
        friendly_name: Some(name.into()),
        secret: engine::model::Secret::new(format!("secret of {name}")),
    };
    let (kept, deleted) = {
        let handle = open(&dir, &clock);
        let Ok(Reply::ApiKey(kept)) = handle.apply(create("kept")).await else { panic!("create failed") };
        let Ok(Reply::ApiKey(deleted)) = handle.apply(create("deleted")).await else {
            panic!("create failed")
        };
        let renamed =
            handle.apply(Command::UpdateApiKey { sid: kept.sid, friendly_name: Some("renamed".into()) });
        assert!(matches!(renamed.await, Ok(Reply::ApiKey(_))));
        assert!(matches!(handle.apply(Command::DeleteApiKey { sid: deleted.sid }).await, Ok(Reply::Deleted)));
        handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
        (kept.sid, deleted.sid)
    };
    let handle = open(&dir, &clock);
    let keys = handle
        .read(move |state| {
            let core = &state.core;
            let listed: Vec<(Sid, Option<String>, String)> = core
                .api_keys()
                .iter()
                .map(|k| (k.sid, k.friendly_name.clone(), k.secret.expose().to_owned()))
                .collect();
            (listed, core.api_key(deleted).is_err())
        })
        .await
        .unwrap_or_else(|e| panic!("read: {e}"));
    assert_eq!(keys, (vec![(kept, Some("renamed".to_owned()), "secret of kept".to_owned())], true));
}

/// The snapshot of a workspace that a failed write must leave as it was: its tasks, the timers, the last
/// event's seq.
async fn snapshot(handle: &Handle, ws: Sid) -> (Vec<Sid>, usize, u64) {
    handle
        .read(move |state| {
            let filter = engine::core::TaskFilter::default();
            let mut tasks: Vec<Sid> =
                state.core.tasks(ws, &filter).unwrap_or_default().iter().map(|t| t.sid).collect();
            tasks.sort();
            (tasks, state.core.timer_count(), state.core.last_event_seq())
        })
        .await
        .unwrap_or_else(|e| panic!("read: {e}"))
}

fn big_task(ws: Sid, workflow: Sid) -> Command {
    let attributes = serde_json::json!({ "from": "+15551230001", "notes": "x".repeat(4000) }).to_string();
    Command::CreateTask {
        workspace_sid: ws,
        params: CreateTaskParams {
            workflow_sid: Some(workflow),
            attributes: Some(attributes),
            ..Default::default()
        },
    }
}

/// A full disk (the store capped at its size, so SQLite fails with SQLITE_FULL): the pass whose change
/// cannot be written fails, and so does the pass applied on top of it before the failure was known. A read
/// then shows the state without either (timers included), nothing of them was published, and once there is
/// room again commands succeed, without a restart. The store's writer and the actor are held at fixed
/// points, so nothing depends on timing.
#[tokio::test]
async fn a_failed_write_is_dropped_from_memory_with_what_was_built_on_it_and_the_engine_goes_on() {
    let (dir, clock, handle) = start("full");
    let (ws, workflow, _) = call_centre(&handle).await;
    create_call(&handle, ws, workflow).await;
    handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));

    let store = Store::open_capped(&dir.0, Some(0)).unwrap_or_else(|e| panic!("open: {e}"));
    let cap = store.size_cap();
    let loaded = store.load().unwrap_or_else(|e| panic!("load: {e}"));
    let records = loaded.records.into_iter().map(|r| (r.kind, r.key, r.value));
    let core = Core::restore(
        account(),
        Box::new(RandomSids::new()),
        CoreConfig::default(),
        records,
        loaded.last_event_seq,
    )
    .unwrap_or_else(|e| panic!("restore: {e}"));
    // The writer is parked inside a holding batch's `done`, so both passes below are applied before either
    // reaches the disk.
    let release_writer = park_writer(&store);
    let options = Options { pass_commands: 10, ..Options::default() };
    let handle = Handle::start(core, Some(store), Arc::new(clock.clone()), options);
    let before = snapshot(&handle, ws).await;
    let mut durable = handle.subscribe();

    // Held in a read, the actor finds ten creates of 4 KB tasks queued (40 KB of rows: more than the file
    // has free), then one more command: a pass of ten, and a pass of one applied on top of it.
    let (holding, release_actor) = hold_actor(&handle).await;
    let refused: Vec<_> = (0..10).map(|_| spawn_apply(&handle, big_task(ws, workflow))).collect();
    wait_for_mailbox(&handle, 10).await;
    let built_on = spawn_apply(
        &handle,
        Command::UpdateWorkspace {
            workspace_sid: ws,
            params: WorkspaceParams { friendly_name: Some("renamed".into()), ..Default::default() },
        },
    );
    wait_for_mailbox(&handle, 11).await;
    let _ = release_actor.send(());
    assert!(holding.await.is_ok_and(|r| r.is_ok()));
    while handle.stats().unsaved_batches < 2 {
        tokio::task::yield_now().await;
    }
    let _ = release_writer.send(());

    for create in refused.into_iter().chain([built_on]) {
        match create.await.unwrap_or_else(|e| panic!("apply: {e}")) {
            Err(handle::Error::Store(e)) => assert_eq!(e.kind(), engine::store::ErrorKind::Full, "{e}"),
            other => panic!("a change on a full disk was not refused as such: {other:?}"),
        }
    }
    // Answered after the failure, so read after the reload: memory is what the disk holds.
    assert_eq!(snapshot(&handle, ws).await, before);
    let name = handle.read(move |state| state.core.workspace(ws).map(|w| w.friendly_name.clone())).await;
    assert_eq!(name.ok().and_then(|n| n.ok()).as_deref(), Some("actor"));
    assert!(matches!(durable.try_recv(), Err(tokio::sync::broadcast::error::TryRecvError::Empty)));
    assert!(!handle.stats().poisoned);

    // Room again: the engine takes changes without a restart, and they last.
    cap.set(None);
    let task = match handle.apply(big_task(ws, workflow)).await {
        Ok(Reply::Task(task)) => task.sid,
        other => panic!("a change with room on disk failed: {other:?}"),
    };
    handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
    let handle = open(&dir, &clock);
    let (tasks, _, _) = snapshot(&handle, ws).await;
    let mut expected = before.0.clone();
    expected.push(task);
    expected.sort();
    assert_eq!(tasks, expected);
    handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
}

#[tokio::test]
async fn stats_count_the_mailbox_and_return_to_zero() {
    let core = Core::new(account(), Box::new(RandomSids::new()), CoreConfig::default());
    let handle = Handle::start(core, None, Arc::new(ManualClock::new(START)), Options::default());
    let (blocked, release) = hold_actor(&handle).await;
    let queued = tokio::spawn({
        let handle = handle.clone();
        async move { handle.read(|_| ()).await }
    });
    wait_for_mailbox(&handle, 1).await;
    assert_eq!(handle.stats(), Stats { mailbox: 1, unsaved_batches: 0, poisoned: false });
    let _ = release.send(());
    assert!(blocked.await.is_ok_and(|r| r.is_ok()));
    assert!(queued.await.is_ok_and(|r| r.is_ok()));
    assert_eq!(handle.stats().mailbox, 0);
    handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
    assert!(matches!(handle.read(|_| ()).await, Err(handle::Error::Stopped)));
    assert_eq!(handle.stats().mailbox, 0, "a refused send is not counted");
}

#[tokio::test]
async fn a_long_queue_goes_to_the_store_in_passes_of_at_most_pass_commands() {
    let dir = TempDir::new("passes");
    let store = Store::open(&dir.0).unwrap_or_else(|e| panic!("open: {e}"));
    // The store's writer is parked, so every pass the actor submits stays unsaved, and counted, until the
    // test lets it go.
    let release_writer = park_writer(&store);
    let core = Core::new(account(), Box::new(RandomSids::new()), CoreConfig::default());
    let options = Options { pass_commands: 4, ..Options::default() };
    let handle = Handle::start(core, Some(store), Arc::new(ManualClock::new(START)), options);
    // The ten commands sent next are all queued when the actor goes on.
    let (holding, release_actor) = hold_actor(&handle).await;
    let creates: Vec<_> = (0..10)
        .map(|i| {
            let params = WorkspaceParams { friendly_name: Some(format!("ws {i}")), ..Default::default() };
            spawn_apply(&handle, Command::CreateWorkspace { params })
        })
        .collect();
    wait_for_mailbox(&handle, 10).await;
    // Queued behind the ten, so it runs in the pass of the last two: by then the passes of four before
    // it have gone to the store, and nothing of its own pass has.
    let probe = handle.clone();
    let unsaved_at_the_end = tokio::spawn({
        let handle = handle.clone();
        async move { handle.read(move |_| probe.stats().unsaved_batches).await }
    });
    wait_for_mailbox(&handle, 11).await;
    let _ = release_actor.send(());
    assert!(holding.await.is_ok_and(|r| r.is_ok()));
    let unsaved = unsaved_at_the_end.await.unwrap_or_else(|e| panic!("probe: {e}"));
    assert_eq!(unsaved.unwrap_or_else(|e| panic!("probe: {e}")), 2, "passes of 4, 4 and 2 commands");
    let _ = release_writer.send(());
    for create in creates {
        let reply = create.await.unwrap_or_else(|e| panic!("create: {e}"));
        assert!(matches!(reply, Ok(Reply::Workspace(_))), "{reply:?}");
    }
    assert_eq!(handle.stats().unsaved_batches, 0);
    handle.stop().await.unwrap_or_else(|e| panic!("stop: {e}"));
}
