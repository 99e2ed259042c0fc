// The worker app's JSON API and the signed-in session.
//
// The session (token, expiry, worker) lives in sessionStorage so that a reload keeps the worker signed in
// while a new browser session does not; the password is only ever passed through to POST /api/token.
// All URLs are relative so the page works wherever the binary mounts it.

const SESSION_KEY = 'trworker.session';
/** Refresh this long before the token expires. */
const REFRESH_BEFORE_MS = 5 * 60 * 1000;
/** After a refresh that failed for a reason other than 401, try again this much later. */
const REFRESH_RETRY_MS = 30 * 1000;

/** A failed API call: `message` is fit to show the worker; `status` is the HTTP status (0: no answer). */
export class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** One HTTP exchange; resolves to the parsed JSON body or throws an ApiError. */
async function request(method, path, { body, token } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'same-origin',
    });
  } catch {
    throw new ApiError('Cannot reach the server. Check the network connection and try again.', 0);
  }
  let data = null;
  try {
    const text = await response.text();
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const message = data?.error?.message;
    throw new ApiError(
      typeof message === 'string' && message ? message : `The server answered ${response.status}.`,
      response.status,
    );
  }
  if (data === null || typeof data !== 'object') {
    throw new ApiError('The server sent an answer this page cannot read. Reload the page.', response.status);
  }
  return data;
}

/** `GET api/workspace`: the workspace name, mode and activities (no sign-in needed). */
export function fetchWorkspace() {
  return request('GET', 'api/workspace');
}

function readSession(data) {
  if (typeof data?.token !== 'string' || !data.token) {
    throw new ApiError('The server sent a sign-in answer without a token. Try again.', 200);
  }
  const expiresAt = Date.parse(data.expires_at);
  return {
    token: data.token,
    expires_at: Number.isFinite(expiresAt) ? data.expires_at : null,
    worker: data.worker && typeof data.worker === 'object' ? data.worker : null,
  };
}

/**
 * The signed-in session: signs in, refreshes the token before it expires, and makes authenticated calls.
 * `onExpired(message)` is called once when the server no longer accepts the token (any 401).
 */
export class Client {
  constructor({ onExpired, onRefreshed }) {
    this.onExpired = onExpired;
    this.onRefreshed = onRefreshed;
    this.session = null;
    this.refreshTimer = null;
    // Timers are late after a laptop sleeps; checking on wake-up keeps the token fresh anyway.
    document.addEventListener('visibilitychange', () => {
      if (!document.hidden) this.refreshIfDue();
    });
  }

  get token() {
    return this.session?.token ?? null;
  }

  /** The session kept by an earlier load of this tab, if it has not expired. */
  restore() {
    let saved = null;
    try {
      saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
    } catch {
      saved = null;
    }
    if (typeof saved?.token !== 'string' || !saved.token) return null;
    const expiresAt = Date.parse(saved.expires_at);
    if (Number.isFinite(expiresAt) && expiresAt <= Date.now()) {
      this.clear();
      return null;
    }
    this.session = saved;
    this.scheduleRefresh();
    return saved;
  }

  async signIn(identity, password) {
    const data = await request('POST', 'api/token', { body: { identity, password } });
    this.store(readSession(data));
    return this.session;
  }

  /** Keeps the latest worker in the stored session so that a reload shows the right name at once. */
  updateWorker(worker) {
    if (!this.session) return;
    this.session.worker = worker;
    this.save();
  }

  /** Forgets the session (the server keeps no sign-in state besides the token). */
  clear() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    this.session = null;
    try {
      sessionStorage.removeItem(SESSION_KEY);
    } catch {
      // Storage disabled: nothing was kept either.
    }
  }

  /** `POST path` with the bearer token and a JSON body. */
  call(path, body = {}) {
    return this.send('POST', path, body);
  }

  /** `GET path` with the bearer token. */
  read(path) {
    return this.send('GET', path, undefined);
  }

  async send(method, path, body) {
    const token = this.token;
    if (!token) throw new ApiError('You are signed out. Sign in again.', 401);
    try {
      return await request(method, path, { body, token });
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) this.expire(err.message);
      throw err;
    }
  }

  /** `POST api/token/refresh`; resolves to false when the session has ended (and was signed out). */
  async refresh() {
    const token = this.token;
    if (!token) return false;
    try {
      const data = await request('POST', 'api/token/refresh', { token });
      if (this.token !== token) return this.token !== null;
      this.store(readSession(data));
      this.onRefreshed?.(this.session);
      return true;
    } catch (err) {
      if (this.token !== token) return this.token !== null;
      if (err instanceof ApiError && err.status === 401) {
        this.expire(err.message);
        return false;
      }
      clearTimeout(this.refreshTimer);
      this.refreshTimer = setTimeout(() => this.refresh(), REFRESH_RETRY_MS);
      return true;
    }
  }

  refreshIfDue() {
    const due = this.refreshDueAt();
    if (due !== null && due <= Date.now()) this.refresh();
  }

  refreshDueAt() {
    const expiresAt = Date.parse(this.session?.expires_at ?? '');
    return Number.isFinite(expiresAt) ? expiresAt - REFRESH_BEFORE_MS : null;
  }

  scheduleRefresh() {
    clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    const due = this.refreshDueAt();
    if (due === null) return;
    // setTimeout overflows above 2^31 ms; a day-long wait is re-armed by refreshIfDue on wake-up anyway.
    const wait = Math.min(Math.max(due - Date.now(), 0), 2 ** 31 - 1);
    this.refreshTimer = setTimeout(() => this.refresh(), wait);
  }

  store(session) {
    this.session = session;
    this.save();
    this.scheduleRefresh();
  }

  save() {
    try {
      sessionStorage.setItem(SESSION_KEY, JSON.stringify(this.session));
    } catch {
      // Storage full or disabled: the session still works until the tab is reloaded.
    }
  }

  expire(message) {
    if (!this.session) return;
    this.clear();
    this.onExpired?.(message);
  }
}
