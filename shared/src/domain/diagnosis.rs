//! COCOA's diagnosis submissions (`PUT /api/v3/diagnosis`, `PUT /api/v2/diagnosis`): the wire
//! shapes, exactly as the app sends them, and the server's validation rules
//! (reference/cocoa-api.md §3.3–§3.4).
//!
//! None of these types implements `Debug`: they carry a processing number, an attestation payload
//! and key material, none of which may reach a log line.

use serde::{Deserialize, Serialize};
use time::{
    Date, Duration, OffsetDateTime, format_description::BorrowedFormatItem,
    macros::format_description,
};

use super::attestation::{AttestationSubject, ClearTextSource, KeyText};
use super::exposure_key::{
    ExposureKey, KeyData, KeyId, MAX_ROLLING_PERIOD, ReportType, date_of_interval, interval_number,
    interval_number_of_date,
};
use super::processing_number::ProcessingNumber;
use super::verification_token::UncheckedToken;

/// COCOA's `FORMAT_TIMESTAMP`, `yyyy-MM-dd'T'HH:mm:ss.fffzzz`: exactly three fractional digits and
/// a `±HH:MM` offset (`Z` is rejected, as .NET's `ParseExact` rejects it).
const TIMESTAMP: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3][offset_hour sign:mandatory]:[offset_minute]"
);

/// COCOA's `Constants.DaysHasInfectiousness`: keys from this many days before onset on carry
/// transmission risk 4 (MEDIUM), older ones 1 (LOWEST).
const DAYS_HAS_INFECTIOUSNESS: i32 = -3;
const TRANSMISSION_RISK_INFECTIOUS: u8 = 4;
const TRANSMISSION_RISK_LOWEST: u8 = 1;
/// Keys are accepted for the last 14 days (UTC midnights), as COCOA did.
const ACCEPTED_KEY_DAYS: i64 = 14;
/// `daysSinceOnsetOfSymptoms` must lie in [−14, 14] whatever the configured window.
const MAX_ABS_DAYS_SINCE_ONSET: i32 = 14;

/// An inclusive window of days since symptom onset (or since the test) in which a key counts as
/// infectious. Written `-3..10` in configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayWindow {
    pub from: i32,
    pub to: i32,
}

impl DayWindow {
    pub fn contains(self, day: i32) -> bool {
        (self.from..=self.to).contains(&day)
    }

    pub fn parse(text: &str) -> Option<Self> {
        let (from, to) = text.trim().split_once("..")?;
        let window = Self {
            from: from.trim().parse().ok()?,
            to: to.trim().parse().ok()?,
        };
        (window.from <= window.to).then_some(window)
    }
}

/// The configurable part of COCOA's validation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmissionRules {
    /// Regions this server publishes (`SupportRegions`), e.g. `["440"]`.
    pub supported_regions: Vec<String>,
    /// Infectious window when the user had symptoms (COCOA example: −3..+10).
    pub symptom_onset_window: DayWindow,
    /// Infectious window when the user had none, counted from the test date (example: −3..+7).
    pub test_date_window: DayWindow,
}

/// Why a submission is refused before any port is called.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DiagnosisRejection {
    #[error("onsetOfSymptomOrTestDate is missing or not in the form yyyy-MM-ddTHH:mm:ss.fff+HH:MM")]
    InvalidOnsetDate,
    #[error("keys must be an array")]
    MissingKeys,
    /// COCOA's `IsValid()` failure.
    #[error("Invalid parameter")]
    InvalidParameter,
    #[error("Regions not supported.")]
    RegionsNotSupported,
}

/// One key as the app sends it (v3 adds `reportType`; the server computes the rest).
#[derive(Deserialize, Serialize)]
pub struct SubmittedKey {
    #[serde(rename = "keyData")]
    pub key_data: Option<String>,
    #[serde(rename = "rollingStartNumber", default)]
    pub rolling_start_number: u32,
    #[serde(rename = "rollingPeriod", default)]
    pub rolling_period: u32,
    #[serde(rename = "transmissionRisk", default)]
    pub transmission_risk: i32,
    #[serde(rename = "reportType", default)]
    pub report_type: u32,
    #[serde(rename = "daysSinceOnsetOfSymptoms", default)]
    pub days_since_onset_of_symptoms: i32,
}

