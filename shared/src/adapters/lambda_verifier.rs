//! `submit-keys`' way to HER-SYS: a synchronous Lambda Invoke of `verify-processing-number`, the
//! only function holding HER-SYS's credentials. Locally, `cargo lambda watch` serves the Invoke
//! API (`AWS_ENDPOINT_URL_LAMBDA`).

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;

use crate::domain::processing_number::ProcessingNumber;
use crate::ports::{ProcessingNumberVerifier, VerificationError};
use crate::verification::{DirectVerification, DirectVerificationResult};

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

    pub fn from_config(config: &aws_config::SdkConfig, function_name: impl Into<String>) -> Self {
        Self::new(Client::new(config), function_name)
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
