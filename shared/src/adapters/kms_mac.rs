//! HMAC-SHA-256 with the KMS `HMAC_256` key: the key never leaves KMS.

use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;

use crate::ports::{MacError, MessageAuthenticator};

pub struct KmsMac {
    client: Client,
    key_id: String,
}

impl KmsMac {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, key_id: impl Into<String>) -> Self {
        Self::new(Client::new(config), key_id)
    }
}

impl MessageAuthenticator for KmsMac {
    async fn generate_mac(&self, message: &[u8]) -> Result<[u8; 32], MacError> {
        let output = self
            .client
            .generate_mac()
            .key_id(&self.key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .send()
            .await
            .map_err(|e| {
                MacError(
                    e.into_service_error()
                        .code()
                        .unwrap_or("request failed")
                        .to_owned(),
                )
            })?;
        output
            .mac
            .and_then(|mac| <[u8; 32]>::try_from(mac.as_ref()).ok())
            .ok_or_else(|| MacError("KMS returned no 32-byte MAC".into()))
    }

    async fn verify_mac(&self, message: &[u8], mac: &[u8; 32]) -> Result<bool, MacError> {
        let result = self
            .client
            .verify_mac()
            .key_id(&self.key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(message))
            .mac(Blob::new(mac.to_vec()))
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.mac_valid),
            Err(error) => {
                let error = error.into_service_error();
                if error.is_kms_invalid_mac_exception() {
                    Ok(false)
                } else {
                    Err(MacError(
                        error.code().unwrap_or("request failed").to_owned(),
                    ))
                }
            }
        }
    }
}
