//! COCOA v3.0.0's end-of-service usage survey: validation of one answer and aggregation of many.
//!
//! The app sends the survey as an event log entry (`type: "survey"`, `subtype: "survey"`) whose
//! `content` is serialised by Newtonsoft.Json with nulls included, always with exactly these keys:
//!
//! ```json
//! {"q1":1,"q2":2,"start_date":1640995200,
//!  "exposure_data":{"daily_summaries":[{"DateMillisSinceEpoch":1649289600000,"ExposureDetected":1}]}}
//! ```
//!
//! * `q1`: age group code 1–9 ([`AgeGroup`]) or null (no answer). 0 ("please select") is invalid.
//! * `q2`: commute code 1–3 ([`Commute`]) or null (no answer).
//! * `start_date`: unix seconds of the app's start, or null (not opted in). Accepted from COCOA's
//!   release (2020-06-19 00:00 UTC) to 2030-01-01 00:00 UTC; kept as its UTC calendar date.
//! * `exposure_data`: null (not opted in) or `{"daily_summaries": [...]}` with at most
//!   [`MAX_DAILY_SUMMARIES`] entries, each `{"DateMillisSinceEpoch": <unix ms, exact UTC
//!   midnight, 2022-04-07..=2030-01-01>, "ExposureDetected": 0 | 1}`, no date twice.
//!
//! Validation is strict: because the app always sends every key (nulls included) and no others, a
//! missing key or an extra key at any level is rejected ([`SurveyError::MissingField`],
//! [`SurveyError::UnexpectedKey`] and their per-summary variants), as is a value of another JSON
//! type (a float, a string, a bool where an integer is expected). Errors name the field, never the
//! offending value, so they can be logged.
//!
//! # Aggregation
//!
//! [`SurveyReport`] adds up valid answers by bucket (age group × commute, each with a "no answer"
//! bucket) and writes them as one CSV table (RFC 4180, header row, `\n` line ends):
//!
//! ```text
//! kind,age_group,commute,date,answers,answers_with_exposure_data,answers_notified
//! ```
//!
//! * `kind`: `group` or `day`, one section after the other (`group` rows first).
//! * `age_group`, `commute`: human-readable labels ([`AgeGroup::label`], [`Commute::label`]), or
//!   `no answer` for a null `q1`/`q2`; quoted where a label contains a comma.
//! * `group` rows, one per bucket with at least one answer: `date` is empty; `answers` counts the
//!   answers in the bucket, `answers_with_exposure_data` those that sent `exposure_data` (opted in,
//!   even with no daily summary), `answers_notified` those with at least one notified day.
//! * `day` rows, one per (bucket, date) that at least one answer reported: `date` is `YYYY-MM-DD`
//!   (UTC); `answers` counts the answers that reported that day, `answers_with_exposure_data` is
//!   empty, `answers_notified` counts the answers with an exposure notification that day.
//!
//! Buckets and days nobody reported are omitted (a missing row means zero). Rows are ordered by age
//! group code, then commute code (with `no answer` after the coded answers), then date, so the same
//! answers always give the same text whatever order they were added in.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};
use time::{Date, OffsetDateTime};

/// The most daily summaries one answer may carry (the app sends at most 14 days; generous).
pub const MAX_DAILY_SUMMARIES: usize = 1000;

/// COCOA's release, 2020-06-19 00:00 UTC: the earliest accepted `start_date` (unix seconds).
const MIN_START_DATE: i64 = 1_592_524_800;
/// 2030-01-01 00:00 UTC: the latest accepted `start_date` (unix seconds), a generous bound.
const MAX_START_DATE: i64 = 1_893_456_000;
/// 2022-04-07 00:00 UTC: the earliest accepted daily summary date (unix ms).
const MIN_SUMMARY_MILLIS: i64 = 1_649_289_600_000;
/// 2030-01-01 00:00 UTC: the latest accepted daily summary date (unix ms).
const MAX_SUMMARY_MILLIS: i64 = MAX_START_DATE * 1000;
const MILLIS_PER_DAY: i64 = 86_400_000;

