//! Export signatures by the KMS `ECC_NIST_P256` key: `Sign` with `MessageType=DIGEST` over the
//! SHA-256 of `export.bin`, DER signature. The private key never leaves KMS.

use aws_sdk_kms::Client;
use aws_sdk_kms::error::ProvideErrorMetadata;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};

use crate::ports::{ExportSigner, SignError};

pub struct KmsSigner {
    client: Client,
    key_id: String,
}

/// Only the error code: a message could quote the request.
fn sign_error<E: ProvideErrorMetadata>(error: &E) -> SignError {
    SignError(error.code().unwrap_or("request failed").to_owned())
}

impl KmsSigner {
    pub fn new(client: Client, key_id: impl Into<String>) -> Self {
        Self {
            client,
            key_id: key_id.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, key_id: impl Into<String>) -> Self {
        Self::new(Client::new(config), key_id)
    }

    /// The key's public half (DER SubjectPublicKeyInfo), to check every signature before a file
    /// is published.
    pub async fn public_key(&self) -> Result<Vec<u8>, SignError> {
        let output = self
            .client
            .get_public_key()
            .key_id(&self.key_id)
            .send()
            .await
            .map_err(|e| sign_error(&e.into_service_error()))?;
        output
            .public_key
            .map(Blob::into_inner)
            .ok_or_else(|| SignError("KMS returned no public key".into()))
    }
}

impl ExportSigner for KmsSigner {
    async fn sign_digest(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SignError> {
        let output = self
            .client
            .sign()
            .key_id(&self.key_id)
            .message(Blob::new(digest.to_vec()))
            .message_type(MessageType::Digest)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|e| sign_error(&e.into_service_error()))?;
        output
            .signature
            .map(Blob::into_inner)
            .ok_or_else(|| SignError("KMS returned no signature".into()))
    }
}
