// The Activity panel: what happened, in the worker's words, and TaskRouter's events as they came ("Raw
// events"), newest first. Both are kept in sessionStorage, so a reload of the tab keeps them, and a sign-out
// clears them for whoever sits down next.

import { logLine } from './view.js';

const LOG_KEY = 'trworker.log';
/** Lines kept of each list. */
const LOG_MAX = 200;

const $ = (id) => document.getElementById(id);

export class ActivityLog {
  /** `now()`: the time a line is stamped with (the server's clock, as the page's countdowns use). */
  constructor({ now }) {
    this.now = now;
    /** The panel's lines: `{at, text, kind, key?, activitySid?}`. */
    this.lines = [];
    /** TaskRouter's events: `{at, seq, type, text}`. */
    this.raw = [];
  }

  /** Adds a line. A line with a `key` is said once, however many messages tell it and across reloads; a line
   * with an `activitySid` says the worker's activity ([`lastActivitySid`]). */
  say(text, { at = this.now(), kind = 'info', key = null, activitySid = null } = {}) {
    if (key && this.lines.some((e) => e.key === key)) return;
    this.lines.push({ at, text: String(text), kind, ...(key ? { key } : {}), ...(activitySid ? { activitySid } : {}) });
    if (this.lines.length > LOG_MAX) this.lines = this.lines.slice(-LOG_MAX);
    this.#changed();
  }

  /** The activity the panel last said the worker is in, if any. */
  lastActivitySid() {
    return this.lines.findLast((e) => typeof e.activitySid === 'string')?.activitySid;
  }

  /** Keeps an event frame under "Raw events", once: a replay has the same sequence number, time and type (a
   * restarted server numbers anew, so the number alone would not do). */
  rawEvent(msg) {
    const entry = {
      at: Number.isFinite(msg.at) ? msg.at : this.now(),
      seq: Number.isFinite(msg.seq) ? msg.seq : null,
      type: typeof msg.event_type === 'string' ? msg.event_type : null,
      text: typeof msg.description === 'string' && msg.description ? msg.description : 'Event',
    };
    const same = (e) => e.seq === entry.seq && e.at === entry.at && e.type === entry.type;
    if (entry.seq !== null && this.raw.some(same)) return;
    this.raw.push(entry);
    if (this.raw.length > LOG_MAX) this.raw = this.raw.slice(-LOG_MAX);
    this.#changed();
  }

  clear() {
    this.lines = [];
    this.raw = [];
    this.#changed();
  }

  /** Reads what this tab kept before a reload, dropping anything malformed. */
  restore() {
    const valid = (list) =>
      Array.isArray(list) ? list.filter((e) => e && typeof e.text === 'string' && Number.isFinite(e.at)).slice(-LOG_MAX) : [];
    try {
      const saved = JSON.parse(sessionStorage.getItem(LOG_KEY) ?? '{}');
      this.lines = valid(saved?.lines);
      this.raw = valid(saved?.raw);
    } catch {
      this.lines = [];
      this.raw = [];
    }
    this.#render();
  }

  #changed() {
    try {
      sessionStorage.setItem(LOG_KEY, JSON.stringify({ lines: this.lines, raw: this.raw }));
    } catch {
      // The log is a convenience; without storage it is only lost on reload.
    }
    this.#render();
  }

  #render() {
    // Newest first: on a phone the latest line is the one in view.
    // An empty list is hidden, so that the keyboard does not stop on it.
    $('log-lines').replaceChildren(...this.lines.slice().reverse().map(logLine));
    $('log-lines').hidden = this.lines.length === 0;
    $('log-empty').hidden = this.lines.length > 0;
    $('raw-lines').replaceChildren(...this.raw.slice().reverse().map(logLine));
    $('raw-lines').hidden = this.raw.length === 0;
    $('raw-empty').hidden = this.raw.length > 0;
  }
}