/// `V3DiagnosisSubmissionParameter`, field for field and in the app's order; serialized back as the
/// 200 response with both payloads nulled.
#[derive(Deserialize, Serialize)]
pub struct V3Submission {
    #[serde(rename = "hasSymptom", default)]
    pub has_symptom: bool,
    #[serde(rename = "onsetOfSymptomOrTestDate")]
    pub onset_of_symptom_or_test_date: Option<String>,
    pub keys: Option<Vec<SubmittedKey>>,
    pub regions: Option<Vec<String>>,
    pub platform: Option<String>,
    #[serde(rename = "deviceVerificationPayload")]
    pub device_verification_payload: Option<String>,
    #[serde(rename = "appPackageName")]
    pub app_package_name: Option<String>,
    #[serde(rename = "verificationPayload")]
    pub verification_payload: Option<String>,
    #[serde(rename = "idempotency_key")]
    pub idempotency_key: Option<String>,
    pub padding: Option<String>,
}

/// `V2DiagnosisSubmissionParameter` (apps 1.2.2–1.4.1).
#[derive(Deserialize)]
pub struct V2Submission {
    pub keys: Option<Vec<SubmittedKey>>,
    pub regions: Option<Vec<String>>,
    pub platform: Option<String>,
    #[serde(rename = "deviceVerificationPayload")]
    pub device_verification_payload: Option<String>,
    #[serde(rename = "appPackageName")]
    pub app_package_name: Option<String>,
    #[serde(rename = "verificationPayload")]
    pub verification_payload: Option<String>,
}

/// What `verificationPayload` holds: a processing number (the unmodified app), a verification
/// token from `verify-processing-number`, or neither. Only an 8-digit payload is ever passed on to
/// HER-SYS.
pub enum VerificationPayload {
    ProcessingNumber(ProcessingNumber),
    Token(UncheckedToken),
    /// Anything else: refused as a wrong number without asking HER-SYS.
    Malformed,
}

impl VerificationPayload {
    pub fn from_text(text: &str) -> Self {
        if let Ok(number) = ProcessingNumber::parse(text) {
            Self::ProcessingNumber(number)
        } else if let Some(token) = UncheckedToken::parse(text) {
            Self::Token(token)
        } else {
            Self::Malformed
        }
    }
}

/// A submission that passed validation: the keys to store (one per key and supported region)
/// and what remains to be checked by the ports.
pub struct AcceptedSubmission {
    pub keys: Vec<ExposureKey>,
    pub attestation: AttestationSubject,
    pub verification: VerificationPayload,
    /// What a verification token this submission redeems is bound to.
    pub digest: SubmissionDigest,
}

/// What makes two submissions "the same" for a verification token (`docs/security.md`,
/// "Tokens"): the API version, the idempotency key (v3; v2 has none) and the keys **as
/// submitted** (key data, rolling start number, rolling period, report type), as a set. Not the
/// padding, the regions, the onset or the attestation, and not which keys passed validation, so
/// the digest does not depend on the clock: the app's retry, which resends the identical body,
/// always has the same digest, however late; a replay of the token with any other key, one key
/// fewer, or another idempotency key has another.
///
/// SHA-256 over a version label and each field JSON-encoded (so no field's text can imitate a
/// separator), the keys sorted and deduplicated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubmissionDigest(pub [u8; 32]);

impl SubmissionDigest {
    pub fn of(version: &str, idempotency_key: &str, keys: &[KeyText]) -> Self {
        let quoted = |text: &str| serde_json::Value::from(text).to_string();
        let mut lines: Vec<String> = keys
            .iter()
            .map(|k| {
                format!(
                    "[{},{},{},{}]",
                    quoted(&k.key_data),
                    k.rolling_start_number,
                    k.rolling_period,
                    k.report_type
                )
            })
            .collect();
        lines.sort_unstable();
        lines.dedup();
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"cocoa-submission-digest-v1\n");
        context.update(quoted(version).as_bytes());
        context.update(b"\n");
        context.update(quoted(idempotency_key).as_bytes());
        for line in &lines {
            context.update(b"\n");
            context.update(line.as_bytes());
        }
        let mut digest = [0u8; 32];
        digest.copy_from_slice(context.finish().as_ref());
        Self(digest)
    }
}

