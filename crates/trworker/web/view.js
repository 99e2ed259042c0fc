// Building the page's pieces from data, always as text.
//
// Task attributes come from callers and integrations and may contain HTML: nothing here ever assigns markup
// (no innerHTML), every value goes through text nodes or attributes. Timers are elements carrying
// `data-since` / `data-until` (server milliseconds) that `tickTimers` refreshes, so a render need not run
// every second.

/** Creates an element: `props` are attributes (`class`, `text` and `dataset` are special), children text or nodes. */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = String(value);
    else if (key === 'dataset') Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** `mm:ss`, or `h:mm:ss` from an hour on. */
export function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const hours = Math.floor(total / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  return hours > 0 ? `${hours}:${pad2(minutes)}:${pad2(seconds)}` : `${pad2(minutes)}:${pad2(seconds)}`;
}

/** Local wall-clock time `HH:MM:SS` of an epoch in milliseconds. */
export function formatClock(ms) {
  const d = new Date(ms);
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** An attribute value as a worker should read it. */
export function displayValue(value) {
  if (value === null || value === undefined || value === '') return '—';
  if (typeof value === 'object') {
    try {
      return JSON.stringify(value);
    } catch {
      return String(value);
    }
  }
  return String(value);
}

/** Who is calling: the task's `from` attribute, as the seed shows it. */
export function callerOf(reservation) {
  const from = reservation?.task?.attributes?.from;
  return from === undefined || from === null || from === '' ? 'Unknown caller' : displayValue(from);
}

/** Refreshes every timer under `root` for the server time `now`; returns true if a countdown ran out. */
export function tickTimers(root, now) {
  let expired = false;
  for (const el of root.querySelectorAll('[data-since]')) {
    const since = Number(el.dataset.since);
    setText(el, Number.isFinite(since) ? formatDuration(now - since) : '--:--');
  }
  for (const el of root.querySelectorAll('[data-until]')) {
    const until = Number(el.dataset.until);
    const left = until - now;
    if (left <= 0) expired = true;
    // Round up: "00:01" is shown until the very end, "00:00" only when it is over.
    setText(el, formatDuration(Math.ceil(Math.max(left, 0) / 1000) * 1000));
  }
  for (const el of root.querySelectorAll('[data-bar-until]')) {
    const until = Number(el.dataset.barUntil);
    const from = Number(el.dataset.barFrom);
    const share = until > from ? Math.min(1, Math.max(0, (until - now) / (until - from))) : 0;
    el.style.transform = `scaleX(${share.toFixed(4)})`;
    el.classList.toggle('is-low', until - now < 10_000);
  }
  return expired;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

const STATUS_BADGES = {
  pending: 'Incoming call',
  accepted: 'Accepted',
  wrapping: 'Wrap-up',
};

/** The card of one reservation; its buttons carry `data-action` and the card the reservation's SID. */
export function reservationCard(reservation) {
  const { sid, status, task } = reservation;
  const attributes = task?.attributes && typeof task.attributes === 'object' ? task.attributes : {};
  const headingId = `caller-${sid}`;
  const others = Object.entries(attributes).filter(([key]) => key !== 'from');

  const head = h('div', { class: 'card-head' }, h('span', { class: `badge badge-${status}` }, STATUS_BADGES[status] ?? status));
  if (status === 'pending' && Number.isFinite(reservation.timeout_at)) {
    head.append(
      h(
        'span',
        { class: 'countdown' },
        'Expires in ',
        h('span', { class: 'timer', 'data-testid': 'countdown', dataset: { until: reservation.timeout_at } }, '--:--'),
      ),
    );
  }

  const card = h(
    'article',
    {
      class: `card reservation is-${status}`,
      'data-testid': 'reservation',
      'aria-labelledby': headingId,
      dataset: { sid, status, taskSid: task?.sid ?? '' },
    },
    head,
    h('p', { class: 'caller-label' }, 'Caller'),
    h('h3', { class: 'caller', id: headingId, 'data-testid': 'caller' }, callerOf(reservation)),
  );

  if (status === 'pending' && Number.isFinite(reservation.timeout_at)) {
    const from = Number.isFinite(reservation.created_at) ? reservation.created_at : reservation.timeout_at - 15_000;
    card.append(
      h(
        'div',
        { class: 'bar', 'aria-hidden': 'true' },
        h('div', { class: 'bar-fill', dataset: { barUntil: reservation.timeout_at, barFrom: from } }),
      ),
    );
  }

  if (others.length > 0) {
    const list = h('dl', { class: 'attributes', 'data-testid': 'attributes' });
    for (const [key, value] of others) list.append(h('div', {}, h('dt', {}, key), h('dd', {}, displayValue(value))));
    card.append(list);
  }

  const meta = [`Task ${task?.sid ?? '—'}`];
  if (task?.priority !== undefined && task?.priority !== null) meta.push(`priority ${displayValue(task.priority)}`);
  card.append(h('p', { class: 'meta' }, meta.join(' · ')));

  if (status === 'pending') {
    card.append(
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'button primary accept', dataset: { action: 'accept' } }, 'Accept'),
        h('button', { type: 'button', class: 'button danger', dataset: { action: 'reject' } }, 'Reject'),
      ),
      h('p', { class: 'sound-hint', hidden: true }, 'The browser is blocking sound: press “Enable sound” at the top or click anywhere on the page to hear the ring.'),
    );
  } else if (status === 'wrapping') {
    card.append(
      h('p', { class: 'note' }, 'The call has ended. Complete the task when your notes are done.'),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button primary', dataset: { action: 'complete' } }, 'Complete')),
    );
  }
  return card;
}

