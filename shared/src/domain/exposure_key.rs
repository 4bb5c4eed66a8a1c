//! Temporary Exposure Keys as this service stores and publishes them.

use std::fmt;

use ring::digest::{SHA256, digest};
use time::{Date, OffsetDateTime, Time};

/// Length of one GAEN rolling interval (`ENIntervalNumber`), in seconds.
pub const INTERVAL_SECONDS: i64 = 600;
/// A key's longest validity, in intervals (one day).
pub const MAX_ROLLING_PERIOD: u32 = 144;
/// Length of a Temporary Exposure Key.
pub const KEY_LENGTH: usize = 16;
/// A key is published only this long after its rolling period has ended, so a key that is still
/// valid on the phone that made it is never public.
pub const RELEASE_DELAY_SECONDS: i64 = 2 * 3600;
/// Keys leave the table (TTL) this long after their rolling period starts.
pub const KEY_RETENTION_SECONDS: i64 = 15 * 86_400;

/// The rolling interval number (`floor(unix seconds / 600)`) that contains `instant`.
pub fn interval_number(instant: OffsetDateTime) -> i64 {
    instant.unix_timestamp().div_euclid(INTERVAL_SECONDS)
}

/// The rolling interval number of UTC midnight starting `date`.
pub fn interval_number_of_date(date: Date) -> i64 {
    interval_number(date.with_time(Time::MIDNIGHT).assume_utc())
}

/// The UTC date on which a rolling interval starts.
pub fn date_of_interval(rolling_start_number: u32) -> Option<Date> {
    OffsetDateTime::from_unix_timestamp(i64::from(rolling_start_number) * INTERVAL_SECONDS)
        .ok()
        .map(OffsetDateTime::date)
}

/// The 16 bytes of a Temporary Exposure Key. `Debug` never shows them.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyData([u8; KEY_LENGTH]);

impl KeyData {
    pub fn new(bytes: [u8; KEY_LENGTH]) -> Self {
        Self(bytes)
    }

    /// Decodes standard base64 that must yield exactly 16 bytes.
    pub fn from_base64(text: &str) -> Option<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        <[u8; KEY_LENGTH]>::try_from(bytes.as_slice())
            .ok()
            .map(Self)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LENGTH] {
        &self.0
    }
}

impl fmt::Debug for KeyData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyData(<redacted>)")
    }
}

/// A stored key's identity: lowercase hex SHA-256 of what identifies one upload of it, so a
/// retried submission maps onto the same items and stores nothing twice.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct KeyId(String);

impl KeyId {
    /// COCOA's v3 id: `SHA-256("{idempotency_key},{keyData},{rollingStartNumber},{rollingPeriod}")`
    /// with the rolling period as submitted (0 stays 0 here).
    pub fn for_v3(
        idempotency_key: &str,
        key_data_base64: &str,
        rolling_start_number: u32,
        rolling_period: u32,
    ) -> Self {
        Self::hash(&format!(
            "{idempotency_key},{key_data_base64},{rolling_start_number},{rolling_period}"
        ))
    }

    /// v2 carries no idempotency key; COCOA gave each stored key a random id, so a retried v2
    /// upload published its keys twice. Here the id is derived from the key itself instead.
    pub fn for_v2(key_data_base64: &str, rolling_start_number: u32, rolling_period: u32) -> Self {
        Self::hash(&format!(
            "v2,{key_data_base64},{rolling_start_number},{rolling_period}"
        ))
    }

    fn hash(text: &str) -> Self {
        let hash = digest(&SHA256, text.as_bytes());
        let mut hex = String::with_capacity(64);
        for byte in hash.as_ref() {
            hex.push_str(&format!("{byte:02x}"));
        }
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// GAEN report type as COCOA validates it (0..=5).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReportType(u8);

impl ReportType {
    pub const CONFIRMED_TEST: Self = Self(1);

    pub fn new(value: u32) -> Option<Self> {
        u8::try_from(value).ok().filter(|v| *v <= 5).map(Self)
    }

    pub fn value(self) -> u8 {
        self.0
    }
}

/// A validated key ready to be stored for one region.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExposureKey {
    pub id: KeyId,
    pub region: String,
    pub key_data: KeyData,
    pub rolling_start_number: u32,
    /// 1..=144; a submitted 0 is stored as 144.
    pub rolling_period: u32,
    pub transmission_risk: u8,
    /// `None` where the client could not say (v2).
    pub report_type: Option<ReportType>,
    /// `None` where unknown (v2).
    pub days_since_onset: Option<i32>,
}

impl ExposureKey {
    /// Unix seconds at which the key stops being valid on the phone.
    pub fn rolling_end(&self) -> i64 {
        (i64::from(self.rolling_start_number) + i64::from(self.rolling_period)) * INTERVAL_SECONDS
    }

