//! Task transfers (`core::transfers`): warm and cold, to a worker and to a queue, completed, failed,
//! canceled and refused.

use super::supervise::on_call;
use super::*;

fn transfer(
    d: &mut Demo,
    now: Timestamp,
    r: &Reservation,
    to: Sid,
    mode: Option<&str>,
) -> Result<Reply, Error> {
    let params = TransferParams {
        reservation_sid: r.sid,
        task_sid: r.task_sid,
        to: to.to_string(),
        mode: mode.map(Into::into),
        priority: None,
        attributes: None,
    };
    let command =
        Command::CreateTransfer { workspace_sid: d.ws, worker_sid: r.worker_sid, params: Box::new(params) };
    d.core.apply(now, command)
}

fn cancel(d: &mut Demo, now: Timestamp, worker: Sid, task: Sid, tt: Sid) -> Result<Reply, Error> {
    d.core.apply(
        now,
        Command::CancelTransfer { workspace_sid: d.ws, worker_sid: worker, task_sid: task, sid: tt },
    )
}

/// The transfer a reply's reservation holds.
fn made(reply: Reply) -> Transfer {
    let Reply::Reservation(r) = reply else { panic!("{reply:?}") };
    *r.outgoing_transfer.expect("the initiating reservation holds its transfer")
}

fn reservation(d: &Demo, r: Sid) -> Reservation {
    d.core.reservation(d.ws, r).unwrap().clone()
}

/// The task's newest reservation.
fn newest(d: &Demo, task: Sid) -> Reservation {
    d.reservations_of(task).pop().unwrap()
}

fn queue(d: &Demo, name: &str) -> Sid {
    d.core
        .task_queues(d.ws, &Default::default())
        .unwrap()
        .iter()
        .find(|q| q.friendly_name == name)
        .unwrap()
        .sid
}

/// Charles on a call (see `on_call`) and Ada available from `at(4)`: the reservation, the conference and Ada.
fn on_call_ada_free() -> (Demo, Reservation, Sid, Sid) {
    let (mut d, r, cf) = on_call();
    d.set_activity(at(4), "ada", "Available");
    let ada = d.worker("ada").sid;
    (d, r, cf, ada)
}

#[test]
fn a_warm_transfer_to_a_worker_completes_when_it_accepts_and_joins_the_call() {
    let (mut d, r, cf, ada) = on_call_ada_free();
    let task = r.task_sid;
    d.core.take_events();

    let tr = made(transfer(&mut d, at(5), &r, ada, None).unwrap());
    assert_eq!(
        (tr.transfer_mode, tr.transfer_status, tr.transfer_type()),
        (TransferMode::Warm, TransferStatus::Initiated, "WORKER")
    );
    assert_eq!(tr.sid.prefix(), Prefix::Transfer);
    assert_eq!(d.types(), ["task.updated", "task.transfer-initiated", "reservation.created"]);
    let offer = newest(&d, task);
    assert_eq!((offer.worker_sid, offer.transferred_from), (ada, Some(r.sid)));
    let t = d.fetch_task(task);
    assert_eq!((t.assignment_status, t.routing_target), (TaskStatus::Reserved, Some(ada)));
    assert_eq!(
        reservation(&d, r.sid).reservation_status,
        ReservationStatus::Accepted,
        "warm: still on the call"
    );

    // Ada answers with the conference instruction: she joins the caller's conference.
    d.update_reservation(at(6), &offer, conference()).unwrap();
    assert_eq!(
        d.types(),
        ["task.updated", "reservation.accepted", "task.transfer-completed", "reservation.wrapup"]
    );
    let parts = d.core.participants(cf).unwrap();
    assert_eq!(parts.len(), 3, "the caller, Charles (until he hangs up) and Ada");
    let worker_leg = d.fetch_task(task).attributes_value()["conference"]["participants"]["worker"].clone();
    assert_eq!(d.core.participant(cf, worker_leg.as_str().unwrap()).unwrap().to, "+15005550007");
    assert_eq!(d.core.conference(cf).unwrap().reservation_sid, Some(offer.sid));
    assert_eq!(reservation(&d, r.sid).outgoing_transfer.unwrap().transfer_status, TransferStatus::Complete);
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Wrapping);
    assert_eq!(d.fetch_task(task).assignment_status, TaskStatus::Assigned);

    // Ada completes the task; Charles's part ends when he completes his own reservation.
    d.update_reservation(at(7), &offer, status("completed")).unwrap();
    assert_eq!(d.fetch_task(task).assignment_status, TaskStatus::Completed);
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Wrapping);
    d.update_reservation(at(8), &r, status("completed")).unwrap();
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Completed);
    assert_eq!(d.types(), ["task.completed", "reservation.completed", "reservation.completed"]);
}

