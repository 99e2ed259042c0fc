// The supervisor page: every worker, every queue and the workspace's totals, live from
// /api/supervisor/ws, with sort, filter, a worker's recent reservations and "set activity".
//
// Text from outside (names, callers) is only ever set as textContent, never as markup. The picture is kept
// in `state`; one render per animation frame applies what changed, so a burst of events costs one render.

import { onJsonMessage, socketUrl } from './live.js';

const TOKEN_KEY = 'trworker.supervisor';
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 15000;
const HOUR_MS = 3600 * 1000;
/** The server's chart resolution, and the silence after which the chart leaves a gap. */
const SAMPLE_MS = 15 * 1000;
const GAP_MS = 4 * SAMPLE_MS;

const $ = (id) => document.getElementById(id);

const state = {
  session: null, // {token, name, expires_at}
  socket: null,
  attempt: 0,
  retryTimer: null,
  seq: 0,
  workers: new Map(),
  activities: [],
  queues: [],
  totals: null,
  history: [],
  live: false, // the picture is current
  pictureAt: null, // when the picture was last known to be current
  sort: { key: 'name', dir: 1 },
  filter: { text: '', activity: '' },
  selected: null,
  rows: new Map(), // sid -> <tr>
  renderQueued: false,
  reservationsTimer: null,
};

// ---- small helpers ----

/** Removes Unicode direction controls, so that a caller's number cannot show reversed. */
function clean(text) {
  return String(text ?? '').replace(/[\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, '');
}

function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function element(tag, text, className) {
  const el = document.createElement(tag);
  if (text !== undefined && text !== null) el.textContent = text;
  if (className) el.className = className;
  return el;
}

function showAlert(message) {
  $('alert').textContent = message || '';
}

// ---- the API ----

async function api(path, options = {}) {
  const headers = { Accept: 'application/json' };
  if (state.session) headers.Authorization = `Bearer ${state.session.token}`;
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const response = await fetch(path, {
    method: options.method || 'GET',
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body?.error?.message || `The server answered ${response.status}.`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return body;
}

// ---- sign-in ----

function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(TOKEN_KEY) || 'null');
    if (saved && saved.token && Date.parse(saved.expires_at) > Date.now()) return saved;
  } catch {
    // A damaged entry is a signed-out page.
  }
  return null;
}

function showSignIn(message) {
  state.session = null;
  sessionStorage.removeItem(TOKEN_KEY);
  disconnect();
  $('floor').hidden = true;
  $('sign-out').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message || '';
  setConnection('offline', 'Signed out');
  $('password').focus();
}

