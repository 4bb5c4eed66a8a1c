//! A local P-256 key for export signatures: benchmarks, tests, and a local stack without KMS.
//!
//! The [`ExportSigner`] port hands over a SHA-256 *digest*, because that is what production
//! signs: KMS `Sign` with `MessageType=DIGEST`, so 30 MB of `export.bin` never travel to KMS.
//! ring's `EcdsaKeyPair` (`ECDSA_P256_SHA256_ASN1_SIGNING`) only signs *messages* (it hashes them
//! itself) and has no prehashed API, so it cannot honour that contract; hashing the digest again
//! would sign SHA-256(SHA-256(export.bin)), which no phone verifies (the very bug of moto's KMS
//! emulator). Rather than widen the port with a message method that KMS must not use, this signer
//! signs the digest with the RustCrypto `p256` crate's prehash signer (ECDSA with RFC 6979
//! deterministic nonces, DER output), exactly what KMS computes. ring still generates the keys
//! (from the system's random source) and verifies signatures elsewhere.

use std::fmt;
use std::future::{Future, ready};

use p256::ecdsa::signature::hazmat::PrehashSigner as _;
use p256::ecdsa::{DerSignature, SigningKey};
use p256::pkcs8::DecodePrivateKey as _;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair};

use crate::domain::export::ExportPublicKey;
use crate::ports::{ExportSigner, SignError};

/// An ECDSA P-256 signing key held in memory. `Debug` shows only the public key.
pub struct LocalSigner {
    key: SigningKey,
    public_key: ExportPublicKey,
}

impl LocalSigner {
    /// A fresh key from the system's random source.
    pub fn generate() -> Result<Self, SignError> {
        Self::from_pkcs8(&Self::generate_pkcs8()?)
    }

    /// A fresh key as a PKCS#8 v1 document (DER), e.g. to keep it in a file.
    pub fn generate_pkcs8() -> Result<Vec<u8>, SignError> {
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
            .map(|document| document.as_ref().to_vec())
            .map_err(|_| SignError("no randomness for a new signing key".into()))
    }

    /// From a P-256 private key in PKCS#8 DER (`openssl genpkey -algorithm EC -pkeyopt
    /// ec_paramgen_curve:P-256 -outform DER`, or [`generate_pkcs8`](Self::generate_pkcs8)).
    pub fn from_pkcs8(der: &[u8]) -> Result<Self, SignError> {
        let key = SigningKey::from_pkcs8_der(der)
            .map_err(|_| SignError("not a P-256 private key in PKCS#8 DER".into()))?;
        let point = key.verifying_key().to_sec1_point(false);
        let public_key = ExportPublicKey::from_uncompressed_point(point.as_bytes())
            .map_err(|error| SignError(error.to_string()))?;
        Ok(Self { key, public_key })
    }

    /// The public key, to verify with or to hand to Apple and Google.
    pub fn public_key(&self) -> &ExportPublicKey {
        &self.public_key
    }

    /// The public key as DER `SubjectPublicKeyInfo` (the form KMS `GetPublicKey` returns).
    pub fn public_key_spki_der(&self) -> Vec<u8> {
        self.public_key.to_spki_der()
    }

    /// The DER signature over a SHA-256 `digest`, right away (the port's method, without a
    /// future).
    pub fn sign_digest_now(&self, digest: &[u8; 32]) -> Result<Vec<u8>, SignError> {
        let signature: DerSignature = self
            .key
            .sign_prehash(digest)
            .map_err(|_| SignError("ECDSA signing failed".into()))?;
        Ok(signature.as_bytes().to_vec())
    }

    /// The DER signature over SHA-256(`message`): what `openssl dgst -sha256 -sign` makes, for
    /// files built outside [`build_export`](crate::domain::export::build_export).
    pub fn sign_message(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest.as_ref());
        self.sign_digest_now(&bytes)
    }
}

impl ExportSigner for LocalSigner {
    fn sign_digest(
        &self,
        digest: &[u8; 32],
    ) -> impl Future<Output = Result<Vec<u8>, SignError>> + Send {
        ready(self.sign_digest_now(digest))
    }
}

impl fmt::Debug for LocalSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LocalSigner")
            .field("public_key", &self.public_key)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

    use super::*;

    #[test]
    fn digest_signatures_verify_with_ring_over_the_message() {
        let signer = LocalSigner::generate().expect("key");
        let message = b"EK Export v1    the whole export.bin";
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let digest: [u8; 32] = digest.as_ref().try_into().expect("32 bytes");
        let signature = signer.sign_digest_now(&digest).expect("signs");
        assert_eq!(signature[0], 0x30, "DER SEQUENCE");
        let der = signer.public_key_spki_der();
        assert_eq!(der.len(), 91);
        let point = &der[26..];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
            .verify(message, &signature)
            .expect("ring verifies the signature over the message");
        assert!(signer.public_key().verify_digest(&digest, &signature));
        assert_eq!(signer.sign_message(message).expect("signs"), signature);
    }

    #[test]
    fn the_port_signs_the_same_way() {
        let signer = LocalSigner::generate().expect("key");
        let digest = [7; 32];
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        let mut future = std::pin::pin!(signer.sign_digest(&digest));
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(Ok(signature)) => {
                assert!(signer.public_key().verify_digest(&digest, &signature));
            }
            other => panic!("expected a signature at once, got {other:?}"),
        }
    }

    #[test]
    fn pkcs8_round_trips_and_garbage_is_refused() {
        let pkcs8 = LocalSigner::generate_pkcs8().expect("key");
        let first = LocalSigner::from_pkcs8(&pkcs8).expect("parses");
        let second = LocalSigner::from_pkcs8(&pkcs8).expect("parses");
        assert_eq!(first.public_key(), second.public_key());
        assert!(LocalSigner::from_pkcs8(b"not a key").is_err());
        assert!(!format!("{first:?}").contains("key: SigningKey"));
    }
}
