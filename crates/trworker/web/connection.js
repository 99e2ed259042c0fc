// The connection pill: the page's own connection to the server, and the server's link to TaskRouter for
// this worker (its event channel). Calls reach the page only when both are up. Worded as a connection, never
// as an activity: "Offline" is also the name of a worker's activity.

/** The longest reason shown in the pill (the whole one is its title). */
const REASON_MAX = 120;

export class ConnectionPill {
  constructor(el) {
    this.el = el;
    this.page = 'offline';
    this.upstream = 'connected';
    this.reason = '';
  }

  /** The page's connection: `connected`, `reconnecting` or `offline`. Returns whether it has just come up. */
  setPage(status) {
    const before = this.page;
    this.page = status;
    // A new connection hears the server's link to TaskRouter anew (the server says it when it is down).
    if (status !== 'connected') Object.assign(this, { upstream: 'connected', reason: '' });
    this.#show();
    return status === 'connected' && before !== 'connected';
  }

  /** The server's link to TaskRouter, as its `channel` message says: `{status, reason}`. */
  setUpstream(msg) {
    this.upstream = msg.status === 'reconnecting' ? 'reconnecting' : 'connected';
    this.reason = typeof msg.reason === 'string' ? msg.reason : '';
    this.#show();
  }

  #show() {
    let status = this.page;
    let text = { connected: 'Connected', reconnecting: 'Reconnecting…', offline: 'Disconnected' }[status] ?? 'Disconnected';
    let title = '';
    if (status === 'connected' && this.upstream === 'reconnecting') {
      // The page reaches the server, but the server does not hear from TaskRouter: new calls would not show.
      status = 'reconnecting';
      const cut = this.reason.length > REASON_MAX ? `${this.reason.slice(0, REASON_MAX - 1)}…` : this.reason;
      text = cut ? `Reconnecting to TaskRouter: ${cut}` : 'Reconnecting to TaskRouter…';
      title = this.reason;
    }
    this.el.dataset.state = status;
    this.el.textContent = text;
    this.el.title = title;
  }
}
