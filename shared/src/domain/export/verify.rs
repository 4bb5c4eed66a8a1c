//! Checking `export.sig`: ECDSA P-256 / SHA-256 over the whole `export.bin` (header included),
//! against the public key registered with Apple and Google.

use base64::Engine as _;
use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};

use super::{ECDSA_P256_SHA256_OID, ExportSignature, ParsedExport};

/// DER of a P-256 `SubjectPublicKeyInfo` up to its 65-byte uncompressed point: SEQUENCE {
/// SEQUENCE { OID id-ecPublicKey, OID prime256v1 }, BIT STRING (0 unused bits, 04 ...) }. KMS
/// `GetPublicKey` and `openssl pkey -pubout` give exactly this prefix (91 bytes in all).
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
const POINT_LEN: usize = 65;
const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// Why a public key was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublicKeyError {
    #[error(
        "not a P-256 public key: expected a 91-byte DER SubjectPublicKeyInfo (uncompressed point) or its PEM"
    )]
    NotP256Spki,
    #[error("PEM without a \"PUBLIC KEY\" block (a private key or a certificate is not accepted)")]
    NoPublicKeyPem,
    #[error("the PEM body is not base64")]
    PemBase64,
    #[error("the point is not on the P-256 curve")]
    NotOnCurve,
}

/// Why `export.sig` does not prove `export.bin`.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error(transparent)]
    PublicKey(#[from] PublicKeyError),
    #[error("export.sig holds no signature")]
    NoSignatures,
    #[error("signature algorithm {0:?} is not ECDSA P-256 / SHA-256 (1.2.840.10045.4.3.2)")]
    UnsupportedAlgorithm(String),
    /// A valid signature, but for another batch than `export.bin` says it is.
    #[error(
        "export.sig is for batch {signature_batch:?} (num, size), export.bin says {export_batch:?}"
    )]
    BatchMismatch {
        signature_batch: (i32, i32),
        export_batch: (i32, i32),
    },
    #[error("no signature in export.sig verifies with this public key")]
    BadSignature,
}

/// A P-256 public key that export signatures are checked against.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExportPublicKey {
    /// SEC1 uncompressed point: 04 || X || Y.
    point: [u8; POINT_LEN],
}

impl ExportPublicKey {
    /// From a DER `SubjectPublicKeyInfo` (KMS `GetPublicKey`, `openssl pkey -pubout -outform DER`).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, PublicKeyError> {
        let point = der
            .strip_prefix(&P256_SPKI_PREFIX)
            .ok_or(PublicKeyError::NotP256Spki)?;
        Self::from_uncompressed_point(point)
    }

    /// From a PEM `PUBLIC KEY` block (the DER above in base64).
    pub fn from_pem(text: &str) -> Result<Self, PublicKeyError> {
        let start = text.find(PEM_BEGIN).ok_or(PublicKeyError::NoPublicKeyPem)? + PEM_BEGIN.len();
        let len = text
            .get(start..)
            .and_then(|rest| rest.find(PEM_END))
            .ok_or(PublicKeyError::NoPublicKeyPem)?;
        let body: String = text
            .get(start..start + len)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| PublicKeyError::PemBase64)?;
        Self::from_spki_der(&der)
    }

    /// From a file's bytes, PEM or DER (a file that starts with `-----BEGIN` is PEM).
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self, PublicKeyError> {
        let trimmed = bytes.trim_ascii_start();
        if trimmed.starts_with(b"-----BEGIN") {
            let text = std::str::from_utf8(trimmed).map_err(|_| PublicKeyError::NoPublicKeyPem)?;
            Self::from_pem(text)
        } else {
            Self::from_spki_der(bytes)
        }
    }

    /// From a 65-byte SEC1 uncompressed point (04 || X || Y), checked to be on the curve.
    pub fn from_uncompressed_point(point: &[u8]) -> Result<Self, PublicKeyError> {
        let point = <[u8; POINT_LEN]>::try_from(point).map_err(|_| PublicKeyError::NotP256Spki)?;
        if point[0] != 0x04 {
            return Err(PublicKeyError::NotP256Spki);
        }
        p256::ecdsa::VerifyingKey::from_sec1_bytes(&point)
            .map_err(|_| PublicKeyError::NotOnCurve)?;
        Ok(Self { point })
    }

    /// The DER `SubjectPublicKeyInfo` (what to give Apple and Google, in PEM).
    pub fn to_spki_der(&self) -> Vec<u8> {
        [&P256_SPKI_PREFIX[..], &self.point].concat()
    }

    /// The PEM `PUBLIC KEY` block of [`to_spki_der`](Self::to_spki_der).
    pub fn to_pem(&self) -> String {
        let body = base64::engine::general_purpose::STANDARD.encode(self.to_spki_der());
        let mut pem = String::from(PEM_BEGIN);
        for line in body.as_bytes().chunks(64) {
            pem.push('\n');
            pem.push_str(&String::from_utf8_lossy(line));
        }
        pem.push('\n');
        pem.push_str(PEM_END);
        pem.push('\n');
        pem
    }

    /// Whether `signature` (DER) is this key's ECDSA P-256 signature over SHA-256(`message`)
    /// (ring, `ECDSA_P256_SHA256_ASN1`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }

    /// Whether `signature` (DER) is this key's signature over a SHA-256 `digest` already computed:
    /// the cheap check of what KMS returned, before anything is published (no second pass over
    /// `export.bin`; ring cannot verify a digest, p256's prehash verifier can).
    pub fn verify_digest(&self, digest: &[u8; 32], signature: &[u8]) -> bool {
        let Ok(key) = p256::ecdsa::VerifyingKey::from_sec1_bytes(&self.point) else {
            return false;
        };
        let Ok(signature) = p256::ecdsa::DerSignature::from_bytes(signature) else {
            return false;
        };
        key.verify_prehash(digest, &signature).is_ok()
    }
}

