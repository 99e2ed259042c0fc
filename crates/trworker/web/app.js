// The worker page: wiring between the API, the live connection, the ring tone and the DOM.
//
// Layout of the page's modules:
// - api.js:        JSON API calls and the signed-in session (token in sessionStorage, refresh before expiry);
// - live.js:       the WebSocket, its hello, reconnect with backoff, sequence numbers (kept across a reload);
// - cards.js:      cards shown by key, built anew only when what they show changes;
// - connection.js: the connection pill (the page's connection, and the server's link to TaskRouter);
// - desk.js:       the activity buttons and the missed-call banner;
// - ring.js:       the Web Audio ring tone and desktop notifications;
// - view.js:       building cards, log lines and alerts as text, timers;
// - wrapup.js:     wrap-up forms: drafts kept per task, the room left for notes;
// - log.js:        the Activity panel's lines and raw events, kept across a reload;
// - app.js:        this file: the state the page shows, rendering it, and the worker's actions.
//
// The server sends the worker's whole state after changes, so rendering is idempotent: whatever the order
// of messages and however many tabs are open, the page shows the last state it was sent, with the event
// frames numbered after that state applied on top. An event frame carries what the event itself says (a new
// reservation with its task, a reservation's new status, a new activity), so a call shows as soon as its
// `reservation.created` frame arrives, without waiting for a state.

import { ApiError, Client, fetchWorkspace } from './api.js';
import { Cards } from './cards.js';
import { ConnectionPill } from './connection.js';
import { renderActivityButtons, showMissed, usualActivities } from './desk.js';
import { Live, savedSeq } from './live.js';
import { ActivityLog } from './log.js';
import { Notifier, Ringer, askNotificationPermission } from './ring.js';
import {
  alertIn,
  announceIn,
  attributesWithWrapUp,
  callerLabel,
  cleanText,
  conferenceCard,
  reservationCard,
  setUserText,
  shortText,
  tickTimers,
} from './view.js';
import {
  fillWrapUp,
  forgetDraft,
  forgetDrafts,
  formValues,
  readDraft,
  sizeProblem,
  updateWrapUp,
  wrapUpTyped,
} from './wrapup.js';

const TICK_MS = 250;
const RESERVATION_STATUSES = new Set(['pending', 'accepted', 'wrapping']);
/** Event frames kept for re-applying on top of a state built before them. */
const RECENT_MAX = 100;

const $ = (id) => document.getElementById(id);

/** Everything the page shows. `worker`, `reservations` and `conference` come from the last state message. */
const state = {
  workspace: null,
  worker: null,
  reservations: [],
  conference: null,
  /** Server clock minus this browser's clock, from `server_time`: countdowns use the server's time. */
  skewMs: 0,
  /** Keys of requests in flight, whose buttons are disabled. */
  busy: new Set(),
  /** Reservations this tab accepted or rejected, so their disappearance is not reported as a missed call. */
  acted: new Set(),
  /** Pending reservations already announced, so that a re-sent state does not announce them again. */
  announced: new Set(),
  /** Event frames with changes, numbered after the last state: re-applied on top of each new state. */
  recent: [],
  /** Reservations an event frame just ended, with the status it gave (`timeout`, `canceled`, ...). */
  endings: new Map(),
  /** Reservations event frames said are over: a late `reservation.created` (webhooks may come out of
   * order) does not bring them back. */
  gone: new Set(),
  /** Tasks whose wrap-up ran out on this page and were completed with their notes (once each). */
  autoCompleted: new Set(),
  /** The worker's call's legs as the API last gave them: `{sid, hold, muted}` (the caller held, the worker
   * muted); `null` until known. The state does not carry them, so they are read when a conference shows. */
  legs: null,
  /** The last call that timed out unanswered (`{caller, at}`), for the missed-call banner; `null` when none. */
  missed: null,
  signedIn: false,
};

const serverNow = () => Date.now() + state.skewMs;

const activityLog = new ActivityLog({ now: serverNow });
const log = (text, options) => activityLog.say(text, options);
const pill = new ConnectionPill($('connection'));
const ringer = new Ringer({ onChange: () => renderAlerting() });
const notifier = new Notifier();

const client = new Client({
  onExpired: (message) => signOut(`Your session has ended: ${message} Sign in again.`),
  // The token's worker has no activity_changed_at: keep the one the live state gave.
  onRefreshed: (session) => session.worker && mergeWorker({ ...state.worker, ...session.worker }),
});