fn is_blank(value: &Option<String>) -> bool {
    value.as_deref().is_none_or(|v| v.trim().is_empty())
}

/// COCOA's `IsValid()` on everything but the keys: the four payload fields non-blank, at least
/// one region.
fn require_fields(
    fields: [&Option<String>; 4],
    regions: &Option<Vec<String>>,
) -> Result<(), DiagnosisRejection> {
    if fields.into_iter().any(is_blank) || regions.as_ref().is_none_or(Vec::is_empty) {
        return Err(DiagnosisRejection::InvalidParameter);
    }
    Ok(())
}

/// The supported regions among those requested, or COCOA's `Regions not supported.`.
fn require_supported_regions<'a>(
    requested: &'a Option<Vec<String>>,
    rules: &SubmissionRules,
) -> Result<Vec<&'a str>, DiagnosisRejection> {
    let regions = supported_regions(requested.as_deref().unwrap_or_default(), rules);
    if regions.is_empty() {
        return Err(DiagnosisRejection::RegionsNotSupported);
    }
    Ok(regions)
}

/// What is known of one valid key, before it is copied for each region.
struct ValidKey {
    id: KeyId,
    key_data: KeyData,
    rolling_start_number: u32,
    rolling_period: u32,
    transmission_risk: u8,
    report_type: Option<ReportType>,
    days_since_onset: Option<i32>,
}

impl AcceptedSubmission {
    /// One stored key per valid key and region; takes the payloads out of the request.
    fn new(
        keys: Vec<ValidKey>,
        regions: &[&str],
        platform: &mut Option<String>,
        device_verification_payload: &mut Option<String>,
        verification_payload: &mut Option<String>,
        clear_text: ClearTextSource,
        digest: SubmissionDigest,
    ) -> Self {
        let mut stored = Vec::with_capacity(keys.len() * regions.len());
        for key in keys {
            for region in regions {
                stored.push(ExposureKey {
                    id: key.id.clone(),
                    region: (*region).to_owned(),
                    key_data: key.key_data,
                    rolling_start_number: key.rolling_start_number,
                    rolling_period: stored_rolling_period(key.rolling_period),
                    transmission_risk: key.transmission_risk,
                    report_type: key.report_type,
                    days_since_onset: key.days_since_onset,
                });
            }
        }
        Self {
            keys: stored,
            attestation: AttestationSubject {
                platform: platform.take().unwrap_or_default(),
                payload: device_verification_payload.take().unwrap_or_default(),
                clear_text,
            },
            verification: VerificationPayload::from_text(
                verification_payload.take().as_deref().unwrap_or_default(),
            ),
            digest,
        }
    }
}

fn supported_regions<'a>(requested: &'a [String], rules: &SubmissionRules) -> Vec<&'a str> {
    let mut regions: Vec<&str> = requested
        .iter()
        .map(String::as_str)
        .filter(|r| {
            rules
                .supported_regions
                .iter()
                .any(|s| s.eq_ignore_ascii_case(r))
        })
        .collect();
    regions.sort_unstable();
    regions.dedup();
    regions
}

/// Parses `onsetOfSymptomOrTestDate` and returns its **UTC** date, as COCOA's
/// `ParseExact(...).ToUniversalTime().Date` does: a JST-midnight onset is the previous UTC day.
pub fn onset_utc_date(text: &str) -> Option<Date> {
    OffsetDateTime::parse(text, TIMESTAMP)
        .ok()
        .map(|t| t.to_offset(time::UtcOffset::UTC).date())
}

/// `(UTC date of the key's start − onset date)` in days.
pub fn days_since_onset(rolling_start_number: u32, onset: Date) -> Option<i32> {
    let key_date = date_of_interval(rolling_start_number)?;
    i32::try_from((key_date - onset).whole_days()).ok()
}

