//! The GAEN export file: what phones download and hand to the OS (reference/google-en-server.md §1,
//! reference/cocoa-api.md §6.3).
//!
//! A file is a zip with exactly two entries, `export.bin` then `export.sig`, both deflated:
//! - `export.bin` = the 16-byte header [`HEADER`] + a `TemporaryExposureKeyExport` protobuf
//!   ([`proto`], generated from `shared/proto/export.proto`): keys sorted by key bytes, batch 1 of 1;
//! - `export.sig` = a `TEKSignatureList` with one `TEKSignature`: ECDSA P-256 (DER) over SHA-256 of
//!   the whole `export.bin`, header included.
//!
//! Writing: [`build_export`] (keys in, signed zip out, signing through the
//! [`ExportSigner`](crate::ports::ExportSigner) port), or its steps [`encode_export_bin`],
//! [`encode_export_sig`]. Releases: [`pad_release`] (random padding keys up to a minimum) and
//! [`split_release`] (files of at most a maximum). Reading: [`parse_export_zip`] accepts files of
//! any GAEN producer; [`ParsedExport::verify`] checks `export.sig` against an
//! [`ExportPublicKey`].
//!
//! Everything here is pure: no I/O, no clock, and no panic on any input.

mod build;
mod deflate;
mod padding;
mod parallel;
mod parse;
mod sort;
#[rustfmt::skip]
#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod proto;
mod verify;
mod zip;

use std::fmt;

use crate::domain::exposure_key::{ExposureKey, KeyData, ReportType};

pub use build::{BuildError, BuiltExport, build_export, encode_export_bin, encode_export_sig};
pub use padding::{RandomError, pad_release, split_release, split_sizes};
pub use parse::{
    ExportContents, ExportSignature, MAX_EXPORT_BIN_BYTES, MAX_EXPORT_SIG_BYTES, ParseError,
    ParsedExport, parse_export_bin, parse_export_sig, parse_export_zip,
};
pub use verify::{ExportPublicKey, PublicKeyError, VerifyError, verify_digest_signature};

/// The first 16 bytes of every `export.bin`: `EK Export v1` right-padded with spaces.
pub const HEADER: &[u8; 16] = b"EK Export v1    ";
/// Zip entry holding the header and the `TemporaryExposureKeyExport`.
pub const EXPORT_BIN_NAME: &str = "export.bin";
/// Zip entry holding the `TEKSignatureList`.
pub const EXPORT_SIG_NAME: &str = "export.sig";
/// ASN.1 OID of ECDSA with SHA-256 (on P-256), the only algorithm this service signs with. Android
/// rejects anything but an OID here (exposure-notifications-android #45).
pub const ECDSA_P256_SHA256_OID: &str = "1.2.840.10045.4.3.2";
/// What an absent `rolling_period` means (the proto default): one day of 10-minute intervals.
pub const DEFAULT_ROLLING_PERIOD: u32 = 144;
/// Releases with fewer real keys (but at least one) are padded up to this many
/// (google-en-server.md §1.9: `EXPORT_FILE_MIN_RECORDS`).
pub const DEFAULT_MIN_KEYS: usize = 1_000;
/// Releases with more keys are split into several files (COCOA's `MaxKeysPerFile`).
pub const DEFAULT_MAX_KEYS_PER_FILE: usize = 250_000;

/// One key as an export file carries it: the stored key without its id and region (36 bytes,
/// `Copy`, so a million of them fit in a small Lambda). `Debug` never shows the key bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ExportKey {
    pub key_data: KeyData,
    pub rolling_start_number: u32,
    /// 1..=144; written only when not 144.
    pub rolling_period: u32,
    /// 0..=8 (deprecated in GAEN v1.5, still read by older phones).
    pub transmission_risk: u8,
    /// Absent when unknown (v2 submissions).
    pub report_type: Option<ReportType>,
    /// Absent when unknown.
    pub days_since_onset: Option<i32>,
}

impl From<&ExposureKey> for ExportKey {
    fn from(key: &ExposureKey) -> Self {
        Self {
            key_data: key.key_data,
            rolling_start_number: key.rolling_start_number,
            rolling_period: key.rolling_period,
            transmission_risk: key.transmission_risk,
            report_type: key.report_type,
            days_since_onset: key.days_since_onset,
        }
    }
}