const live = new Live({
  getToken: () => client.token,
  onState: applyState,
  onEvent: applyEvent,
  onError: (msg) => report(typeof msg.message === 'string' && msg.message ? msg.message : 'The server reported an error.'),
  onChannel: (msg) => pill.setUpstream(msg),
  onNotice: (msg) => {
    // Said in the Activity panel and aloud: the worker should know who changed their status.
    if (typeof msg.text !== 'string' || !msg.text) return;
    const text = cleanText(msg.text).slice(0, 200);
    log(text);
    announce(text);
  },
  onStatus: (status) => {
    // Back online: the workspace (its activities) may have changed meanwhile.
    if (pill.setPage(status)) loadWorkspace();
  },
  checkToken: () => client.refresh(),
});

// ---------------------------------------------------------------------------------------------------------
// Start-up

function boot() {
  $('signin-form').addEventListener('submit', onSignIn);
  $('sign-out').addEventListener('click', () => leaveDesk());
  $('sound-button').addEventListener('click', () => {
    ringer.unlock();
    askNotificationPermission();
  });
  $('log-clear').addEventListener('click', () => activityLog.clear());
  $('activity-buttons').addEventListener('click', onActivityClick);
  $('missed').addEventListener('click', (event) => {
    const id = event.target.closest('button')?.id;
    if (id === 'missed-online') {
      const { online } = usualActivities(state.workspace?.activities ?? []);
      if (online) changeActivity(online.sid);
    } else if (id === 'missed-dismiss') {
      state.missed = null;
      render();
    }
  });
  $('calls').addEventListener('click', onCallsClick);
  $('calls').addEventListener('input', onWrapUpInput);
  $('calls').addEventListener('change', onWrapUpInput);
  $('alert').addEventListener('click', (event) => {
    if (event.target.closest('[data-action="dismiss"]')) showAlert(null);
  });
  // Any interaction lets the page make sound: after a reload the ring would otherwise stay silent.
  for (const type of ['pointerdown', 'keydown']) {
    document.addEventListener(type, () => state.signedIn && ringer.unlock(), { capture: true });
  }
  document.addEventListener('visibilitychange', renderAlerting);

  activityLog.restore();
  loadWorkspace();
  const session = client.restore();
  if (session) enterDesk(session, savedSeq.read());
  else {
    showSignIn();
    $('identity').focus();
  }
  setInterval(tick, TICK_MS);
}

let workspaceRetry = 0;
let workspaceTimer = null;

async function loadWorkspace() {
  clearTimeout(workspaceTimer);
  try {
    const workspace = await fetchWorkspace();
    state.workspace = {
      sid: String(workspace.sid ?? ''),
      friendly_name: String(workspace.friendly_name ?? ''),
      mode: typeof workspace.mode === 'string' ? workspace.mode : null,
      activities: Array.isArray(workspace.activities) ? workspace.activities.filter((a) => a && typeof a.sid === 'string') : [],
    };
    workspaceRetry = 0;
  } catch (err) {
    if (!state.workspace) {
      $('workspace-name').textContent = 'Workspace unavailable';
      if (workspaceRetry === 0) log(`Could not load the workspace: ${err.message} Retrying.`, { kind: 'error' });
    }
    workspaceRetry += 1;
    workspaceTimer = setTimeout(loadWorkspace, Math.min(10_000, 1000 * 2 ** Math.min(workspaceRetry, 4)));
  }
  render();
}

// ---------------------------------------------------------------------------------------------------------
// Signing in and out

async function onSignIn(event) {
  event.preventDefault();
  // The submit is a user gesture: the moment to allow sound and ask for notifications.
  ringer.unlock();
  askNotificationPermission();
  const identityInput = $('identity');
  const passwordInput = $('password');
  const identity = identityInput.value.trim();
  const password = passwordInput.value;
  if (!identity) return signInError('Enter your identity.', identityInput);
  if (!password) return signInError('Enter your password.', passwordInput);

  const button = $('signin-button');
  if (button.disabled) return;
  button.disabled = true;
  $('signin-form').setAttribute('aria-busy', 'true');
  signInError(null);
  try {
    const session = await client.signIn(identity, password);
    passwordInput.value = '';
    enterDesk(session, null);
    log(`You signed in as ${session.worker?.friendly_name ?? identity}.`);
    $('worker-name').focus();
  } catch (err) {
    signInError(err.message, passwordInput);
    log(`Sign-in failed: ${err.message}`, { kind: 'error' });
  } finally {
    button.disabled = false;
    $('signin-form').removeAttribute('aria-busy');
  }
}

function signInError(message, focus) {
  $('signin-error').textContent = message ? shortText(message, 300).text : '';
  if (focus) {
    focus.focus();
    if (focus.type === 'password') focus.select();
  }
}

function enterDesk(session, lastSeq) {
  state.signedIn = true;
  state.worker = session.worker ?? null;
  $('signin').hidden = true;
  $('desk').hidden = false;
  $('sign-out').hidden = false;
  live.start(lastSeq);
  render();
}