/// COCOA's legacy-V1 compatibility rule, overwriting whatever the client sent.
pub fn transmission_risk(days_since_onset: i32) -> u8 {
    if days_since_onset >= DAYS_HAS_INFECTIOUSNESS {
        TRANSMISSION_RISK_INFECTIOUS
    } else {
        TRANSMISSION_RISK_LOWEST
    }
}

impl V3Submission {
    /// COCOA's v3 pipeline up to (not including) device verification: computes
    /// `daysSinceOnsetOfSymptoms` and the transmission risk of every key, silently drops the keys
    /// that fail validation (the response echoes the survivors), then checks the parameters and
    /// regions. Takes both payloads out of `self`, so the echo carries `null` for them.
    pub fn accept(
        &mut self,
        rules: &SubmissionRules,
        now: OffsetDateTime,
    ) -> Result<AcceptedSubmission, DiagnosisRejection> {
        let onset = self
            .onset_of_symptom_or_test_date
            .as_deref()
            .and_then(onset_utc_date)
            .ok_or(DiagnosisRejection::InvalidOnsetDate)?;
        let keys = self.keys.take().ok_or(DiagnosisRejection::MissingKeys)?;
        let window = if self.has_symptom {
            rules.symptom_onset_window
        } else {
            rules.test_date_window
        };
        let today = now.to_offset(time::UtcOffset::UTC).date();
        let newest = interval_number_of_date(today);
        let oldest = interval_number_of_date(today - Duration::days(ACCEPTED_KEY_DAYS));

        let key_texts = key_texts(&keys);
        let idempotency_key = self.idempotency_key.as_deref().unwrap_or_default();
        let digest = SubmissionDigest::of("v3", idempotency_key, &key_texts);
        let mut kept = Vec::with_capacity(keys.len());
        let mut valid = Vec::with_capacity(keys.len());
        for mut key in keys {
            let Some(dsos) = days_since_onset(key.rolling_start_number, onset) else {
                continue;
            };
            key.days_since_onset_of_symptoms = dsos;
            let risk = transmission_risk(dsos);
            key.transmission_risk = i32::from(risk);
            let text = key.key_data.as_deref().unwrap_or_default();
            let (Some(key_data), Some(report_type)) =
                (KeyData::from_base64(text), ReportType::new(key.report_type))
            else {
                continue;
            };
            let rsn = i64::from(key.rolling_start_number);
            if key.rolling_period > MAX_ROLLING_PERIOD
                || !(oldest..=newest).contains(&rsn)
                || dsos.abs() > MAX_ABS_DAYS_SINCE_ONSET
                || !window.contains(dsos)
            {
                continue;
            }
            valid.push(ValidKey {
                id: KeyId::for_v3(
                    idempotency_key,
                    text,
                    key.rolling_start_number,
                    key.rolling_period,
                ),
                key_data,
                rolling_start_number: key.rolling_start_number,
                rolling_period: key.rolling_period,
                transmission_risk: risk,
                report_type: Some(report_type),
                days_since_onset: Some(dsos),
            });
            kept.push(key);
        }
        // The echo carries the surviving keys, with their computed values, whatever happens next.
        self.keys = Some(kept);

        require_fields(
            [
                &self.verification_payload,
                &self.platform,
                &self.device_verification_payload,
                &self.app_package_name,
            ],
            &self.regions,
        )?;
        let regions = require_supported_regions(&self.regions, rules)?;
        let clear_text = ClearTextSource::V3 {
            app_package_name: self.app_package_name.clone().unwrap_or_default(),
            onset: self
                .onset_of_symptom_or_test_date
                .clone()
                .unwrap_or_default(),
            has_symptom: self.has_symptom,
            keys: key_texts,
            regions: self.regions.clone().unwrap_or_default(),
            verification_payload: self.verification_payload.clone().unwrap_or_default(),
        };
        Ok(AcceptedSubmission::new(
            valid,
            &regions,
            &mut self.platform,
            &mut self.device_verification_payload,
            &mut self.verification_payload,
            clear_text,
            digest,
        ))
    }
}

