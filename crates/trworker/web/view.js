// Building the page's pieces from data, always as text.
//
// Task attributes come from callers and integrations and may contain HTML: nothing here ever assigns markup
// (no innerHTML), every value goes through text nodes or attributes. Timers are elements carrying
// `data-since` / `data-until` (server milliseconds) that `tickTimers` refreshes, so a render need not run
// every second.
//
// Text that comes from outside (names, callers, attributes, messages) is shown through `cleanText`: Unicode
// direction controls are removed, so that a U+202E in a caller's `from` cannot show the number reversed, and
// control characters are made visible. `setUserText` also cuts long values (the whole value stays in the
// `title`) and marks the element `user-text`, which the style sheet isolates (`unicode-bidi: isolate`) from
// the text around it. Only what is displayed changes; the data is kept as the server sent it.
//
// The page runs under a strict Content-Security-Policy (no inline script or style, no eval): styles are only
// ever set through the CSSOM (`el.style.x = …`), never as a `style` attribute.

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

/** Direction controls: embeddings and overrides (U+202A–U+202E), isolates (U+2066–U+2069) and marks (U+200E,
 * U+200F, U+061C). */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/g;
/** Line and paragraph breaks and tabs: shown as a space, as HTML would collapse them anyway. */
const BREAKS = /[\t\n\r\u2028\u2029]/g;
/** The other C0 controls, DEL and the C1 controls. */
const CONTROLS = /[\u0000-\u001F\u007F-\u009F]/g;

/** How many characters of a value are shown by default; the rest is in the element's `title`. */
export const TEXT_MAX = 120;

/** `value` as text safe to display: no direction controls, control characters as visible symbols. */
export function cleanText(value) {
  return String(value)
    .replace(BIDI_CONTROLS, '')
    .replace(BREAKS, ' ')
    .replace(CONTROLS, (c) => {
      const code = c.charCodeAt(0);
      // C0 as its Control Pictures symbol (U+2400 block: ␀ … ␟, ␡); C1 has none: the replacement character.
      if (code < 0x20) return String.fromCharCode(0x2400 + code);
      return code === 0x7f ? '\u2421' : '\uFFFD';
    });
}

/** The most of a cut value a `title` shows: a tooltip is no place for a document. */
export const TITLE_MAX = 2000;

/** `cleanText(value)`, cut to `max` characters with an ellipsis; `full` is the cleaned text, up to
 * `TITLE_MAX` characters, when cut. */
export function shortText(value, max = TEXT_MAX) {
  const whole = cleanText(value);
  // By code point, so that a cut never splits a surrogate pair.
  const chars = Array.from(whole);
  if (chars.length <= max) return { text: whole, full: null };
  const cut = (n) => `${chars.slice(0, Math.max(1, n - 1)).join('')}…`;
  return { text: cut(max), full: chars.length <= TITLE_MAX ? whole : cut(TITLE_MAX) };
}

/** Shows outside text in `el`: cleaned, cut to `max` (the whole value as `title`), isolated as `user-text`,
 * in the direction of its own first strong character (`dir="auto"`), so a right-to-left name reads as its
 * writer wrote it. */
export function setUserText(el, value, max = TEXT_MAX) {
  const { text, full } = shortText(value, max);
  el.classList.add('user-text');
  el.dir = 'auto';
  if (el.textContent !== text) el.textContent = text;
  if (full !== null) el.title = full;
  else el.removeAttribute('title');
  return el;
}