function showSignIn() {
  $('signin').hidden = false;
  $('desk').hidden = true;
  $('sign-out').hidden = true;
  renderAlerting();
}

/** "Sign out": the server moves the worker to the leave activity (Offline), so no call rings at an empty
 * desk; the log, which names callers, is cleared for whoever sits down next; then this tab signs out. */
async function leaveDesk() {
  if (state.signedIn) {
    try {
      await client.call('api/token/sign-out', {});
    } catch {
      // Signing out here still ends the session; the server moves the worker once the page is gone.
    }
  }
  activityLog.clear();
  signOut();
}

/** Signs this tab out; `message` (if any) tells the worker why. */
function signOut(message) {
  const wasSignedIn = state.signedIn;
  state.signedIn = false;
  live.stop();
  client.clear();
  ringer.stop();
  notifier.keepOnly(new Set());
  Object.assign(state, { worker: null, reservations: [], conference: null, legs: null, recent: [], missed: null });
  state.gone.clear();
  state.busy.clear();
  state.acted.clear();
  state.announced.clear();
  state.autoCompleted.clear();
  savedSeq.forget();
  forgetDrafts(new Set());
  showAlert(null);
  showSignIn();
  render();
  signInError(message ?? null);
  if (wasSignedIn) log(message ?? 'Signed out.', { kind: message ? 'error' : 'info' });
  $('identity').focus();
}

// ---------------------------------------------------------------------------------------------------------
// Live state

/**
 * A state: the worker's whole state as of event `msg.seq`. Event frames numbered after it are applied on
 * top; `first` (the first state of a connection) drops those of the previous connection, which the new
 * state already reflects (or which belong to a server that has since restarted).
 */
function applyState(msg, first = false) {
  if (!state.signedIn) return;
  if (Number.isFinite(msg.server_time)) state.skewMs = msg.server_time - Date.now();
  const before = new Map(state.reservations.map((r) => [r.sid, r]));
  if (msg.worker && typeof msg.worker === 'object') mergeWorker(msg.worker);
  state.reservations = (Array.isArray(msg.reservations) ? msg.reservations : []).filter(
    (r) => r && typeof r.sid === 'string' && RESERVATION_STATUSES.has(r.status),
  );
  state.conference =
    msg.conference && typeof msg.conference === 'object' && typeof msg.conference.sid === 'string' ? msg.conference : null;
  state.recent = first || !Number.isFinite(msg.seq) ? [] : state.recent.filter((e) => e.seq > msg.seq);
  for (const event of state.recent) applyEventChanges(event);
  noteActivity(state.worker);
  noteChangedReservations(before);
  noteEndedReservations(before);
  noteWaiting(state.reservations, Number.isFinite(msg.server_time) ? msg.server_time : serverNow());
  forgetDrafts(new Set(state.reservations.filter((r) => r.status === 'wrapping').map((r) => r.task?.sid)));
  loadLegs();
  savedSeq.save(live.lastSeq);
  render();
}

/** An event frame: kept under "Raw events", and what it changes is shown at once (and said in the Activity
 * panel's words). */
function applyEvent(msg) {
  if (!state.signedIn) return;
  activityLog.rawEvent(msg);
  if (!Number.isFinite(msg.seq)) return;
  savedSeq.save(live.lastSeq);
  const changes = (msg.reservation && typeof msg.reservation === 'object') || (msg.worker && typeof msg.worker === 'object');
  if (!changes) return;
  state.recent.push(msg);
  if (state.recent.length > RECENT_MAX) state.recent.shift();
  const before = new Map(state.reservations.map((r) => [r.sid, r]));
  applyEventChanges(msg);
  noteActivity(state.worker);
  noteChangedReservations(before);
  noteEndedReservations(before);
  noteWaiting(state.reservations, Number.isFinite(msg.at) ? msg.at : serverNow());
  render();
}

/**
 * Applies what an event frame says. A reservation in a final status goes away; one that is accepted or
 * wrapping takes the new status; a new pending one (with its task) is added, but never replaces what a
 * state already shows, which may be newer, nor brings back one a frame said is over. A new activity
 * replaces the worker's.
 */
