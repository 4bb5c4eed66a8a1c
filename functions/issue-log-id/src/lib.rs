//! `issue-log-id`:
//! - `POST /api/v1/logs` (the app) and `POST /api/v1/helpdesk/logs` (the helpdesk; IAM-authorised
//!   in the deployment) → 201 `{"logId": "XXXXX-XXXXX-XXXXX-XXXXX-XXXXX", "expiresAt": "…"}`;
//! - COCOA's `GET /api/inquirylog` with `x-api-key` → 200 `{"sas_token": "…"}` (400, empty,
//!   without the right key).

use lambda_http::http::Method;
use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::http;
use shared::logs::IssueLogIds;
use shared::ports::{LogIdIssuer, LogIdRegistry, MessageAuthenticator};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const APP_PATH: &str = "/api/v1/logs";
pub const HELPDESK_PATH: &str = "/api/v1/helpdesk/logs";
pub const INQUIRY_LOG_PATH: &str = "/api/inquirylog";

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Issued {
    log_id: String,
    expires_at: String,
}

#[derive(Serialize)]
struct SasToken {
    sas_token: String,
}

/// Constant-time comparison, so the key cannot be guessed a byte at a time from response times.
fn same_key(given: &[u8], expected: &[u8]) -> bool {
    given.len() == expected.len()
        && given
            .iter()
            .zip(expected)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

pub async fn handle<M, R>(
    service: &IssueLogIds<M, R>,
    inquiry_log_api_key: &str,
    request: Request,
) -> Result<Response<Body>, std::convert::Infallible>
where
    M: MessageAuthenticator + Sync,
    R: LogIdRegistry + Sync,
{
    let now = OffsetDateTime::now_utc();
    let path = request.uri().path().trim_end_matches('/');
    let issuer = match path {
        APP_PATH => LogIdIssuer::App,
        HELPDESK_PATH => LogIdIssuer::Helpdesk,
        INQUIRY_LOG_PATH => {
            if request.method() != Method::GET {
                return Ok(http::method_not_allowed("GET"));
            }
            let given = request
                .headers()
                .get("x-api-key")
                .map(|v| v.as_bytes())
                .unwrap_or_default();
            if !same_key(given, inquiry_log_api_key.as_bytes()) {
                tracing::info!(status = 400, reason = "api-key", "inquirylog refused");
                return Ok(http::empty(400));
            }
            return Ok(match service.grant_upload(now.unix_timestamp()).await {
                Ok(sas_token) => {
                    tracing::info!(status = 200, "upload grant issued");
                    http::json(200, &SasToken { sas_token })
                }
                Err(error) => {
                    tracing::error!(error = %error, "upload grant not issued");
                    http::text(503, "The upload grant could not be issued; try again later")
                }
            });
        }
        _ => return Ok(http::not_found()),
    };
    if request.method() != Method::POST {
        return Ok(http::method_not_allowed("POST"));
    }
    Ok(match service.issue(issuer, now.unix_timestamp()).await {
        Ok(issued) => {
            let expires_at = OffsetDateTime::from_unix_timestamp(issued.expires_at)
                .ok()
                .and_then(|t| t.format(&Rfc3339).ok())
                .unwrap_or_default();
            tracing::info!(issuer = issuer.as_str(), status = 201, "log ID issued");
            http::json(
                201,
                &Issued {
                    log_id: issued.id.to_string(),
                    expires_at,
                },
            )
        }
        Err(error) => {
            tracing::error!(issuer = issuer.as_str(), error = %error, "log ID not issued");
            http::text(503, "The log ID could not be issued; try again later")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::same_key;

    #[test]
    fn api_keys_compare_whole() {
        assert!(same_key(b"secret", b"secret"));
        assert!(!same_key(b"secreT", b"secret"));
        assert!(!same_key(b"secret1", b"secret"));
        assert!(!same_key(b"", b"secret"));
    }
}
