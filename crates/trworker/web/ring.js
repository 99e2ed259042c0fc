// Getting the worker's attention: a ring tone made with Web Audio (no sound file to ship) and desktop
// notifications while the tab is hidden.
//
// Browsers only let a page make sound after the user has interacted with it, so the AudioContext is made or
// resumed from a user gesture (`unlock`), and the page shows an "Enable sound" button while it cannot ring.

/** One ring cycle: two short bursts then a pause, as a desk phone does (seconds). */
const CYCLE_S = 3;
const BURSTS = [
  [0, 0.4],
  [0.6, 0.4],
];
const TONES_HZ = [440, 480];
const VOLUME = 0.16;
/** How far ahead ring cycles are scheduled (seconds): longer than a throttled background timer's gap. */
const AHEAD_S = 75;

/**
 * The ring tone. Bursts are scheduled on the audio clock well ahead of time, because browsers throttle the
 * timers of background tabs (down to once a minute) and a worker's tab is usually in the background.
 */
export class Ringer {
  constructor({ onChange }) {
    this.onChange = onChange;
    this.context = null;
    this.ringing = false;
    this.timer = null;
    this.output = null;
    /** Audio-clock time up to which ring cycles are scheduled. */
    this.scheduledUntil = 0;
  }

  /** True when the page could ring right now. */
  get audible() {
    return this.context !== null && this.context.state === 'running';
  }

  /** Call from a user gesture (click, key press): creates or resumes the AudioContext. */
  unlock() {
    const AudioContext = window.AudioContext ?? window.webkitAudioContext;
    if (!AudioContext) return;
    const wasAudible = this.audible;
    try {
      if (!this.context) {
        this.context = new AudioContext();
        this.context.addEventListener('statechange', () => {
          this.schedule();
          this.onChange();
        });
      }
      if (this.context.state === 'suspended') this.context.resume().catch(() => {});
    } catch {
      this.context = null;
    }
    if (this.audible !== wasAudible) this.onChange();
  }

  start() {
    if (this.ringing) return;
    this.ringing = true;
    this.schedule();
    this.timer = setInterval(() => this.schedule(), 1000);
  }

  stop() {
    if (!this.ringing) return;
    this.ringing = false;
    clearInterval(this.timer);
    this.timer = null;
    this.scheduledUntil = 0;
    if (this.output) {
      // Disconnecting the shared output silences the bursts already scheduled.
      this.output.disconnect();
      this.output = null;
    }
  }

  /** Keeps ring cycles scheduled for the next AHEAD_S seconds. */
  schedule() {
    // A suspended context does not advance its clock: scheduling then would only stack bursts up.
    if (!this.ringing || !this.audible) return;
    const ctx = this.context;
    if (!this.output) {
      this.output = ctx.createGain();
      this.output.gain.value = VOLUME;
      this.output.connect(ctx.destination);
    }
    let cycle = Math.max(this.scheduledUntil, ctx.currentTime + 0.05);
    while (cycle < ctx.currentTime + AHEAD_S) {
      this.scheduleCycle(cycle);
      cycle += CYCLE_S;
    }
    this.scheduledUntil = cycle;
  }

  scheduleCycle(start) {
    const ctx = this.context;
    for (const [offset, length] of BURSTS) {
      const envelope = ctx.createGain();
      const t0 = start + offset;
      const t1 = t0 + length;
      // Short ramps avoid clicks at the start and end of each burst.
      envelope.gain.setValueAtTime(0, t0);
      envelope.gain.linearRampToValueAtTime(1, t0 + 0.02);
      envelope.gain.setValueAtTime(1, t1 - 0.03);
      envelope.gain.linearRampToValueAtTime(0, t1);
      envelope.connect(this.output);
      for (const hz of TONES_HZ) {
        const osc = ctx.createOscillator();
        osc.frequency.value = hz;
        osc.connect(envelope);
        osc.start(t0);
        osc.stop(t1);
      }
    }
  }
}

/** Asks for permission to show notifications, if the browser has not asked before. */
export function askNotificationPermission() {
  if (!('Notification' in window) || Notification.permission !== 'default') return;
  try {
    const asked = Notification.requestPermission();
    if (asked && typeof asked.catch === 'function') asked.catch(() => {});
  } catch {
    // Old browsers take a callback instead; notifications are a bonus, not required.
  }
}

/** Desktop notifications for incoming reservations, one per reservation SID. */
export class Notifier {
  constructor() {
    this.shown = new Map();
  }

  /** Shows a notification for the reservation if the tab is hidden and none was shown for it yet. */
  notify(sid, title, body) {
    if (!document.hidden || this.shown.has(sid)) return;
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    try {
      // The tag makes several tabs of the same worker share one notification.
      const note = new Notification(title, { body, tag: `reservation-${sid}`, requireInteraction: true });
      note.addEventListener('click', () => {
        window.focus();
        note.close();
      });
      this.shown.set(sid, note);
    } catch {
      // Some platforms only allow notifications from a service worker; the ring and title still work.
    }
  }

  /** Closes the notifications of reservations that are no longer pending. */
  keepOnly(sids) {
    for (const [sid, note] of this.shown) {
      if (!sids.has(sid)) {
        note.close();
        this.shown.delete(sid);
      }
    }
  }
}
