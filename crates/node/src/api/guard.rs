//! Who may do what: the checks that keep web pages away from a node.
//!
//! A node listens on loopback and answers scripts (`curl`, the original's Python clients,
//! the dashboard's server) that send no `Origin`. A web page the user happens to visit can
//! also reach it, through the browser; these checks refuse it:
//! - every request must name this node in `Host`: a loopback name, the `--host` address, or
//!   an `--allow-host` name (a page on a rebinding domain names its own domain and is refused,
//!   so it cannot read answers either);
//! - a request that changes state and carries an `Origin` must come from the node's own
//!   origin (the node serves no pages, so in practice: no browser page at all);
//! - a `POST` or `PUT` with a body must say `Content-Type: application/json` (a plain HTML form
//!   cannot);
//! - `GET /mine` (the original's verb) is refused when the browser marks it cross-site
//!   (`Sec-Fetch-Site`), as an `<img src=".../mine">` is.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};

/// Names a node always answers to.
const LOOPBACK: [&str; 4] = ["127.0.0.1", "localhost", "::1", "[::1]"];

/// The names a node listening on `host` answers to, with `extra` ones.
pub fn allowed_hosts(host: &str, extra: &[String]) -> Vec<String> {
    let mut names: Vec<String> = LOOPBACK.iter().map(|s| s.to_string()).collect();
    names.push(host.to_ascii_lowercase());
    names.extend(extra.iter().map(|h| h.to_ascii_lowercase()));
    names.sort();
    names.dedup();
    names
}

/// The name part of a `Host` header (`name`, `name:port`, `[v6]:port`).
fn host_name(value: &str) -> String {
    let v = value.trim().to_ascii_lowercase();
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next().map(|h| format!("[{h}]")).unwrap_or(v.clone());
    }
    v.rsplit_once(':').map_or(v.clone(), |(h, _)| h.to_string())
}

/// Whether a request to this route changes the node's state.
fn changes_state(method: &Method, path: &str) -> bool {
    method == Method::POST
        || method == Method::PUT
        || (method == Method::GET && matches!(path, "/mine" | "/nodes/resolve"))
}

/// The checks above, on every request.
pub async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    match check(&s, &req) {
        Ok(()) => next.run(req).await,
        Err(e) => e.into_response(),
    }
}

fn check(s: &AppState, req: &Request) -> Result<(), ApiError> {
    let headers = req.headers();
    let allowed = &s.info.allowed_hosts;
    if let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) {
        let name = host_name(host);
        if !allowed.contains(&name) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "this node does not answer to the name {name:?}; start it with --allow-host {name} to allow it"
                ),
            ));
        }
    }
    let (method, path) = (req.method(), req.uri().path());
    if !changes_state(method, path) {
        return Ok(());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = allowed
            .iter()
            .any(|h| origin.eq_ignore_ascii_case(&format!("http://{h}:{}", s.info.port)));
        if !own {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!("requests that change a node's state are not accepted from web pages (Origin {origin})"),
            ));
        }
    }
    let cross_site = headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| !matches!(v, "same-origin" | "none"));
    if cross_site {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{method} {path} is not accepted from another site's page"),
        ));
    }
    let hint = axum::body::HttpBody::size_hint(req.body());
    let has_body = hint.lower() > 0 || hint.upper() != Some(0);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
        });
    if (method == Method::POST || method == Method::PUT) && has_body && !json {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the body as JSON with `Content-Type: application/json`",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_read_without_their_port() {
        assert_eq!(host_name("127.0.0.1:5000"), "127.0.0.1");
        assert_eq!(host_name("LocalHost"), "localhost");
        assert_eq!(host_name("[::1]:5000"), "[::1]");
        assert_eq!(host_name("evil.example:5000"), "evil.example");
    }
}
