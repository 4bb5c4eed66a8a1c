//! Consented operation logs (動作情報, seed 000 §2.1): what `PUT /api/v1/logs/{logId}` accepts, and
//! how a stored log is laid out.
//!
//! The body is JSON:
//! ```json
//! {"consent": true, "consentedAt": "2026-11-23T09:00:00Z",
//!  "logInfo": {"appVersion": "3.0.0", "os": "iOS", "osVersion": "16.1", "deviceModel": "iPhone14,2"},
//!  "entries": [{"time": "2026-11-23T08:59:00Z", "operation": "ExposureDetection",
//!               "succeeded": false, "inputs": {...}, "outputs": {...}, "state": {...}}]}
//! ```
//! `inputs`, `outputs` and `state` are any JSON; every string in them (and in `operation`) is
//! redacted before storage (`domain::redaction`). The log-related information is checked by shape
//! instead (short, printable, no free text), so it is stored as sent.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

use crate::domain::redaction::{Redactions, redact_json, redact_text};

/// Logs are kept at most this long from receipt (seed 000 §2.3: 最大60日).
pub const LOG_RETENTION_SECONDS: i64 = 60 * 24 * 3600;
/// The largest body accepted (COCOA's event-log limit; API Gateway's own is lower).
pub const MAX_LOG_BODY_BYTES: usize = 10 * 1024 * 1024;
/// Log-related information fields are at most this long.
const MAX_INFO_CHARS: usize = 64;
/// At most this many entries in one upload.
pub const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OperationLogError {
    #[error("Consent is required: consent must be true, with consentedAt")]
    NoConsent,
    #[error("Invalid log information: {0}")]
    InvalidInfo(&'static str),
    #[error("Invalid entry {index}: {what}")]
    InvalidEntry { index: usize, what: &'static str },
    #[error("Too many entries (at most {MAX_ENTRIES})")]
    TooManyEntries,
}

/// The environment the log came from (ログ関連情報).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogInfo {
    pub app_version: String,
    pub os: String,
    pub os_version: String,
    pub device_model: String,
}

/// One operation the app performed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LogEntry {
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    pub operation: String,
    pub succeeded: bool,
    #[serde(default)]
    pub inputs: Value,
    #[serde(default)]
    pub outputs: Value,
    #[serde(default)]
    pub state: Value,
}

/// The upload as sent.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationLogUpload {
    pub consent: bool,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub consented_at: Option<OffsetDateTime>,
    pub log_info: LogInfo,
    pub entries: Vec<LogEntry>,
}

/// What is stored: the upload after redaction, with its receipt time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedactedOperationLog {
    #[serde(with = "time::serde::rfc3339")]
    pub consented_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub log_info: LogInfo,
    pub entries: Vec<LogEntry>,
}

impl RedactedOperationLog {
    /// SHA-256 of the log as the app sent it, redacted, without its receipt time: the app's retry
    /// of an upload (the identical body) has the same digest, any other log another one. It is
    /// kept beside the stored log and reveals nothing that log does not.
    pub fn digest(&self) -> Result<[u8; 32], LogEncodingError> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct AsSent<'a> {
            #[serde(with = "time::serde::rfc3339")]
            consented_at: OffsetDateTime,
            log_info: &'a LogInfo,
            entries: &'a [LogEntry],
        }
        let as_sent = AsSent {
            consented_at: self.consented_at,
            log_info: &self.log_info,
            entries: &self.entries,
        };
        let json = serde_json::to_vec(&as_sent).map_err(|_| LogEncodingError::Damaged)?;
        Ok(sha256(&json))
    }
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    out
}

fn check_info(field: &'static str, value: &str) -> Result<(), OperationLogError> {
    let printable = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " ._,-()/+".contains(c));
    if value.is_empty() || value.chars().count() > MAX_INFO_CHARS || !printable {
        return Err(OperationLogError::InvalidInfo(field));
    }
    Ok(())
}

