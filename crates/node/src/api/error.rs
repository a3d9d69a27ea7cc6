//! The API's one error type: a status and a message, answered as `{"error": "..."}`.

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chainsim_api::ErrorAnswer;
use chainsim_primitives::Txid;

use crate::driver::DriverGone;

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What went wrong, for people.
    pub message: String,
    /// The ledger rule broken and the transaction it conflicts with, for programs.
    pub rule: Option<(&'static str, Option<Txid>)>,
}

impl ApiError {
    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// Any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            rule: None,
        }
    }
    /// The same error naming the ledger rule broken (and the conflicting transaction).
    pub fn with_rule(self, rule: &'static str, conflicts_with: Option<Txid>) -> Self {
        Self {
            rule: Some((rule, conflicts_with)),
            ..self
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut answer = ErrorAnswer::new(self.message);
        if let Some((rule, conflicts_with)) = self.rule {
            answer.rule = Some(rule.to_owned());
            answer.conflicts_with = conflicts_with;
        }
        (self.status, Json(answer)).into_response()
    }
}

impl From<DriverGone> for ApiError {
    fn from(e: DriverGone) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}

impl From<BytesRejection> for ApiError {
    fn from(r: BytesRejection) -> Self {
        if let Some(late) = timed_out(&r) {
            return Self::new(StatusCode::REQUEST_TIMEOUT, late.to_string());
        }
        let status = r.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body is too large".to_string()
        } else {
            format!("could not read the request body: {r}")
        };
        Self::new(status, message)
    }
}

/// The body timeout behind a failed body read, if that is what failed (it lies a few
/// wrappers deep: the rejection, axum's error, the boxed error).
fn timed_out(r: &BytesRejection) -> Option<&crate::serve::BodyTimeout> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(r);
    while let Some(e) = cause {
        if let Some(late) = e.downcast_ref::<crate::serve::BodyTimeout>() {
            return Some(late);
        }
        cause = e.source();
    }
    None
}

/// Parses a JSON body into `T` with a readable message on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("request body is empty; expected a JSON object"));
    }
    // serde fills a struct from a JSON array by position, so `["Alice", "Bob", 10]` would
    // pass for `{sender, recipient, amount}`; every body of this API is an object.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request("expected a JSON object"));
    }
    serde_json::from_slice(body).map_err(|e| {
        let what = if e.is_syntax() || e.is_eof() {
            "malformed JSON"
        } else {
            "unexpected JSON content"
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })
}