function applyEventChanges(msg) {
  const r = msg.reservation;
  if (r && typeof r === 'object' && typeof r.sid === 'string' && typeof r.status === 'string') {
    const current = state.reservations.find((x) => x.sid === r.sid);
    const task = r.task && typeof r.task === 'object' && typeof r.task.sid === 'string' ? r.task : null;
    if (!RESERVATION_STATUSES.has(r.status)) {
      state.gone.add(r.sid);
      if (state.gone.size > RECENT_MAX) state.gone.delete(state.gone.values().next().value);
      if (current) {
        state.reservations = state.reservations.filter((x) => x.sid !== r.sid);
        state.endings.set(r.sid, r.status);
      }
    } else if (current) {
      if (r.status !== 'pending') {
        // The frame's task is what the event said; what the state added (the queue's name) stays.
        state.reservations = state.reservations.map((x) =>
          x.sid === r.sid ? { ...x, status: r.status, ...(task ? { task: { ...x.task, ...task } } : {}) } : x,
        );
      }
    } else if (r.status === 'pending' && task && !state.gone.has(r.sid)) {
      state.reservations = [...state.reservations, { ...r, task }];
    }
  }
  const w = msg.worker;
  if (w && typeof w === 'object' && typeof w.activity_sid === 'string' && state.worker) {
    const activity = state.workspace?.activities.find((a) => a.sid === w.activity_sid);
    const available = typeof w.available === 'boolean' ? w.available : activity?.available;
    mergeWorker({
      ...state.worker,
      activity_sid: w.activity_sid,
      activity_name: typeof w.activity_name === 'string' ? w.activity_name : activity?.friendly_name,
      available: typeof available === 'boolean' ? available : state.worker.available,
      activity_changed_at: Number.isFinite(w.activity_changed_at) ? w.activity_changed_at : state.worker.activity_changed_at,
    });
  }
}

function mergeWorker(worker) {
  state.worker = worker;
  client.updateWorker(worker);
}

/** Says the worker's activity in the Activity panel when it differs from the last one said there (a reload,
 * or the same change told by an answer, an event and a state, says nothing new). Called once a message is
 * applied whole: a state re-applies the newer events on top of itself, whose passing activities are not
 * news. */
function noteActivity(worker) {
  const sid = worker?.activity_sid;
  if (typeof sid !== 'string' || !sid) return;
  if (activityLog.lastActivitySid() === sid) return;
  log(`You are now ${cleanText(activityName(worker))}.`, { activitySid: sid });
}

/** Says what is new about the reservations still here: a call ringing, accepted, in wrap-up. Each once per
 * reservation, however many states and events tell it and across reloads. */
function noteChangedReservations(before) {
  for (const r of state.reservations) {
    if (before.get(r.sid)?.status === r.status) continue;
    const caller = callerLabel(r);
    if (r.status === 'pending') log(`Incoming call from ${caller}.`, { key: `ring:${r.sid}` });
    else if (r.status === 'accepted') log(`You accepted the call from ${caller}.`, { key: `accepted:${r.sid}` });
    else if (r.status === 'wrapping') {
      log(`The call with ${caller} has ended: wrap-up. Write your notes, then Complete.`, { key: `wrapping:${r.sid}` });
    }
  }
}

/** Tells the worker about pending calls that went away without this tab answering them. */
function noteEndedReservations(before) {
  const now = new Set(state.reservations.map((r) => r.sid));
  for (const [sid, old] of before) {
    if (now.has(sid) || old.status !== 'pending' || state.acted.has(sid)) continue;
    const caller = callerLabel(old);
    const timedOut = state.endings.has(sid)
      ? state.endings.get(sid) === 'timeout'
      : Number.isFinite(old.timeout_at) && old.timeout_at <= serverNow() + 1500;
    if (timedOut) {
      log(`You missed a call from ${caller}: nobody answered in time.`, { kind: 'warning', key: `missed:${sid}` });
      announce(`Missed call from ${caller}.`);
      state.missed = { caller, at: serverNow() };
    } else {
      log(`The call from ${caller} is no longer waiting for you.`, { key: `gone:${sid}` });
    }
  }
  state.endings.clear();
  for (const sid of state.acted) if (!now.has(sid)) state.acted.delete(sid);
  for (const sid of state.announced) if (!now.has(sid)) state.announced.delete(sid);
}

// ---------------------------------------------------------------------------------------------------------
// Actions

/** Runs one request with its buttons disabled; failures go to the alert region and the log. */
async function run(key, failure, action) {
  if (state.busy.has(key)) return;
  state.busy.add(key);
  render();
  try {
    await action();
    showAlert(null);
  } catch (err) {
    // A 401 has already signed the tab out with its own message.
    if (!(err instanceof ApiError && err.status === 401)) report(`${failure}: ${err.message}`);
    throw err;
  } finally {
    state.busy.delete(key);
    render();
  }
}

function onActivityClick(event) {
  const button = event.target.closest('button[data-activity-sid]');
  if (!button || button.disabled) return;
  changeActivity(button.dataset.activitySid);
}

