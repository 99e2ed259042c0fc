//! The supervise instruction: a supervisor's leg in the task's conference, its modes and its refusals.

use super::*;

fn supervise(supervisor: &str, mode: Option<&str>) -> UpdateReservationParams {
    UpdateReservationParams {
        instruction: Some("supervise".into()),
        supervisor: Some(supervisor.into()),
        supervisor_mode: mode.map(Into::into),
        ..Default::default()
    }
}

/// The demo workspace with Charles on a call (his offer answered with the conference instruction), his
/// reservation and the conference.
pub(super) fn on_call() -> (Demo, Reservation, Sid) {
    let (mut d, t) = Demo::offered_to_charles(r#"{"call_sid":"CA00000000000000000000000000000abc"}"#);
    let r = d.reservations_of(t.sid).remove(0);
    d.update_reservation(at(3), &r, conference()).unwrap();
    let r = d.reservations_of(t.sid).remove(0);
    let cf = conference_of(&d.fetch_task(t.sid));
    (d, r, cf)
}

fn supervisor_legs(d: &Demo, cf: Sid) -> Vec<Participant> {
    let parts = d.core.participants(cf).unwrap();
    parts.into_iter().filter(|p| p.label.as_deref() == Some("supervisor")).cloned().collect()
}

#[test]
fn monitor_then_whisper_then_barge_is_one_leg_in_three_modes() {
    let (mut d, r, cf) = on_call();
    let ada = d.worker("ada").sid.to_string();
    d.core.take_events();
    let reply = d.update_reservation(at(4), &r, supervise(&ada, None)).unwrap();
    let Reply::Reservation(same) = reply else { panic!("{reply:?}") };
    assert_eq!(same.version, r.version, "supervising does not change the reservation");
    let legs = supervisor_legs(&d, cf);
    assert_eq!(legs.len(), 1);
    let leg = &legs[0];
    assert_eq!(leg.to, "+15005550007", "dialled at the supervisor's contact_uri");
    assert!(leg.muted, "monitor is the default: muted");
    assert!(!leg.coaching && !leg.start_conference_on_enter && !leg.end_conference_on_exit);
    assert_eq!(leg.status, ParticipantStatus::Ringing);
    d.core.advance(at(10));
    assert_eq!(supervisor_legs(&d, cf)[0].status, ParticipantStatus::Connected);

    let worker_leg = d.core.participant(cf, "worker").unwrap().call_sid;
    d.update_reservation(at(11), &r, supervise(&ada, Some("whisper"))).unwrap();
    let legs = supervisor_legs(&d, cf);
    assert_eq!(legs.len(), 1, "the same supervisor is not dialled twice");
    assert!(legs[0].coaching && !legs[0].muted);
    assert_eq!(legs[0].call_sid_to_coach, Some(worker_leg));

    d.update_reservation(at(12), &r, supervise(&ada, Some("BARGE"))).unwrap();
    let legs = supervisor_legs(&d, cf);
    assert!(!legs[0].coaching && !legs[0].muted && legs[0].call_sid_to_coach.is_none());
    assert!(d.types().is_empty(), "no TaskRouter event: the call changed, not the task");

    // An address other than a worker is dialled as given, as a second supervisor.
    d.update_reservation(at(13), &r, supervise("client:lead", Some("monitor"))).unwrap();
    let tos: Vec<String> = supervisor_legs(&d, cf).into_iter().map(|p| p.to).collect();
    assert_eq!(tos.len(), 2);
    assert!(tos.contains(&"client:lead".to_owned()));
}

#[test]
fn supervise_is_refused_without_a_call_and_changes_nothing() {
    let (mut d, t) = Demo::offered_to_charles(r#"{"call_sid":"CA00000000000000000000000000000abc"}"#);
    let pending = d.reservations_of(t.sid).remove(0);
    let ada = d.worker("ada").sid.to_string();
    d.core.take_changes();
    let err = d.update_reservation(at(3), &pending, supervise(&ada, None)).unwrap_err();
    assert!(err.to_string().contains("40146"), "{err}");

    let (mut d, r2, cf2) = on_call();
    let ada = d.worker("ada").sid.to_string();
    d.core.take_changes();
    let refusals = [
        (supervise(&ada, Some("listen")), "SupervisorMode"),
        (UpdateReservationParams { supervisor: None, ..supervise(&ada, None) }, "Supervisor"),
        (supervise("WK000000000000000000000000000000ff", None), "not a worker"),
    ];
    for (params, why) in refusals {
        let err = d.update_reservation(at(4), &r2, params).unwrap_err();
        assert!(err.to_string().contains(why), "{why}: {err}");
    }
    let err = d.set_res(at(4), &r2, supervise(&ada, None)).unwrap_err();
    assert!(err.to_string().contains("task's view"), "{err}");
    assert!(d.core.take_changes().is_empty(), "a refused supervise changes nothing");
    assert!(supervisor_legs(&d, cf2).is_empty());

    // After the call, there is nothing to supervise.
    d.core.apply(at(5), Command::UpdateConference { sid: cf2, status: Some("completed".into()) }).unwrap();
    let err = d.update_reservation(at(6), &r2, supervise(&ada, None)).unwrap_err();
    assert!(err.to_string().contains("40146"), "a wrapping reservation: {err}");
}
