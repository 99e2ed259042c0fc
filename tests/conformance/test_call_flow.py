"""The seed's whole story, driven through the official `twilio` helper library against `trworker engine`.

Tests run in file order and share one workspace (the `story` dict), the way an operator and a worker would
use it: provision, take a call, end it, wrap up; then a reservation timeout, a rejection, paging and errors.
"""

import json

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

CALLER = "+15551230001"
AGENT_PHONE = "+15005550006"
story = {}


def ws(client):
    return client.taskrouter.v1.workspaces(story["workspace"])


def call_attributes(n):
    return json.dumps({"from": CALLER, "to": "+15559870000", "call_sid": "CA%032x" % n, "direction": "inbound"})


def test_workspace_comes_with_the_three_activities(client, receiver):
    workspace = client.taskrouter.v1.workspaces.create(friendly_name="conformance", event_callback_url=receiver.url)
    story["workspace"] = workspace.sid
    assert workspace.sid.startswith("WS") and len(workspace.sid) == 34
    assert workspace.default_activity_name == "Offline"
    names = {a.friendly_name: a for a in ws(client).activities.list()}
    assert set(names) == {"Offline", "Available", "Unavailable"}
    assert names["Available"].available is True and names["Offline"].available is False
    story["activities"] = {name: a.sid for name, a in names.items()}
    fetched = ws(client).fetch()
    assert fetched.friendly_name == "conformance"
    assert fetched.event_callback_url == receiver.url


def test_queue_workflow_and_worker(client):
    queue = ws(client).task_queues.create(friendly_name="support", target_workers='skills HAS "support"')
    assert queue.target_workers == 'skills HAS "support"'
    assert queue.max_reserved_workers == 1
    config = {"task_routing": {"filters": [], "default_filter": {"queue": queue.sid}}}
    workflow = ws(client).workflows.create(
        friendly_name="support", configuration=json.dumps(config), task_reservation_timeout=10
    )
    assert workflow.task_reservation_timeout == 10
    assert json.loads(workflow.configuration)["task_routing"]["default_filter"]["queue"] == queue.sid
    worker = ws(client).workers.create(
        friendly_name="charles", attributes=json.dumps({"skills": ["support"], "contact_uri": AGENT_PHONE})
    )
    assert worker.activity_name == "Offline" and worker.available is False
    assert json.loads(worker.attributes)["contact_uri"] == AGENT_PHONE
    story.update(queue=queue.sid, workflow=workflow.sid, worker=worker.sid)
    updated = ws(client).workers(worker.sid).update(activity_sid=story["activities"]["Available"])
    assert updated.activity_name == "Available" and updated.available is True


def test_a_call_is_reserved_for_the_available_worker(client):
    task = ws(client).tasks.create(workflow_sid=story["workflow"], attributes=call_attributes(1))
    story["task"] = task.sid
    assert task.task_queue_sid == story["queue"]
    reservations = ws(client).tasks(task.sid).reservations.list()
    assert len(reservations) == 1
    reservation = reservations[0]
    assert reservation.reservation_status == "pending"
    assert reservation.worker_sid == story["worker"]
    story["reservation"] = reservation.sid
    assert ws(client).tasks(task.sid).fetch().assignment_status == "reserved"
    mine = ws(client).workers(story["worker"]).reservations.list(reservation_status="pending")
    assert [r.sid for r in mine] == [reservation.sid]


def test_conference_instruction_accepts_and_connects_both_legs(client, advance_clock):
    ws(client).tasks(story["task"]).reservations(story["reservation"]).update(
        instruction="conference", from_=AGENT_PHONE, post_work_activity_sid=story["activities"]["Offline"]
    )
    advance_clock(5)  # the simulated worker leg answers after a short delay
    reservation = ws(client).tasks(story["task"]).reservations(story["reservation"]).fetch()
    assert reservation.reservation_status == "accepted"
    task = ws(client).tasks(story["task"]).fetch()
    assert task.assignment_status == "assigned"
    conference = json.loads(task.attributes)["conference"]
    assert conference["sid"].startswith("CF")
    assert conference["participants"]["customer"] == "CA%032x" % 1
    in_progress = client.conferences.list(status="in-progress")
    matching = [c for c in in_progress if c.sid == conference["sid"]]
    assert len(matching) == 1 and matching[0].friendly_name == story["task"]
    participants = client.conferences(conference["sid"]).participants.list()
    assert {p.call_sid for p in participants} == set(conference["participants"].values())
    story["conference"] = conference["sid"]


