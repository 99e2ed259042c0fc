//! Lifecycle tests of the core, with sequential SIDs and injected time.

use super::*;
use crate::command::*;
use crate::sid::SequentialSids;

const T0: Timestamp = Timestamp(1_700_000_000_000);

fn at(secs: i64) -> Timestamp {
    T0.plus_secs(secs)
}

fn core() -> Core {
    Core::new(Sid::new(Prefix::Account, 1), Box::new(SequentialSids::new()), CoreConfig::default())
}

struct Demo {
    core: Core,
    ws: Sid,
}

impl Demo {
    fn new() -> Demo {
        let mut core = core();
        let ws = core.seed_demo(T0).unwrap();
        core.take_events();
        Demo { core, ws }
    }

    fn worker(&self, name: &str) -> Worker {
        self.core.spaces[&self.ws].workers.values().find(|w| w.friendly_name == name).unwrap().clone()
    }

    fn activity(&self, name: &str) -> Sid {
        self.core.spaces[&self.ws].activities.values().find(|a| a.friendly_name == name).unwrap().sid
    }

    fn set_activity(&mut self, now: Timestamp, name: &str, activity: &str) {
        let w = self.worker(name).sid;
        let a = self.activity(activity);
        self.core
            .apply(
                now,
                Command::UpdateWorker {
                    workspace_sid: self.ws,
                    sid: w,
                    params: WorkerParams { activity_sid: Some(a), ..Default::default() },
                    if_match: None,
                },
            )
            .unwrap();
    }

    fn create_task(&mut self, now: Timestamp, attrs: &str) -> Task {
        match self
            .core
            .apply(
                now,
                Command::CreateTask {
                    workspace_sid: self.ws,
                    params: CreateTaskParams { attributes: Some(attrs.into()), ..Default::default() },
                },
            )
            .unwrap()
        {
            Reply::Task(t) => t,
            other => panic!("{other:?}"),
        }
    }

    fn task(&self, t: Sid) -> Task {
        self.core.task(self.ws, t).unwrap().clone()
    }

    fn reservations(&self, t: Sid) -> Vec<Reservation> {
        self.core.task_reservations(self.ws, t, None, None).unwrap().into_iter().cloned().collect()
    }

    fn update_reservation(
        &mut self,
        now: Timestamp,
        r: &Reservation,
        p: UpdateReservationParams,
    ) -> Result<Reply, Error> {
        self.core.apply(
            now,
            Command::UpdateReservation {
                workspace_sid: self.ws,
                task_sid: Some(r.task_sid),
                worker_sid: None,
                sid: r.sid,
                params: Box::new(p),
                if_match: None,
            },
        )
    }

    fn types(&mut self) -> Vec<&'static str> {
        self.core.take_events().iter().map(|e| e.event_type.as_str()).collect()
    }
}

fn status(s: &str) -> UpdateReservationParams {
    UpdateReservationParams { reservation_status: Some(s.into()), ..Default::default() }
}

#[test]
fn seed_creates_the_demo_workspace() {
    let d = Demo::new();
    let ws = d.core.workspace(d.ws).unwrap();
    assert_eq!(ws.friendly_name, "writers");
    assert_eq!(ws.default_activity_name, "Offline");
    assert_eq!(ws.timeout_activity_name, "Unavailable");
    let charles = d.worker("charles");
    assert_eq!(charles.activity_name, "Offline");
    assert!(!charles.available);
    let queues = d.core.task_queues(d.ws, &Default::default()).unwrap();
    assert_eq!(queues.iter().map(|q| q.friendly_name.as_str()).collect::<Vec<_>>(), ["support", "sales"]);
    let support = queues[0].sid;
    let members =
        d.core.workers(d.ws, &WorkerFilter { task_queue_sid: Some(support), ..Default::default() }).unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(d.core.workflows(d.ws, None).unwrap()[0].task_reservation_timeout, 10);
}