impl OperationLogUpload {
    /// Checks consent and shapes, then redacts every free-text value; counts what it redacted.
    pub fn accept(
        self,
        received_at: OffsetDateTime,
    ) -> Result<(RedactedOperationLog, Redactions), OperationLogError> {
        let consented_at = match (self.consent, self.consented_at) {
            (true, Some(at)) => at,
            _ => return Err(OperationLogError::NoConsent),
        };
        check_info("appVersion", &self.log_info.app_version)?;
        check_info("os", &self.log_info.os)?;
        check_info("osVersion", &self.log_info.os_version)?;
        check_info("deviceModel", &self.log_info.device_model)?;
        if self.entries.len() > MAX_ENTRIES {
            return Err(OperationLogError::TooManyEntries);
        }
        let mut counts = Redactions::default();
        let mut entries = self.entries;
        for (index, entry) in entries.iter_mut().enumerate() {
            if entry.operation.is_empty() {
                return Err(OperationLogError::InvalidEntry {
                    index,
                    what: "operation is empty",
                });
            }
            let (operation, found) = redact_text(&entry.operation);
            let operation = operation.into_owned();
            counts.add(&found);
            entry.operation = operation;
            redact_json(&mut entry.inputs, &mut counts);
            redact_json(&mut entry.outputs, &mut counts);
            redact_json(&mut entry.state, &mut counts);
        }
        Ok((
            RedactedOperationLog {
                consented_at,
                received_at,
                log_info: self.log_info,
                entries,
            },
            counts,
        ))
    }
}

/// When a log received at `received_at` (unix seconds) must be gone.
pub fn log_expires_at(received_at: i64) -> i64 {
    received_at.saturating_add(LOG_RETENTION_SECONDS)
}

/// Why a stored log could not be encoded or decoded, or an uploaded zip could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LogEncodingError {
    #[error("the upload is not a readable zip: {0}")]
    NotAZip(&'static str),
    #[error(
        "the zip holds more than {MAX_ZIP_ENTRIES} files or more than {MAX_ZIP_UNPACKED_BYTES} bytes unpacked"
    )]
    ZipTooLarge,
    #[error("the stored log is damaged")]
    Damaged,
}

/// A COCOA log zip holds one CSV per day for 14 days; anything far beyond that is refused.
pub const MAX_ZIP_ENTRIES: usize = 64;
/// Unpacked size limit of an uploaded zip (a zip bomb stops here).
pub const MAX_ZIP_UNPACKED_BYTES: u64 = 64 * 1024 * 1024;

/// The stored form of a JSON log: compact JSON, raw-deflated.
pub fn encode_log(log: &RedactedOperationLog) -> Result<(Vec<u8>, u64), LogEncodingError> {
    use std::io::Write as _;
    let json = serde_json::to_vec(log).map_err(|_| LogEncodingError::Damaged)?;
    let mut encoder = flate2::write::DeflateEncoder::new(
        Vec::with_capacity(json.len() / 4),
        flate2::Compression::new(6),
    );
    encoder
        .write_all(&json)
        .map_err(|_| LogEncodingError::Damaged)?;
    let stored = encoder.finish().map_err(|_| LogEncodingError::Damaged)?;
    Ok((stored, json.len() as u64))
}

/// A stored JSON log, inflated (at most `MAX_LOG_BODY_BYTES` × 2 bytes).
pub fn decode_log(stored: &[u8]) -> Result<Vec<u8>, LogEncodingError> {
    use std::io::Read as _;
    let mut json = Vec::new();
    flate2::read::DeflateDecoder::new(stored)
        .take((MAX_LOG_BODY_BYTES * 2) as u64)
        .read_to_end(&mut json)
        .map_err(|_| LogEncodingError::Damaged)?;
    Ok(json)
}