impl V2Submission {
    /// COCOA's v1/v2 `IsValid()`: unlike v3, one invalid key fails the whole request. Keys are
    /// stored with transmission risk 4 and report type and days since onset unknown.
    ///
    /// Stricter than COCOA: `keyData` must be 16 bytes of base64 (COCOA stored any non-blank
    /// string, which no phone could use), and keys already past retention (a `rollingStartNumber`
    /// of 0, which COCOA let through) are not stored.
    pub fn accept(
        mut self,
        rules: &SubmissionRules,
        now: OffsetDateTime,
    ) -> Result<AcceptedSubmission, DiagnosisRejection> {
        let keys = self.keys.take().ok_or(DiagnosisRejection::MissingKeys)?;
        require_fields(
            [
                &self.verification_payload,
                &self.platform,
                &self.device_verification_payload,
                &self.app_package_name,
            ],
            &self.regions,
        )?;
        let today = now.to_offset(time::UtcOffset::UTC).date();
        let oldest = interval_number_of_date(today - Duration::days(ACCEPTED_KEY_DAYS));
        let newest = interval_number(now);
        let mut valid = Vec::with_capacity(keys.len());
        for key in &keys {
            let text = key.key_data.as_deref().unwrap_or_default();
            let key_data =
                KeyData::from_base64(text).ok_or(DiagnosisRejection::InvalidParameter)?;
            let rsn = i64::from(key.rolling_start_number);
            if key.rolling_period > MAX_ROLLING_PERIOD
                || (rsn != 0 && !(oldest..=newest).contains(&rsn))
            {
                return Err(DiagnosisRejection::InvalidParameter);
            }
            if rsn != 0 {
                valid.push(ValidKey {
                    id: KeyId::for_v2(text, key.rolling_start_number, key.rolling_period),
                    key_data,
                    rolling_start_number: key.rolling_start_number,
                    rolling_period: key.rolling_period,
                    transmission_risk: TRANSMISSION_RISK_INFECTIOUS,
                    report_type: None,
                    days_since_onset: None,
                });
            }
        }
        let regions = require_supported_regions(&self.regions, rules)?;
        let key_texts = key_texts(&keys);
        let digest = SubmissionDigest::of("v2", "", &key_texts);
        let clear_text = ClearTextSource::V2 {
            app_package_name: self.app_package_name.take().unwrap_or_default(),
            keys: key_texts,
            regions: self.regions.clone().unwrap_or_default(),
            verification_payload: self.verification_payload.clone().unwrap_or_default(),
        };
        Ok(AcceptedSubmission::new(
            valid,
            &regions,
            &mut self.platform,
            &mut self.device_verification_payload,
            &mut self.verification_payload,
            clear_text,
            digest,
        ))
    }
}

fn key_texts(keys: &[SubmittedKey]) -> Vec<KeyText> {
    keys.iter()
        .map(|k| KeyText {
            key_data: k.key_data.clone().unwrap_or_default(),
            rolling_start_number: k.rolling_start_number,
            rolling_period: k.rolling_period,
            report_type: k.report_type,
        })
        .collect()
}