#[test]
fn whole_call_flow_conference_wrapping_completed() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    d.core.take_events();
    let t =
        d.create_task(at(2), r#"{"call_sid":"CA00000000000000000000000000000abc","from":"+15551234567"}"#);
    assert_eq!(t.assignment_status, TaskStatus::Reserved, "reply shows the task after routing");
    assert_eq!(d.types(), ["task.created", "workflow.entered", "task-queue.entered", "reservation.created"]);
    let r = d.reservations(t.sid).remove(0);
    assert_eq!(r.worker_name, "charles");
    assert_eq!(r.reservation_status, ReservationStatus::Pending);

    let post = d.activity("Unavailable");
    let reply = d
        .update_reservation(
            at(3),
            &r,
            UpdateReservationParams {
                instruction: Some("conference".into()),
                from: Some("+15005550000".into()),
                post_work_activity_sid: Some(post),
                ..Default::default()
            },
        )
        .unwrap();
    let Reply::Reservation(r2) = reply else { panic!() };
    assert_eq!(r2.reservation_status, ReservationStatus::Accepted);
    let task = d.task(t.sid);
    assert_eq!(task.assignment_status, TaskStatus::Assigned);
    let cf_sid = task.attributes_value["conference"]["sid"].as_str().unwrap().to_owned();
    let cf = Sid::parse(&cf_sid).unwrap();
    let conf = d.core.conference(cf).unwrap();
    assert_eq!(conf.friendly_name, t.sid.to_string());
    assert_eq!(conf.status, ConferenceStatus::InProgress);
    let worker_leg =
        task.attributes_value["conference"]["participants"]["worker"].as_str().unwrap().to_owned();
    assert_eq!(
        task.attributes_value["conference"]["participants"]["customer"],
        "CA00000000000000000000000000000abc"
    );
    let parts = d.core.participants(cf).unwrap();
    assert_eq!(parts.len(), 2);
    let leg = d.core.participant(cf, &worker_leg).unwrap();
    assert_eq!(leg.status, ParticipantStatus::Ringing);
    assert_eq!(leg.to, "+15005550006", "dialled at the worker's contact_uri");
    assert_eq!(d.types(), ["task.updated", "reservation.accepted"]);

    d.core.advance(at(5));
    assert_eq!(d.core.participant(cf, &worker_leg).unwrap().status, ParticipantStatus::Connected);

    d.core.apply(at(30), Command::UpdateConference { sid: cf, status: Some("completed".into()) }).unwrap();
    let conf = d.core.conference(cf).unwrap();
    assert_eq!(conf.status, ConferenceStatus::Completed);
    assert_eq!(conf.reason_conference_ended.as_deref(), Some("conference-ended-via-api"));
    assert!(d.core.participants(cf).unwrap().is_empty());
    assert_eq!(d.task(t.sid).assignment_status, TaskStatus::Wrapping);
    assert_eq!(d.reservations(t.sid)[0].reservation_status, ReservationStatus::Wrapping);
    assert_eq!(d.worker("charles").activity_name, "Unavailable");
    assert_eq!(d.types(), ["task.wrapup", "reservation.wrapup", "worker.activity.update"]);

    let r = d.reservations(t.sid).remove(0);
    d.update_reservation(at(40), &r, status("completed")).unwrap();
    assert_eq!(d.task(t.sid).assignment_status, TaskStatus::Completed);
    assert_eq!(d.reservations(t.sid)[0].reservation_status, ReservationStatus::Completed);
    assert_eq!(d.types(), ["task.completed", "reservation.completed"]);

    // Purged five minutes after completion.
    d.core.advance(at(40 + 299));
    assert!(d.core.task(d.ws, t.sid).is_ok());
    d.core.advance(at(40 + 300));
    assert!(matches!(d.core.task(d.ws, t.sid), Err(Error::NotFound { .. })));
}

#[test]
fn conference_without_call_sid_is_refused_and_changes_nothing() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    let t = d.create_task(at(2), r#"{"x":1}"#);
    let r = d.reservations(t.sid).remove(0);
    d.core.take_events();
    d.core.take_changes();
    let err = d
        .update_reservation(
            at(3),
            &r,
            UpdateReservationParams { instruction: Some("conference".into()), ..Default::default() },
        )
        .unwrap_err();
    assert!(err.to_string().contains("40142"), "{err}");
    assert!(d.core.take_events().is_empty());
    assert!(d.core.take_changes().is_empty());
    assert_eq!(d.reservations(t.sid)[0].reservation_status, ReservationStatus::Pending);
}

