//! `verify-processing-number`: the only function holding HER-SYS's credentials.
//!
//! Two doors, one check:
//! - `POST /api/v1/verification` (API Gateway HTTP API): `{"processingNumber", "padding"}` →
//!   200 `{"token", "expiresAt"}` (a single-use token valid 15 minutes), 400 (not 8 ASCII digits:
//!   HER-SYS is never asked), 406 (wrong or expired), 503 (HER-SYS failing), 429 (throttled).
//! - Direct Lambda Invoke by `submit-keys`: `{"processingNumber"}` → `{"status": 200|400|406|503}`.

use base64::Engine as _;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use lambda_http::aws_lambda_events::encodings::Body;
use lambda_http::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use lambda_http::lambda_runtime::LambdaEvent;
use serde_json::Value;
use shared::http;
use shared::ports::{MessageAuthenticator, ProcessingNumberVerifier};
use shared::verification::{DirectVerification, IssueTokens, VerificationRequestError};
use time::OffsetDateTime;

const FUNCTION: &str = "verify-processing-number";

/// The handler: API Gateway events (they carry `requestContext`) and direct invocations.
pub async fn handle<V, M>(
    service: &IssueTokens<V, M>,
    event: LambdaEvent<Value>,
) -> Result<Value, HandlerError>
where
    V: ProcessingNumberVerifier + Sync,
    M: MessageAuthenticator + Sync,
{
    let payload = event.payload;
    if payload.get("requestContext").is_some() {
        let request: ApiGatewayV2httpRequest =
            serde_json::from_value(payload).map_err(|_| HandlerError::UnreadableEvent)?;
        let response = handle_http(service, &request).await;
        return serde_json::to_value(response).map_err(|_| HandlerError::UnreadableEvent);
    }
    let request: DirectVerification =
        serde_json::from_value(payload).map_err(|_| HandlerError::UnreadableEvent)?;
    let result = service.check(&request).await;
    let outcome = match result.status {
        200 => None,
        400 => Some("malformed"),
        429 => Some("verification_throttled"),
        503 => Some("verification_unavailable"),
        _ => Some("verification_refused"),
    };
    if let Some(outcome) = outcome {
        shared::telemetry::count("VerificationFailures", FUNCTION, outcome);
    }
    tracing::info!(
        door = "invoke",
        status = result.status,
        "processing number checked"
    );
    serde_json::to_value(result).map_err(|_| HandlerError::UnreadableEvent)
}

/// A direct invocation whose event is neither an API Gateway event nor a verification request.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    #[error("the event is neither an API Gateway request nor a direct verification request")]
    UnreadableEvent,
}

impl From<HandlerError> for lambda_http::lambda_runtime::Diagnostic {
    fn from(error: HandlerError) -> Self {
        Self {
            error_type: "UnreadableEvent".into(),
            error_message: error.to_string(),
        }
    }
}

async fn handle_http<V, M>(
    service: &IssueTokens<V, M>,
    request: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse
where
    V: ProcessingNumberVerifier + Sync,
    M: MessageAuthenticator + Sync,
{
    let path = request.raw_path.as_deref().unwrap_or_default();
    if !path.ends_with("/v1/verification") {
        return response(404, "text/plain; charset=utf-8", "Not Found".into());
    }
    if request.request_context.http.method != lambda_http::http::Method::POST {
        return response(
            405,
            "text/plain; charset=utf-8",
            "Method not allowed; use POST".into(),
        );
    }
    let body = match (&request.body, request.is_base64_encoded) {
        (None, _) => Vec::new(),
        (Some(text), false) => text.as_bytes().to_vec(),
        (Some(text), true) => match base64::engine::general_purpose::STANDARD.decode(text) {
            Ok(bytes) => bytes,
            Err(_) => {
                return response(
                    400,
                    "text/plain; charset=utf-8",
                    "Malformed request body".into(),
                );
            }
        },
    };
    match service.issue(&body, OffsetDateTime::now_utc()).await {
        Ok(issued) => {
            tracing::info!(door = "http", status = 200, "verification token issued");
            match serde_json::to_string(&issued) {
                Ok(json) => response(200, "application/json; charset=utf-8", json),
                Err(_) => response(
                    500,
                    "text/plain; charset=utf-8",
                    "response could not be encoded".into(),
                ),
            }
        }
        Err(error) => {
            let (status, message) = http::verification_request_error(&error);
            if let VerificationRequestError::Verification(_)
            | VerificationRequestError::NotEightDigits(_) = error
            {
                shared::telemetry::count("VerificationFailures", FUNCTION, error.kind());
            }
            tracing::info!(
                door = "http",
                status,
                reason = error.kind(),
                "verification refused"
            );
            response(status, "text/plain; charset=utf-8", message)
        }
    }
}

fn response(status: u16, content_type: &'static str, body: String) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = i64::from(status);
    response.headers = headers;
    response.body = Some(Body::Text(body));
    response.is_base64_encoded = false;
    response
}