/// Redacts every file in the app's log zip (`cocoa_log_{uuid}.zip`: UTF-8 CSVs) and writes the
/// redacted files into a new zip: what is stored is never the upload's own bytes. Returns the new
/// zip, the counts, and the unpacked size.
pub fn redact_zip(upload: &[u8]) -> Result<(Vec<u8>, Redactions, u64), LogEncodingError> {
    use std::io::{Read as _, Write as _};
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(upload))
        .map_err(|_| LogEncodingError::NotAZip("no zip directory"))?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(LogEncodingError::ZipTooLarge);
    }
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // A fixed date (zip's earliest) and method: the same upload always gives the same stored
    // bytes, which is how a retry is recognised (`NewOperationLog::digest`), and the stored zip
    // carries no time of its own.
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default());
    let mut counts = Redactions::default();
    let mut unpacked = 0u64;
    for index in 0..archive.len() {
        let mut file = archive
            .by_index(index)
            .map_err(|_| LogEncodingError::NotAZip("unreadable entry"))?;
        if file.is_dir() {
            continue;
        }
        // Only the file's base name is kept (no paths from the device).
        let name = file
            .enclosed_name()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .ok_or(LogEncodingError::NotAZip("entry name"))?;
        let mut bytes = Vec::new();
        let limit = MAX_ZIP_UNPACKED_BYTES - unpacked;
        (&mut file)
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| LogEncodingError::NotAZip("entry data"))?;
        unpacked += bytes.len() as u64;
        if unpacked > MAX_ZIP_UNPACKED_BYTES {
            return Err(LogEncodingError::ZipTooLarge);
        }
        let text = String::from_utf8_lossy(&bytes);
        let (redacted, found) = redact_text(&text);
        counts.add(&found);
        writer
            .start_file(name, options)
            .map_err(|_| LogEncodingError::Damaged)?;
        writer
            .write_all(redacted.as_bytes())
            .map_err(|_| LogEncodingError::Damaged)?;
    }
    let zip = writer
        .finish()
        .map_err(|_| LogEncodingError::Damaged)?
        .into_inner();
    Ok((zip, counts, unpacked))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::redaction::Forbidden;
    use time::macros::datetime;

    fn upload(consent: bool) -> OperationLogUpload {
        serde_json::from_value(serde_json::json!({
            "consent": consent,
            "consentedAt": "2026-11-23T09:00:00Z",
            "logInfo": {"appVersion": "3.0.0", "os": "iOS", "osVersion": "16.1", "deviceModel": "iPhone14,2"},
            "entries": [{
                "time": "2026-11-23T08:59:00Z", "operation": "Submit 12345678",
                "succeeded": false,
                "inputs": {"mail": "someone@example.com", "n": 87654321},
                "outputs": {"status": 406}, "state": null
            }]
        }))
        .expect("a well-formed upload")
    }

    #[test]
    fn consent_is_required_and_content_is_redacted() {
        let now = datetime!(2026-11-23 10:00 UTC);
        assert_eq!(upload(false).accept(now), Err(OperationLogError::NoConsent));
        let (log, counts) = upload(true).accept(now).expect("accepted");
        assert_eq!(counts.count(Forbidden::ProcessingNumber), 2);
        assert_eq!(counts.count(Forbidden::Email), 1);
        let text = serde_json::to_string(&log).expect("serializes");
        assert!(!text.contains("12345678") && !text.contains("87654321"));
        assert!(!text.contains("example.com"));
        assert!(text.contains("\"status\":406"));
        assert_eq!(log.received_at, now);
    }

    #[test]
    fn log_information_is_checked_by_shape() {
        let mut bad = upload(true);
        bad.log_info.device_model = "someone@example.com".into();
        assert_eq!(
            bad.accept(datetime!(2026-11-23 10:00 UTC)),
            Err(OperationLogError::InvalidInfo("deviceModel"))
        );
        let unknown = serde_json::from_value::<OperationLogUpload>(serde_json::json!({
            "consent": true, "consentedAt": "2026-11-23T09:00:00Z",
            "logInfo": {"appVersion": "3.0.0", "os": "iOS", "osVersion": "16.1", "deviceModel": "x", "ip": "1.2.3.4"},
            "entries": []
        }));
        assert!(unknown.is_err(), "unknown fields are refused, not stored");
    }

    #[test]
    fn stored_logs_round_trip_through_deflate() {
        let (log, _) = upload(true)
            .accept(datetime!(2026-11-23 10:00 UTC))
            .expect("accepted");
        let (stored, original) = encode_log(&log).expect("encodes");
        let json = decode_log(&stored).expect("decodes");
        assert_eq!(json.len() as u64, original);
        let back: RedactedOperationLog = serde_json::from_slice(&json).expect("JSON");
        assert_eq!(back, log);
        assert_eq!(
            decode_log(b"not deflate at all"),
            Err(LogEncodingError::Damaged)
        );
    }

    fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        use std::io::Write as _;
        let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, text) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .expect("entry");
            writer.write_all(text.as_bytes()).expect("data");
        }
        writer.finish().expect("zip").into_inner()
    }

    #[test]
    fn the_same_upload_is_stored_as_the_same_bytes() {
        let upload = zip_of(&[("cocoa_log_20221120.csv", "\"number 12345678\"\n")]);
        let (first, _, _) = redact_zip(&upload).expect("redacted");
        std::thread::sleep(std::time::Duration::from_millis(2_100));
        let (again, _, _) = redact_zip(&upload).expect("redacted");
        assert_eq!(
            first, again,
            "a retry is recognised by the stored bytes' digest"
        );
        let other = zip_of(&[("cocoa_log_20221120.csv", "\"numbers 12345678\"\n")]);
        assert_ne!(redact_zip(&other).expect("redacted").0, first);
    }

    #[test]
    fn a_json_log_has_one_digest_whenever_it_is_received() {
        let (first, _) = upload(true)
            .accept(datetime!(2026-11-23 10:00 UTC))
            .expect("accepted");
        let (retry, _) = upload(true)
            .accept(datetime!(2026-11-23 10:07 UTC))
            .expect("accepted");
        assert_ne!(
            encode_log(&first),
            encode_log(&retry),
            "the receipt time is stored"
        );
        assert_eq!(first.digest(), retry.digest());
        let mut other = retry.clone();
        other.log_info.os_version = "16.2".into();
        assert_ne!(
            other.digest().expect("digest"),
            first.digest().expect("digest")
        );
    }

    #[test]
    fn uploaded_zips_are_redacted_file_by_file() {
        let upload = zip_of(&[
            (
                "logs/cocoa_log_20221120.csv",
                "\"2022/11/20 10:11:12\",\"Info\",\"number 12345678\"\n",
            ),
            (
                "cocoa_log_20221121.csv",
                "\"mail a@example.jp from 192.168.1.20\"\n",
            ),
        ]);
        let (zip, counts, unpacked) = redact_zip(&upload).expect("redacted");
        assert_eq!(counts.total(), 3);
        assert!(unpacked > 0);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip)).expect("a zip");
        let names: Vec<String> = archive.file_names().map(str::to_owned).collect();
        assert!(
            names.contains(&"cocoa_log_20221120.csv".to_owned()),
            "paths are dropped: {names:?}"
        );
        let mut text = String::new();
        std::io::Read::read_to_string(
            &mut archive.by_name("cocoa_log_20221121.csv").expect("file"),
            &mut text,
        )
        .expect("text");
        assert!(!text.contains("example.jp") && !text.contains("192.168"));
        assert_eq!(
            redact_zip(b"PK not really"),
            Err(LogEncodingError::NotAZip("no zip directory"))
        );
    }

    #[test]
    fn logs_expire_sixty_days_after_receipt() {
        assert_eq!(log_expires_at(0), 5_184_000);
    }
}