/// Checks a DER `signature` over a SHA-256 `digest` against a public key given as DER
/// `SubjectPublicKeyInfo` (KMS `GetPublicKey`) or PEM: the exporter's check of what the signer
/// returned, before a file is published.
pub fn verify_digest_signature(
    public_key: &[u8],
    digest: &[u8; 32],
    signature: &[u8],
) -> Result<(), VerifyError> {
    let key = ExportPublicKey::from_pem_or_der(public_key)?;
    if key.verify_digest(digest, signature) {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

impl ParsedExport {
    /// Checks `export.sig` against `key`: some `TEKSignature` with the ECDSA P-256 / SHA-256 OID
    /// verifies over the whole `export.bin` and names the same batch. Returns that signature.
    pub fn verify(&self, key: &ExportPublicKey) -> Result<&ExportSignature, VerifyError> {
        let export_batch = (self.contents.batch_num, self.contents.batch_size);
        let mut error = VerifyError::NoSignatures;
        for signature in &self.signatures {
            if signature.signature_info.signature_algorithm != ECDSA_P256_SHA256_OID {
                if error == VerifyError::NoSignatures {
                    error = VerifyError::UnsupportedAlgorithm(
                        signature.signature_info.signature_algorithm.clone(),
                    );
                }
                continue;
            }
            if !key.verify(&self.export_bin, &signature.signature) {
                if !matches!(error, VerifyError::BatchMismatch { .. }) {
                    error = VerifyError::BadSignature;
                }
                continue;
            }
            let signature_batch = (signature.batch_num, signature.batch_size);
            if signature_batch != export_batch {
                error = VerifyError::BatchMismatch {
                    signature_batch,
                    export_batch,
                };
                continue;
            }
            return Ok(signature);
        }
        Err(error)
    }
}

#[cfg(test)]
mod tests {
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};

    use super::*;
    use crate::domain::export::{ExportContents, SignatureInfo};

    fn ring_key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("key");
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .expect("key")
    }

    fn parsed(bin: &[u8], signatures: Vec<ExportSignature>) -> ParsedExport {
        ParsedExport {
            contents: ExportContents {
                start_timestamp: 0,
                end_timestamp: 0,
                region: "440".into(),
                batch_num: 1,
                batch_size: 1,
                signature_infos: Vec::new(),
                keys: Vec::new(),
                revised_keys: Vec::new(),
            },
            signatures,
            export_bin: bin.to_vec(),
        }
    }

    fn signature(algorithm: &str, batch: (i32, i32), bytes: &[u8]) -> ExportSignature {
        let mut info = SignatureInfo::ecdsa_p256_sha256("440", "v1");
        info.signature_algorithm = algorithm.into();
        ExportSignature {
            signature_info: info,
            batch_num: batch.0,
            batch_size: batch.1,
            signature: bytes.to_vec(),
        }
    }

    #[test]
    fn spki_pem_and_point_forms_agree_and_round_trip() {
        let pair = ring_key();
        let point = pair.public_key().as_ref();
        let key = ExportPublicKey::from_uncompressed_point(point).expect("point");
        let der = key.to_spki_der();
        assert_eq!(der.len(), 91);
        assert_eq!(ExportPublicKey::from_spki_der(&der), Ok(key.clone()));
        assert_eq!(ExportPublicKey::from_pem(&key.to_pem()), Ok(key.clone()));
        assert_eq!(
            ExportPublicKey::from_pem_or_der(key.to_pem().as_bytes()),
            Ok(key.clone())
        );
        assert_eq!(ExportPublicKey::from_pem_or_der(&der), Ok(key));
    }

    #[test]
    fn other_keys_and_garbage_are_refused() {
        assert_eq!(
            ExportPublicKey::from_spki_der(&[0; 91]),
            Err(PublicKeyError::NotP256Spki)
        );
        let mut off_curve = P256_SPKI_PREFIX.to_vec();
        off_curve.push(0x04);
        off_curve.extend_from_slice(&[1; 64]);
        assert_eq!(
            ExportPublicKey::from_spki_der(&off_curve),
            Err(PublicKeyError::NotOnCurve)
        );
        assert_eq!(
            ExportPublicKey::from_pem(
                "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            ),
            Err(PublicKeyError::NoPublicKeyPem)
        );
        assert_eq!(
            ExportPublicKey::from_pem(&format!("{PEM_BEGIN}\n!!!\n{PEM_END}")),
            Err(PublicKeyError::PemBase64)
        );
        assert_eq!(
            ExportPublicKey::from_pem_or_der(b""),
            Err(PublicKeyError::NotP256Spki)
        );
    }

    #[test]
    fn signatures_verify_over_the_message_and_over_its_digest() {
        let pair = ring_key();
        let key =
            ExportPublicKey::from_uncompressed_point(pair.public_key().as_ref()).expect("key");
        let message = b"EK Export v1    payload";
        let signature = pair
            .sign(&SystemRandom::new(), message)
            .expect("signs")
            .as_ref()
            .to_vec();
        assert!(key.verify(message, &signature));
        assert!(!key.verify(b"EK Export v1    tampered", &signature));
        let digest = ring::digest::digest(&ring::digest::SHA256, message);
        let digest: [u8; 32] = digest.as_ref().try_into().expect("32 bytes");
        assert!(key.verify_digest(&digest, &signature));
        assert!(!key.verify_digest(&[0; 32], &signature));
        assert!(!key.verify_digest(&digest, b"not DER"));
        let der = key.to_spki_der();
        assert_eq!(verify_digest_signature(&der, &digest, &signature), Ok(()));
        assert_eq!(
            verify_digest_signature(key.to_pem().as_bytes(), &digest, &signature),
            Ok(())
        );
        assert_eq!(
            verify_digest_signature(&der, &[1; 32], &signature),
            Err(VerifyError::BadSignature)
        );
        assert_eq!(
            verify_digest_signature(b"junk", &digest, &signature),
            Err(VerifyError::PublicKey(PublicKeyError::NotP256Spki))
        );
    }

    #[test]
    fn an_export_verifies_only_with_a_matching_algorithm_batch_and_key() {
        let pair = ring_key();
        let key =
            ExportPublicKey::from_uncompressed_point(pair.public_key().as_ref()).expect("key");
        let bin = b"EK Export v1    contents";
        let good = pair
            .sign(&SystemRandom::new(), bin)
            .expect("signs")
            .as_ref()
            .to_vec();

        let ok = parsed(bin, vec![signature(ECDSA_P256_SHA256_OID, (1, 1), &good)]);
        assert!(ok.verify(&key).is_ok());

        let rotated = parsed(
            bin,
            vec![
                signature("1.2.840.10045.4.3.4", (1, 1), &good),
                signature(ECDSA_P256_SHA256_OID, (1, 1), b"\x30\x00"),
                signature(ECDSA_P256_SHA256_OID, (1, 1), &good),
            ],
        );
        assert!(
            rotated.verify(&key).is_ok(),
            "any listed signature may verify"
        );

        assert_eq!(
            parsed(bin, Vec::new()).verify(&key),
            Err(VerifyError::NoSignatures)
        );
        assert_eq!(
            parsed(bin, vec![signature("SHA256withECDSA", (1, 1), &good)]).verify(&key),
            Err(VerifyError::UnsupportedAlgorithm("SHA256withECDSA".into()))
        );
        assert_eq!(
            parsed(bin, vec![signature(ECDSA_P256_SHA256_OID, (2, 3), &good)]).verify(&key),
            Err(VerifyError::BatchMismatch {
                signature_batch: (2, 3),
                export_batch: (1, 1)
            })
        );
        let tampered = parsed(
            b"EK Export v1    Contents",
            vec![signature(ECDSA_P256_SHA256_OID, (1, 1), &good)],
        );
        assert_eq!(tampered.verify(&key), Err(VerifyError::BadSignature));
        let other = ring_key();
        let other_key =
            ExportPublicKey::from_uncompressed_point(other.public_key().as_ref()).expect("key");
        assert_eq!(ok.verify(&other_key), Err(VerifyError::BadSignature));
    }
}