/// Names the key that signs a file, as `SignatureInfo` in both `export.bin` and `export.sig`.
/// Phones look the public key up by (`verification_key_id`, `verification_key_version`), as
/// registered with Apple and Google (COCOA: id `"440"`, version `"v1"`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignatureInfo {
    /// `[a-zA-Z0-9_]`; the MCC for Apple. Empty = not written.
    pub verification_key_id: String,
    /// `[a-zA-Z0-9_]`, e.g. `v1`. Empty = not written.
    pub verification_key_version: String,
    /// An ASN.1 OID; this service writes [`ECDSA_P256_SHA256_OID`].
    pub signature_algorithm: String,
}

impl SignatureInfo {
    /// The signature info of an ECDSA P-256 / SHA-256 key (what KMS `ECC_NIST_P256` signs with).
    pub fn ecdsa_p256_sha256(key_id: &str, key_version: &str) -> Self {
        Self {
            verification_key_id: key_id.to_owned(),
            verification_key_version: key_version.to_owned(),
            signature_algorithm: ECDSA_P256_SHA256_OID.to_owned(),
        }
    }

    fn to_proto(&self) -> proto::SignatureInfo {
        let non_empty = |text: &str| (!text.is_empty()).then(|| text.to_owned());
        proto::SignatureInfo {
            verification_key_version: non_empty(&self.verification_key_version),
            verification_key_id: non_empty(&self.verification_key_id),
            signature_algorithm: Some(self.signature_algorithm.clone()),
        }
    }

    fn from_proto(info: &proto::SignatureInfo) -> Self {
        Self {
            verification_key_id: info.verification_key_id().to_owned(),
            verification_key_version: info.verification_key_version().to_owned(),
            signature_algorithm: info.signature_algorithm().to_owned(),
        }
    }
}

/// What one file says about itself besides its keys.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExportHeader {
    /// E.g. `"440"` (COCOA's `list.json` needs it numeric).
    pub region: String,
    /// The release window, UTC seconds.
    pub start_timestamp: u64,
    pub end_timestamp: u64,
    pub signature_info: SignatureInfo,
}

/// `Debug` for the generated key message (generated with `skip_debug`): the key bytes never
/// reach a log line.
impl fmt::Debug for proto::TemporaryExposureKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        #[allow(deprecated)]
        let transmission_risk_level = self.transmission_risk_level;
        f.debug_struct("TemporaryExposureKey")
            .field("key_data", &self.key_data.as_ref().map(|_| "<redacted>"))
            .field("transmission_risk_level", &transmission_risk_level)
            .field(
                "rolling_start_interval_number",
                &self.rolling_start_interval_number,
            )
            .field("rolling_period", &self.rolling_period)
            .field("report_type", &self.report_type)
            .field(
                "days_since_onset_of_symptoms",
                &self.days_since_onset_of_symptoms,
            )
            .field("variant_of_concern", &self.variant_of_concern)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proto_keys_never_show_their_bytes() {
        let key = proto::TemporaryExposureKey {
            key_data: Some(vec![0xAB; 16]),
            ..Default::default()
        };
        let shown = format!("{key:?}");
        assert!(shown.contains("<redacted>"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        let ours = ExportKey {
            key_data: KeyData::new([0xAB; 16]),
            rolling_start_number: 1,
            rolling_period: 144,
            transmission_risk: 4,
            report_type: None,
            days_since_onset: None,
        };
        assert!(!format!("{ours:?}").contains("171"));
    }

    #[test]
    fn signature_info_omits_empty_names_like_the_reference_server() {
        let info = SignatureInfo::ecdsa_p256_sha256("440", "");
        let wire = info.to_proto();
        assert_eq!(wire.verification_key_id.as_deref(), Some("440"));
        assert_eq!(wire.verification_key_version, None);
        assert_eq!(
            wire.signature_algorithm.as_deref(),
            Some(ECDSA_P256_SHA256_OID)
        );
        assert_eq!(SignatureInfo::from_proto(&wire), info);
    }
}