/** A `tag` element (with `props`, as for `h`) showing outside text `value` through `setUserText`. */
export function userText(tag, props, value, max = TEXT_MAX) {
  return setUserText(h(tag, props), value, max);
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

/** Attributes that name the caller, first found wins: integrations (Studio, Flex, CRMs) use these. */
export const NAME_KEYS = ['caller_name', 'customer_name', 'callerName', 'customerName', 'name', 'from_name'];

/** Attributes shown as the call's context, in this order, with their labels (the first key found wins). */
export const CONTEXT = [
  ['Product', ['product', 'selected_product']],
  ['Language', ['language', 'lang', 'locale']],
  ['Queue', ['queue', 'queue_name']],
];

/** Attributes shown nowhere but in "Details": the caller and the context are shown already. */
const SHOWN_KEYS = new Set(['from', ...NAME_KEYS, ...CONTEXT.flatMap(([, keys]) => keys)]);

const present = (value) => value !== undefined && value !== null && value !== '' && typeof value !== 'object';

function attributesOf(reservation) {
  const a = reservation?.task?.attributes;
  return a && typeof a === 'object' && !Array.isArray(a) ? a : {};
}

/** The caller's number: the task's `from` attribute; `null` when there is none. */
export function callerNumber(reservation) {
  const from = attributesOf(reservation).from;
  return present(from) ? String(from) : null;
}

/** The caller's name from the first of `NAME_KEYS` that holds one; `null` when none does. */
export function callerName(reservation) {
  const attributes = attributesOf(reservation);
  const key = NAME_KEYS.find((k) => present(attributes[k]) && String(attributes[k]).trim());
  return key ? String(attributes[key]) : null;
}

/** Who is calling, as a heading names them: the name, else the number (for display: see `callerLabel`). */
export function callerOf(reservation) {
  return callerName(reservation) ?? callerNumber(reservation) ?? 'Unknown caller';
}

/** How many characters of a caller messages and log lines show. */
const CALLER_MAX = 64;

/** The caller as messages, log lines and notifications name it: cleaned and cut. */
export function callerLabel(reservation) {
  return shortText(callerOf(reservation), CALLER_MAX).text;
}

/** The caller's heading and, under it, the number when the heading is a name, then the context. */
function callerBlock(reservation, headingId, tag = 'h3') {
  const name = callerName(reservation);
  const number = callerNumber(reservation);
  const attributes = attributesOf(reservation);
  const context = h('dl', { class: 'context', 'data-testid': 'context' });
  for (const [label, keys] of CONTEXT) {
    let value = keys.map((k) => attributes[k]).find(present);
    if (label === 'Queue' && !present(value)) value = reservation?.task?.queue;
    if (present(value)) context.append(h('div', {}, h('dt', {}, label), userText('dd', {}, value, CALLER_MAX)));
  }
  // How long the caller has waited matters while the call rings; once answered it only takes room.
  if (reservation?.status === 'pending' && Number.isFinite(reservation?.waiting_since)) {
    context.append(
      h('div', {}, h('dt', {}, 'Waiting'), h('dd', {}, h('span', { class: 'timer', 'data-testid': 'waiting', dataset: { since: reservation.waiting_since } }, '00:00'))),
    );
  }
  return [
    userText(tag, { class: 'caller', id: headingId, 'data-testid': 'caller' }, callerOf(reservation), CALLER_MAX),
    name && number ? userText('p', { class: 'caller-number', 'data-testid': 'caller-number' }, number, CALLER_MAX) : null,
    context.children.length > 0 ? context : null,
  ];
}

/** Every other attribute, and the task's identifiers, behind a "Details" disclosure. */
function detailsOf(reservation, extra = []) {
  const attributes = attributesOf(reservation);
  const list = h('dl', { class: 'attributes', 'data-testid': 'attributes' });
  for (const [key, value] of Object.entries(attributes)) {
    if (SHOWN_KEYS.has(key) && present(value)) continue;
    list.append(h('div', {}, userText('dt', {}, key, CALLER_MAX), userText('dd', {}, displayValue(value))));
  }
  const task = reservation?.task;
  const ids = [['Task', task?.sid], ['Priority', task?.priority], ...extra];
  for (const [key, value] of ids) {
    if (value !== undefined && value !== null) list.append(h('div', { class: 'ids' }, h('dt', {}, key), userText('dd', { class: 'mono' }, displayValue(value))));
  }
  return h('details', { class: 'details' }, h('summary', {}, 'Details'), list);
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
    el.classList.toggle('is-low', left < 10_000);
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
  const headingId = `caller-${sid}`;

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
    ...callerBlock(reservation, headingId),
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

  card.append(detailsOf(reservation));

  if (status === 'pending') {
    card.append(
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', class: 'button primary accept', dataset: { action: 'accept' } }, 'Accept'),
        h('button', { type: 'button', class: 'button danger', dataset: { action: 'reject' } }, 'Reject'),
        h(
          'button',
          { type: 'button', class: 'button quiet', dataset: { action: 'reject-unavailable' } },
          'Reject and go unavailable',
        ),
      ),
      // What each choice does next: a plain Reject leaves the worker available, so calls keep coming.
      h(
        'p',
        { class: 'muted reject-hint' },
        'Reject: you stay available, so this call or another may ring again. ' +
          'Reject and go unavailable: no more calls until you go online.',
      ),
      h('p', { class: 'sound-hint', hidden: true }, 'The browser is blocking sound: press “Enable sound” at the top or click anywhere on the page to hear the ring.'),
    );
  } else if (status === 'wrapping') {
    card.append(wrapUpForm(reservation));
  }
  return card;
}