#[test]
fn reject_with_activity_reoffers_to_the_next_worker() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    d.set_activity(at(2), "ada", "Available");
    let t = d.create_task(at(3), "{}");
    let r = d.reservations(t.sid).remove(0);
    assert_eq!(r.worker_name, "charles", "longest idle first");
    d.core.take_events();
    let offline = d.activity("Offline");
    d.update_reservation(
        at(4),
        &r,
        UpdateReservationParams {
            reservation_status: Some("rejected".into()),
            worker_activity_sid: Some(offline),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(d.worker("charles").activity_name, "Offline");
    let rs = d.reservations(t.sid);
    assert_eq!(rs[0].reservation_status, ReservationStatus::Rejected);
    assert_eq!(rs[1].worker_name, "ada");
    assert_eq!(rs[1].reservation_status, ReservationStatus::Pending);
    assert_eq!(d.task(t.sid).assignment_status, TaskStatus::Reserved);
    assert_eq!(d.types(), ["reservation.rejected", "worker.activity.update", "reservation.created"]);
    // Rejecting again is illegal; accepting a rejected reservation too.
    let err = d.update_reservation(at(5), &rs[0], status("rejected")).unwrap_err();
    assert_eq!(err.status(), 400);
}

#[test]
fn reservation_timeout_moves_worker_to_timeout_activity() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    let t = d.create_task(at(2), "{}");
    assert_eq!(d.core.next_deadline(), Some(at(12)));
    d.core.take_events();
    d.core.advance(at(11));
    assert!(d.core.take_events().is_empty());
    d.core.advance(at(12));
    assert_eq!(d.reservations(t.sid)[0].reservation_status, ReservationStatus::Timeout);
    assert_eq!(d.worker("charles").activity_name, "Unavailable");
    assert_eq!(d.task(t.sid).assignment_status, TaskStatus::Pending);
    let evs = d.core.take_events();
    let types: Vec<_> = evs.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["reservation.timeout", "worker.activity.update"]);
    assert_eq!(evs[1].field("WorkerPreviousActivitySid"), Some(d.activity("Available").to_string().as_str()));
    assert_eq!(evs[1].field("WorkerTimeInPreviousActivityMs"), Some("11000"));
    // Accepting a timed-out reservation: gone.
    let r = d.reservations(t.sid).remove(0);
    assert_eq!(d.update_reservation(at(13), &r, status("accepted")).unwrap_err().status(), 410);
    // The next available worker gets it.
    d.set_activity(at(20), "ada", "Available");
    assert_eq!(d.reservations(t.sid)[1].worker_name, "ada");
}

#[test]
fn cancel_and_illegal_transitions_use_twilio_wording() {
    let mut d = Demo::new();
    let t = d.create_task(at(1), "{}");
    let cancel = |reason: &str| UpdateTaskParams {
        assignment_status: Some("canceled".into()),
        reason: Some(reason.into()),
        ..Default::default()
    };
    let wrap = UpdateTaskParams { assignment_status: Some("wrapping".into()), ..Default::default() };
    let err = d
        .core
        .apply(at(2), Command::UpdateTask { workspace_sid: d.ws, sid: t.sid, params: wrap, if_match: None })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Cannot wrap up a task {} in workspace {} for account {} because it's not currently assigned",
            t.sid,
            d.ws,
            d.core.account_sid()
        )
    );
    d.core
        .apply(
            at(3),
            Command::UpdateTask { workspace_sid: d.ws, sid: t.sid, params: cancel("nope"), if_match: None },
        )
        .unwrap();
    let task = d.task(t.sid);
    assert_eq!(task.assignment_status, TaskStatus::Canceled);
    assert_eq!(task.reason.as_deref(), Some("nope"));
    let err = d
        .core
        .apply(
            at(4),
            Command::UpdateTask { workspace_sid: d.ws, sid: t.sid, params: cancel("x"), if_match: None },
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "Cannot cancel task {} in workspace {} for account {} because it is not pending or reserved.",
            t.sid,
            d.ws,
            d.core.account_sid()
        )
    );
}