#[test]
fn a_cold_transfer_to_a_queue_waits_for_its_workers_and_tries_the_next_after_a_reject() {
    let (mut d, r, cf) = on_call();
    let task = r.task_sid;
    let sales = queue(&d, "sales");
    let charles_leg = d.core.participant(cf, "worker").unwrap().call_sid;
    d.core.take_events();

    let tr = made(transfer(&mut d, at(5), &r, sales, Some("cold")).unwrap());
    assert_eq!((tr.transfer_mode, tr.transfer_type()), (TransferMode::Cold, "QUEUE"));
    assert_eq!(d.types(), ["task.updated", "task.transfer-initiated", "reservation.wrapup"]);
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Wrapping, "cold: at once");
    assert!(d.core.participant(cf, &charles_leg.to_string()).is_err(), "Charles left the call");
    assert_eq!(d.core.participants(cf).unwrap().len(), 1, "the caller waits in the conference");
    let t = d.fetch_task(task);
    assert_eq!(
        (t.assignment_status, t.task_queue_sid),
        (TaskStatus::Pending, Some(sales)),
        "nobody in sales yet"
    );

    // Linus (sales) comes online: offered, rejects (an attempt failed), offered again, accepts.
    d.set_activity(at(6), "linus", "Available");
    let offer = newest(&d, task);
    assert_eq!(offer.transferred_from, Some(r.sid));
    d.core.take_events();
    d.update_reservation(at(7), &offer, status("rejected")).unwrap();
    let types = d.types();
    assert!(types.contains(&"task.transfer-attempt-failed"), "{types:?}");
    assert!(!types.contains(&"task.transfer-failed"), "a queue transfer goes on: {types:?}");
    let again = newest(&d, task);
    assert_ne!(again.sid, offer.sid, "offered again: Linus is still available");
    d.update_reservation(at(8), &again, conference()).unwrap();
    assert!(d.types().contains(&"task.transfer-completed"));
    assert_eq!(d.fetch_task(task).assignment_status, TaskStatus::Assigned);
    assert_eq!(d.core.participants(cf).unwrap().len(), 2, "the caller and Linus");
    // Completing the task leaves Charles's wrap-up to him.
    d.update_reservation(at(9), &again, status("completed")).unwrap();
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Wrapping);
}

#[test]
fn a_failed_warm_transfer_gives_the_task_back_and_a_failed_cold_one_goes_back_to_the_workflow() {
    // Warm, rejected: back to Charles, assigned, with his call; he then ends it as any other.
    let (mut d, r, _, ada) = on_call_ada_free();
    let task = r.task_sid;
    let before = d.fetch_task(task);
    transfer(&mut d, at(5), &r, ada, Some("WARM")).unwrap();
    let offer = newest(&d, task);
    d.core.take_events();
    d.update_reservation(at(6), &offer, status("rejected")).unwrap();
    let types = d.types();
    assert!(
        types.ends_with(&["task.transfer-attempt-failed", "task.transfer-failed", "task.updated"]),
        "{types:?}"
    );
    let tr = reservation(&d, r.sid).outgoing_transfer.unwrap();
    assert_eq!(tr.transfer_status, TransferStatus::Failed);
    assert_eq!(tr.transfer_failed_reason.as_deref(), Some("the worker rejected it"));
    let t = d.fetch_task(task);
    assert_eq!((t.assignment_status, t.routing_target), (TaskStatus::Assigned, before.routing_target));
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Accepted);
    d.update_reservation(at(7), &r, status("completed")).unwrap();
    assert_eq!(d.fetch_task(task).assignment_status, TaskStatus::Completed);
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Completed);

    // Cold, not answered: Charles has left, so the task goes through its workflow again (to Grace).
    let (mut d, r, _, ada) = on_call_ada_free();
    let task = r.task_sid;
    transfer(&mut d, at(5), &r, ada, Some("cold")).unwrap();
    d.set_activity(at(6), "grace", "Available");
    d.core.take_events();
    d.core.advance(at(5 + 10));
    let types = d.types();
    assert!(types.contains(&"task.transfer-failed"), "{types:?}");
    let next = newest(&d, task);
    assert_eq!(next.worker_sid, d.worker("grace").sid, "Ada timed out; Grace is the support queue's next");
    assert_eq!(next.transferred_from, None, "a workflow offer, not a transfer's");
    assert_eq!(d.fetch_task(task).routing_target, None);
}