    /// The hour whose export first publishes the key: the first whole hour at least two hours
    /// after the key's rolling period ends, and never before the whole hour after the key was
    /// received. The second rule keeps late keys (most keys: the app uploads up to 14 days of
    /// ended keys) out of hours an export has already read: an hour `h` only ever receives keys
    /// written before `h`, so an export that reads `h` once `h` is safely past sees all of them.
    pub fn release_at(&self, received_at: i64) -> i64 {
        let earliest = self.rolling_end() + RELEASE_DELAY_SECONDS;
        let by_rolling_end = earliest.div_euclid(3600) * 3600
            + if earliest.rem_euclid(3600) == 0 {
                0
            } else {
                3600
            };
        by_rolling_end.max(received_at.div_euclid(3600) * 3600 + 3600)
    }

    /// The DynamoDB TTL: 15 days after the key's start.
    pub fn expires_at(&self) -> i64 {
        i64::from(self.rolling_start_number) * INTERVAL_SECONDS + KEY_RETENTION_SECONDS
    }
}

/// The partition an exporter reads to release one hour of one region:
/// `"{region}#{YYYY-MM-DDTHH}"` (UTC).
pub fn release_partition(region: &str, release_at: i64) -> String {
    let hour =
        OffsetDateTime::from_unix_timestamp(release_at).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{region}#{:04}-{:02}-{:02}T{:02}",
        hour.year(),
        u8::from(hour.month()),
        hour.day(),
        hour.hour()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn key(rolling_start_number: u32, rolling_period: u32) -> ExposureKey {
        ExposureKey {
            id: KeyId::for_v2(
                "AAAAAAAAAAAAAAAAAAAAAA==",
                rolling_start_number,
                rolling_period,
            ),
            region: "440".into(),
            key_data: KeyData::new([0; 16]),
            rolling_start_number,
            rolling_period,
            transmission_risk: 4,
            report_type: Some(ReportType::CONFIRMED_TEST),
            days_since_onset: Some(0),
        }
    }

    #[test]
    fn release_is_the_first_whole_hour_two_hours_after_the_rolling_period() {
        let midnight = interval_number(datetime!(2026-11-20 00:00 UTC)) as u32;
        // A full-day key ends at the next midnight: released at 02:00.
        let full_day = key(midnight, 144);
        let received = datetime!(2026-11-20 08:00 UTC).unix_timestamp();
        assert_eq!(
            full_day.release_at(received),
            datetime!(2026-11-21 02:00 UTC).unix_timestamp()
        );
        // A key ending at 10:10 is released at 13:00, not 12:00.
        let partial = key(midnight, 61);
        assert_eq!(
            partial.release_at(received),
            datetime!(2026-11-20 13:00 UTC).unix_timestamp()
        );
        assert_eq!(
            release_partition("440", partial.release_at(received)),
            "440#2026-11-20T13"
        );
    }

    #[test]
    fn a_key_received_after_its_release_hour_waits_for_the_next_whole_hour() {
        let midnight = interval_number(datetime!(2026-11-10 00:00 UTC)) as u32;
        let old = key(midnight, 144);
        let received = datetime!(2026-11-20 08:59:59 UTC).unix_timestamp();
        assert_eq!(
            old.release_at(received),
            datetime!(2026-11-20 09:00 UTC).unix_timestamp()
        );
        let on_the_hour = datetime!(2026-11-20 09:00 UTC).unix_timestamp();
        assert_eq!(
            old.release_at(on_the_hour),
            datetime!(2026-11-20 10:00 UTC).unix_timestamp()
        );
    }

    #[test]
    fn keys_expire_fifteen_days_after_their_start() {
        let midnight = interval_number(datetime!(2026-11-20 00:00 UTC)) as u32;
        assert_eq!(
            key(midnight, 144).expires_at(),
            datetime!(2026-12-05 00:00 UTC).unix_timestamp()
        );
    }

    #[test]
    fn key_ids_match_cocoa_and_never_show_key_bytes() {
        // SHA-256 of "idem,AAAAAAAAAAAAAAAAAAAAAA==,2733120,144", computed independently with
        // `printf %s 'idem,AAAAAAAAAAAAAAAAAAAAAA==,2733120,144' | sha256sum`.
        let id = KeyId::for_v3("idem", "AAAAAAAAAAAAAAAAAAAAAA==", 2_733_120, 144);
        assert_eq!(id.as_str(), EXPECTED_V3_ID);
        assert_eq!(
            format!("{:?}", KeyData::new([7; 16])),
            "KeyData(<redacted>)"
        );
    }

    const EXPECTED_V3_ID: &str = include_str!("testdata/v3_key_id.txt");

    #[test]
    fn key_data_must_be_sixteen_bytes_of_base64() {
        assert!(KeyData::from_base64("AAAAAAAAAAAAAAAAAAAAAA==").is_some());
        assert!(KeyData::from_base64("AAAAAAAAAAAAAAAAAAAA").is_none()); // 15 bytes
        assert!(KeyData::from_base64("not base64!").is_none());
        assert!(KeyData::from_base64("").is_none());
    }
}