const ROLE_NAMES = { worker: 'You', customer: 'Caller' };

/** The card of the conference the worker is in; `caller` is who the call is with, when known. */
export function conferenceCard({ conference, caller }) {
  const participants = Array.isArray(conference.participants) ? conference.participants : [];
  const started = Number.isFinite(conference.started_at);
  const list = h('ul', { class: 'participants', 'data-testid': 'participants' });
  for (const p of participants) {
    list.append(
      h(
        'li',
        {},
        h('span', { class: 'role' }, ROLE_NAMES[p?.role] ?? displayValue(p?.role)),
        ' ',
        h('span', { class: 'mono' }, displayValue(p?.call_sid)),
        ' ',
        h('span', { class: 'participant-status' }, displayValue(p?.status)),
      ),
    );
  }
  if (participants.length === 0) list.append(h('li', { class: 'muted' }, 'Waiting for participants…'));

  const name = conference.friendly_name && conference.friendly_name !== conference.sid ? conference.friendly_name : null;
  return h(
    'section',
    {
      class: 'card conference',
      'data-testid': 'conference',
      'aria-labelledby': 'conference-title',
      dataset: { sid: conference.sid },
    },
    h(
      'div',
      { class: 'card-head' },
      h('span', { class: 'badge badge-live' }, 'On call'),
      started
        ? h('span', { class: 'call-time' }, 'Call time ', h('span', { class: 'timer', 'data-testid': 'call-timer', dataset: { since: conference.started_at } }, '00:00'))
        : h('span', { class: 'call-time' }, 'Connecting…'),
    ),
    h('h3', { id: 'conference-title' }, caller ? `Call with ${caller}` : 'Conference'),
    h('p', { class: 'meta' }, 'Conference ', h('span', { class: 'mono', 'data-testid': 'conference-sid' }, displayValue(conference.sid))),
    name ? h('p', { class: 'meta' }, `Name ${name}`) : null,
    h('p', { class: 'meta' }, `Status ${displayValue(conference.status)}`),
    h('h4', {}, 'Participants'),
    list,
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button danger', dataset: { action: 'end-conference' } }, 'End conference')),
  );
}

/** One log line: time, then the text (and the event type in a quieter tone). */
export function logLine({ at, text, kind, type }) {
  return h(
    'li',
    { class: `log-line log-${kind ?? 'info'}` },
    h('time', { datetime: new Date(at).toISOString() }, formatClock(at)),
    ' ',
    type ? h('span', { class: 'log-type' }, type) : null,
    type ? ' ' : null,
    h('span', { class: 'log-text' }, text),
  );
}
