// The worker's status controls: the activity buttons and the missed-call banner. Each is drawn from what it
// is given; the page's state and what the buttons do stay in app.js.

import { cleanText, setUserText } from './view.js';

/** The activities behind "Go online" and "Go offline": named Available and Offline, as in the seed. */
export function usualActivities(activities) {
  const named = (name) => activities.find((a) => String(a.friendly_name).toLowerCase() === name);
  const online = named('available') ?? activities.find((a) => a.available === true);
  const offline = named('offline') ?? activities.find((a) => a.available !== true && a !== online);
  return { online, offline };
}

/** The buttons last built, so that a render that changes nothing keeps them (and the focus) in place. */
let renderedActivities = '';

/**
 * The activity buttons in `group`: "Go online", "Go offline", then the workspace's other activities, the
 * `current` one pressed; all disabled while a change is `busy`.
 */
export function renderActivityButtons(group, { activities, current, busy }) {
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
  group.setAttribute('aria-busy', String(busy));
  for (const button of group.querySelectorAll('button')) {
    button.disabled = busy;
    // "Go online" and "Go offline" are actions, never shown pressed (the state line above says where the
    // worker is); the workspace's other activities are a choice whose current one is pressed.
    if (button.classList.contains('activity-other')) {
      button.setAttribute('aria-pressed', String(button.dataset.activitySid === current));
    } else {
      button.removeAttribute('aria-pressed');
    }
  }
}

/**
 * The missed-call banner: shown after a reservation timed out (TaskRouter then moves the worker to the
 * workspace's timeout activity) while `missed` (`{caller, at}`) is set, saying the `worker`'s activity now,
 * with "Go online" and "Dismiss".
 */
export function showMissed(banner, missed, worker) {
  const now = worker?.activity_name ? ` You are now ${cleanText(worker.activity_name)}.` : '';
  const text = missed ? `You missed a call from ${missed.caller}.${now}` : '';
  // Built only while shown, so that the page has one "Go online" button otherwise.
  if (banner.dataset.text === text) return;
  banner.dataset.text = text;
  banner.hidden = !missed;
  banner.replaceChildren();
  if (!missed) return;
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