/// A rolling period of 0 means "a full day" and is stored as 144.
fn stored_rolling_period(submitted: u32) -> u32 {
    if submitted == 0 {
        MAX_ROLLING_PERIOD
    } else {
        submitted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    const NOW: OffsetDateTime = datetime!(2026-11-23 05:00 UTC);

    fn rules() -> SubmissionRules {
        SubmissionRules {
            supported_regions: vec!["440".into()],
            symptom_onset_window: DayWindow { from: -3, to: 10 },
            test_date_window: DayWindow { from: -3, to: 7 },
        }
    }

    fn rsn(day: Date) -> u32 {
        interval_number_of_date(day) as u32
    }

    fn key(data: &str, rolling_start_number: u32) -> SubmittedKey {
        SubmittedKey {
            key_data: Some(data.into()),
            rolling_start_number,
            rolling_period: 144,
            transmission_risk: 0,
            report_type: 1,
            days_since_onset_of_symptoms: 0,
        }
    }

    fn v3(keys: Vec<SubmittedKey>) -> V3Submission {
        V3Submission {
            has_symptom: true,
            onset_of_symptom_or_test_date: Some("2026-11-20T00:00:00.000+09:00".into()),
            keys: Some(keys),
            regions: Some(vec!["440".into()]),
            platform: Some("android".into()),
            device_verification_payload: Some("attestation".into()),
            app_package_name: Some("jp.go.mhlw.covid19radar".into()),
            verification_payload: Some("99999910".into()),
            idempotency_key: Some("idem".into()),
            padding: Some("pad".into()),
        }
    }

    const K1: &str = "AAAAAAAAAAAAAAAAAAAAAA==";

    fn digest_of(mut submission: V3Submission, now: OffsetDateTime) -> SubmissionDigest {
        submission.accept(&rules(), now).expect("valid").digest
    }

    #[test]
    fn the_same_submission_has_the_same_digest_whenever_it_is_resent() {
        let keys = || {
            vec![
                key(K1, rsn(date!(2026 - 11 - 16))),
                key("AQAAAAAAAAAAAAAAAAAAAA==", rsn(date!(2026 - 11 - 19))),
            ]
        };
        let first = digest_of(v3(keys()), NOW);
        // Resent as the app does: the same body. Padding, onset and payloads do not count; nor
        // does the clock: 13 days later the older key is out of the window and filtered, and the
        // digest is still the same.
        let mut resent = v3(keys());
        resent.padding = Some("other padding".into());
        resent.device_verification_payload = Some("another attestation".into());
        assert_eq!(digest_of(resent, NOW), first);
        assert_eq!(digest_of(v3(keys()), NOW + Duration::days(13)), first);
        // The same keys in another order are the same set.
        let mut reordered = keys();
        reordered.reverse();
        assert_eq!(digest_of(v3(reordered), NOW), first);
    }

    #[test]
    fn another_key_set_or_idempotency_key_has_another_digest() {
        let keys = || {
            vec![
                key(K1, rsn(date!(2026 - 11 - 16))),
                key("AQAAAAAAAAAAAAAAAAAAAA==", rsn(date!(2026 - 11 - 19))),
            ]
        };
        let first = digest_of(v3(keys()), NOW);
        let mut fewer = keys();
        fewer.pop();
        assert_ne!(digest_of(v3(fewer), NOW), first, "one key fewer");
        let mut other = keys();
        other[1].key_data = Some("AgAAAAAAAAAAAAAAAAAAAA==".into());
        assert_ne!(digest_of(v3(other), NOW), first, "another key");
        let mut shifted = keys();
        shifted[0].rolling_start_number += 144;
        assert_ne!(digest_of(v3(shifted), NOW), first, "another rolling start");
        let mut period = keys();
        period[0].rolling_period = 143;
        assert_ne!(digest_of(v3(period), NOW), first, "another rolling period");
        let mut report = keys();
        report[0].report_type = 2;
        assert_ne!(digest_of(v3(report), NOW), first, "another report type");
        let mut idempotency = v3(keys());
        idempotency.idempotency_key = Some("other".into());
        assert_ne!(
            digest_of(idempotency, NOW),
            first,
            "another idempotency key"
        );
        // A key text cannot imitate the separators between fields or keys.
        let glued = SubmissionDigest::of(
            "v3",
            "idem",
            &[KeyText {
                key_data: "a\",1,2,3],[\"b".into(),
                rolling_start_number: 4,
                rolling_period: 5,
                report_type: 6,
            }],
        );
        let split = SubmissionDigest::of(
            "v3",
            "idem",
            &[
                KeyText {
                    key_data: "a".into(),
                    rolling_start_number: 1,
                    rolling_period: 2,
                    report_type: 3,
                },
                KeyText {
                    key_data: "b".into(),
                    rolling_start_number: 4,
                    rolling_period: 5,
                    report_type: 6,
                },
            ],
        );
        assert_ne!(glued, split);
        // v2 and v3 bodies never share a digest.
        assert_ne!(
            SubmissionDigest::of("v2", "", &[]),
            SubmissionDigest::of("v3", "", &[])
        );
    }

    #[test]
    fn onset_at_jst_midnight_is_the_previous_utc_date() {
        assert_eq!(
            onset_utc_date("2026-11-20T00:00:00.000+09:00"),
            Some(date!(2026 - 11 - 19))
        );
        assert_eq!(
            onset_utc_date("2026-11-20T09:00:00.000+09:00"),
            Some(date!(2026 - 11 - 20))
        );
        for bad in [
            "2026-11-20T00:00:00.000Z",
            "2026-11-20T00:00:00+09:00",
            "2026-11-20",
            "",
        ] {
            assert_eq!(onset_utc_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn days_since_onset_and_risk_follow_cocoa() {
        let mut submission = v3(vec![
            key(K1, rsn(date!(2026 - 11 - 16))),
            key("AQAAAAAAAAAAAAAAAAAAAA==", rsn(date!(2026 - 11 - 19))),
            key("AgAAAAAAAAAAAAAAAAAAAA==", rsn(date!(2026 - 11 - 23))),
        ]);
        let accepted = submission.accept(&rules(), NOW).expect("valid submission");
        // Onset is 2026-11-19 in UTC, so the keys are 3 days before, the day of, and 4 days after.
        let dsos: Vec<_> = accepted.keys.iter().map(|k| k.days_since_onset).collect();
        assert_eq!(dsos, [Some(-3), Some(0), Some(4)]);
        assert!(accepted.keys.iter().all(|k| k.transmission_risk == 4));
        let echoed: Vec<_> = submission
            .keys
            .as_ref()
            .map(|k| k.iter().map(|k| k.days_since_onset_of_symptoms).collect())
            .unwrap_or_default();
        assert_eq!(echoed, [-3, 0, 4]);
        assert!(
            submission.verification_payload.is_none()
                && submission.device_verification_payload.is_none()
        );
    }

    #[test]
    fn invalid_keys_are_dropped_silently() {
        let today = rsn(date!(2026 - 11 - 23));
        let mut too_long = key("AwAAAAAAAAAAAAAAAAAAAA==", today);
        too_long.rolling_period = 145;
        let mut bad_report = key("BAAAAAAAAAAAAAAAAAAAAA==", today);
        bad_report.report_type = 6;
        let mut submission = v3(vec![
            key(K1, today),
            key("AAAAAAAAAAAAAAAAAAAA", today), // 15 bytes
            key("not base64", today),           // not base64
            too_long,                           // rolling period > 144
            bad_report,                         // report type > 5
            key("BQAAAAAAAAAAAAAAAAAAAA==", today + 144), // tomorrow
            key("BgAAAAAAAAAAAAAAAAAAAA==", rsn(date!(2026 - 11 - 16)) - 144), // dsos −4
            key("BwAAAAAAAAAAAAAAAAAAAA==", today + 5), // not at UTC midnight, after today 00:00
        ]);
        let accepted = submission.accept(&rules(), NOW).expect("valid submission");
        assert_eq!(accepted.keys.len(), 1);
        assert_eq!(
            accepted.keys[0].key_data,
            KeyData::from_base64(K1).expect("key")
        );
        assert_eq!(submission.keys.as_ref().map(Vec::len), Some(1));
    }

    #[test]
    fn without_symptoms_the_test_date_window_applies() {
        let mut submission = v3(vec![
            key(K1, rsn(date!(2026 - 11 - 23))), // dsos 4
        ]);
        submission.has_symptom = false;
        submission.onset_of_symptom_or_test_date = Some("2026-11-15T12:00:00.000+09:00".into());
        // Test date 2026-11-15 (UTC): the key is 8 days later, outside −3..+7.
        let accepted = submission.accept(&rules(), NOW).expect("valid submission");
        assert!(accepted.keys.is_empty());
    }

    #[test]
    fn a_wider_window_gives_old_keys_the_lowest_risk() {
        let mut wide = rules();
        wide.symptom_onset_window = DayWindow { from: -14, to: 14 };
        let mut submission = v3(vec![key(K1, rsn(date!(2026 - 11 - 14)))]);
        let accepted = submission.accept(&wide, NOW).expect("valid submission");
        assert_eq!(accepted.keys[0].days_since_onset, Some(-5));
        assert_eq!(accepted.keys[0].transmission_risk, 1);
    }

    #[test]
    fn the_three_cocoa_rejections() {
        let today = rsn(date!(2026 - 11 - 23));
        let mut blank = v3(vec![key(K1, today)]);
        blank.platform = Some("  ".into());
        assert_eq!(
            blank.accept(&rules(), NOW).err(),
            Some(DiagnosisRejection::InvalidParameter)
        );
        let mut no_regions = v3(vec![key(K1, today)]);
        no_regions.regions = Some(vec![]);
        assert_eq!(
            no_regions.accept(&rules(), NOW).err(),
            Some(DiagnosisRejection::InvalidParameter)
        );
        let mut foreign = v3(vec![key(K1, today)]);
        foreign.regions = Some(vec!["999".into()]);
        assert_eq!(
            foreign.accept(&rules(), NOW).err(),
            Some(DiagnosisRejection::RegionsNotSupported)
        );
        let mut no_keys = v3(vec![]);
        no_keys.keys = None;
        assert_eq!(
            no_keys.accept(&rules(), NOW).err(),
            Some(DiagnosisRejection::MissingKeys)
        );
        let mut no_onset = v3(vec![]);
        no_onset.onset_of_symptom_or_test_date = None;
        assert_eq!(
            no_onset.accept(&rules(), NOW).err(),
            Some(DiagnosisRejection::InvalidOnsetDate)
        );
    }

    #[test]
    fn keys_are_stored_once_per_supported_region_and_zero_period_means_a_day() {
        let mut two = rules();
        two.supported_regions = vec!["440".into(), "441".into()];
        let mut zero = key(K1, rsn(date!(2026 - 11 - 22)));
        zero.rolling_period = 0;
        let mut submission = v3(vec![zero]);
        submission.regions = Some(vec!["441".into(), "440".into(), "999".into(), "440".into()]);
        let accepted = submission.accept(&two, NOW).expect("valid submission");
        let regions: Vec<_> = accepted.keys.iter().map(|k| k.region.as_str()).collect();
        assert_eq!(regions, ["440", "441"]);
        assert!(accepted.keys.iter().all(|k| k.rolling_period == 144));
        // The id hashes the period as submitted (0), as COCOA did.
        let id = KeyId::for_v3("idem", K1, rsn(date!(2026 - 11 - 22)), 0);
        assert!(accepted.keys.iter().all(|k| k.id == id));
    }

    #[test]
    fn v2_rejects_the_whole_request_for_one_bad_key() {
        let today = rsn(date!(2026 - 11 - 23));
        let submission = |keys| V2Submission {
            keys: Some(keys),
            regions: Some(vec!["440".into()]),
            platform: Some("ios".into()),
            device_verification_payload: Some("token".into()),
            app_package_name: Some("jp.go.mhlw.covid19radar".into()),
            verification_payload: Some("99999910".into()),
        };
        let accepted = submission(vec![key(K1, today), key("AQAAAAAAAAAAAAAAAAAAAA==", 0)])
            .accept(&rules(), NOW)
            .expect("valid v2");
        assert_eq!(
            accepted.keys.len(),
            1,
            "a key starting at interval 0 is past retention"
        );
        assert_eq!(accepted.keys[0].report_type, None);
        assert_eq!(accepted.keys[0].transmission_risk, 4);
        let bad = submission(vec![key(K1, today), key("short", today)]).accept(&rules(), NOW);
        assert_eq!(bad.err(), Some(DiagnosisRejection::InvalidParameter));
    }

    #[test]
    fn day_windows_parse_from_configuration() {
        assert_eq!(
            DayWindow::parse("-3..10"),
            Some(DayWindow { from: -3, to: 10 })
        );
        assert_eq!(
            DayWindow::parse(" -14 .. 14 "),
            Some(DayWindow { from: -14, to: 14 })
        );
        assert_eq!(DayWindow::parse("10..-3"), None);
        assert_eq!(DayWindow::parse("3"), None);
    }
}