#[test]
fn cancel_of_reserved_task_cancels_the_reservation() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    let t = d.create_task(at(2), "{}");
    d.core.take_events();
    d.core
        .apply(
            at(3),
            Command::UpdateTask {
                workspace_sid: d.ws,
                sid: t.sid,
                params: UpdateTaskParams { assignment_status: Some("canceled".into()), ..Default::default() },
                if_match: None,
            },
        )
        .unwrap();
    assert_eq!(d.reservations(t.sid)[0].reservation_status, ReservationStatus::Canceled);
    assert_eq!(d.types(), ["reservation.canceled", "task.canceled"]);
    // No timer left for the canceled reservation: only purge.
    d.core.advance(at(20));
    assert!(d.core.take_events().is_empty());
}

#[test]
fn task_ttl_cancels_with_twilio_reason() {
    let mut d = Demo::new();
    let t = match d
        .core
        .apply(
            at(0),
            Command::CreateTask {
                workspace_sid: d.ws,
                params: CreateTaskParams { timeout: Some(60), ..Default::default() },
            },
        )
        .unwrap()
    {
        Reply::Task(t) => t,
        _ => panic!(),
    };
    d.core.take_events();
    d.core.advance(at(59));
    assert_eq!(d.task(t.sid).assignment_status, TaskStatus::Pending);
    d.core.advance(at(60));
    let task = d.task(t.sid);
    assert_eq!(task.assignment_status, TaskStatus::Canceled);
    assert_eq!(task.reason.as_deref(), Some("Task TTL Exceeded"));
    let evs = d.core.take_events();
    assert_eq!(evs[0].field("TaskCanceledReason"), Some("Task TTL Exceeded"));
}

#[test]
fn sales_filter_routes_to_the_sales_queue() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    d.set_activity(at(1), "linus", "Available");
    let t = d.create_task(at(2), r#"{"selected_product":"sales"}"#);
    assert_eq!(t.task_queue_friendly_name.as_deref(), Some("sales"));
    assert_eq!(d.reservations(t.sid)[0].worker_name, "linus");
}

#[test]
fn if_match_mismatch_is_412_and_changes_nothing() {
    let mut d = Demo::new();
    let w = d.worker("charles");
    let err = d
        .core
        .apply(
            at(1),
            Command::UpdateWorker {
                workspace_sid: d.ws,
                sid: w.sid,
                params: WorkerParams { attributes: Some("{}".into()), ..Default::default() },
                if_match: Some("\"99\"".into()),
            },
        )
        .unwrap_err();
    assert_eq!(err.status(), 412);
    assert_eq!(d.worker("charles").attributes, w.attributes);
    d.core
        .apply(
            at(1),
            Command::UpdateWorker {
                workspace_sid: d.ws,
                sid: w.sid,
                params: WorkerParams { attributes: Some("{}".into()), ..Default::default() },
                if_match: Some(format!("\"{}\"", w.version)),
            },
        )
        .unwrap();
    assert_eq!(d.worker("charles").version, w.version + 1);
}