/** Moves the worker to the activity `sid`. */
function changeActivity(sid) {
  const activity = state.workspace?.activities.find((a) => a.sid === sid);
  const name = activity?.friendly_name ?? sid;
  run('activity', `Could not change the activity to ${name}`, async () => {
    const worker = await client.call('api/worker/activity', { activity_sid: sid });
    if (worker && typeof worker === 'object' && typeof worker.activity_sid === 'string' && state.worker) {
      const changed = worker.activity_sid !== state.worker.activity_sid;
      mergeWorker({
        ...state.worker,
        ...worker,
        activity_changed_at: Number.isFinite(worker.activity_changed_at)
          ? worker.activity_changed_at
          : changed
            ? serverNow()
            : state.worker.activity_changed_at,
      });
      noteActivity(state.worker);
    }
  }).catch(() => {});
}

function onCallsClick(event) {
  const button = event.target.closest('button[data-action]');
  if (!button || button.disabled) return;
  const action = button.dataset.action;
  const conferenceSid = button.closest('[data-testid="conference"]')?.dataset.sid;
  if (action === 'end-conference') return endConference(conferenceSid);
  if (action === 'hold' || action === 'mute') return toggleLeg(conferenceSid, action, button.getAttribute('aria-pressed') !== 'true');
  const sid = button.closest('[data-testid="reservation"]')?.dataset.sid;
  const reservation = state.reservations.find((r) => r.sid === sid);
  if (!reservation) return;
  if (action === 'accept') answer(reservation, 'accept');
  else if (action === 'reject') answer(reservation, 'reject');
  else if (action === 'reject-unavailable') answer(reservation, 'reject', unavailableActivity()?.sid);
  else if (action === 'complete') complete(reservation);
  else if (action === 'extend') extendWrapUp(reservation);
}

/** The activity "Reject and go unavailable" moves the worker to: the one named Unavailable, else the first
 * unavailable activity that is not the offline one. */
function unavailableActivity() {
  const activities = state.workspace?.activities ?? [];
  const { offline } = usualActivities(activities);
  return (
    activities.find((a) => String(a.friendly_name).toLowerCase() === 'unavailable') ??
    activities.find((a) => a.available !== true && a !== offline)
  );
}

/** Accepts or rejects `reservation`; a reject may name the activity to move to (`activitySid`). */
function answer(reservation, verb, activitySid) {
  const { sid } = reservation;
  const caller = callerLabel(reservation);
  state.acted.add(sid);
  const failure = verb === 'accept' ? `Could not accept the call from ${caller}` : `Could not reject the call from ${caller}`;
  run(`reservation:${sid}`, failure, async () => {
    const body = activitySid ? { activity_sid: activitySid } : {};
    const updated = await client.call(`api/reservations/${encodeURIComponent(sid)}/${verb}`, body);
    patchReservation(sid, updated);
    if (verb === 'accept') log(`You accepted the call from ${caller}.`, { key: `accepted:${sid}` });
    else log(`You rejected the call from ${caller}.`, { key: `rejected:${sid}` });
  }).catch(() => state.acted.delete(sid));
}

/** Applies a reservation the API returned, so the page moves on even before the next state arrives. */
function patchReservation(sid, updated) {
  const current = state.reservations.find((r) => r.sid === sid);
  if (!current || current.status !== 'pending' || typeof updated?.status !== 'string') return;
  if (RESERVATION_STATUSES.has(updated.status)) current.status = updated.status;
  else state.reservations = state.reservations.filter((r) => r.sid !== sid);
}

/** Completes the task of a wrapping reservation with the disposition and notes of its form; `auto` when
 * the wrap-up time ran out. The size limit is checked here, before anything is sent. */
function complete(reservation, auto = false) {
  const taskSid = reservation.task?.sid;
  if (typeof taskSid !== 'string') return;
  const draft = wrapUpValues(taskSid);
  const saved = attributesWithWrapUp(reservation.task?.attributes, draft);
  const problem = sizeProblem(saved, draft);
  if (problem) {
    wrapUpError(taskSid, problem.message);
    if (!auto) wrapUpCard(taskSid)?.querySelector(`[data-field="${problem.field}"]`)?.focus();
    return;
  }
  wrapUpError(taskSid, '');
  const body = saved ? { disposition: draft.disposition ?? '', notes: draft.notes ?? '' } : {};
  run(`task:${taskSid}`, 'Could not complete the task', async () => {
    const task = await client.call(`api/tasks/${encodeURIComponent(taskSid)}/complete`, body);
    if (task?.assignment_status === 'completed') {
      state.reservations = state.reservations.filter((r) => r.task?.sid !== taskSid);
      forgetDraft(taskSid);
      if (!auto) backToTop();
    }
    const notes = saved ? ' with your notes' : '';
    const said = auto
      ? `The wrap-up time ran out: the call from ${callerLabel(reservation)} was completed${notes}.`
      : `You completed the call from ${callerLabel(reservation)}${notes}.`;
    log(said, { key: `completed:${taskSid}` });
  }).catch((err) => wrapUpError(taskSid, `${err.message} Your notes are kept on this page.`));
}

