//! `accept-logs`: consented operation logs (動作情報).
//! - `PUT /api/v1/logs/{logId}` with the JSON upload → 201 `{"logId", "expiresAt", "redacted"}`;
//! - COCOA's blob-style `PUT /{container}/cocoa_log_{uuid}.zip?{sas_token}` with the app's zip →
//!   201, empty (the app counts only 201 as success).
//!
//! No route of this function, or of any other user-facing one, deletes a log: only the helpdesk
//! command and the retention job do.

use std::collections::BTreeMap;

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::http;
use shared::logs::{AcceptLogError, AcceptLogs, AcceptedLog};
use shared::ports::{LogIdRegistry, MessageAuthenticator, OperationLogStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const LOGS_PREFIX: &str = "/api/v1/logs/";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Accepted {
    log_id: String,
    expires_at: String,
    /// What was redacted before storage, by kind (counts only).
    redacted: BTreeMap<&'static str, u64>,
}

fn accepted_body(log: &AcceptedLog, display_id: String) -> Accepted {
    Accepted {
        log_id: display_id,
        expires_at: OffsetDateTime::from_unix_timestamp(log.expires_at)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_default(),
        redacted: log.redactions.iter().map(|(k, n)| (k.label(), n)).collect(),
    }
}

fn log_result(route: &'static str, result: &Result<AcceptedLog, AcceptLogError>, status: u16) {
    match result {
        Ok(log) => tracing::info!(
            route,
            status,
            original_bytes = log.original_bytes,
            stored_bytes = log.stored_bytes,
            redacted = log.redactions.total(),
            "log accepted"
        ),
        Err(error) => tracing::info!(route, status, reason = error.kind(), "log refused"),
    }
}

pub async fn handle<M, R, S>(
    service: &AcceptLogs<M, R, S>,
    container: &str,
    request: Request,
) -> Result<Response<Body>, std::convert::Infallible>
where
    M: MessageAuthenticator + Sync,
    R: LogIdRegistry + Sync,
    S: OperationLogStore + Sync,
{
    let now = OffsetDateTime::now_utc();
    let path = request.uri().path().to_owned();
    let body: &[u8] = request.body().as_ref();
    if let Some(log_id) = path.strip_prefix(LOGS_PREFIX) {
        if request.method() != Method::PUT {
            return Ok(http::method_not_allowed("PUT"));
        }
        let result = service.accept_json(log_id, body, now).await;
        return Ok(respond("v1-logs", result, true));
    }
    let blob = path
        .strip_prefix('/')
        .and_then(|p| p.strip_prefix(container))
        .and_then(|p| p.strip_prefix('/'));
    if let Some(blob) = blob {
        if request.method() != Method::PUT {
            return Ok(http::method_not_allowed("PUT"));
        }
        let query = request.uri().query().unwrap_or_default();
        let result = service.accept_blob(blob, query, body, now).await;
        return Ok(respond("blob", result, false));
    }
    Ok(http::not_found())
}

fn respond(
    route: &'static str,
    result: Result<AcceptedLog, AcceptLogError>,
    json: bool,
) -> Response<Body> {
    match &result {
        Ok(log) => {
            log_result(route, &result, 201);
            if json {
                let display = shared::domain::log_id::LogId::parse(&log.id)
                    .map(|id| id.to_string())
                    .unwrap_or_else(|_| log.id.clone());
                http::json(201, &accepted_body(log, display))
            } else {
                http::empty(201)
            }
        }
        Err(error) => {
            let (status, message) = http::accept_log_error(error);
            log_result(route, &result, status);
            http::text(status, message)
        }
    }
}