/** The dispositions offered in wrap-up; the choice is saved on the task as `wrap_up.disposition`. */
export const DISPOSITIONS = ['Resolved', 'Follow-up needed', 'Callback requested', 'Escalated', 'Wrong number', 'Other'];

/** TaskRouter's limit on a task's attributes, in characters of their JSON text. */
export const ATTRIBUTES_MAX = 4096;

/**
 * The task's attributes with `wrap_up: {disposition, notes}` (the non-empty ones) merged in, as the server
 * will save them, and their length in characters; `null` when there is nothing to save.
 */
export function attributesWithWrapUp(attributes, { disposition, notes }) {
  const wrapUp = {};
  if (typeof disposition === 'string' && disposition.trim()) wrapUp.disposition = disposition.trim();
  if (typeof notes === 'string' && notes.trim()) wrapUp.notes = notes.trim();
  if (Object.keys(wrapUp).length === 0) return null;
  const base = attributes && typeof attributes === 'object' && !Array.isArray(attributes) ? attributes : {};
  const merged = { ...base, wrap_up: wrapUp };
  // By code point, as TaskRouter counts.
  return { attributes: merged, length: Array.from(JSON.stringify(merged)).length };
}

/**
 * The wrap-up part of a wrapping reservation's card: countdown, disposition, notes, "Complete" and "Extend".
 * The fields start empty: app.js fills them from the draft it keeps, and moves the countdown in place
 * (`data-until` of `[data-testid="wrap-up-countdown"]`) so that an extension never rebuilds the form.
 */
function wrapUpForm(reservation) {
  const id = `wrap-${reservation.sid}`;
  const select = h('select', { id: `${id}-disposition`, name: 'disposition', 'data-field': 'disposition', 'data-testid': 'disposition' });
  select.append(h('option', { value: '' }, 'Choose…'), ...DISPOSITIONS.map((d) => h('option', { value: d }, d)));
  return h(
    'div',
    { class: 'wrap-up', 'data-testid': 'wrap-up' },
    h(
      'p',
      { class: 'wrap-up-time' },
      'Wrap-up time left ',
      h('span', { class: 'timer', 'data-testid': 'wrap-up-countdown', dataset: { until: reservation.wrap_up?.ends_at ?? '' } }, '--:--'),
    ),
    h('p', { class: 'note' }, 'The call has ended. At zero the task is completed with what you have written.'),
    h('div', { class: 'field' }, h('label', { for: select.id }, 'Disposition'), select),
    h(
      'div',
      { class: 'field' },
      h('label', { for: `${id}-notes` }, 'Notes'),
      h('textarea', { id: `${id}-notes`, name: 'notes', rows: '3', 'data-field': 'notes', 'data-testid': 'notes', 'aria-describedby': `${id}-count ${id}-error` }),
      h('p', { id: `${id}-count`, class: 'count', 'data-testid': 'wrap-up-count' }),
    ),
    h('p', { id: `${id}-error`, class: 'form-error', role: 'alert', 'data-testid': 'wrap-up-error' }),
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', class: 'button primary', dataset: { action: 'complete' } }, 'Complete'),
      h('button', { type: 'button', class: 'button', dataset: { action: 'extend' } }, 'Extend'),
    ),
  );
}

const ROLE_NAMES = { worker: 'You', customer: 'Caller' };