#[test]
fn a_transfer_is_canceled_by_its_worker_and_fails_when_the_task_is_canceled() {
    let (mut d, r, _) = on_call();
    let task = r.task_sid;
    let sales = queue(&d, "sales");
    let tr = made(transfer(&mut d, at(5), &r, sales, None).unwrap());
    // Nobody in sales: the worker takes the task back.
    let ada = d.worker("ada").sid;
    let err = cancel(&mut d, at(6), ada, task, tr.sid).unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "another worker's transfer: {err}");
    d.core.take_events();
    let back = made(cancel(&mut d, at(6), r.worker_sid, task, tr.sid).unwrap());
    assert_eq!(back.transfer_status, TransferStatus::Canceled);
    assert_eq!(d.types(), ["task.transfer-canceled", "task.updated"]);
    let t = d.fetch_task(task);
    assert_eq!((t.assignment_status, t.task_queue_sid), (TaskStatus::Assigned, tr.initiating_queue_sid));
    let err = cancel(&mut d, at(7), r.worker_sid, task, tr.sid).unwrap_err();
    assert!(err.to_string().contains("canceled"), "{err}");

    // A second transfer, then the task is canceled while it waits: the transfer fails, Charles wraps up.
    transfer(&mut d, at(8), &r, sales, None).unwrap();
    let update = UpdateTaskParams { assignment_status: Some("canceled".into()), ..Default::default() };
    d.core
        .apply(at(9), Command::UpdateTask { workspace_sid: d.ws, sid: task, params: update, if_match: None })
        .unwrap();
    let latest = reservation(&d, r.sid).outgoing_transfer.unwrap();
    assert_eq!(latest.transfer_status, TransferStatus::Failed);
    assert_eq!(latest.transfer_failed_reason.as_deref(), Some("the task was canceled"));
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Wrapping);
}

#[test]
fn transfers_that_cannot_be_made_are_refused_and_change_nothing() {
    let (mut d, pending_task) =
        Demo::offered_to_charles(r#"{"call_sid":"CA00000000000000000000000000000def"}"#);
    let pending = d.reservations_of(pending_task.sid).remove(0);
    let ada = d.worker("ada").sid;
    let err = transfer(&mut d, at(3), &pending, ada, None).unwrap_err();
    assert!(err.to_string().contains("pending"), "{err}");

    let (mut d, r, _) = on_call();
    let (ada, linus) = (d.worker("ada").sid, d.worker("linus").sid);
    d.set_activity(at(4), "linus", "Available");
    d.core.take_changes();
    let refusals: [(Sid, Option<&str>, &str); 4] = [
        (ada, None, "cannot take the task now"),
        (r.worker_sid, None, "itself"),
        (Sid::new(Prefix::Worker, 999), None, "is not a worker"),
        (linus, Some("tepid"), "WARM or COLD"),
    ];
    for (to, mode, why) in refusals {
        let err = transfer(&mut d, at(5), &r, to, mode).unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    assert!(d.core.take_changes().is_empty(), "a refused transfer changes nothing");

    // One at a time, and the worker cannot end its reservation while its warm transfer is under way.
    transfer(&mut d, at(6), &r, linus, None).unwrap();
    let support = queue(&d, "support");
    let err = transfer(&mut d, at(7), &r, support, None).unwrap_err();
    assert!(err.to_string().contains("in progress"), "{err}");
    for end in ["wrapping", "completed"] {
        let err = d.update_reservation(at(7), &r, status(end)).unwrap_err();
        assert!(err.to_string().contains("cancel the transfer first"), "{end}: {err}");
    }
}

#[test]
fn a_transfer_under_way_survives_a_restart_and_completes_after_it() {
    let (mut d, r, _, ada) = on_call_ada_free();
    let tr = made(transfer(&mut d, at(5), &r, ada, None).unwrap());
    let records: Vec<(String, String, Vec<u8>)> = d
        .core
        .take_changes()
        .into_iter()
        .filter_map(|c| Some((c.kind.to_string(), c.key, c.value?.encode())))
        .collect();
    let config = CoreConfig::default();
    let account = d.core.account_sid();
    let core =
        Core::restore(account, Box::new(SequentialSids::new()), config, records, d.core.last_event_seq());
    let mut d = Demo { core: core.unwrap(), ws: d.ws };
    assert_eq!(reservation(&d, r.sid).outgoing_transfer.as_deref(), Some(&tr), "the transfer came back");
    let offer = newest(&d, r.task_sid);
    assert_eq!((offer.worker_sid, offer.transferred_from), (ada, Some(r.sid)));
    d.update_reservation(at(6), &offer, status("accepted")).unwrap();
    assert!(d.types().contains(&"task.transfer-completed"));
    assert_eq!(reservation(&d, r.sid).reservation_status, ReservationStatus::Wrapping);
}