#[test]
fn bad_input_is_typed_and_named() {
    let mut d = Demo::new();
    let attr_err = d
        .core
        .apply(
            at(1),
            Command::CreateTask {
                workspace_sid: d.ws,
                params: CreateTaskParams { attributes: Some("[1]".into()), ..Default::default() },
            },
        )
        .unwrap_err();
    assert!(matches!(attr_err, Error::InvalidParameter { ref param, .. } if param == "Attributes"));
    let long = format!(r#"{{"a":"{}"}}"#, "x".repeat(4100));
    assert!(d
        .core
        .apply(
            at(1),
            Command::CreateTask {
                workspace_sid: d.ws,
                params: CreateTaskParams { attributes: Some(long), ..Default::default() }
            }
        )
        .is_err());
    let dup = d
        .core
        .apply(
            at(1),
            Command::CreateWorker {
                workspace_sid: d.ws,
                params: WorkerParams { friendly_name: Some("CHARLES".into()), ..Default::default() },
            },
        )
        .unwrap_err();
    assert_eq!(dup.status(), 409);
    let q = d
        .core
        .apply(
            at(1),
            Command::CreateTaskQueue {
                workspace_sid: d.ws,
                params: TaskQueueParams {
                    friendly_name: Some("q".into()),
                    target_workers: Some("skills HAS".into()),
                    ..Default::default()
                },
            },
        )
        .unwrap_err();
    assert!(q.to_string().contains("TargetWorkers"), "{q}");
    let available = d.activity("Available");
    let del = d.core.apply(at(1), Command::DeleteActivity { workspace_sid: d.ws, sid: available });
    assert!(del.is_ok(), "Available is not in use yet");
    let offline = d.activity("Offline");
    let del = d.core.apply(at(1), Command::DeleteActivity { workspace_sid: d.ws, sid: offline }).unwrap_err();
    assert!(del.to_string().contains("in use"), "{del}");
    let missing = d.core.task(d.ws, Sid::new(Prefix::Task, 999)).unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "The requested resource /Workspaces/{}/Tasks/WT000000000000000000000000000003e7 was not found",
            d.ws
        )
    );
}

#[test]
fn restore_round_trip_equals_state_and_timers() {
    let mut d = Demo::new();
    d.set_activity(at(1), "charles", "Available");
    let t1 = d.create_task(at(2), r#"{"call_sid":"CA00000000000000000000000000000abc"}"#);
    let _t2 = d.create_task(at(3), "{}");
    let r = d.reservations(t1.sid).remove(0);
    d.update_reservation(
        at(4),
        &r,
        UpdateReservationParams { instruction: Some("conference".into()), ..Default::default() },
    )
    .unwrap();
    let mut store: BTreeMap<(String, String), String> = BTreeMap::new();
    for c in d.core.take_changes() {
        match c.value {
            Some(v) => store.insert((c.kind.to_string(), c.key), v),
            None => store.remove(&(c.kind.to_string(), c.key)),
        };
    }
    let records = store.into_iter().map(|((k, key), v)| (k, key, v));
    let restored = Core::restore(
        d.core.account_sid(),
        Box::new(SequentialSids::new()),
        CoreConfig::default(),
        records,
        d.core.last_event_seq(),
    )
    .unwrap();
    let snapshot = |c: &Core| -> String {
        let ws = c.workspace(d.ws).unwrap();
        let mut parts = vec![serde_json::to_string(ws).unwrap()];
        for t in c.tasks(d.ws, &Default::default()).unwrap() {
            parts.push(serde_json::to_string(t).unwrap());
            for r in c.task_reservations(d.ws, t.sid, None, None).unwrap() {
                parts.push(serde_json::to_string(r).unwrap());
            }
        }
        for w in c.workers(d.ws, &Default::default()).unwrap() {
            parts.push(serde_json::to_string(w).unwrap());
        }
        for cf in c.conferences(None, None) {
            parts.push(serde_json::to_string(cf).unwrap());
            for p in c.participants(cf.sid).unwrap() {
                parts.push(serde_json::to_string(p).unwrap());
            }
        }
        parts.join("\n")
    };
    assert_eq!(snapshot(&restored), snapshot(&d.core));
    assert_eq!(restored.timer_count(), d.core.timer_count());
    assert_eq!(restored.next_deadline(), d.core.next_deadline());
    let timers = |c: &Core| c.out.timers.by_deadline.iter().copied().collect::<Vec<_>>();
    assert_eq!(timers(&restored), timers(&d.core));
    // Indexes came back: the restored engine routes the waiting task when a worker frees up.
    let mut restored = restored;
    let ada = d.worker("ada").sid;
    let avail = d.activity("Available");
    restored
        .apply(
            at(5),
            Command::UpdateWorker {
                workspace_sid: d.ws,
                sid: ada,
                params: WorkerParams { activity_sid: Some(avail), ..Default::default() },
                if_match: None,
            },
        )
        .unwrap();
    let pending = restored.worker_reservations(d.ws, ada, Some(ReservationStatus::Pending)).unwrap();
    assert_eq!(pending.len(), 1);
}