async function signIn(event) {
  event.preventDefault();
  const button = $('signin-button');
  button.disabled = true;
  $('signin-error').textContent = '';
  try {
    const body = await api('/api/supervisor/token', {
      method: 'POST',
      body: { name: $('name').value.trim(), password: $('password').value },
    });
    state.session = { token: body.token, name: body.name, expires_at: body.expires_at };
    sessionStorage.setItem(TOKEN_KEY, JSON.stringify(state.session));
    $('password').value = '';
    start();
  } catch (error) {
    $('signin-error').textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

function start() {
  $('signin').hidden = true;
  $('floor').hidden = false;
  $('sign-out').hidden = false;
  connect();
}

// ---- the live socket ----

function setConnection(kind, text) {
  const el = $('connection');
  el.dataset.state = kind;
  el.textContent = text;
}

function markStale(reason) {
  state.live = false;
  const banner = $('stale');
  document.body.classList.add('is-stale');
  if (state.pictureAt) {
    banner.textContent = `Reconnecting… Showing the last known picture, from ${clock(state.pictureAt)}.` +
      (reason ? ` (${clean(reason)})` : '');
    banner.hidden = false;
  }
  setConnection('reconnecting', 'Reconnecting…');
}

function markLive() {
  state.live = true;
  state.pictureAt = Date.now();
  document.body.classList.remove('is-stale');
  $('stale').hidden = true;
  setConnection('connected', 'Live');
}

function disconnect() {
  clearTimeout(state.retryTimer);
  const socket = state.socket;
  state.socket = null;
  if (socket) socket.close(1000, 'signed out');
}

function connect() {
  if (!state.session) return;
  const socket = new WebSocket(socketUrl('/api/supervisor/ws'));
  state.socket = socket;
  setConnection(state.pictureAt ? 'reconnecting' : 'connecting', state.pictureAt ? 'Reconnecting…' : 'Connecting…');
  socket.addEventListener('open', () => {
    if (state.socket !== socket) return;
    socket.send(JSON.stringify({ type: 'hello', token: state.session.token }));
  });
  onJsonMessage(socket, () => state.socket === socket, onMessage);
  socket.addEventListener('close', (event) => {
    if (state.socket !== socket) return;
    state.socket = null;
    if (event.code === 4401 || event.code === 4403) {
      showSignIn('Your sign-in is no longer valid. Sign in again.');
      return;
    }
    markStale('connection lost');
    const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** state.attempt);
    state.attempt += 1;
    state.retryTimer = setTimeout(connect, wait / 2 + Math.random() * (wait / 2));
  });
}

function onMessage(msg) {
  if (msg.type === 'picture') {
    state.attempt = 0;
    state.seq = msg.seq;
    state.workers = new Map((msg.workers || []).map((w) => [w.sid, w]));
    state.activities = msg.activities || [];
    $('workspace-name').textContent = clean(msg.workspace?.friendly_name || 'Workspace');
    applyStats(msg);
    fillActivitySelects();
    if (msg.connected) markLive();
    else markStale();
    queueRender();
    return;
  }
  if (msg.type === 'error') {
    showAlert(msg.message);
    return;
  }
  if (Number.isFinite(msg.seq)) {
    if (msg.seq <= state.seq) return;
    state.seq = msg.seq;
  }
  if (msg.type === 'workers') {
    for (const worker of msg.workers || []) {
      const before = state.workers.get(worker.sid);
      state.workers.set(worker.sid, worker);
      // The open details follow a new offer, call or outcome of their worker.
      const changed = (a, b) => (a?.reservation_sid ?? null) !== (b?.reservation_sid ?? null) || a?.status !== b?.status;
      if (worker.sid === state.selected && (changed(before?.call, worker.call) || changed(before?.pending, worker.pending))) {
        clearTimeout(state.reservationsTimer);
        state.reservationsTimer = setTimeout(() => loadReservations(worker.sid, true), 300);
      }
    }
    for (const sid of msg.removed || []) state.workers.delete(sid);
    state.pictureAt = Date.now();
    queueRender();
  } else if (msg.type === 'stats') {
    applyStats(msg);
    state.pictureAt = Date.now();
    queueRender();
  } else if (msg.type === 'channel' && msg.status === 'reconnecting') {
    markStale(msg.reason);
  } else if (msg.type === 'shutdown') {
    // The server is going away (a restart): reconnect promptly; the backoff finds it when it is back.
    state.attempt = 0;
    markStale('the server is restarting');
  }
}

function applyStats(msg) {
  state.queues = msg.queues || [];
  state.totals = msg.totals || null;
  state.history = msg.history || [];
}

// ---- rendering ----

function queueRender() {
  if (state.renderQueued) return;
  state.renderQueued = true;
  requestAnimationFrame(() => {
    state.renderQueued = false;
    render();
  });
}

function render() {
  renderTotals();
  renderQueues();
  renderChart();
  renderWorkers();
  renderDetailHead();
}

function renderTotals() {
  const t = state.totals;
  $('total-workers').textContent = t ? String(t.workers) : '–';
  $('total-available').textContent = t ? String(t.workers_available) : '–';
  $('total-waiting').textContent = t ? String(t.tasks_waiting) : '–';
  $('total-longest').textContent = t ? duration(t.longest_wait * 1000) : '–';
  $('total-tasks').textContent = t ? String(t.tasks) : '–';
}

function renderQueues() {
  const body = $('queues');
  body.replaceChildren(
    ...state.queues.map((q) => {
      const tr = document.createElement('tr');
      tr.dataset.sid = q.sid;
      tr.append(
        element('th', clean(q.name)),
        element('td', String(q.tasks_waiting), 'num'),
        element('td', q.tasks_waiting > 0 ? duration(q.longest_wait * 1000) : '–', 'num'),
        element('td', String(q.workers_available), 'num'),
        element('td', String(q.workers_eligible), 'num'),
      );
      tr.firstChild.scope = 'row';
      return tr;
    }),
  );
}

const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) el.setAttribute(k, String(v));
  return el;
}