def test_ending_the_conference_wraps_the_task_up(client):
    ended = client.conferences(story["conference"]).update(status="completed")
    assert ended.status == "completed"
    assert [c.sid for c in client.conferences.list(status="in-progress")] == []
    task = ws(client).tasks(story["task"]).fetch()
    assert task.assignment_status == "wrapping"
    worker = ws(client).workers(story["worker"]).fetch()
    assert worker.activity_name == "Offline"  # the PostWorkActivitySid given with the instruction


def test_completing_the_task_completes_the_reservation(client):
    task = ws(client).tasks(story["task"]).update(assignment_status="completed", reason="call handled")
    assert task.assignment_status == "completed" and task.reason == "call handled"
    reservation = ws(client).tasks(story["task"]).reservations(story["reservation"]).fetch()
    assert reservation.reservation_status == "completed"


def test_a_reservation_that_times_out_moves_the_worker_to_the_timeout_activity(client, advance_clock):
    ws(client).workers(story["worker"]).update(activity_sid=story["activities"]["Available"])
    task = ws(client).tasks.create(workflow_sid=story["workflow"], attributes=call_attributes(2))
    [reservation] = ws(client).tasks(task.sid).reservations.list()
    advance_clock(11)  # past the workflow's 10 s reservation timeout
    assert ws(client).tasks(task.sid).reservations(reservation.sid).fetch().reservation_status == "timeout"
    timeout_activity = ws(client).fetch().timeout_activity_sid
    worker = ws(client).workers(story["worker"]).fetch()
    assert worker.activity_sid == timeout_activity and worker.available is False
    assert ws(client).tasks(task.sid).fetch().assignment_status == "pending"
    story["waiting_task"] = task.sid


def test_reject_with_an_activity(client):
    ws(client).workers(story["worker"]).update(activity_sid=story["activities"]["Available"])
    pending = ws(client).tasks(story["waiting_task"]).reservations.list(reservation_status="pending")
    assert len(pending) == 1
    rejected = ws(client).tasks(story["waiting_task"]).reservations(pending[0].sid).update(
        reservation_status="rejected", worker_activity_sid=story["activities"]["Unavailable"]
    )
    assert rejected.reservation_status == "rejected"
    worker = ws(client).workers(story["worker"]).fetch()
    assert worker.activity_name == "Unavailable"
    assert ws(client).tasks(story["waiting_task"]).fetch().assignment_status == "pending"
    canceled = ws(client).tasks(story["waiting_task"]).update(assignment_status="canceled", reason="test over")
    assert canceled.assignment_status == "canceled"


def test_paging_follows_next_page_url_to_the_end(client, recorded):
    for i in range(7):
        ws(client).workers.create(friendly_name=f"pager{i}")
    before = len(recorded)
    names = [w.friendly_name for w in ws(client).workers.stream(page_size=3)]
    assert len(names) == 8 and len(set(names)) == 8
    pages = [r for r in recorded[before:] if "/Workers" in r[1]]
    assert len(pages) == 3
    page = ws(client).workers.page(page_size=3)
    assert page.next_page_url is not None


def test_events_are_listed(client):
    events = ws(client).events.list(event_type="reservation.created")
    assert len(events) >= 2
    assert all(e.event_type == "reservation.created" for e in events)
    assert any(e.resource_sid == story["reservation"] for e in events)


def test_callbacks_are_signed_as_twilio_signs_them(engine, receiver):
    found = receiver.wait_for(lambda p: p.get("EventType") == "reservation.accepted")
    assert found is not None, "no reservation.accepted callback arrived"
    path, headers, params = found
    assert params and dict(params)["WorkspaceSid"] == story["workspace"]
    signature = headers.get("x-twilio-signature")  # header names are case-insensitive
    assert signature
    validator = RequestValidator(engine["AUTH_TOKEN"])
    assert validator.validate(receiver.url, dict(params), signature)
    assert not RequestValidator("wrong-token").validate(receiver.url, dict(params), signature)


def test_errors_come_back_in_twilios_shape(client, engine):
    with pytest.raises(TwilioRestException) as missing:
        ws(client).tasks("WT" + "0" * 32).fetch()
    assert missing.value.status == 404 and missing.value.code == 20404
    with pytest.raises(TwilioRestException) as invalid:
        ws(client).task_queues.create(friendly_name="bad", target_workers="skills HAS")
    assert invalid.value.status == 400 and "TargetWorkers" in invalid.value.msg
    stranger = Client(engine["ACCOUNT_SID"], "not-the-token")
    stranger.taskrouter.base_url = engine["TWILIO_TASKROUTER_URL"]
    with pytest.raises(TwilioRestException) as unauthorized:
        stranger.taskrouter.v1.workspaces(story["workspace"]).fetch()
    assert unauthorized.value.status == 401 and unauthorized.value.code == 20003
