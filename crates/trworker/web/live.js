// The live connection: the WebSocket at api/ws, its hello, reconnection and sequence numbers.
//
// The server sends the worker's whole state on connect and after every change, so a reconnect only has to
// say which sequence number it saw last (to get the events it missed) and then render what it is sent.

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 10_000;
/** A socket that has not delivered a state this long after it was opened is treated as dead. */
const CONNECT_TIMEOUT_MS = 10_000;
/** After this many connections in a row that never delivered a state, ask whether the token still works. */
const FAILURES_BEFORE_TOKEN_CHECK = 3;
/** Close codes a server uses to refuse a token (policy violation, and the 4000 range's 401/403). */
const AUTH_CLOSE_CODES = new Set([1008, 4001, 4003, 4401, 4403]);
/** How many event sequence numbers to remember for dropping replays. */
const SEEN_EVENTS_MAX = 500;

/** The last sequence number this tab saw, kept in sessionStorage: a reload asks only for the events after it,
 * so that none is replayed into the Activity panel twice. */
const SEQ_KEY = 'trworker.seq';

export const savedSeq = {
  read() {
    try {
      const saved = sessionStorage.getItem(SEQ_KEY);
      const seq = Number(saved);
      return saved !== null && Number.isFinite(seq) ? seq : null;
    } catch {
      return null;
    }
  },
  save(seq) {
    try {
      if (Number.isFinite(seq)) sessionStorage.setItem(SEQ_KEY, String(seq));
    } catch {
      // Without storage a reload simply starts from a fresh state.
    }
  },
  forget() {
    try {
      sessionStorage.removeItem(SEQ_KEY);
    } catch {
      // Nothing was stored either.
    }
  },
};

/** The WebSocket URL of `path` (relative to the page, or absolute), on the page's host and security. */
export function socketUrl(path) {
  const url = new URL(path, window.location.href);
  url.protocol = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
  return url;
}

/**
 * Calls `handle(msg)` with each JSON object `socket` receives while `isCurrent()` (the page still uses this
 * socket); a message that is not a JSON object is dropped.
 */
export function onJsonMessage(socket, isCurrent, handle) {
  socket.addEventListener('message', (event) => {
    if (!isCurrent()) return;
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (!msg || typeof msg !== 'object') return;
    handle(msg);
  });
}

/**
 * Keeps one WebSocket open while started. Callbacks: `onState(msg, first)` (`first`: the connection's first
 * state), `onEvent(msg)`, `onError(msg)`, `onChannel(msg)` (how the server's own link to TaskRouter for this
 * worker is: `{status: 'connected' | 'reconnecting', reason}`), `onNotice(msg)` (something done to this worker by
 * someone else: `{text, by}`, e.g. a supervisor setting its activity),
 * `onStatus('connected' | 'reconnecting' | 'offline')`, and `checkToken()` which resolves to false when the
 * session is over (the connection then stays down).
 */
export class Live {
  constructor({ getToken, onState, onEvent, onError, onChannel, onNotice, onStatus, checkToken }) {
    Object.assign(this, { getToken, onState, onEvent, onError, onChannel, onNotice, onStatus, checkToken });
    this.socket = null;
    this.running = false;
    this.attempt = 0;
    this.failures = 0;
    this.retryTimer = null;
    this.watchdog = null;
    this.lastSeq = null;
    this.seenEvents = new Set();
    this.status = 'offline';
    window.addEventListener('online', () => this.reconnectNow());
    window.addEventListener('offline', () => this.running && !this.socket && this.setStatus('offline'));
  }

  /** Starts (or keeps) the connection; `lastSeq` is the last sequence number a previous page load saw. */
  start(lastSeq = null) {
    if (this.running) return;
    this.running = true;
    this.lastSeq = Number.isFinite(lastSeq) ? lastSeq : null;
    this.attempt = 0;
    this.failures = 0;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.watchdog);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.close(1000, 'signed out');
    this.lastSeq = null;
    this.seenEvents.clear();
    this.setStatus('offline');
  }

  reconnectNow() {
    if (!this.running || this.socket) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  connect() {
    this.retryTimer = null;
    if (!this.running) return;
    let socket;
    try {
      socket = new WebSocket(socketUrl('api/ws'));
    } catch {
      this.scheduleRetry();
      return;
    }
    this.socket = socket;
    let gotState = false;
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      if (this.socket === socket && !gotState) socket.close(4000, 'no state in time');
    }, CONNECT_TIMEOUT_MS);

    socket.addEventListener('open', () => {
      if (this.socket !== socket) return;
      socket.send(JSON.stringify({ type: 'hello', token: this.getToken(), last_seq: this.lastSeq }));
    });
    onJsonMessage(socket, () => this.socket === socket, (msg) => {
      if (msg.type === 'state') {
        const first = !gotState;
        if (!gotState) {
          gotState = true;
          clearTimeout(this.watchdog);
          this.attempt = 0;
          this.failures = 0;
          // A sequence number lower than one already seen means the server restarted and counts anew.
          if (Number.isFinite(msg.seq) && this.lastSeq !== null && msg.seq < this.lastSeq) {
            this.lastSeq = msg.seq;
            this.seenEvents.clear();
          }
          this.setStatus('connected');
        }
        this.noteSeq(msg.seq);
        this.onState(msg, first);
      } else if (msg.type === 'event') {
        if (Number.isFinite(msg.seq)) {
          if (this.seenEvents.has(msg.seq)) return;
          this.seenEvents.add(msg.seq);
          if (this.seenEvents.size > SEEN_EVENTS_MAX) {
            this.seenEvents.delete(this.seenEvents.values().next().value);
          }
        }
        this.noteSeq(msg.seq);
        this.onEvent(msg);
      } else if (msg.type === 'error') {
        this.onError(msg);
      } else if (msg.type === 'channel') {
        this.onChannel?.(msg);
      } else if (msg.type === 'notice') {
        this.onNotice?.(msg);
      } else if (msg.type === 'shutdown') {
        // The server is going away: reconnect promptly, the backoff finds it when it is back.
        this.attempt = 0;
        socket.close(1000, 'server shutdown');
      }
      // Unknown message types are ignored so that the server can add new ones.
    });
    socket.addEventListener('close', (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      clearTimeout(this.watchdog);
      if (!this.running) return;
      if (!gotState) this.failures += 1;
      this.setStatus(navigator.onLine === false ? 'offline' : 'reconnecting');
      const suspectToken =
        AUTH_CLOSE_CODES.has(event.code) || this.failures >= FAILURES_BEFORE_TOKEN_CHECK;
      if (suspectToken) {
        this.failures = 0;
        Promise.resolve(this.checkToken()).then((stillSignedIn) => {
          if (stillSignedIn && this.running) this.scheduleRetry();
        });
      } else {
        this.scheduleRetry();
      }
    });
  }

  noteSeq(seq) {
    if (Number.isFinite(seq)) this.lastSeq = this.lastSeq === null ? seq : Math.max(this.lastSeq, seq);
  }

  /** Exponential backoff with jitter, so that many workers do not all reconnect in the same instant. */
  scheduleRetry() {
    if (!this.running || this.socket || this.retryTimer) return;
    const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.attempt = Math.min(this.attempt + 1, 10);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  setStatus(status) {
    if (this.status === status) return;
    this.status = status;
    this.onStatus(status);
  }
}
