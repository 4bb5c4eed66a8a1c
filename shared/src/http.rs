//! HTTP responses, and the one place where errors become statuses and messages.
//!
//! Messages are COCOA's where COCOA defines one (`Invalid parameter`, `Regions not supported.`,
//! `Invalid Device`, `Bad VerificationPayload`), written as `text/plain`.

use lambda_http::http::{
    HeaderValue, StatusCode,
    header::{CONTENT_TYPE, RETRY_AFTER},
};
use lambda_http::{Body, Response};

use crate::logs::{AcceptLogError, EventLogError};
use crate::ports::VerificationError;
use crate::request::BodyError;
use crate::submission::SubmissionError;
use crate::verification::VerificationRequestError;

fn response(status: u16, content_type: Option<&'static str>, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(content_type) = content_type {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    if status == 503 {
        // Every 503 here is "a dependency (DynamoDB, KMS, HER-SYS) failed or throttled; nothing
        // was half-done; send the same request again": a client may retry after a few seconds,
        // the time the SDK's own retries of a throttled call take (docs/RELIABILITY.md).
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECONDS));
    }
    response
}

/// The `Retry-After` of every 503.
pub const RETRY_AFTER_SECONDS: &str = "3";

pub fn text(status: u16, message: impl Into<String>) -> Response<Body> {
    response(
        status,
        Some("text/plain; charset=utf-8"),
        Body::Text(message.into()),
    )
}

pub fn empty(status: u16) -> Response<Body> {
    response(status, None, Body::Empty)
}

/// Serializes `value` as the JSON body; a value that cannot be serialized is a 500.
pub fn json(status: u16, value: &impl serde::Serialize) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(body) => response(
            status,
            Some("application/json; charset=utf-8"),
            Body::Text(body),
        ),
        Err(_) => text(500, "response could not be encoded"),
    }
}

fn body_error(error: &BodyError) -> (u16, String) {
    match error {
        BodyError::TooLarge { .. } => (413, error.to_string()),
        BodyError::Malformed { .. } => (400, error.to_string()),
    }
}

fn verification_status(error: &VerificationError) -> u16 {
    match error {
        VerificationError::Refused { status } => *status,
        VerificationError::Unavailable { .. } => 503,
        VerificationError::Throttled => 429,
    }
}

/// The status and message a submission error answers with.
pub fn submission_error(error: &SubmissionError) -> (u16, String) {
    match error {
        SubmissionError::Body(error) => body_error(error),
        SubmissionError::Rejected(rejection) => (400, rejection.to_string()),
        SubmissionError::InvalidDevice => (400, "Invalid Device".into()),
        SubmissionError::Verification(error) => {
            (verification_status(error), "Bad VerificationPayload".into())
        }
        SubmissionError::Storage(_) => (
            503,
            "Keys could not be stored; retry with the same idempotency_key".into(),
        ),
    }
}

/// The status and message `POST /api/v1/verification` answers an error with.
pub fn verification_request_error(error: &VerificationRequestError) -> (u16, String) {
    match error {
        VerificationRequestError::Body(error) => body_error(error),
        VerificationRequestError::NotEightDigits(_) => (400, error.to_string()),
        VerificationRequestError::Verification(VerificationError::Refused { status }) => (
            *status,
            "The processing number is wrong or has expired".into(),
        ),
        VerificationRequestError::Verification(VerificationError::Throttled) => {
            (429, "Too many verifications; try again later".into())
        }
        VerificationRequestError::Verification(error) => (
            verification_status(error),
            "HER-SYS is unavailable; try again later".into(),
        ),
        VerificationRequestError::Mac(_) => {
            (503, "The token could not be issued; try again later".into())
        }
    }
}

/// The status and message an operation-log upload is refused with. Forged (403), unknown (404),
/// used (409) and expired (410) IDs are told apart: each tells the app or the helpdesk what to do
/// next, and none says anything about anyone's log.
pub fn accept_log_error(error: &AcceptLogError) -> (u16, String) {
    let status = match error {
        AcceptLogError::Body(error) => return body_error(error),
        AcceptLogError::Upload(_)
        | AcceptLogError::MalformedLogId(_)
        | AcceptLogError::InvalidBlobName
        | AcceptLogError::Encoding(_) => 400,
        AcceptLogError::ForgedLogId | AcceptLogError::InvalidGrant(_) => 403,
        AcceptLogError::UnknownLogId => 404,
        AcceptLogError::UsedLogId | AcceptLogError::AlreadyStored => 409,
        AcceptLogError::ExpiredLogId => 410,
        AcceptLogError::Mac(_) | AcceptLogError::Store(_) => {
            return (503, "The log could not be stored; try again later".into());
        }
    };
    (status, error.to_string())
}

/// The status and message an event-log request is refused with (COCOA: 400 and 413; a failed
/// device check is a 400 with no message).
pub fn event_log_error(error: &EventLogError) -> (u16, String) {
    match error {
        EventLogError::ContentLength => (400, error.to_string()),
        EventLogError::Body(error) => body_error(error),
        EventLogError::InvalidDevice => (400, String::new()),
        EventLogError::InvalidSurvey(_) => (400, error.to_string()),
        EventLogError::SurveyClosed => (410, error.to_string()),
        EventLogError::Store(_) => (
            503,
            "Event logs could not be stored; retry with the same idempotencyKey".into(),
        ),
    }
}

pub fn submission_error_response(error: &SubmissionError) -> Response<Body> {
    let (status, message) = submission_error(error);
    text(status, message)
}

pub fn method_not_allowed(allowed: &'static str) -> Response<Body> {
    let mut response = text(405, format!("Method not allowed; use {allowed}"));
    response
        .headers_mut()
        .insert("allow", HeaderValue::from_static(allowed));
    response
}

pub fn not_found() -> Response<Body> {
    text(404, "Not Found")
}
