//! HER-SYS's processing-number check over HTTP, configured as COCOA's was
//! (reference/cocoa-api.md §4): `POST {url}` with `{"<parameter>": "<number>"}`, optional
//! `Ocp-Apim-Subscription-Key`, answer `{"result": "<code>"}` mapped to a status by a table.

use std::time::Duration;

use crate::config::HersysConfig;
use crate::domain::processing_number::ProcessingNumber;
use crate::ports::{ProcessingNumberVerifier, VerificationError};

pub struct HersysVerifier {
    client: reqwest::Client,
    config: HersysConfig,
}

#[derive(Debug, thiserror::Error)]
#[error("HER-SYS client could not be built")]
pub struct HersysClientError(#[from] reqwest::Error);

impl HersysVerifier {
    pub fn new(config: HersysConfig) -> Result<Self, HersysClientError> {
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(1)));
        if let Some(pem) = &config.client_identity_pem {
            // Mutual TLS: the certificate chain and its private key, PEM (COCOA's base64 PFX
            // converts with `openssl pkcs12 -in hersys.pfx -nodes`).
            builder = builder.identity(reqwest::Identity::from_pem(pem.as_bytes())?);
        }
        if let Some(pem) = &config.ca_pem {
            for certificate in reqwest::Certificate::from_pem_bundle(pem.as_bytes())? {
                builder = builder.add_root_certificate(certificate);
            }
        }
        Ok(Self {
            client: builder.build()?,
            config,
        })
    }

    async fn post(&self, body: &serde_json::Value) -> Result<reqwest::Response, reqwest::Error> {
        let mut request = self
            .client
            .post(&self.config.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .json(body);
        if let Some(key) = &self.config.api_key {
            request = request.header("Ocp-Apim-Subscription-Key", key);
        }
        request.send().await
    }
}

impl ProcessingNumberVerifier for HersysVerifier {
    async fn verify(&self, number: &ProcessingNumber) -> Result<(), VerificationError> {
        let mut body = serde_json::Map::new();
        body.insert(
            self.config.parameter_name.clone(),
            number.expose_to_hersys().into(),
        );
        let body = serde_json::Value::Object(body);
        // One retry, on a connection failure only: the request never reached HER-SYS.
        let response = match self.post(&body).await {
            Err(error) if error.is_connect() => self.post(&body).await,
            other => other,
        };
        let response = response.map_err(|error| VerificationError::Unavailable {
            reason: if error.is_timeout() {
                "timeout"
            } else {
                "connection failed"
            },
        })?;
        if !response.status().is_success() {
            return Err(VerificationError::Unavailable {
                reason: "error status",
            });
        }
        let answer: serde_json::Value =
            response
                .json()
                .await
                .map_err(|_| VerificationError::Unavailable {
                    reason: "unreadable answer",
                })?;
        let result = match answer.get("result") {
            Some(serde_json::Value::String(code)) => code.clone(),
            Some(serde_json::Value::Number(code)) => code.to_string(),
            _ => {
                return Err(VerificationError::Unavailable {
                    reason: "answer without result",
                });
            }
        };
        match self.config.status_of(&result) {
            Some(200) => Ok(()),
            Some(status) if (400..500).contains(&status) => {
                Err(VerificationError::Refused { status })
            }
            Some(_) => Err(VerificationError::Unavailable {
                reason: "failure result",
            }),
            None => Err(VerificationError::Unavailable {
                reason: "unmapped result",
            }),
        }
    }
}
