// The worker page: wiring between the API, the live connection, the ring tone and the DOM.
//
// Layout of the page's modules:
// - api.js:  JSON API calls and the signed-in session (token in sessionStorage, refresh before expiry);
// - live.js: the WebSocket, its hello, reconnect with backoff, sequence numbers;
// - ring.js: the Web Audio ring tone and desktop notifications;
// - view.js: building cards and log lines as text, timers;
// - app.js:  this file: the state the page shows, rendering it, and the worker's actions.
//
// The server sends the worker's whole state after changes, so rendering is idempotent: whatever the order
// of messages and however many tabs are open, the page shows the last state it was sent, with the event
// frames numbered after that state applied on top. An event frame carries what the event itself says (a new
// reservation with its task, a reservation's new status, a new activity), so a call shows as soon as its
// `reservation.created` frame arrives, without waiting for a state.

import { ApiError, Client, fetchWorkspace } from './api.js';
import { Live } from './live.js';
import { Notifier, Ringer, askNotificationPermission } from './ring.js';
import {
  ATTRIBUTES_MAX,
  attributesWithWrapUp,
  callerLabel,
  cleanText,
  conferenceCard,
  logLine,
  reservationCard,
  setUserText,
  shortText,
  tickTimers,
} from './view.js';

/** The Activity panel's lines and the raw events, kept across a reload of the tab. */
const LOG_KEY = 'trworker.log';
const SEQ_KEY = 'trworker.seq';
/** Wrap-up drafts (disposition and notes) are kept per task under this prefix until the task is completed,
 * so that a reload or a lost connection does not lose what the worker typed. */
const DRAFT_PREFIX = 'trworker.wrapup.';
const LOG_MAX = 200;
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
  onChannel: renderUpstream,
  onNotice: (msg) => {
    // Said in the Activity panel and aloud: the worker should know who changed their status.
    if (typeof msg.text !== 'string' || !msg.text) return;
    const text = cleanText(msg.text).slice(0, 200);
    log(text);
    announce(text);
  },
  onStatus: renderConnection,
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
  $('log-clear').addEventListener('click', clearLog);
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

  restoreLog();
  loadWorkspace();
  const session = client.restore();
  if (session) enterDesk(session, readSeq());
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
  clearLog();
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
  forgetSeq();
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
  saveSeq();
  render();
}

/** Keeps the last sequence number seen, after states and events alike: a reload asks only for the events
 * after it, so that none is replayed into the Activity panel twice. */
function saveSeq() {
  try {
    if (Number.isFinite(live.lastSeq)) sessionStorage.setItem(SEQ_KEY, String(live.lastSeq));
  } catch {
    // Without storage a reload simply starts from a fresh state.
  }
}

/** An event frame: kept under "Raw events", and what it changes is shown at once (and said in the Activity
 * panel's words). */