/** Tasks waiting and workers available over the last hour, drawn as two step lines. */
function renderChart() {
  const width = 600;
  const height = 160;
  const pad = { left: 34, right: 8, top: 8, bottom: 22 };
  const now = Date.now();
  const points = state.history.filter(([at]) => at >= now - HOUR_MS);
  const max = Math.max(1, ...points.map(([, w, a]) => Math.max(w, a)));
  const x = (at) => pad.left + ((at - (now - HOUR_MS)) / HOUR_MS) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - v / max) * (height - pad.top - pad.bottom);
  // A step line; where no sample came for a while (no supervisor page was open), a gap.
  const line = (index) => {
    let d = '';
    let previous = null;
    for (const point of points) {
      const [px, py] = [x(point[0]).toFixed(1), y(point[index]).toFixed(1)];
      if (previous === null || point[0] - previous[0] > GAP_MS) {
        if (previous !== null) d += ` H${x(previous[0] + SAMPLE_MS).toFixed(1)}`;
        d += ` M${px},${py}`;
      } else {
        d += ` H${px} V${py}`;
      }
      previous = point;
    }
    return previous === null ? '' : `${d} H${x(now).toFixed(1)}`.trim();
  };
  const last = points[points.length - 1];
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, role: 'img', class: 'chart-svg' });
  const title = svg('title', {});
  title.textContent = last
    ? `Now ${last[1]} tasks waiting and ${last[2]} workers available; the most in the last hour: ${max}.`
    : 'No figures yet.';
  root.append(title);
  for (const v of [0, max]) {
    root.append(svg('line', { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: 'grid' }));
    const label = svg('text', { x: pad.left - 6, y: y(v) + 4, class: 'axis', 'text-anchor': 'end' });
    label.textContent = String(v);
    root.append(label);
  }
  for (const [at, text, anchor] of [[now - HOUR_MS, '60 min ago', 'start'], [now, 'now', 'end']]) {
    const label = svg('text', { x: x(at), y: height - 6, class: 'axis', 'text-anchor': anchor });
    label.textContent = text;
    root.append(label);
  }
  root.append(svg('path', { d: line(1), class: 'series waiting' }));
  root.append(svg('path', { d: line(2), class: 'series available' }));
  $('chart').replaceChildren(root);
}

function callText(item, now) {
  if (!item) return '';
  const who = clean(item.caller || 'Unknown caller');
  const since = Number.isFinite(item.since) ? duration(now - item.since) : '';
  return item.status === 'wrapping' ? `Wrap-up · ${who} ${since}` : `${who} ${since}`.trim();
}

const SORTS = {
  name: (a, b) => a.name.localeCompare(b.name),
  activity: (a, b) => (a.activity_name || '').localeCompare(b.activity_name || ''),
  since: (a, b) => (a.activity_since ?? Infinity) - (b.activity_since ?? Infinity),
  call: (a, b) => (a.call?.since ?? Infinity) - (b.call?.since ?? Infinity),
  pending: (a, b) => (a.pending?.since ?? Infinity) - (b.pending?.since ?? Infinity),
};