/** After Complete the card is gone: the page goes back to its top, where the status and the next call are,
 * with the focus on the worker's name rather than lost with the button. */
function backToTop() {
  window.scrollTo({ top: 0, behavior: 'instant' });
  $('worker-name').focus({ preventScroll: true });
}

function extendWrapUp(reservation) {
  const taskSid = reservation.task?.sid;
  if (typeof taskSid !== 'string') return;
  run(`task:${taskSid}`, 'Could not extend the wrap-up', async () => {
    const answer = await client.call(`api/tasks/${encodeURIComponent(taskSid)}/wrap-up/extend`, {});
    const wrapUp = answer?.wrap_up;
    if (wrapUp && Number.isFinite(wrapUp.ends_at)) {
      state.reservations = state.reservations.map((r) => (r.task?.sid === taskSid ? { ...r, wrap_up: wrapUp } : r));
      announce('Wrap-up extended.');
      log('You extended the wrap-up.');
    }
  }).catch(() => {});
}

/** A wrapping card whose countdown ran out completes its task with the notes, once. */
function completeExpiredWrapUps(now) {
  for (const r of state.reservations) {
    const taskSid = r.task?.sid;
    if (r.status !== 'wrapping' || typeof taskSid !== 'string' || !Number.isFinite(r.wrap_up?.ends_at)) continue;
    if (r.wrap_up.ends_at > now || state.autoCompleted.has(taskSid) || state.busy.has(`task:${taskSid}`)) continue;
    state.autoCompleted.add(taskSid);
    complete(r, true);
  }
}

function wrapUpCard(taskSid) {
  return $('task-slot').querySelector(`[data-testid="reservation"][data-task-sid="${CSS.escape(taskSid)}"]`);
}

function wrapUpError(taskSid, message) {
  const el = wrapUpCard(taskSid)?.querySelector('[data-testid="wrap-up-error"]');
  if (el) setUserText(el, message, 400);
}

/** The disposition and notes of `taskSid`'s wrap-up: its form's when shown (what the worker sees is what
 * is sent, with storage or without), else the draft kept for it. */
function wrapUpValues(taskSid) {
  const card = wrapUpCard(taskSid);
  return card ? formValues(card) : readDraft(taskSid);
}

/** Keeps what is typed in a wrap-up form as the task's draft. */
function onWrapUpInput(event) {
  const field = event.target.closest('[data-field]');
  const card = field?.closest('[data-testid="reservation"]');
  const taskSid = card?.dataset.taskSid;
  if (!taskSid) return;
  wrapUpTyped(card, field, state.reservations.find((r) => r.task?.sid === taskSid));
}

/** The call's legs from an API answer: whether the caller is held and the worker muted. */
function noteLegs(answer) {
  if (!answer || typeof answer.sid !== 'string' || answer.sid !== state.conference?.sid) return;
  const legs = Array.isArray(answer.participants) ? answer.participants : [];
  const leg = (role) => legs.find((p) => p?.role === role);
  state.legs = { sid: answer.sid, hold: leg('customer')?.hold === true, muted: leg('worker')?.muted === true };
}

let legsLoading = false;
let legsAgain = false;

/** Reads the legs of the call on the page (after each state: another tab may have held or muted). */
async function loadLegs() {
  const sid = state.conference?.sid;
  if (!sid) {
    state.legs = null;
    return;
  }
  if (legsLoading) {
    legsAgain = true;
    return;
  }
  legsLoading = true;
  try {
    noteLegs(await client.read(`api/conferences/${encodeURIComponent(sid)}`));
    render();
  } catch {
    // The buttons still work; the next state tries again.
  } finally {
    legsLoading = false;
    if (legsAgain) {
      legsAgain = false;
      loadLegs();
    }
  }
}

/** Holds or resumes the caller (`hold`), or mutes or unmutes the worker (`mute`). */
function toggleLeg(sid, what, on) {
  if (typeof sid !== 'string' || !sid) return;
  const failure = {
    hold: on ? 'Could not put the caller on hold' : 'Could not take the caller off hold',
    mute: on ? 'Could not mute your line' : 'Could not unmute your line',
  }[what];
  run(`conference:${sid}`, failure, async () => {
    const body = what === 'hold' ? { hold: on } : { muted: on };
    noteLegs(await client.call(`api/conferences/${encodeURIComponent(sid)}/${what}`, body));
    const said = {
      hold: on ? 'You put the caller on hold.' : 'You took the caller off hold.',
      mute: on ? 'You muted your line: the caller cannot hear you.' : 'You unmuted your line.',
    }[what];
    log(said);
  }).catch(() => {});
}

