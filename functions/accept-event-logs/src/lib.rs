//! `accept-event-logs`: COCOA's `PUT /api/v1/event_log` (reference/cocoa-api.md §3.5): 201 with
//! an empty body; 400 for a missing or bad Content-Length, broken JSON or a failed device check;
//! 413 above 10 MiB. Entries without consent are dropped; survey entries are checked against the
//! survey's schema and kept until the configured end date, the others 60 days.

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use shared::http;
use shared::logs::AcceptEventLogs;
use shared::ports::{DeviceAttestation, EventLogStore};
use time::OffsetDateTime;

pub const PATH: &str = "/api/v1/event_log";

pub async fn handle<A, S>(
    service: &AcceptEventLogs<A, S>,
    request: Request,
) -> Result<Response<Body>, std::convert::Infallible>
where
    A: DeviceAttestation + Sync,
    S: EventLogStore + Sync,
{
    if request.uri().path().trim_end_matches('/') != PATH {
        return Ok(http::not_found());
    }
    if request.method() != Method::PUT {
        return Ok(http::method_not_allowed("PUT"));
    }
    let content_length = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok());
    let body: &[u8] = request.body().as_ref();
    Ok(
        match service
            .accept(content_length, body, OffsetDateTime::now_utc())
            .await
        {
            Ok(report) => {
                tracing::info!(
                    status = 201,
                    received = report.received,
                    without_consent = report.without_consent,
                    stored = report.stored,
                    surveys = report.surveys,
                    "event logs accepted"
                );
                http::empty(201)
            }
            Err(error) => {
                let (status, message) = http::event_log_error(&error);
                tracing::info!(status, reason = error.kind(), "event logs refused");
                if message.is_empty() {
                    http::empty(status)
                } else {
                    http::text(status, message)
                }
            }
        },
    )
}
