//! `submit-keys`' way to HER-SYS: a synchronous Lambda Invoke of `verify-processing-number`, the
//! only function holding HER-SYS's credentials. Locally, `cargo lambda watch` serves the Invoke
//! API (`AWS_ENDPOINT_URL_LAMBDA`).

use std::time::Duration;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;

use crate::domain::processing_number::ProcessingNumber;
use crate::ports::{ProcessingNumberVerifier, VerificationError};
use crate::verification::{DirectVerification, DirectVerificationResult};

/// How long `submit-keys` waits for the verifier (which answers within `HERSYS_TIMEOUT_MS`, 3 s by
/// default, plus a KMS call); keep it above that timeout if an operator raises it.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(8);

pub struct LambdaVerifier {
    client: Client,
    function_name: String,
}

impl LambdaVerifier {
    pub fn new(client: Client, function_name: impl Into<String>) -> Self {
        Self {
            client,
            function_name: function_name.into(),
        }
    }

    /// The client from the function's configuration, with one change: the Invoke waits up to
    /// [`INVOKE_TIMEOUT`] in a single attempt, since the verifier needs HER-SYS's timeout (3 s)
    /// plus its own KMS call, and an Invoke repeated after a timeout would ask HER-SYS again.
    pub fn from_config(config: &aws_config::SdkConfig, function_name: impl Into<String>) -> Self {
        let timeouts = config
            .timeout_config()
            .map(|t| t.to_builder())
            .unwrap_or_default()
            .operation_attempt_timeout(INVOKE_TIMEOUT)
            .operation_timeout(INVOKE_TIMEOUT)
            .build();
        let client = Client::from_conf(
            aws_sdk_lambda::config::Builder::from(config)
                .timeout_config(timeouts)
                .build(),
        );
        Self::new(client, function_name)
    }
}

impl ProcessingNumberVerifier for LambdaVerifier {
    async fn verify(&self, number: &ProcessingNumber) -> Result<(), VerificationError> {
        let request = DirectVerification {
            processing_number: number.expose_to_hersys().to_owned(),
        };
        let payload = serde_json::to_vec(&request).map_err(|_| VerificationError::Unavailable {
            reason: "request not encodable",
        })?;
        let output = self
            .client
            .invoke()
            .function_name(&self.function_name)
            .payload(Blob::new(payload))
            .send()
            .await
            .map_err(|error| match error.into_service_error() {
                e if e.is_too_many_requests_exception() => VerificationError::Throttled,
                _ => VerificationError::Unavailable {
                    reason: "verifier function unreachable",
                },
            })?;
        if output.function_error.is_some() {
            return Err(VerificationError::Unavailable {
                reason: "verifier function failed",
            });
        }
        let result: DirectVerificationResult = output
            .payload
            .as_ref()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .ok_or(VerificationError::Unavailable {
                reason: "verifier answer unreadable",
            })?;
        match result.status {
            200 => Ok(()),
            429 => Err(VerificationError::Throttled),
            status @ 400..=499 => Err(VerificationError::Refused {
                status: if status == 400 { 406 } else { status },
            }),
            _ => Err(VerificationError::Unavailable {
                reason: "HER-SYS unavailable",
            }),
        }
    }
}