function visibleWorkers() {
  const text = state.filter.text.toLowerCase();
  const activity = state.filter.activity;
  const list = [...state.workers.values()].filter((w) => {
    if (activity && w.activity_sid !== activity) return false;
    if (!text) return true;
    const haystack = [w.name, w.call?.caller, w.pending?.caller].filter(Boolean).join(' ').toLowerCase();
    return haystack.includes(text);
  });
  const compare = SORTS[state.sort.key] || SORTS.name;
  list.sort((a, b) => compare(a, b) * state.sort.dir || a.name.localeCompare(b.name) || (a.sid < b.sid ? -1 : 1));
  return list;
}

function rowFor(sid) {
  let tr = state.rows.get(sid);
  if (tr) return tr;
  tr = document.createElement('tr');
  tr.dataset.sid = sid;
  tr.dataset.testid = 'worker-row';
  const name = element('th', '', 'name');
  name.scope = 'row';
  const manage = element('button', 'Manage', 'button quiet small');
  manage.type = 'button';
  manage.addEventListener('click', () => openDetail(sid));
  const actions = element('td', '', 'actions');
  actions.append(manage);
  tr.append(name, element('td', '', 'activity'), element('td', '', 'since'), element('td', '', 'call'),
    element('td', '', 'pending'), actions);
  state.rows.set(sid, tr);
  return tr;
}

function fillRow(tr, worker, now) {
  const [name, activity, since, call, pending, actions] = tr.children;
  name.textContent = clean(worker.name);
  activity.textContent = clean(worker.activity_name || '–');
  activity.dataset.available = String(Boolean(worker.available));
  since.textContent = Number.isFinite(worker.activity_since) ? duration(now - worker.activity_since) : '–';
  call.textContent = callText(worker.call, now);
  pending.textContent = callText(worker.pending, now);
  actions.firstChild.setAttribute('aria-label', `Manage ${clean(worker.name)}`);
}

function renderWorkers() {
  const now = Date.now();
  const list = visibleWorkers();
  for (const sid of state.rows.keys()) {
    if (!state.workers.has(sid)) state.rows.delete(sid);
  }
  const body = $('workers');
  const rows = list.map((worker) => {
    const tr = rowFor(worker.sid);
    fillRow(tr, worker, now);
    return tr;
  });
  const current = [...body.children];
  const same = current.length === rows.length && current.every((tr, i) => tr === rows[i]);
  if (!same) body.replaceChildren(...rows);
  // A live region: only a new text is announced, so it is set only when it changes.
  const count = `${list.length} of ${state.workers.size} workers shown`;
  if ($('worker-count').textContent !== count) $('worker-count').textContent = count;
  for (const th of document.querySelectorAll('th[data-key]')) {
    if (th.dataset.key === state.sort.key) th.setAttribute('aria-sort', state.sort.dir > 0 ? 'ascending' : 'descending');
    else th.removeAttribute('aria-sort');
  }
}

/** The clocks in the table move every second without a new picture. */
function tick() {
  const now = Date.now();
  for (const tr of $('workers').children) {
    const worker = state.workers.get(tr.dataset.sid);
    if (worker) fillRow(tr, worker, now);
  }
  if (state.history.length) renderChart();
}

function fillActivitySelects() {
  const filter = $('filter-activity');
  const chosen = filter.value;
  const options = state.activities.map((a) => {
    const option = element('option', clean(a.friendly_name));
    option.value = a.sid;
    return option;
  });
  const all = element('option', 'All');
  all.value = '';
  filter.replaceChildren(all, ...options.map((o) => o.cloneNode(true)));
  filter.value = state.activities.some((a) => a.sid === chosen) ? chosen : '';
  state.filter.activity = filter.value;
  const select = $('activity-select');
  const selected = select.value;
  select.replaceChildren(...options);
  if (state.activities.some((a) => a.sid === selected)) select.value = selected;
}

// ---- a worker's details and the activity action ----

