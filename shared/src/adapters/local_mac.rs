//! A local HMAC-SHA-256 key for the [`MessageAuthenticator`] port: benchmarks and tests, where
//! production asks KMS (`GenerateMac`/`VerifyMac`, `kms_mac`).

use ring::hmac;

use crate::ports::{MacError, MessageAuthenticator};

pub struct LocalMac(hmac::Key);

impl LocalMac {
    /// HMAC-SHA-256 under `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, secret))
    }
}

impl MessageAuthenticator for LocalMac {
    async fn generate_mac(&self, message: &[u8]) -> Result<[u8; 32], MacError> {
        <[u8; 32]>::try_from(hmac::sign(&self.0, message).as_ref())
            .map_err(|_| MacError("not 32 bytes".into()))
    }

    async fn verify_mac(&self, message: &[u8], mac: &[u8; 32]) -> Result<bool, MacError> {
        Ok(hmac::verify(&self.0, message, mac).is_ok())
    }
}
