//! Simulated telephony (DESIGN §3, reference §7 "Conference instruction", §12): conferences and participant
//! legs with no phone network behind them.
//!
//! The conference instruction creates a conference named by the task SID with the customer's leg (task
//! attribute `call_sid`, already connected) and a worker leg (a new call SID, ringing until the answer timer
//! fires), writes `conference.sid` and `conference.participants` into the task attributes, and accepts the
//! reservation. Ending the conference moves task and reservation to wrapping and the worker to the
//! `PostWorkActivitySid` when one was given.
//!
//! The supervise instruction (task view, an accepted reservation) dials a supervisor into the task's
//! conference: muted to monitor, coaching the worker's leg to whisper, unmuted to barge. A second supervise
//! for the same supervisor changes the mode of its leg rather than dialling it again.

use super::{check_if_match, space_mut, Core, Effects, Key, Reply, Tel, Timer};
use crate::command::*;
use crate::error::Error;
use crate::model::*;
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

impl Core {
    fn conference_path(&self, cf: impl std::fmt::Display) -> String {
        format!("/2010-04-01/Accounts/{}/Conferences/{cf}.json", self.out.account_sid)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn update_reservation(
        &mut self,
        now: Timestamp,
        ws: Sid,
        task: Option<Sid>,
        worker: Option<Sid>,
        r: Sid,
        p: UpdateReservationParams,
        if_match: Option<String>,
    ) -> Result<Reply, Error> {
        let Core { spaces, out, .. } = self;
        let sp = space_mut(spaces, ws)?;
        let path = match (task, worker) {
            (_, Some(w)) => sp.path(format!("Workers/{w}/Reservations/{r}")),
            (Some(t), _) => sp.path(format!("Tasks/{t}/Reservations/{r}")),
            _ => sp.path(format!("Reservations/{r}")),
        };
        let res = sp.reservations.get(&r).ok_or_else(|| Error::not_found(path.clone()))?;
        if task.is_some_and(|t| t != res.task_sid) || worker.is_some_and(|w| w != res.worker_sid) {
            return Err(Error::not_found(path));
        }
        check_if_match(&if_match, res.version)?;
        let instruction = p.instruction.as_deref().map(str::to_ascii_lowercase);
        match instruction.as_deref() {
            Some("conference") => self.conference_instruction(now, ws, r, &p)?,
            Some("supervise") if task.is_none() => {
                return Err(Error::invalid(
                    "Instruction",
                    "supervise is an instruction of the task's view of a reservation \
                     (Tasks/{TaskSid}/Reservations/{Sid}), not the worker's",
                ));
            }
            Some("supervise") => self.supervise_instruction(now, ws, r, &p)?,
            _ => sp.update_reservation(out, now, r, &p)?,
        }
        let res = self
            .spaces
            .get(&ws)
            .and_then(|s| s.reservations.get(&r))
            .cloned()
            .ok_or_else(|| Error::not_found(r.to_string()))?;
        Ok(Reply::Reservation(res))
    }

    fn conference_instruction(
        &mut self,
        now: Timestamp,
        ws: Sid,
        r: Sid,
        p: &UpdateReservationParams,
    ) -> Result<(), Error> {
        let Core { spaces, tel, out, .. } = self;
        let sp = space_mut(spaces, ws)?;
        sp.check_pending(r, "conference")?;
        let res = sp.reservations.get(&r).cloned().ok_or_else(|| Error::not_found(r.to_string()))?;
        let task =
            sp.tasks.get(&res.task_sid).cloned().ok_or_else(|| Error::not_found(res.task_sid.to_string()))?;
        let worker = sp.workers.get(&res.worker_sid).cloned();
        let attributes = task.attributes_value();
        let call_text = attributes.get("call_sid").and_then(|v| v.as_str()).ok_or_else(|| {
            Error::illegal(format!(
                "Cannot issue the conference instruction for task {}: its attributes have no \"call_sid\" of the \
                 customer's call (Twilio debugger error 40142)",
                task.sid
            ))
        })?;
        let customer = Sid::parse_as(call_text, Prefix::Call).map_err(|e| {
            Error::illegal(format!(
                "Task {} attribute \"call_sid\" is not a call SID: {e} (Twilio error 40142)",
                task.sid
            ))
        })?;
        let contact = worker.as_ref().and_then(Worker::contact_uri).map(str::to_owned);
        let to = p.to.clone().filter(|t| !t.is_empty()).or(contact).ok_or_else(|| {
            Error::invalid("To", "is required: the worker has no \"contact_uri\" attribute to dial")
        })?;
        if let Some(a) = p.post_work_activity_sid {
            sp.activity(a, "PostWorkActivitySid")?;
        }
        let account = out.account_sid;
        let cf = match tel.calls.get(&customer).copied() {
            // A transferred task: the new worker joins the conference its caller is in (Twilio's transfer
            // conference instruction uses the task's conference, error 40149 without one).
            Some(cf) => {
                let live = |c: &&mut Conference| {
                    c.task_sid == Some(task.sid) && c.status != ConferenceStatus::Completed
                };
                let joined =
                    tel.conferences.get_mut(&cf).filter(live).filter(|_| res.transferred_from.is_some());
                let Some(c) = joined else {
                    return Err(Error::illegal(format!("Call {customer} is already in a conference")));
                };
                c.reservation_sid = Some(r);
                c.post_work_activity_sid = p.post_work_activity_sid.or(c.post_work_activity_sid);
                c.date_updated = now;
                cf
            }
            // Validated; build the conference, with the customer's leg already connected.
            None => {
                let cf = out.sid(Prefix::Conference);
                tel.conferences.insert(
                    cf,
                    Conference {
                        workspace_sid: Some(ws),
                        task_sid: Some(task.sid),
                        reservation_sid: Some(r),
                        post_work_activity_sid: p.post_work_activity_sid,
                        ..Conference::new(
                            account,
                            cf,
                            task.sid.to_string(),
                            ConferenceStatus::InProgress,
                            now,
                        )
                    },
                );
                let customer_to = attributes.get("from").and_then(|v| v.as_str()).unwrap_or("").to_owned();
                let c = Participant {
                    label: Some("customer".into()),
                    end_conference_on_exit: p.end_conference_on_customer_exit.unwrap_or(false),
                    ..leg(account, cf, customer, customer_to, now, None)
                };
                tel.participants.insert((cf, customer), c);
                tel.calls.insert(customer, cf);
                out.touch(Key::Participant(cf, customer));
                cf
            }
        };
        out.touch(Key::Conference(cf));
        let worker_call = tel.dial(out, cf, to, now, |leg| Participant {
            label: Some("worker".into()),
            end_conference_on_exit: p.end_conference_on_exit.unwrap_or(false),
            muted: p.muted.unwrap_or(false),
            ..leg
        });
        sp.merge_task_attributes(
            out,
            now,
            task.sid,
            serde_json::json!({"conference": {"sid": cf.to_string(), "participants": {
                "worker": worker_call.to_string(), "customer": customer.to_string()}}}),
        );
        sp.accept(out, now, r)
    }

    /// The supervise instruction (reference §7): the supervisor's leg in the conference of the reservation's
    /// task, in the mode asked. Twilio's docs name the modes and refuse a pending or canceled reservation
    /// (debugger error 40146); the rest is chosen here and written down:
    /// - only an accepted reservation whose task has a conference in progress can be supervised;
    /// - `Supervisor` is required: a worker SID of the workspace dials that worker's `contact_uri`, anything
    ///   else is dialled as given (`client:…`, `sip:…`, a number);
    /// - `SupervisorMode` defaults to `monitor`, the one that changes nothing for the call;
    /// - the leg is labelled `supervisor`, does not start or end the conference, and rings until the answer
    ///   timer like a worker's; a supervisor already on the call (the same address) has its leg's mode
    ///   changed instead, so monitor then barge is one leg.
    fn supervise_instruction(
        &mut self,
        now: Timestamp,
        ws: Sid,
        r: Sid,
        p: &UpdateReservationParams,
    ) -> Result<(), Error> {
        let mode = p.supervisor_mode.as_deref().unwrap_or("monitor").to_ascii_lowercase();
        if !matches!(mode.as_str(), "monitor" | "whisper" | "barge") {
            return Err(Error::invalid(
                "SupervisorMode",
                format!("must be monitor, whisper or barge, not '{mode}'"),
            ));
        }
        let Core { spaces, tel, out, .. } = self;
        let sp = space_mut(spaces, ws)?;
        let res = sp.reservations.get(&r).ok_or_else(|| Error::not_found(r.to_string()))?;
        if res.reservation_status != ReservationStatus::Accepted {
            return Err(Error::illegal(format!(
                "Cannot supervise reservation {r}: it is {}, and only an accepted reservation's call can be \
                 supervised (Twilio debugger error 40146)",
                res.reservation_status.as_str()
            )));
        }
        let supervisor = p.supervisor.as_deref().filter(|s| !s.is_empty()).ok_or_else(|| {
            Error::invalid(
                "Supervisor",
                "is required for the supervise instruction (a worker SID or an address)",
            )
        })?;
        let to = match Sid::parse_as(supervisor, Prefix::Worker) {
            Ok(wk) => {
                let w = sp.workers.get(&wk).ok_or_else(|| {
                    Error::invalid("Supervisor", format!("{wk} is not a worker of workspace {ws}"))
                })?;
                w.contact_uri().map(str::to_owned).ok_or_else(|| {
                    Error::invalid(
                        "Supervisor",
                        format!("worker {wk} has no \"contact_uri\" attribute to dial"),
                    )
                })?
            }
            Err(_) => supervisor.to_owned(),
        };
        let task = res.task_sid;
        let live = |c: &&Conference| c.task_sid == Some(task) && c.status != ConferenceStatus::Completed;
        let cf = tel.conferences.values().find(live).map(|c| c.sid).ok_or_else(|| {
            Error::illegal(format!(
                "Task {task} has no conference in progress to supervise: its reservation must be answered with \
                 the conference instruction first"
            ))
        })?;
        let legs =
            || tel.participants.range((cf, Sid::new(Prefix::Call, 0))..).take_while(|((c, _), _)| *c == cf);
        let label = |p: &Participant, l: &str| p.label.as_deref() == Some(l);
        let worker_leg = legs().find(|(_, p)| label(p, "worker")).map(|((_, call), _)| *call);
        let existing = legs().find(|(_, p)| label(p, "supervisor") && p.to == to).map(|((_, call), _)| *call);
        let call = match existing {
            Some(call) => call,
            None => tel.dial(out, cf, to, now, |leg| Participant {
                label: Some("supervisor".into()),
                start_conference_on_enter: false,
                ..leg
            }),
        };
        if let Some(leg) = tel.participants.get_mut(&(cf, call)) {
            leg.muted = mode == "monitor";
            leg.coaching = mode == "whisper";
            leg.call_sid_to_coach = if leg.coaching { worker_leg } else { None };
            leg.date_updated = now;
        }
        out.touch(Key::Participant(cf, call));
        if let Some(c) = tel.conferences.get_mut(&cf) {
            c.date_updated = now;
        }
        out.touch(Key::Conference(cf));
        Ok(())
    }

    /// Answer timer: a ringing leg connects.
    pub(crate) fn answer(&mut self, now: Timestamp, cf: Sid, call: Sid) {
        if let Some(p) = self.tel.participants.get_mut(&(cf, call)) {
            if matches!(
                p.status,
                ParticipantStatus::Ringing | ParticipantStatus::Queued | ParticipantStatus::Connecting
            ) {
                p.status = ParticipantStatus::Connected;
                p.answer_at = None;
                p.date_updated = now;
                self.out.touch(Key::Participant(cf, call));
            }
        }
    }

    fn find_conference(&self, conference: &str) -> Result<Sid, Error> {
        if let Ok(sid) = Sid::parse_as(conference, Prefix::Conference) {
            if self.tel.conferences.contains_key(&sid) {
                return Ok(sid);
            }
        }
        let mut found: Vec<&Conference> = self
            .tel
            .conferences
            .values()
            .filter(|c| c.friendly_name == conference && c.status != ConferenceStatus::Completed)
            .collect();
        found.sort_by_key(|c| (c.date_created, c.sid));
        found.last().map(|c| c.sid).ok_or_else(|| Error::not_found(self.conference_path(conference)))
    }

    pub(crate) fn update_conference(
        &mut self,
        now: Timestamp,
        cf: Sid,
        status: Option<String>,
    ) -> Result<Reply, Error> {
        let c = self.tel.conferences.get(&cf).ok_or_else(|| Error::not_found(self.conference_path(cf)))?;
        match status.as_deref() {
            None => {}
            Some("completed") if c.status == ConferenceStatus::Completed => {}
            Some("completed") => self.end_conference(now, cf, "conference-ended-via-api", None),
            Some(s) => {
                return Err(Error::invalid("Status", format!("can only be 'completed', not '{s}'")));
            }
        }
        let c = self.tel.conferences.get(&cf).cloned().ok_or_else(|| Error::not_found(cf.to_string()))?;
        Ok(Reply::Conference(c))
    }

    /// Ends a conference: every leg dropped, the task to wrapping, the worker to the post-work activity.
    fn end_conference(&mut self, now: Timestamp, cf: Sid, reason: &str, ending: Option<Sid>) {
        let Some(c) = self.tel.conferences.get_mut(&cf) else { return };
        c.status = ConferenceStatus::Completed;
        c.reason_conference_ended = Some(reason.to_owned());
        c.call_sid_ending_conference = ending;
        c.date_updated = now;
        let (ws, task, r, post) = (c.workspace_sid, c.task_sid, c.reservation_sid, c.post_work_activity_sid);
        self.out.touch(Key::Conference(cf));
        let legs: Vec<Sid> = self
            .tel
            .participants
            .range((cf, Sid::new(Prefix::Call, 0))..)
            .take_while(|((c, _), _)| *c == cf)
            .map(|((_, s), _)| *s)
            .collect();
        for call in legs {
            self.drop_leg(cf, call);
        }
        let Core { spaces, out, .. } = self;
        let (Some(ws), Some(task)) = (ws, task) else { return };
        let Some(sp) = spaces.get_mut(&ws) else { return };
        match sp.tasks.get(&task).map(|t| t.assignment_status) {
            Some(TaskStatus::Assigned) => {
                let _ = sp.wrap_task(out, now, task);
            }
            // The call ended while the task was being transferred: there is nothing left to transfer.
            Some(TaskStatus::Pending | TaskStatus::Reserved) if sp.active_transfer(task).is_some() => {
                let _ = sp.cancel_task(out, now, task, "The call ended during its transfer".into());
            }
            _ => {}
        }
        if let (Some(a), Some(worker)) = (post, r.and_then(|r| sp.reservations.get(&r)).map(|r| r.worker_sid))
        {
            sp.set_worker_activity(out, now, worker, a);
        }
    }

    pub(crate) fn drop_leg(&mut self, cf: Sid, call: Sid) {
        self.tel.participants.remove(&(cf, call));
        self.tel.calls.remove(&call);
        self.out.timers.cancel(Timer::Answer(cf, call));
        self.out.touch(Key::Participant(cf, call));
    }

    /// A leg leaves (kicked or hung up): ends the conference per `end_conference_on_exit` or when empty.
    fn leg_left(&mut self, now: Timestamp, cf: Sid, call: Sid, kicked: bool) {
        let Some(p) = self.tel.participants.get(&(cf, call)) else { return };
        let end_on_exit = p.end_conference_on_exit;
        self.drop_leg(cf, call);
        let left = self
            .tel
            .participants
            .range((cf, Sid::new(Prefix::Call, 0))..)
            .take_while(|((c, _), _)| *c == cf)
            .count();
        let reason = match (end_on_exit, kicked) {
            (true, true) => Some("participant-with-end-conference-on-exit-kicked"),
            (true, false) => Some("participant-with-end-conference-on-exit-left"),
            (false, true) if left == 0 => Some("last-participant-kicked"),
            (false, false) if left == 0 => Some("last-participant-left"),
            _ => None,
        };
        if let Some(reason) = reason {
            self.end_conference(now, cf, reason, Some(call));
        } else if let Some(c) = self.tel.conferences.get_mut(&cf) {
            c.date_updated = now;
            self.out.touch(Key::Conference(cf));
        }
    }

    pub(crate) fn create_participant(
        &mut self,
        now: Timestamp,
        conference: &str,
        p: CreateParticipantParams,
    ) -> Result<Reply, Error> {
        if p.from.is_empty() {
            return Err(Error::invalid("From", "is required"));
        }
        if p.to.is_empty() {
            return Err(Error::invalid("To", "is required"));
        }
        let cf = match self.find_conference(conference) {
            Ok(cf) => cf,
            Err(_) if Sid::parse_as(conference, Prefix::Conference).is_err() => {
                // Adding a participant to an unknown friendly name creates the conference.
                let cf = self.out.sid(Prefix::Conference);
                self.tel.conferences.insert(
                    cf,
                    Conference::new(
                        self.out.account_sid,
                        cf,
                        conference.to_owned(),
                        ConferenceStatus::Init,
                        now,
                    ),
                );
                cf
            }
            Err(e) => return Err(e),
        };
        if self.tel.conferences.get(&cf).is_some_and(|c| c.status == ConferenceStatus::Completed) {
            return Err(Error::illegal(format!("Conference {cf} has ended; participants cannot be added")));
        }
        let call = self.tel.dial(&mut self.out, cf, p.to, now, |leg| Participant {
            label: p.label,
            end_conference_on_exit: p.end_conference_on_exit.unwrap_or(false),
            muted: p.muted.unwrap_or(false),
            start_conference_on_enter: p.start_conference_on_enter.unwrap_or(true),
            status: ParticipantStatus::Queued,
            ..leg
        });
        let part = self.tel.participants[&(cf, call)].clone();
        if let Some(c) = self.tel.conferences.get_mut(&cf) {
            if part.start_conference_on_enter {
                c.status = ConferenceStatus::InProgress;
            }
            c.date_updated = now;
        }
        self.out.touch(Key::Conference(cf));
        Ok(Reply::Participant(part))
    }

    fn participant_key(&self, cf: Sid, call: Sid) -> Result<(Sid, Sid), Error> {
        if self.tel.participants.contains_key(&(cf, call)) {
            Ok((cf, call))
        } else {
            Err(Error::not_found(format!(
                "/2010-04-01/Accounts/{}/Conferences/{cf}/Participants/{call}.json",
                self.out.account_sid
            )))
        }
    }

    pub(crate) fn update_participant(
        &mut self,
        now: Timestamp,
        cf: Sid,
        call: Sid,
        p: UpdateParticipantParams,
    ) -> Result<Reply, Error> {
        let key = self.participant_key(cf, call)?;
        let Some(part) = self.tel.participants.get_mut(&key) else {
            return Err(Error::not_found(call.to_string()));
        };
        if let Some(m) = p.muted {
            part.muted = m;
        }
        if let Some(h) = p.hold {
            part.hold = h;
        }
        if let Some(e) = p.end_conference_on_exit {
            part.end_conference_on_exit = e;
        }
        if let Some(c) = p.coaching {
            part.coaching = c;
        }
        if let Some(c) = p.call_sid_to_coach {
            part.call_sid_to_coach = Some(c);
        }
        part.date_updated = now;
        let part = part.clone();
        self.out.touch(Key::Participant(cf, call));
        Ok(Reply::Participant(part))
    }

    pub(crate) fn kick_participant(&mut self, now: Timestamp, cf: Sid, call: Sid) -> Result<Reply, Error> {
        self.participant_key(cf, call)?;
        self.leg_left(now, cf, call, true);
        Ok(Reply::Deleted)
    }

    /// Simulation: the customer hangs up. In a conference the leg leaves; while waiting the task is canceled.
    pub(crate) fn caller_hangup(&mut self, now: Timestamp, call: Sid) -> Result<Reply, Error> {
        if let Some(cf) = self.tel.calls.get(&call).copied() {
            self.leg_left(now, cf, call, false);
            return Ok(Reply::Deleted);
        }
        let call_text = call.to_string();
        let mut found: Option<(Sid, Sid)> = None;
        for sp in self.spaces.values() {
            for t in sp.tasks.values() {
                // The text test first: tasks keep only their attributes' text, and parsing every waiting
                // task's would be slow; a task whose text lacks the SID cannot have it as `call_sid`.
                if matches!(t.assignment_status, TaskStatus::Pending | TaskStatus::Reserved)
                    && t.attributes.contains(call_text.as_str())
                    && t.attributes_value().get("call_sid").and_then(|v| v.as_str())
                        == Some(call_text.as_str())
                {
                    found = Some((sp.sid(), t.sid));
                }
            }
        }
        let (ws, task) = found.ok_or_else(|| {
            Error::not_found(format!("/2010-04-01/Accounts/{}/Calls/{call}.json", self.out.account_sid))
        })?;
        let Core { spaces, out, .. } = self;
        let sp = space_mut(spaces, ws)?;
        sp.cancel_task(out, now, task, "Caller hung up".into())?;
        let t =
            sp.tasks.get(&task).map(|t| Task::clone(t)).ok_or_else(|| Error::not_found(task.to_string()))?;
        Ok(Reply::Task(t))
    }
}

impl Tel {
    /// Dials a new leg into conference `cf`: a new call SID that rings until the answer timer
    /// (`worker_answer_delay_ms`), made from a plain [`leg`] by `shape` (label, muting, ...). Returns the
    /// call SID.
    fn dial(
        &mut self,
        out: &mut Effects,
        cf: Sid,
        to: String,
        now: Timestamp,
        shape: impl FnOnce(Participant) -> Participant,
    ) -> Sid {
        let call = out.sid(Prefix::Call);
        let answer_at = now.plus_millis(out.config.worker_answer_delay_ms);
        self.participants.insert((cf, call), shape(leg(out.account_sid, cf, call, to, now, Some(answer_at))));
        self.calls.insert(call, cf);
        out.timers.set(Timer::Answer(cf, call), answer_at);
        out.touch(Key::Participant(cf, call));
        call
    }
}

/// A leg of conference `cf` dialled to `to`: ringing until `answer_at`, or connected already without one.
/// Not muted, held or coaching; starts the conference and does not end it on exit.
fn leg(
    account: Sid,
    cf: Sid,
    call: Sid,
    to: String,
    now: Timestamp,
    answer_at: Option<Timestamp>,
) -> Participant {
    Participant {
        account_sid: account,
        call_sid: call,
        conference_sid: cf,
        label: None,
        call_sid_to_coach: None,
        coaching: false,
        date_created: now,
        date_updated: now,
        end_conference_on_exit: false,
        muted: false,
        hold: false,
        start_conference_on_enter: true,
        status: if answer_at.is_some() { ParticipantStatus::Ringing } else { ParticipantStatus::Connected },
        to,
        answer_at,
    }
}
