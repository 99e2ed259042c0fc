//! Security headers on every response: the page's Content-Security-Policy, no framing, no referrer, no
//! MIME sniffing, and a browsing context of its own.
//!
//! They are set only where the handler has not set them (`if_not_present`), so a handler that needs another
//! policy can still say so. The policy is written for the page, and it costs nothing on JSON responses: a
//! browser only applies it to what it renders, and there it forbids the rest (framing, sniffing) as well.
//!
//! The page is built for this policy: scripts and styles come only from its own files (no inline `<script>`,
//! no `style="…"`, no `eval`); JavaScript only sets styles through the CSSOM (`el.style.x = …`), which CSP
//! allows. The WebSocket at `/api/ws` is covered by `connect-src 'self'`, which matches `ws:`/`wss:` on the
//! page's own host and port (CSP Level 3, as Chromium, Firefox and Safari implement it).

use axum::http::{header, HeaderName, HeaderValue};
use tower::layer::util::Stack;
use tower_http::set_header::SetResponseHeaderLayer;

/// The page's policy. `img-src data:` is for the empty `data:,` favicon, which keeps browsers from asking
/// for `/favicon.ico`; `frame-ancestors 'none'` keeps the sign-in form out of other sites' frames.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// Every header with its value, in the order they are layered.
pub const HEADERS: [(HeaderName, &str); 5] = [
    (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
    // For browsers that predate `frame-ancestors`.
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    // A page opened from another site's window cannot reach back into this one, nor it into that.
    (HeaderName::from_static("cross-origin-opener-policy"), "same-origin"),
];

type SetHeader = SetResponseHeaderLayer<HeaderValue>;

/// The layer [`layer`] returns: one `SetResponseHeaderLayer` per header of [`HEADERS`]. A nameable type, so
/// it can be stored or applied to any router or service; it adds no allocation per request (a static
/// `HeaderValue` clones without copying).
pub type SecurityHeaders = Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, Stack<SetHeader, SetHeader>>>>;

/// The security headers as a tower layer, for `Router::layer`. [`crate::app::router`] applies it to the app;
/// apply it to the engine's routes too, after their fallback so that unknown paths get the headers as well.
pub fn layer() -> SecurityHeaders {
    let [csp, frame, referrer, sniff, opener] = HEADERS
        .map(|(name, value)| SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    Stack::new(csp, Stack::new(frame, Stack::new(referrer, Stack::new(sniff, opener))))
}
