// Wrap-up forms: the disposition and notes a worker writes after a call. What is typed is kept as the task's
// draft (in sessionStorage, until the task is completed), so that a reload or a lost connection does not lose
// it, and is measured against the task's attribute limit while typing, so that the limit is known before
// Complete.

import { ATTRIBUTES_MAX, attributesWithWrapUp } from './view.js';

/** Drafts are kept per task under this prefix. */
const DRAFT_PREFIX = 'trworker.wrapup.';

/** `n` characters, in words. */
const characters = (n) => `${n.toLocaleString('en')} character${n === 1 ? '' : 's'}`;

/** The values of the fields (`[data-field]`) under `el`, by field name. */
export function formValues(el) {
  const values = {};
  for (const field of el.querySelectorAll('[data-field]')) values[field.dataset.field] = field.value;
  return values;
}

/**
 * Why `draft` cannot be saved with the task's `attributes` (what [`attributesWithWrapUp`] made of them):
 * `{message, field}` naming the field to shorten, or `null` when it fits.
 */
export function sizeProblem(saved, draft) {
  if (!saved || saved.length <= ATTRIBUTES_MAX) return null;
  const over = characters(saved.length - ATTRIBUTES_MAX);
  const limit = `a task keeps at most ${characters(ATTRIBUTES_MAX)} of attributes, the call's own included`;
  // Without notes it is the disposition that does not fit: the call's own attributes are nearly full.
  return draft.notes?.trim()
    ? { field: 'notes', message: `The notes are too long by ${over}: ${limit}. Shorten them, then Complete.` }
    : {
        field: 'disposition',
        message: `The disposition does not fit by ${over}: ${limit}, and this call's fill nearly all of it. Choose none, then Complete.`,
      };
}

/** Says under the notes how much room the task's attributes leave for them. */
function updateCount(el, reservation) {
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

/** After a keystroke in the wrap-up form `card` of `reservation`: keeps the draft, clears the form's error
 * and says the room left. */
export function wrapUpTyped(card, field, reservation) {
  const taskSid = card.dataset.taskSid;
  const draft = readDraft(taskSid);
  draft[field.dataset.field] = field.value;
  saveDraft(taskSid, draft);
  const error = card.querySelector('[data-testid="wrap-up-error"]');
  if (error?.textContent) error.textContent = '';
  updateCount(card, reservation);
}

/** Fills a new wrap-up form from the form it replaces, else from its task's draft. */
export function fillWrapUp(el, reservation, old) {
  const taskSid = reservation?.task?.sid;
  if (reservation?.status !== 'wrapping' || typeof taskSid !== 'string') return;
  const shown = old?.querySelector('[data-field]') ? formValues(old) : null;
  const values = shown ?? readDraft(taskSid);
  for (const field of el.querySelectorAll('[data-field]')) field.value = values[field.dataset.field] ?? '';
}

/** Says the room left for notes, moves a wrap-up's countdown to the latest end, and offers "Extend" while it
 * can be extended. */
export function updateWrapUp(el, reservation) {
  if (reservation?.status !== 'wrapping') return;
  updateCount(el, reservation);
  const wrapUp = reservation.wrap_up;
  if (!wrapUp) return;
  const timer = el.querySelector('[data-testid="wrap-up-countdown"]');
  if (timer && Number.isFinite(wrapUp.ends_at) && timer.dataset.until !== String(wrapUp.ends_at)) timer.dataset.until = wrapUp.ends_at;
  const extend = el.querySelector('[data-action="extend"]');
  if (extend) extend.hidden = !(Number.isFinite(wrapUp.limit_at) && wrapUp.ends_at < wrapUp.limit_at);
}

export function readDraft(taskSid) {
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

export function forgetDraft(taskSid) {
  try {
    sessionStorage.removeItem(DRAFT_PREFIX + taskSid);
  } catch {
    // Nothing was stored either.
  }
}

/** Forgets the drafts of tasks other than `keep` (no longer in wrap-up: completed, here or elsewhere). */
export function forgetDrafts(keep) {
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
