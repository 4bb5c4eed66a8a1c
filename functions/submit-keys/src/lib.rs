//! `submit-keys`: COCOA's `PUT /api/v3/diagnosis` (200, the parameter echoed with both payloads
//! nulled) and `PUT /api/v2/diagnosis` (204).

use lambda_http::{Body, Request, Response};
use shared::http;
use shared::ports::{DeviceAttestation, ExposureKeyStore, SubmissionVerifier};
use shared::submission::{SubmissionError, SubmissionReport, SubmitKeys};
use time::OffsetDateTime;

/// COCOA (after Google's exposure-notification server): a request carrying this header, whatever
/// its value, is answered like a success with nothing verified or stored.
const CHAFF_HEADER: &str = "x-chaff";

/// The Lambda handler: a plain async function over the use case.
pub async fn handle<V, A, S>(
    service: &SubmitKeys<V, A, S>,
    request: Request,
) -> Result<Response<Body>, std::convert::Infallible>
where
    V: SubmissionVerifier + Sync,
    A: DeviceAttestation + Sync,
    S: ExposureKeyStore + Sync,
{
    let path = request.uri().path();
    let version = if path.ends_with("/v3/diagnosis") {
        "v3"
    } else if path.ends_with("/v2/diagnosis") {
        "v2"
    } else {
        return Ok(http::not_found());
    };
    if request.method() != lambda_http::http::Method::PUT {
        return Ok(http::method_not_allowed("PUT"));
    }
    let chaff = request.headers().contains_key(CHAFF_HEADER);
    let body: &[u8] = request.body().as_ref();
    let now = OffsetDateTime::now_utc();
    let result = if version == "v3" {
        service
            .submit_v3(body, chaff, now)
            .await
            .map(|(echo, report)| (http::json(200, &echo), report))
    } else {
        service
            .submit_v2(body, chaff, now)
            .await
            .map(|report| (http::empty(204), report))
    };
    Ok(match result {
        Ok((response, report)) => {
            log_accepted(version, &report);
            response
        }
        Err(error) => {
            if let SubmissionError::Verification(failure) = &error {
                shared::telemetry::count("VerificationFailures", "submit-keys", failure.kind());
            }
            let response = http::submission_error_response(&error);
            tracing::info!(
                version,
                status = response.status().as_u16(),
                reason = error.kind(),
                "diagnosis refused"
            );
            response
        }
    })
}

fn log_accepted(version: &'static str, report: &SubmissionReport) {
    tracing::info!(
        version,
        chaff = report.chaff,
        keys_accepted = report.keys_accepted,
        keys_stored = report.keys_stored,
        keys_already_present = report.keys_already_present,
        verification_ms = report.verification_ms,
        "diagnosis accepted"
    );
}