/** The card of the conference the worker is in, with the caller first; `reservation` is the accepted call
 * it bridges, when known. Identifiers stay behind "Details". */
export function conferenceCard({ conference, reservation }) {
  const participants = Array.isArray(conference.participants) ? conference.participants : [];
  const started = Number.isFinite(conference.started_at);
  const list = h('ul', { class: 'participants', 'data-testid': 'participants' });
  for (const p of participants) {
    list.append(
      h(
        'li',
        {},
        userText('span', { class: 'role' }, ROLE_NAMES[p?.role] ?? displayValue(p?.role)),
        ' ',
        userText('span', { class: 'participant-status' }, displayValue(p?.status)),
      ),
    );
  }
  if (participants.length === 0) list.append(h('li', { class: 'muted' }, 'Waiting for participants…'));

  const name = conference.friendly_name && conference.friendly_name !== conference.sid ? conference.friendly_name : null;
  const ids = [
    ['Conference', h('span', {}, userText('span', { 'data-testid': 'conference-sid' }, displayValue(conference.sid)))],
    ['Name', name],
    ['Status', conference.status],
    ...participants.map((p) => [`${ROLE_NAMES[p?.role] ?? 'Participant'} leg`, p?.call_sid]),
  ];
  const details = reservation ? detailsOf(reservation) : h('details', { class: 'details' }, h('summary', {}, 'Details'), h('dl', { class: 'attributes' }));
  const dl = details.querySelector('dl');
  for (const [key, value] of ids) {
    if (value === undefined || value === null) continue;
    const dd = value instanceof Node ? h('dd', { class: 'mono' }, value) : userText('dd', { class: 'mono' }, displayValue(value));
    dl.append(h('div', { class: 'ids' }, h('dt', {}, key), dd));
  }
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
    h('p', { class: 'caller-label' }, 'Call with'),
    ...(reservation ? callerBlock(reservation, 'conference-title') : [h('h3', { id: 'conference-title' }, 'Caller')]),
    h('h4', {}, 'Participants'),
    list,
    // Toggles keep their label; `aria-pressed` (set by app.js from the call's legs) says whether they are on.
    h(
      'div',
      { class: 'actions call-controls', role: 'group', 'aria-label': 'Call controls' },
      h('button', { type: 'button', class: 'button toggle', 'aria-pressed': 'false', dataset: { action: 'hold' } }, 'Hold caller'),
      h('button', { type: 'button', class: 'button toggle', 'aria-pressed': 'false', dataset: { action: 'mute' } }, 'Mute'),
    ),
    h('p', { class: 'call-state', role: 'status', 'data-testid': 'call-state' }),
    h('div', { class: 'actions' }, h('button', { type: 'button', class: 'button danger', dataset: { action: 'end-conference' } }, 'End conference')),
    details,
  );
}

/** How many characters of a log line are shown (the line is made of messages and cut values). */
const LOG_TEXT_MAX = 400;

/** One log line: time, then the text (and the event type in a quieter tone). */
export function logLine({ at, text, kind, type }) {
  return h(
    'li',
    { class: `log-line log-${kind ?? 'info'}` },
    h('time', { datetime: new Date(at).toISOString() }, formatClock(at)),
    ' ',
    type ? userText('span', { class: 'log-type' }, type, CALLER_MAX) : null,
    type ? ' ' : null,
    userText('span', { class: 'log-text' }, text, LOG_TEXT_MAX),
  );
}

/** Shows `message` in the alert `region` with a "Dismiss" button (`data-action="dismiss"`); empties it for
 * `null`. */
export function alertIn(region, message) {
  if (!message) {
    region.replaceChildren();
    return;
  }
  const dismiss = h('button', { type: 'button', class: 'button quiet small', 'data-action': 'dismiss' }, 'Dismiss');
  region.replaceChildren(setUserText(document.createElement('p'), message, 300), dismiss);
}

/** Says `text` in the live `region`, for screen readers. Emptied first, so that a repeated message is read
 * again. */
export function announceIn(region, text) {
  region.textContent = '';
  setTimeout(() => {
    region.textContent = cleanText(text);
  }, 50);
}