function endConference(sid) {
  if (typeof sid !== 'string' || !sid) return;
  run(`conference:${sid}`, 'Could not end the conference', async () => {
    const reservation = state.conference?.sid === sid ? conferenceReservation(state.conference) : null;
    const conference = await client.call(`api/conferences/${encodeURIComponent(sid)}/end`, {});
    if (state.conference?.sid === sid && conference?.status === 'completed') state.conference = null;
    log(reservation ? `You ended the call with ${callerLabel(reservation)}.` : 'You ended the call.', { key: `ended:${sid}` });
  }).catch(() => {});
}

// ---------------------------------------------------------------------------------------------------------
// Rendering

function render() {
  renderWorkspace();
  renderWorker();
  renderActivityButtons($('activity-buttons'), {
    activities: state.workspace?.activities ?? [],
    current: state.worker?.activity_sid,
    busy: state.busy.has('activity'),
  });
  renderCalls();
  renderAlerting();
  tick();
}

function renderWorkspace() {
  const ws = state.workspace;
  if (!ws) return;
  setUserText($('workspace-name'), ws.friendly_name || ws.sid || 'Workspace');
  const mode = $('mode');
  mode.hidden = !ws.mode;
  mode.textContent = cleanText({ local: 'local demo', twilio: 'Twilio' }[ws.mode] ?? ws.mode ?? '');
}

function activityName(worker) {
  if (typeof worker?.activity_name === 'string' && worker.activity_name) return worker.activity_name;
  const found = state.workspace?.activities.find((a) => a.sid === worker?.activity_sid);
  return found?.friendly_name ?? 'Unknown activity';
}

function renderWorker() {
  const worker = state.worker;
  setUserText($('worker-name'), worker?.friendly_name ?? '');
  // Which calls come to this worker: the queues whose expressions take it (from the state).
  const queues = Array.isArray(worker?.queues) ? worker.queues.filter((q) => typeof q === 'string') : null;
  const queuesLine = $('queues');
  queuesLine.hidden = queues === null;
  if (queues !== null) {
    setUserText(
      queuesLine,
      queues.length > 0
        ? `Your calls come from: ${queues.join(', ')}`
        : 'No queue sends you calls: ask your supervisor to add you to one.',
      200,
    );
  }
  const activity = $('activity');
  activity.dataset.available = String(Boolean(worker?.available));
  activity.dataset.onCall = String(Boolean(state.conference));
  const name = worker ? activityName(worker) : '…';
  setUserText($('activity-name'), name);
  const time = $('activity-time');
  if (Number.isFinite(worker?.activity_changed_at)) time.dataset.since = worker.activity_changed_at;
  else {
    delete time.dataset.since;
    time.textContent = '';
  }
}

const cards = new Cards();

/** The missed-call banner (see [`showMissed`]), until the worker is available again or a call rings. */
function renderMissed() {
  // Available again since the miss (the state may still show the worker as it was when the call rang, before
  // TaskRouter moved it to the timeout activity), or another call rings: the banner has done its job.
  const backOnline =
    state.worker?.available === true && Number(state.worker?.activity_changed_at) > (state.missed?.at ?? Infinity);
  if (state.missed && (backOnline || state.reservations.some((r) => r.status === 'pending'))) state.missed = null;
  showMissed($('missed'), state.missed, state.worker);
}

function renderCalls() {
  renderMissed();
  const wanted = new Map();
  const pending = state.reservations
    .filter((r) => r.status === 'pending')
    .sort((a, b) => (a.created_at ?? 0) - (b.created_at ?? 0));
  // The accepted call is the conference card's: it is not shown twice.
  const others = state.reservations.filter((r) => r.status !== 'pending' && !(state.conference && r.status === 'accepted'));
  for (const r of pending) wanted.set(`r:${r.sid}`, { slot: $('pending-slot'), data: r, build: reservationCard });
  if (state.conference) {
    const data = { conference: state.conference, reservation: conferenceReservation(state.conference) };
    wanted.set(`c:${state.conference.sid}`, { slot: $('conference-slot'), data, build: conferenceCard });
  }
  for (const r of others) wanted.set(`r:${r.sid}`, { slot: $('task-slot'), data: r, build: reservationCard });
  cards.show(wanted, {
    // The task's age grows with every state; it is not shown, so it must not rebuild the card. Nor does an
    // extended wrap-up, whose countdown moves in place, so that the notes being typed stay put.
    signature: (data) => JSON.stringify(data, (k, v) => (k === 'age' || k === 'wrap_up' ? undefined : v)),
    fill: fillWrapUp,
    update: updateWrapUp,
  });

  for (const card of $('calls').querySelectorAll('[data-testid="reservation"]')) {
    const busy = state.busy.has(`reservation:${card.dataset.sid}`) || state.busy.has(`task:${card.dataset.taskSid}`);
    for (const button of card.querySelectorAll('button')) button.disabled = busy;
    card.setAttribute('aria-busy', String(busy));
  }
  const conference = $('conference-slot').querySelector('[data-testid="conference"]');
  if (conference) {
    const busy = state.busy.has(`conference:${conference.dataset.sid}`);
    for (const button of conference.querySelectorAll('button')) button.disabled = busy;
    const legs = state.legs?.sid === conference.dataset.sid ? state.legs : null;
    conference.querySelector('[data-action="hold"]')?.setAttribute('aria-pressed', String(Boolean(legs?.hold)));
    conference.querySelector('[data-action="mute"]')?.setAttribute('aria-pressed', String(Boolean(legs?.muted)));
    const words = [legs?.hold ? 'The caller is on hold.' : null, legs?.muted ? 'You are muted.' : null].filter(Boolean);
    const line = conference.querySelector('[data-testid="call-state"]');
    if (line && line.textContent !== words.join(' ')) line.textContent = words.join(' ');
  }
  $('idle').hidden = wanted.size > 0;
}