const CONTENT_KEYS: [&str; 4] = ["q1", "q2", "start_date", "exposure_data"];
const EXPOSURE_DATA_KEYS: [&str; 1] = ["daily_summaries"];
const SUMMARY_KEYS: [&str; 2] = ["DateMillisSinceEpoch", "ExposureDetected"];

/// The CSV header of [`SurveyReport::to_csv`].
pub const CSV_HEADER: &str =
    "kind,age_group,commute,date,answers,answers_with_exposure_data,answers_notified";

/// The label of a null `q1`/`q2` in the CSV.
pub const NO_ANSWER_LABEL: &str = "no answer";

/// `q1`: the respondent's age group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgeGroup {
    Under15 = 1,
    From15To19 = 2,
    From20To24 = 3,
    From25To29 = 4,
    From30To39 = 5,
    From40To49 = 6,
    From50To59 = 7,
    From60To69 = 8,
    From70 = 9,
}

impl AgeGroup {
    /// Every age group, in code order.
    pub const ALL: [Self; 9] = [
        Self::Under15,
        Self::From15To19,
        Self::From20To24,
        Self::From25To29,
        Self::From30To39,
        Self::From40To49,
        Self::From50To59,
        Self::From60To69,
        Self::From70,
    ];

    /// The app's code (1–9).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The age group of an app code; `None` for 0 ("please select") and anything out of range.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|g| u64::from(g.code()) == code)
    }

    /// An English label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::Under15 => "under 15",
            Self::From15To19 => "15-19",
            Self::From20To24 => "20-24",
            Self::From25To29 => "25-29",
            Self::From30To39 => "30-39",
            Self::From40To49 => "40-49",
            Self::From50To59 => "50-59",
            Self::From60To69 => "60-69",
            Self::From70 => "70 and over",
        }
    }
}

/// `q2`: whether the respondent commutes at least once a week, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Commute {
    NoCommute = 1,
    WithoutPublicTransport = 2,
    ByPublicTransport = 3,
}

impl Commute {
    /// Every answer, in code order.
    pub const ALL: [Self; 3] = [
        Self::NoCommute,
        Self::WithoutPublicTransport,
        Self::ByPublicTransport,
    ];

    /// The app's code (1–3).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The answer of an app code; `None` for anything out of range.
    pub fn from_code(code: u64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| u64::from(c.code()) == code)
    }

    /// An English label for reports.
    pub fn label(self) -> &'static str {
        match self {
            Self::NoCommute => "no commute",
            Self::WithoutPublicTransport => "commute, no public transport",
            Self::ByPublicTransport => "commute by public transport",
        }
    }
}

/// One day of the opted-in exposure data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExposureDay {
    /// The UTC calendar day.
    pub date: Date,
    /// Whether that day had an exposure notification (`ExposureDetected == 1`).
    pub notified: bool,
}

/// One validated survey answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyAnswer {
    /// `q1`; `None` = no answer.
    pub age_group: Option<AgeGroup>,
    /// `q2`; `None` = no answer.
    pub commute: Option<Commute>,
    /// `start_date` as a UTC calendar date; `None` = not opted in.
    pub start_date: Option<Date>,
    /// `exposure_data.daily_summaries`, ordered by date, each date once; `None` = not opted in.
    pub exposure_days: Option<Vec<ExposureDay>>,
}