function applyEvent(msg) {
  if (!state.signedIn) return;
  rawEvent(msg);
  if (!Number.isFinite(msg.seq)) return;
  saveSeq();
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
  const last = logEntries.findLast((e) => typeof e.activitySid === 'string');
  if (last?.activitySid === sid) return;
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

function readSeq() {
  try {
    const saved = sessionStorage.getItem(SEQ_KEY);
    const seq = Number(saved);
    return saved !== null && Number.isFinite(seq) ? seq : null;
  } catch {
    return null;
  }
}

function forgetSeq() {
  try {
    sessionStorage.removeItem(SEQ_KEY);
  } catch {
    // Nothing was stored either.
  }
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

/** `n` characters, in words. */
const characters = (n) => `${n.toLocaleString('en')} character${n === 1 ? '' : 's'}`;

/** Completes the task of a wrapping reservation with the disposition and notes of its form; `auto` when
 * the wrap-up time ran out. The size limit is checked here, before anything is sent. */
function complete(reservation, auto = false) {
  const taskSid = reservation.task?.sid;
  if (typeof taskSid !== 'string') return;
  const draft = wrapUpValues(taskSid);
  const saved = attributesWithWrapUp(reservation.task?.attributes, draft);
  if (saved && saved.length > ATTRIBUTES_MAX) {
    const over = characters(saved.length - ATTRIBUTES_MAX);
    const limit = `a task keeps at most ${characters(ATTRIBUTES_MAX)} of attributes, the call's own included`;
    // Without notes it is the disposition that does not fit: the call's own attributes are nearly full.
    const notes = Boolean(draft.notes?.trim());
    const message = notes
      ? `The notes are too long by ${over}: ${limit}. Shorten them, then Complete.`
      : `The disposition does not fit by ${over}: ${limit}, and this call's fill nearly all of it. Choose none, then Complete.`;
    wrapUpError(taskSid, message);
    if (!auto) wrapUpCard(taskSid)?.querySelector(`[data-field="${notes ? 'notes' : 'disposition'}"]`)?.focus();
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

function formValues(el) {
  const values = {};
  for (const field of el.querySelectorAll('[data-field]')) values[field.dataset.field] = field.value;
  return values;
}

/** How much room the task's attributes leave for the notes, said under them while typing, so that the limit
 * is known before Complete. */
function updateWrapUpCount(el, reservation) {
  const count = el.querySelector('[data-testid="wrap-up-count"]');
  if (!count) return;
  const attributes = reservation?.task?.attributes;
  const saved = attributesWithWrapUp(attributes, formValues(el));
  const base = attributes && typeof attributes === 'object' && !Array.isArray(attributes) ? attributes : {};
  const left = ATTRIBUTES_MAX - (saved ? saved.length : Array.from(JSON.stringify(base)).length);
  const text = left >= 0 ? `${characters(left)} left` : `${characters(-left)} too many`;
  if (count.textContent !== text) count.textContent = text;
  count.classList.toggle('is-over', left < 0);
}

/** Keeps what is typed in a wrap-up form as the task's draft. */
function onWrapUpInput(event) {
  const field = event.target.closest('[data-field]');
  const card = field?.closest('[data-testid="reservation"]');
  const taskSid = card?.dataset.taskSid;
  if (!taskSid) return;
  const draft = readDraft(taskSid);
  draft[field.dataset.field] = field.value;
  saveDraft(taskSid, draft);
  const error = card.querySelector('[data-testid="wrap-up-error"]');
  if (error?.textContent) error.textContent = '';
  updateWrapUpCount(card, state.reservations.find((r) => r.task?.sid === taskSid));
}

function readDraft(taskSid) {
  try {
    const saved = JSON.parse(sessionStorage.getItem(DRAFT_PREFIX + taskSid) ?? '{}');
    const text = (v) => (typeof v === 'string' ? v : '');
    return saved && typeof saved === 'object' ? { disposition: text(saved.disposition), notes: text(saved.notes) } : {};
  } catch {
    return {};
  }
}

function saveDraft(taskSid, draft) {
  try {
    sessionStorage.setItem(DRAFT_PREFIX + taskSid, JSON.stringify(draft));
  } catch {
    // Without storage the notes stay in the form, only not across a reload.
  }
}

function forgetDraft(taskSid) {
  try {
    sessionStorage.removeItem(DRAFT_PREFIX + taskSid);
  } catch {
    // Nothing was stored either.
  }
}

/** Forgets the drafts of tasks other than `keep` (no longer in wrap-up: completed, here or elsewhere). */
function forgetDrafts(keep) {
  try {
    const stale = [];
    for (let i = 0; i < sessionStorage.length; i += 1) {
      const key = sessionStorage.key(i);
      if (key?.startsWith(DRAFT_PREFIX) && !keep.has(key.slice(DRAFT_PREFIX.length))) stale.push(key);
    }
    for (const key of stale) sessionStorage.removeItem(key);
  } catch {
    // Nothing was stored either.
  }
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
  renderActivityButtons();
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

/** The activities behind "Go online" and "Go offline": named Available and Offline, as in the seed. */
function usualActivities(activities) {
  const named = (name) => activities.find((a) => String(a.friendly_name).toLowerCase() === name);
  const online = named('available') ?? activities.find((a) => a.available === true);
  const offline = named('offline') ?? activities.find((a) => a.available !== true && a !== online);
  return { online, offline };
}

let renderedActivities = '';

function renderActivityButtons() {
  const group = $('activity-buttons');
  const activities = state.workspace?.activities ?? [];
  const { online, offline } = usualActivities(activities);
  const entries = [];
  if (online) entries.push([online, 'Go online', 'online']);
  if (offline) entries.push([offline, 'Go offline', 'offline']);
  for (const a of activities) if (a !== online && a !== offline) entries.push([a, String(a.friendly_name), 'other']);

  const signature = JSON.stringify(entries.map(([a, label]) => [a.sid, label]));
  if (signature !== renderedActivities) {
    renderedActivities = signature;
    const focused = group.contains(document.activeElement) ? document.activeElement.dataset.activitySid : null;
    group.replaceChildren(
      ...entries.map(([activity, label, kind]) => {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = `button activity-button activity-${kind}`;
        button.dataset.activitySid = activity.sid;
        // "Go online" and "Go offline" are the page's own words; other labels are activity names.
        if (kind === 'other') setUserText(button, label, 40);
        else button.textContent = label;
        return button;
      }),
    );
    if (entries.length === 0) {
      const note = document.createElement('p');
      note.className = 'muted';
      note.textContent = 'Activities are not available yet.';
      group.append(note);
    }
    if (focused) group.querySelector(`[data-activity-sid="${CSS.escape(focused)}"]`)?.focus();
  }
  const busy = state.busy.has('activity');
  group.setAttribute('aria-busy', String(busy));
  for (const button of group.querySelectorAll('button')) {
    button.disabled = busy;
    // "Go online" and "Go offline" are actions, never shown pressed (the state line above says where the
    // worker is); the workspace's other activities are a choice whose current one is pressed.
    if (button.classList.contains('activity-other')) {
      button.setAttribute('aria-pressed', String(button.dataset.activitySid === state.worker?.activity_sid));
    } else {
      button.removeAttribute('aria-pressed');
    }
  }
}

/** Rendered cards by key, with the data they were built from, so unchanged cards (and focus) stay put. */
const cards = new Map();

/** The missed-call banner: shown after a reservation timed out (TaskRouter then moves the worker to the
 * workspace's timeout activity), until the worker is available again, a call rings, or it is dismissed. */
function renderMissed() {
  // Available again since the miss (the state may still show the worker as it was when the call rang, before
  // TaskRouter moved it to the timeout activity), or another call rings: the banner has done its job.
  const backOnline =
    state.worker?.available === true && Number(state.worker?.activity_changed_at) > (state.missed?.at ?? Infinity);
  if (state.missed && (backOnline || state.reservations.some((r) => r.status === 'pending'))) state.missed = null;
  const banner = $('missed');
  const now = state.worker?.activity_name ? ` You are now ${cleanText(state.worker.activity_name)}.` : '';
  const text = state.missed ? `You missed a call from ${state.missed.caller}.${now}` : '';
  // Built only while shown, so that the page has one "Go online" button otherwise.
  if (banner.dataset.text === text) return;
  banner.dataset.text = text;
  banner.hidden = !state.missed;
  banner.replaceChildren();
  if (!state.missed) return;
  const button = (id, label, kind) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.id = id;
    b.className = `button ${kind}`;
    b.textContent = label;
    return b;
  };
  const actions = document.createElement('div');
  actions.className = 'actions';
  actions.append(button('missed-online', 'Go online', 'primary'), button('missed-dismiss', 'Dismiss', 'quiet'));
  const line = document.createElement('p');
  line.textContent = text;
  banner.append(line, actions);
}

function renderCalls() {
  renderMissed();
  const wanted = new Map();
  const pending = state.reservations
    .filter((r) => r.status === 'pending')
    .sort((a, b) => (a.created_at ?? 0) - (b.created_at ?? 0));
  // The accepted call is the conference card's: it is not shown twice.
  const others = state.reservations.filter((r) => r.status !== 'pending' && !(state.conference && r.status === 'accepted'));
  for (const r of pending) wanted.set(`r:${r.sid}`, { slot: 'pending-slot', data: r, build: reservationCard });
  if (state.conference) {
    const data = { conference: state.conference, reservation: conferenceReservation(state.conference) };
    wanted.set(`c:${state.conference.sid}`, { slot: 'conference-slot', data, build: conferenceCard });
  }
  for (const r of others) wanted.set(`r:${r.sid}`, { slot: 'task-slot', data: r, build: reservationCard });

  for (const [key, card] of cards) {
    if (!wanted.has(key)) {
      card.el.remove();
      cards.delete(key);
    }
  }
  const order = { 'pending-slot': [], 'conference-slot': [], 'task-slot': [] };
  for (const [key, { slot, data, build }] of wanted) {
    // The task's age grows with every state; it is not shown, so it must not rebuild the card. Nor does an
    // extended wrap-up, whose countdown moves in place, so that the notes being typed stay put.
    const signature = JSON.stringify(data, (k, v) => (k === 'age' || k === 'wrap_up' ? undefined : v));
    let card = cards.get(key);
    if (!card || card.signature !== signature) {
      const el = build(data);
      fillWrapUp(el, data, card?.el);
      if (card) replaceKeepingFocus(card.el, el);
      card = { el, signature };
      cards.set(key, card);
    }
    updateWrapUp(card.el, data);
    order[slot].push(card.el);
  }
  for (const [slot, elements] of Object.entries(order)) {
    const container = $(slot);
    elements.forEach((el, i) => {
      if (container.children[i] !== el) container.insertBefore(el, container.children[i] ?? null);
    });
  }

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

/** Fills a new wrap-up form from the form it replaces, else from its task's draft. */
function fillWrapUp(el, reservation, old) {
  const taskSid = reservation?.task?.sid;
  if (reservation?.status !== 'wrapping' || typeof taskSid !== 'string') return;
  const shown = old?.querySelector('[data-field]') ? formValues(old) : null;
  const values = shown ?? readDraft(taskSid);
  for (const field of el.querySelectorAll('[data-field]')) field.value = values[field.dataset.field] ?? '';
}

/** Says the room left for notes, moves a wrap-up's countdown to the latest end, and offers "Extend" while it
 * can be extended. */
function updateWrapUp(el, reservation) {
  if (reservation?.status !== 'wrapping') return;
  updateWrapUpCount(el, reservation);
  const wrapUp = reservation.wrap_up;
  if (!wrapUp) return;
  const timer = el.querySelector('[data-testid="wrap-up-countdown"]');
  if (timer && Number.isFinite(wrapUp.ends_at) && timer.dataset.until !== String(wrapUp.ends_at)) timer.dataset.until = wrapUp.ends_at;
  const extend = el.querySelector('[data-action="extend"]');
  if (extend) extend.hidden = !(Number.isFinite(wrapUp.limit_at) && wrapUp.ends_at < wrapUp.limit_at);
}

function replaceKeepingFocus(oldEl, newEl) {
  const active = document.activeElement;
  const action = oldEl.contains(active) ? active.dataset.action : null;
  oldEl.replaceWith(newEl);
  if (action) newEl.querySelector(`[data-action="${CSS.escape(action)}"]`)?.focus();
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

/** The page's own connection to the server, and the server's link to TaskRouter for this worker (its event
 * channel): calls reach the page only when both are up. */
const connection = { page: 'offline', upstream: 'connected', reason: '' };

/** The longest reason shown in the connection pill (the whole one is its title). */
const REASON_MAX = 120;

function renderConnection(status) {
  const before = connection.page;
  connection.page = status;
  // A new connection hears the server's link to TaskRouter anew (the server says it when it is down).
  if (status !== 'connected') Object.assign(connection, { upstream: 'connected', reason: '' });
  showConnection();
  if (status === 'connected' && before !== 'connected') loadWorkspace();
}

function renderUpstream(msg) {
  connection.upstream = msg.status === 'reconnecting' ? 'reconnecting' : 'connected';
  connection.reason = typeof msg.reason === 'string' ? msg.reason : '';
  showConnection();
}

function showConnection() {
  const el = $('connection');
  // Worded as a connection, never as an activity: "Offline" is also the name of a worker's activity.
  let status = connection.page;
  let text =
    { connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Disconnected' }[status] ?? 'Disconnected';
  let title = '';
  if (status === 'connected' && connection.upstream === 'reconnecting') {
    // The page reaches the server, but the server does not hear from TaskRouter: new calls would not show.
    status = 'reconnecting';
    const reason = connection.reason;
    const cut = reason.length > REASON_MAX ? `${reason.slice(0, REASON_MAX - 1)}…` : reason;
    text = cut ? `Reconnecting to TaskRouter: ${cut}` : 'Reconnecting to TaskRouter…';
    title = reason;
  }
  el.dataset.state = status;
  el.textContent = text;
  el.title = title;
}

function tick() {
  const now = serverNow();
  const expired = tickTimers(document.body, now);
  if (state.signedIn) completeExpiredWrapUps(now);
  // A countdown that ran out stops the ring at once; the server's next state removes the card.
  if (expired) renderAlerting();
}

// ---------------------------------------------------------------------------------------------------------
// Alerts, announcements and the log

function showAlert(message) {
  const region = $('alert');
  if (!message) {
    region.replaceChildren();
    return;
  }
  const dismiss = document.createElement('button');
  dismiss.type = 'button';
  dismiss.className = 'button quiet small';
  dismiss.dataset.action = 'dismiss';
  dismiss.textContent = 'Dismiss';
  const text = setUserText(document.createElement('p'), message, 300);
  region.replaceChildren(text, dismiss);
}

function report(message) {
  showAlert(message);
  log(message, { kind: 'error' });
}

function announce(text) {
  const region = $('announcer');
  // Emptying first makes a repeated message be read again.
  region.textContent = '';
  setTimeout(() => {
    region.textContent = cleanText(text);
  }, 50);
}

/** The Activity panel's lines: `{at, text, kind, key?, activitySid?}`. A line with a `key` is said once. */
let logEntries = [];
/** TaskRouter's events as they came: `{at, seq, type, text}`, shown under "Raw events". */
let rawEntries = [];

function log(text, { at = serverNow(), kind = 'info', key = null, activitySid = null } = {}) {
  if (key && logEntries.some((e) => e.key === key)) return;
  logEntries.push({ at, text: String(text), kind, ...(key ? { key } : {}), ...(activitySid ? { activitySid } : {}) });
  if (logEntries.length > LOG_MAX) logEntries = logEntries.slice(-LOG_MAX);
  saveLog();
  renderLog();
}

/** Keeps an event frame under "Raw events", once: a replay has the same sequence number, time and type (a
 * restarted server numbers anew, so the number alone would not do). */
function rawEvent(msg) {
  const entry = {
    at: Number.isFinite(msg.at) ? msg.at : serverNow(),
    seq: Number.isFinite(msg.seq) ? msg.seq : null,
    type: typeof msg.event_type === 'string' ? msg.event_type : null,
    text: typeof msg.description === 'string' && msg.description ? msg.description : 'Event',
  };
  const same = (e) => e.seq === entry.seq && e.at === entry.at && e.type === entry.type;
  if (entry.seq !== null && rawEntries.some(same)) return;
  rawEntries.push(entry);
  if (rawEntries.length > LOG_MAX) rawEntries = rawEntries.slice(-LOG_MAX);
  saveLog();
  renderLog();
}

function clearLog() {
  logEntries = [];
  rawEntries = [];
  saveLog();
  renderLog();
}

function saveLog() {
  try {
    sessionStorage.setItem(LOG_KEY, JSON.stringify({ lines: logEntries, raw: rawEntries }));
  } catch {
    // The log is a convenience; without storage it is only lost on reload.
  }
}

function restoreLog() {
  const valid = (list) =>
    Array.isArray(list) ? list.filter((e) => e && typeof e.text === 'string' && Number.isFinite(e.at)).slice(-LOG_MAX) : [];
  try {
    const saved = JSON.parse(sessionStorage.getItem(LOG_KEY) ?? '{}');
    logEntries = valid(saved?.lines);
    rawEntries = valid(saved?.raw);
  } catch {
    logEntries = [];
    rawEntries = [];
  }
  renderLog();
}

function renderLog() {
  // Newest first: on a phone the latest line is the one in view.
  // An empty list is hidden, so that the keyboard does not stop on it.
  $('log-lines').replaceChildren(...logEntries.slice().reverse().map(logLine));
  $('log-lines').hidden = logEntries.length === 0;
  $('log-empty').hidden = logEntries.length > 0;
  $('raw-lines').replaceChildren(...rawEntries.slice().reverse().map(logLine));
  $('raw-lines').hidden = rawEntries.length === 0;
  $('raw-empty').hidden = rawEntries.length > 0;
}

boot();
