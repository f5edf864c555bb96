//! What a request gets: the route of a parsed request head, and the bytes of
//! a refusal. Pure: no socket, no state.

use crate::codec::http1::{self, Request};

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// The exposition; `head`: without the body.
    Metrics { head: bool },
    /// A refusal: status, whether to send `Allow`, a one-line message.
    Refuse {
        status: u16,
        allow: bool,
        message: String,
        head: bool,
    },
}

/// Where a request goes: `/metrics` (any query) answers `GET` and `HEAD`;
/// another method there is 405 with `Allow`; any other path is 404.
pub fn route(request: &Request) -> Route {
    let head = request.method == "HEAD";
    let path = request.target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return Route::Refuse {
            status: 404,
            allow: false,
            message: format!("no such page: {path}; metrics are at /metrics"),
            head,
        };
    }
    if request.method == "GET" || head {
        return Route::Metrics { head };
    }
    Route::Refuse {
        status: 405,
        allow: true,
        message: format!("{} is not allowed here; use GET", request.method),
        head: false,
    }
}

/// A refusal as bytes: the codec's head, `Allow` when asked, a text body.
pub fn refusal(status: u16, allow: bool, message: &str, head: bool) -> Vec<u8> {
    let body = format!("{message}\n");
    let mut out = http1::response_head(
        status,
        http1::reason_phrase(status),
        "text/plain; charset=utf-8",
        body.len(),
    );
    if allow {
        // The head ends with an empty line: put the field before it.
        out.truncate(out.len().saturating_sub(2));
        out.extend_from_slice(b"Allow: GET, HEAD\r\n\r\n");
    }
    if !head {
        out.extend_from_slice(body.as_bytes());
    }
    out
}