/// Why a survey `content` was rejected. Names the field, never quotes the value.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum SurveyError {
    #[error("survey content is not a JSON object")]
    NotAnObject,
    #[error("survey content lacks `{0}`")]
    MissingField(&'static str),
    #[error("survey content has a key not in the schema in `{0}`")]
    UnexpectedKey(&'static str),
    #[error("`q1` (age group) is neither null nor an integer 1-9")]
    InvalidAgeGroup,
    #[error("`q2` (commute) is neither null nor an integer 1-3")]
    InvalidCommute,
    #[error("`start_date` is neither null nor unix seconds between 2020-06-19 and 2030-01-01")]
    InvalidStartDate,
    #[error("`exposure_data` is neither null nor an object")]
    InvalidExposureData,
    #[error("`exposure_data.daily_summaries` is not an array")]
    InvalidDailySummaries,
    #[error("`exposure_data.daily_summaries` has more than {MAX_DAILY_SUMMARIES} entries")]
    TooManyDailySummaries,
    #[error("`exposure_data.daily_summaries[{index}]` is not an object")]
    InvalidDailySummary { index: usize },
    #[error("`exposure_data.daily_summaries[{index}]` lacks `{field}`")]
    MissingSummaryField { index: usize, field: &'static str },
    #[error("`exposure_data.daily_summaries[{index}]` has a key not in the schema")]
    UnexpectedSummaryKey { index: usize },
    #[error(
        "`exposure_data.daily_summaries[{index}].DateMillisSinceEpoch` is not a UTC midnight \
         between 2022-04-07 and 2030-01-01"
    )]
    InvalidSummaryDate { index: usize },
    #[error(
        "`exposure_data.daily_summaries[{index}].DateMillisSinceEpoch` repeats an earlier date"
    )]
    DuplicateSummaryDate { index: usize },
    #[error("`exposure_data.daily_summaries[{index}].ExposureDetected` is neither 0 nor 1")]
    InvalidExposureDetected { index: usize },
}

/// Validates a survey event's `content` (see the module doc for the schema and the rules).
pub fn parse_survey(content: &Value) -> Result<SurveyAnswer, SurveyError> {
    let object = content.as_object().ok_or(SurveyError::NotAnObject)?;
    check_keys(object, &CONTENT_KEYS, "content")?;
    let age_group = match field(object, "q1")? {
        Value::Null => None,
        value => Some(
            value
                .as_u64()
                .and_then(AgeGroup::from_code)
                .ok_or(SurveyError::InvalidAgeGroup)?,
        ),
    };
    let commute = match field(object, "q2")? {
        Value::Null => None,
        value => Some(
            value
                .as_u64()
                .and_then(Commute::from_code)
                .ok_or(SurveyError::InvalidCommute)?,
        ),
    };
    let start_date = match field(object, "start_date")? {
        Value::Null => None,
        value => Some(
            value
                .as_i64()
                .filter(|s| (MIN_START_DATE..=MAX_START_DATE).contains(s))
                .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
                .map(OffsetDateTime::date)
                .ok_or(SurveyError::InvalidStartDate)?,
        ),
    };
    let exposure_days = match field(object, "exposure_data")? {
        Value::Null => None,
        Value::Object(data) => Some(parse_exposure_data(data)?),
        _ => return Err(SurveyError::InvalidExposureData),
    };
    Ok(SurveyAnswer {
        age_group,
        commute,
        start_date,
        exposure_days,
    })
}

fn field<'a>(object: &'a Map<String, Value>, key: &'static str) -> Result<&'a Value, SurveyError> {
    object.get(key).ok_or(SurveyError::MissingField(key))
}

/// Rejects keys outside `allowed` (missing keys are reported by the caller's look-ups).
fn check_keys(
    object: &Map<String, Value>,
    allowed: &[&str],
    at: &'static str,
) -> Result<(), SurveyError> {
    if object.keys().all(|k| allowed.contains(&k.as_str())) {
        Ok(())
    } else {
        Err(SurveyError::UnexpectedKey(at))
    }
}

fn parse_exposure_data(data: &Map<String, Value>) -> Result<Vec<ExposureDay>, SurveyError> {
    check_keys(data, &EXPOSURE_DATA_KEYS, "exposure_data")?;
    let summaries = data
        .get("daily_summaries")
        .ok_or(SurveyError::MissingField("exposure_data.daily_summaries"))?
        .as_array()
        .ok_or(SurveyError::InvalidDailySummaries)?;
    if summaries.len() > MAX_DAILY_SUMMARIES {
        return Err(SurveyError::TooManyDailySummaries);
    }
    let mut seen = BTreeSet::new();
    let mut days = Vec::with_capacity(summaries.len());
    for (index, summary) in summaries.iter().enumerate() {
        let summary = summary
            .as_object()
            .ok_or(SurveyError::InvalidDailySummary { index })?;
        if !summary.keys().all(|k| SUMMARY_KEYS.contains(&k.as_str())) {
            return Err(SurveyError::UnexpectedSummaryKey { index });
        }
        let summary_field = |field: &'static str| {
            summary
                .get(field)
                .ok_or(SurveyError::MissingSummaryField { index, field })
        };
        let date = summary_field("DateMillisSinceEpoch")?
            .as_i64()
            .filter(|ms| (MIN_SUMMARY_MILLIS..=MAX_SUMMARY_MILLIS).contains(ms))
            .filter(|ms| ms % MILLIS_PER_DAY == 0)
            .and_then(|ms| OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
            .map(OffsetDateTime::date)
            .ok_or(SurveyError::InvalidSummaryDate { index })?;
        let notified = match summary_field("ExposureDetected")?.as_u64() {
            Some(0) => false,
            Some(1) => true,
            _ => return Err(SurveyError::InvalidExposureDetected { index }),
        };
        if !seen.insert(date) {
            return Err(SurveyError::DuplicateSummaryDate { index });
        }
        days.push(ExposureDay { date, notified });
    }
    days.sort_by_key(|d| d.date);
    Ok(days)
}