/** The call a conference bridges: TaskRouter names the conference after the task (or the reservation),
 * else the one accepted call. */
function conferenceReservation(conference) {
  const accepted = state.reservations.filter((r) => r.status === 'accepted');
  const named = state.reservations.find((r) => r.task?.sid === conference.friendly_name || r.sid === conference.friendly_name);
  return named ?? (accepted.length === 1 ? accepted[0] : null);
}

/** When each reservation's task started waiting (server ms), from its age when first seen: stable, so the
 * "Waiting" timer neither jumps nor rebuilds the card. */
const waitingSince = new Map();

function noteWaiting(reservations, at) {
  for (const r of reservations) {
    if (!waitingSince.has(r.sid) && Number.isFinite(r.task?.age) && Number.isFinite(at)) waitingSince.set(r.sid, at - r.task.age * 1000);
    if (waitingSince.has(r.sid)) r.waiting_since = waitingSince.get(r.sid);
  }
  const live = new Set(reservations.map((r) => r.sid));
  for (const sid of waitingSince.keys()) if (!live.has(sid)) waitingSince.delete(sid);
}

/** Pending reservations that should ring: not being answered and not yet timed out. */
function ringingReservations() {
  const now = serverNow();
  return state.reservations.filter(
    (r) =>
      r.status === 'pending' &&
      !state.busy.has(`reservation:${r.sid}`) &&
      !(Number.isFinite(r.timeout_at) && r.timeout_at <= now),
  );
}

let baseTitle = null;

/** Ring, notification, announcement and title follow the ringing reservations. */
function renderAlerting() {
  baseTitle ??= document.title;
  const ringing = state.signedIn ? ringingReservations() : [];
  if (ringing.length > 0) ringer.start();
  else ringer.stop();
  // Exposed for tests and styling: whether the ring tone is on (even while the browser blocks sound).
  document.body.dataset.ringing = String(ringer.ringing);

  for (const r of ringing) {
    if (state.announced.has(r.sid)) continue;
    state.announced.add(r.sid);
    announce(`Incoming call from ${callerLabel(r)}. Accept or Reject.`);
    const card = $('pending-slot').querySelector(`[data-sid="${CSS.escape(r.sid)}"]`);
    const accept = card?.querySelector('[data-action="accept"]');
    // Bring the keyboard to the call, unless the worker is in the middle of something else.
    const idle = [document.body, null, $('worker-name')].includes(document.activeElement);
    if (accept && idle) accept.focus();
  }
  if (document.hidden) {
    for (const r of ringing) notifier.notify(r.sid, 'Incoming call', `From ${callerLabel(r)}`);
    notifier.keepOnly(new Set(ringing.map((r) => r.sid)));
  } else {
    notifier.keepOnly(new Set());
  }

  const title = ringing.length > 0 ? `Incoming call · ${baseTitle}` : baseTitle;
  if (document.title !== title) document.title = title;

  const blocked = state.signedIn && !ringer.audible;
  $('sound-button').hidden = !blocked;
  for (const hint of document.querySelectorAll('.sound-hint')) hint.hidden = !(blocked && ringing.length > 0);
}

function tick() {
  const now = serverNow();
  const expired = tickTimers(document.body, now);
  if (state.signedIn) completeExpiredWrapUps(now);
  // A countdown that ran out stops the ring at once; the server's next state removes the card.
  if (expired) renderAlerting();
}

// ---------------------------------------------------------------------------------------------------------
// Alerts and announcements

/** Shows `message` (or nothing, for `null`) in the alert region. */
function showAlert(message) {
  alertIn($('alert'), message);
}

function report(message) {
  showAlert(message);
  log(message, { kind: 'error' });
}

/** Says `text` to a screen reader. */
function announce(text) {
  announceIn($('announcer'), text);
}

boot();