function renderDetailHead() {
  if (!state.selected) return;
  const worker = state.workers.get(state.selected);
  if (!worker) {
    $('detail-status').textContent = 'This worker is no longer in the workspace.';
    $('activity-button').disabled = true;
    return;
  }
  $('detail-title').textContent = clean(worker.name);
  $('detail-status').textContent = `${clean(worker.activity_name || '–')} for ${duration(Date.now() - worker.activity_since)}`;
}

async function openDetail(sid) {
  state.selected = sid;
  $('detail').hidden = false;
  $('activity-result').textContent = '';
  $('activity-button').disabled = false;
  const worker = state.workers.get(sid);
  if (worker?.activity_sid) $('activity-select').value = worker.activity_sid;
  renderDetailHead();
  $('detail-title').focus();
  await loadReservations(sid);
}

/** Loads `sid`'s recent reservations into the details; `again`: a refresh, which keeps the list meanwhile. */
async function loadReservations(sid, again = false) {
  const body = $('reservations');
  if (!again) {
    const loading = document.createElement('tr');
    loading.append(element('td', 'Loading…'));
    body.replaceChildren(loading);
  }
  try {
    const answer = await api(`/api/supervisor/workers/${encodeURIComponent(sid)}/reservations`);
    if (state.selected !== sid) return;
    const rows = answer.reservations.map((r) => {
      const tr = document.createElement('tr');
      tr.append(
        element('td', Number.isFinite(r.created_at) ? clock(r.created_at) : '–'),
        element('td', clean(r.caller || '–')),
        element('td', clean(r.queue || '–')),
        element('td', clean(r.status)),
      );
      return tr;
    });
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      tr.append(element('td', 'No reservations yet.'));
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  } catch (error) {
    if (error.status === 401 || error.status === 403) return showSignIn(error.message);
    body.replaceChildren();
    $('activity-result').textContent = error.message;
  }
}

async function setActivity(event) {
  event.preventDefault();
  const sid = state.selected;
  const activitySid = $('activity-select').value;
  if (!sid || !activitySid) return;
  const button = $('activity-button');
  button.disabled = true;
  $('activity-result').textContent = 'Setting…';
  try {
    const answer = await api(`/api/supervisor/workers/${encodeURIComponent(sid)}/activity`, {
      method: 'POST',
      body: { activity_sid: activitySid },
    });
    const worker = answer.worker;
    $('activity-result').textContent = `${clean(worker.friendly_name)} is now ${clean(worker.activity_name)}.`;
  } catch (error) {
    if (error.status === 401 || error.status === 403) return showSignIn(error.message);
    $('activity-result').textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

function closeDetail() {
  const sid = state.selected;
  state.selected = null;
  $('detail').hidden = true;
  const row = sid && state.rows.get(sid);
  if (row?.isConnected) row.querySelector('button')?.focus();
}

// ---- wiring ----

function init() {
  $('signin-form').addEventListener('submit', signIn);
  $('sign-out').addEventListener('click', () => showSignIn(''));
  $('activity-form').addEventListener('submit', setActivity);
  $('detail-close').addEventListener('click', closeDetail);
  $('detail').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeDetail();
  });
  // `input` as one types; `change` too, for a field emptied or filled all at once (autofill, tools).
  for (const kind of ['input', 'change']) {
    $('filter-text').addEventListener(kind, (event) => {
      state.filter.text = event.target.value.trim();
      queueRender();
    });
  }
  $('filter-activity').addEventListener('change', (event) => {
    state.filter.activity = event.target.value;
    queueRender();
  });
  for (const button of document.querySelectorAll('button[data-sort]')) {
    button.addEventListener('click', () => {
      const key = button.dataset.sort;
      state.sort = { key, dir: state.sort.key === key ? -state.sort.dir : 1 };
      queueRender();
    });
  }
  setInterval(tick, 1000);
  state.session = loadSession();
  if (state.session) start();
  else showSignIn('');
}

init();