/// A `q1`/`q2` answer or its absence; derives an order with "no answer" after every answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Answered<T> {
    Yes(T),
    NoAnswer,
}

impl<T> From<Option<T>> for Answered<T> {
    fn from(value: Option<T>) -> Self {
        value.map_or(Self::NoAnswer, Self::Yes)
    }
}

/// An (age group, commute) bucket of the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Bucket {
    age_group: Answered<AgeGroup>,
    commute: Answered<Commute>,
}

impl Bucket {
    fn labels(self) -> (&'static str, &'static str) {
        let age = match self.age_group {
            Answered::Yes(g) => g.label(),
            Answered::NoAnswer => NO_ANSWER_LABEL,
        };
        let commute = match self.commute {
            Answered::Yes(c) => c.label(),
            Answered::NoAnswer => NO_ANSWER_LABEL,
        };
        (age, commute)
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct GroupCounts {
    answers: u64,
    with_exposure_data: u64,
    notified: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct DayCounts {
    reporting: u64,
    notified: u64,
}

/// The aggregate of many survey answers (see the module doc for the CSV layout).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SurveyReport {
    answers: u64,
    groups: BTreeMap<Bucket, GroupCounts>,
    days: BTreeMap<(Bucket, Date), DayCounts>,
}

impl SurveyReport {
    /// Counts one answer.
    pub fn add(&mut self, answer: &SurveyAnswer) {
        let bucket = Bucket {
            age_group: answer.age_group.into(),
            commute: answer.commute.into(),
        };
        self.answers = self.answers.saturating_add(1);
        let group = self.groups.entry(bucket).or_default();
        group.answers = group.answers.saturating_add(1);
        let Some(days) = &answer.exposure_days else {
            return;
        };
        group.with_exposure_data = group.with_exposure_data.saturating_add(1);
        if days.iter().any(|d| d.notified) {
            group.notified = group.notified.saturating_add(1);
        }
        for day in days {
            let counts = self.days.entry((bucket, day.date)).or_default();
            counts.reporting = counts.reporting.saturating_add(1);
            if day.notified {
                counts.notified = counts.notified.saturating_add(1);
            }
        }
    }

    /// How many answers were added.
    pub fn answers(&self) -> u64 {
        self.answers
    }

    /// CSV (RFC 4180, header row, `\n` line ends), deterministic order; layout in the module doc.
    pub fn to_csv(&self) -> String {
        let mut csv = String::new();
        csv.push_str(CSV_HEADER);
        csv.push('\n');
        for (bucket, counts) in &self.groups {
            let (age, commute) = bucket.labels();
            // Writing to a String cannot fail.
            let _ = writeln!(
                csv,
                "group,{},{},,{},{},{}",
                csv_field(age),
                csv_field(commute),
                counts.answers,
                counts.with_exposure_data,
                counts.notified
            );
        }
        for ((bucket, date), counts) in &self.days {
            let (age, commute) = bucket.labels();
            let _ = writeln!(
                csv,
                "day,{},{},{},{},,{}",
                csv_field(age),
                csv_field(commute),
                iso_date(*date),
                counts.reporting,
                counts.notified
            );
        }
        csv
    }

    /// Per-day totals over all groups, ordered by date: (date, answers reporting the day, answers
    /// notified that day).
    pub fn daily_totals(&self) -> Vec<(Date, u64, u64)> {
        let mut totals: BTreeMap<Date, (u64, u64)> = BTreeMap::new();
        for ((_, date), counts) in &self.days {
            let total = totals.entry(*date).or_default();
            total.0 = total.0.saturating_add(counts.reporting);
            total.1 = total.1.saturating_add(counts.notified);
        }
        totals
            .into_iter()
            .map(|(date, (reporting, notified))| (date, reporting, notified))
            .collect()
    }
}

/// One RFC 4180 field: quoted (quotes doubled) when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// `YYYY-MM-DD`.
fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::date;

    const EXAMPLE: &str = r#"{"q1":1,"q2":2,"start_date":1640995200,"exposure_data":{"daily_summaries":[{"DateMillisSinceEpoch":1649289600000,"ExposureDetected":1}]}}"#;

    fn example() -> Value {
        serde_json::from_str(EXAMPLE).unwrap()
    }

    fn with(key: &str, value: Value) -> Value {
        let mut content = example();
        content[key] = value;
        content
    }

    fn with_summaries(summaries: Value) -> Value {
        with("exposure_data", json!({ "daily_summaries": summaries }))
    }

    fn day(ms: i64, detected: u8) -> Value {
        json!({"DateMillisSinceEpoch": ms, "ExposureDetected": detected})
    }

    const D0: i64 = MIN_SUMMARY_MILLIS;

    #[test]
    fn parses_the_example() {
        let answer = parse_survey(&example()).unwrap();
        assert_eq!(
            answer,
            SurveyAnswer {
                age_group: Some(AgeGroup::Under15),
                commute: Some(Commute::WithoutPublicTransport),
                start_date: Some(date!(2022 - 01 - 01)),
                exposure_days: Some(vec![ExposureDay {
                    date: date!(2022 - 04 - 07),
                    notified: true
                }]),
            }
        );
    }

    #[test]
    fn parses_all_nulls() {
        let content = json!({"q1": null, "q2": null, "start_date": null, "exposure_data": null});
        let answer = parse_survey(&content).unwrap();
        assert_eq!(
            answer,
            SurveyAnswer {
                age_group: None,
                commute: None,
                start_date: None,
                exposure_days: None
            }
        );
    }

    #[test]
    fn parses_bounds_and_sorts_days() {
        let content = json!({
            "q1": 9, "q2": 3, "start_date": MIN_START_DATE,
            "exposure_data": {"daily_summaries": [
                day(MAX_SUMMARY_MILLIS, 0), day(D0, 1), day(D0 + MILLIS_PER_DAY, 0)
            ]}
        });
        let answer = parse_survey(&content).unwrap();
        assert_eq!(answer.age_group, Some(AgeGroup::From70));
        assert_eq!(answer.commute, Some(Commute::ByPublicTransport));
        assert_eq!(answer.start_date, Some(date!(2020 - 06 - 19)));
        let days: Vec<_> = answer
            .exposure_days
            .unwrap()
            .iter()
            .map(|d| (d.date, d.notified))
            .collect();
        assert_eq!(
            days,
            [
                (date!(2022 - 04 - 07), true),
                (date!(2022 - 04 - 08), false),
                (date!(2030 - 01 - 01), false)
            ]
        );
        assert!(parse_survey(&with("start_date", json!(MAX_START_DATE))).is_ok());
        assert_eq!(
            parse_survey(&with_summaries(json!([])))
                .unwrap()
                .exposure_days,
            Some(vec![])
        );
        let full: Vec<Value> = (0..MAX_DAILY_SUMMARIES as i64)
            .map(|i| day(D0 + i * MILLIS_PER_DAY, 0))
            .collect();
        assert!(parse_survey(&with_summaries(Value::Array(full))).is_ok());
    }

    #[test]
    fn codes_and_labels_round_trip() {
        for g in AgeGroup::ALL {
            assert_eq!(AgeGroup::from_code(g.code().into()), Some(g));
        }
        for c in Commute::ALL {
            assert_eq!(Commute::from_code(c.code().into()), Some(c));
        }
        assert_eq!(AgeGroup::From30To39.label(), "30-39");
        assert_eq!(Commute::NoCommute.label(), "no commute");
    }

    #[test]
    fn rejects_invalid_content() {
        use SurveyError as E;
        let remove = |key: &str| {
            let mut content = example();
            content.as_object_mut().unwrap().remove(key);
            content
        };
        let cases: Vec<(Value, SurveyError)> = vec![
            (json!([]), E::NotAnObject),
            (json!(null), E::NotAnObject),
            (json!("{}"), E::NotAnObject),
            (remove("q1"), E::MissingField("q1")),
            (remove("q2"), E::MissingField("q2")),
            (remove("start_date"), E::MissingField("start_date")),
            (remove("exposure_data"), E::MissingField("exposure_data")),
            (with("q3", json!(1)), E::UnexpectedKey("content")),
            (with("q1", json!(0)), E::InvalidAgeGroup),
            (with("q1", json!(10)), E::InvalidAgeGroup),
            (with("q1", json!(-1)), E::InvalidAgeGroup),
            (with("q1", json!(1.0)), E::InvalidAgeGroup),
            (with("q1", json!("1")), E::InvalidAgeGroup),
            (with("q2", json!(0)), E::InvalidCommute),
            (with("q2", json!(4)), E::InvalidCommute),
            (with("q2", json!(true)), E::InvalidCommute),
            (
                with("start_date", json!(MIN_START_DATE - 1)),
                E::InvalidStartDate,
            ),
            (
                with("start_date", json!(MAX_START_DATE + 1)),
                E::InvalidStartDate,
            ),
            (with("start_date", json!(1640995200.5)), E::InvalidStartDate),
            (with("start_date", json!("1640995200")), E::InvalidStartDate),
            (with("exposure_data", json!([])), E::InvalidExposureData),
            (with("exposure_data", json!(0)), E::InvalidExposureData),
            (
                with("exposure_data", json!({})),
                E::MissingField("exposure_data.daily_summaries"),
            ),
            (
                with("exposure_data", json!({"daily_summaries": [], "x": 1})),
                E::UnexpectedKey("exposure_data"),
            ),
            (with_summaries(json!({})), E::InvalidDailySummaries),
            (with_summaries(json!(null)), E::InvalidDailySummaries),
            (
                with_summaries(json!([day(D0, 0), 5])),
                E::InvalidDailySummary { index: 1 },
            ),
            (
                with_summaries(json!([{"ExposureDetected": 1}])),
                E::MissingSummaryField {
                    index: 0,
                    field: "DateMillisSinceEpoch",
                },
            ),
            (
                with_summaries(json!([{"DateMillisSinceEpoch": D0}])),
                E::MissingSummaryField {
                    index: 0,
                    field: "ExposureDetected",
                },
            ),
            (
                with_summaries(json!([
                    {"DateMillisSinceEpoch": D0, "ExposureDetected": 1, "ReportType": 1}
                ])),
                E::UnexpectedSummaryKey { index: 0 },
            ),
            (
                with_summaries(json!([day(D0 - MILLIS_PER_DAY, 0)])),
                E::InvalidSummaryDate { index: 0 },
            ),
            (
                with_summaries(json!([day(MAX_SUMMARY_MILLIS + MILLIS_PER_DAY, 0)])),
                E::InvalidSummaryDate { index: 0 },
            ),
            (
                with_summaries(json!([day(D0, 0), day(D0 + 3_600_000, 0)])),
                E::InvalidSummaryDate { index: 1 },
            ),
            (
                with_summaries(
                    json!([{"DateMillisSinceEpoch": "1649289600000", "ExposureDetected": 0}]),
                ),
                E::InvalidSummaryDate { index: 0 },
            ),
            (
                with_summaries(json!([day(D0, 2)])),
                E::InvalidExposureDetected { index: 0 },
            ),
            (
                with_summaries(json!([{"DateMillisSinceEpoch": D0, "ExposureDetected": true}])),
                E::InvalidExposureDetected { index: 0 },
            ),
            (
                with_summaries(json!([day(D0, 0), day(D0 + MILLIS_PER_DAY, 1), day(D0, 1)])),
                E::DuplicateSummaryDate { index: 2 },
            ),
            (
                with_summaries(Value::Array(vec![day(D0, 0); MAX_DAILY_SUMMARIES + 1])),
                E::TooManyDailySummaries,
            ),
        ];
        for (content, expected) in cases {
            assert_eq!(parse_survey(&content), Err(expected.clone()), "{content}");
        }
    }

    #[test]
    fn errors_do_not_quote_values() {
        let err = parse_survey(&with("q1", json!(987654))).unwrap_err();
        assert!(!err.to_string().contains("987654"));
        let err = parse_survey(&with("secret-key", json!(1))).unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }

    fn answer(
        age: Option<AgeGroup>,
        commute: Option<Commute>,
        days: Option<&[(Date, bool)]>,
    ) -> SurveyAnswer {
        SurveyAnswer {
            age_group: age,
            commute,
            start_date: None,
            exposure_days: days.map(|days| {
                days.iter()
                    .map(|&(date, notified)| ExposureDay { date, notified })
                    .collect()
            }),
        }
    }

    #[test]
    fn aggregates_to_exact_csv_and_daily_totals() {
        let d1 = date!(2022 - 04 - 07);
        let d2 = date!(2022 - 04 - 08);
        let d3 = date!(2022 - 05 - 01);
        let answers = [
            answer(
                Some(AgeGroup::From30To39),
                Some(Commute::ByPublicTransport),
                Some(&[(d1, true), (d2, false)]),
            ),
            answer(
                Some(AgeGroup::From30To39),
                Some(Commute::ByPublicTransport),
                Some(&[(d1, false)]),
            ),
            answer(
                Some(AgeGroup::From30To39),
                Some(Commute::ByPublicTransport),
                None,
            ),
            answer(
                Some(AgeGroup::Under15),
                Some(Commute::WithoutPublicTransport),
                Some(&[(d2, true), (d3, true)]),
            ),
            answer(None, Some(Commute::NoCommute), Some(&[])),
            answer(None, None, Some(&[(d1, true)])),
            answer(Some(AgeGroup::From30To39), None, None),
        ];
        let mut report = SurveyReport::default();
        // Added in reverse to show the order does not depend on arrival.
        for a in answers.iter().rev() {
            report.add(a);
        }
        assert_eq!(report.answers(), 7);
        assert_eq!(
            report.to_csv(),
            "kind,age_group,commute,date,answers,answers_with_exposure_data,answers_notified\n\
             group,under 15,\"commute, no public transport\",,1,1,1\n\
             group,30-39,commute by public transport,,3,2,1\n\
             group,30-39,no answer,,1,0,0\n\
             group,no answer,no commute,,1,1,0\n\
             group,no answer,no answer,,1,1,1\n\
             day,under 15,\"commute, no public transport\",2022-04-08,1,,1\n\
             day,under 15,\"commute, no public transport\",2022-05-01,1,,1\n\
             day,30-39,commute by public transport,2022-04-07,2,,1\n\
             day,30-39,commute by public transport,2022-04-08,1,,0\n\
             day,no answer,no answer,2022-04-07,1,,1\n"
        );
        assert_eq!(
            report.daily_totals(),
            vec![(d1, 3, 2), (d2, 2, 1), (d3, 1, 1)]
        );
    }

    #[test]
    fn empty_report() {
        let report = SurveyReport::default();
        assert_eq!(report.answers(), 0);
        assert_eq!(report.to_csv(), format!("{CSV_HEADER}\n"));
        assert!(report.daily_totals().is_empty());
    }

    #[test]
    fn parsed_example_aggregates() {
        let mut report = SurveyReport::default();
        report.add(&parse_survey(&example()).unwrap());
        assert_eq!(
            report.to_csv(),
            format!(
                "{CSV_HEADER}\n\
                 group,under 15,\"commute, no public transport\",,1,1,1\n\
                 day,under 15,\"commute, no public transport\",2022-04-07,1,,1\n"
            )
        );
    }

    #[test]
    fn csv_fields_are_escaped() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
