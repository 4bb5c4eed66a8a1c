//! COCOA's clear texts: the exact strings whose SHA-256 the app put into a SafetyNet nonce
//! (Android) or a DeviceCheck `transaction_id` (iOS) (reference/cocoa-api.md §5.2–§5.3). A
//! single differing byte fails the attestation, so every separator, the `True`/`False` and
//! `HasSymptom`/`NoSymptom` spellings, and the key and region ordering copy .NET's.
//!
//! # Ordering: culture-sensitive, not ordinal
//!
//! Both the app (`DeviceVerifierUtils`) and COCOA's server (`V3DiagnosisSubmissionParameter`)
//! sort with LINQ `OrderBy(k => k.KeyData)` and `regions…OrderBy(r => r)`, with no comparer
//! given: `Comparer<string>.Default`, i.e. `CultureInfo.CurrentCulture.CompareInfo.Compare(a, b,
//! CompareOptions.None)`. What is known about the cultures and engines involved:
//!
//! - The app ran on Xamarin (Mono) under the device's culture (normally `ja-JP`); Mono's
//!   culture comparer is its managed Unicode-collation implementation, not ordinal.
//! - The server ran on Azure Functions v3 / .NET Core 3.1 (at `cocoa@func`), whose culture
//!   comparer is NLS on Windows and ICU on Linux; `cocoa@HEAD` moved to .NET 6, ICU on both. The
//!   hosting OS and culture of production are not in the repositories.
//! - Every string sorted here is base64 (`A–Z a–z 0–9 + / =`) or a region code (digits), where
//!   these comparers agree on what matters most: letters compare case-insensitively first
//!   (`abc…` < `ABD…`), lower case before upper case only as a tie-break (`abc…` < `Abc…`),
//!   digits before letters, and `+` `/` `=` before digits. Ordinal order (Rust's `str::cmp`)
//!   instead puts every upper-case letter before every lower-case one, and `=` between digits
//!   and letters. Not verified against a real .NET runtime here: the relative order of `+` and
//!   `/` (ICU's root order puts `/` first), which matters only when two keys of one request first
//!   differ there.
//!
//! So the comparer here is ICU4X's root collation at its default (tertiary) strength with the
//! compiled CLDR data: the Unicode Collation Algorithm the ICU-based .NET runtimes use. `OrderBy`
//! is a stable sort, as is `sort_by`, so equal strings keep their submitted order.

use std::cmp::Ordering;
use std::sync::LazyLock;

use icu_collator::options::CollatorOptions;
use icu_collator::{CollatorBorrowed, CollatorPreferences};

use super::attestation::{ClearTextSource, EventLogText, KeyText};

/// The root-locale collator, built once from compiled data (it only borrows static tables).
/// `None` only if the compiled data were unusable, which a unit test rules out for this build.
static COLLATOR: LazyLock<Option<CollatorBorrowed<'static>>> = LazyLock::new(|| {
    CollatorBorrowed::try_new(CollatorPreferences::default(), CollatorOptions::default()).ok()
});

/// Compares like .NET's default culture-sensitive string comparer (see the module docs).
fn culture_compare(a: &str, b: &str) -> Ordering {
    match COLLATOR.as_ref() {
        Some(collator) => collator.compare(a, b),
        // Unreachable with the compiled data (tested); ordinal order then at least stays
        // deterministic, and a mismatching nonce fails closed.
        None => a.cmp(b),
    }
}

/// The SafetyNet nonce text (its UTF-8 SHA-256 is the nonce the app asked Google to sign).
pub(crate) fn nonce_text(source: &ClearTextSource) -> String {
    match source {
        ClearTextSource::V3 {
            app_package_name,
            onset,
            has_symptom,
            keys,
            regions,
            verification_payload,
        } => [
            app_package_name.as_str(),
            onset,
            symptom_text(*has_symptom),
            &keys_text(keys, key_text_v3),
            &regions_text(regions),
            verification_payload,
        ]
        .join("|"),
        ClearTextSource::V2 {
            app_package_name,
            keys,
            regions,
            verification_payload,
        } => [
            app_package_name.as_str(),
            &keys_text(keys, key_text_v2),
            &regions_text(regions),
            verification_payload,
        ]
        .join("|"),
        ClearTextSource::EventLog {
            idempotency_key,
            app_package_name,
            logs,
        } => [
            idempotency_key.as_str(),
            app_package_name,
            &event_logs_text(logs),
        ]
        .join("|"),
    }
}

/// The DeviceCheck transaction-id seed (its UTF-8 SHA-256, base64, is the `transaction_id`).
/// COCOA concatenates the diagnosis parts with no separator at all, and leaves out the processing
/// number; the event-log seed is the nonce text without the idempotency key.
pub(crate) fn transaction_seed(source: &ClearTextSource) -> String {
    match source {
        ClearTextSource::V3 {
            app_package_name,
            onset,
            has_symptom,
            keys,
            regions,
            verification_payload: _,
        } => [
            app_package_name.as_str(),
            onset,
            symptom_text(*has_symptom),
            &keys_text(keys, key_text_v3),
            &regions_text(regions),
        ]
        .concat(),
        ClearTextSource::V2 {
            app_package_name,
            keys,
            regions,
            verification_payload: _,
        } => [
            app_package_name.as_str(),
            &keys_text(keys, key_text_v2),
            &regions_text(regions),
        ]
        .concat(),
        ClearTextSource::EventLog {
            idempotency_key: _,
            app_package_name,
            logs,
        } => [app_package_name.as_str(), &event_logs_text(logs)].join("|"),
    }
}

fn symptom_text(has_symptom: bool) -> &'static str {
    if has_symptom {
        "HasSymptom"
    } else {
        "NoSymptom"
    }
}

/// .NET's `bool.ToString()`.
fn dotnet_bool(value: bool) -> &'static str {
    if value { "True" } else { "False" }
}

/// v3 key string: `keyData.rollingStartNumber.rollingPeriod.reportType`.
fn key_text_v3(key: &KeyText) -> String {
    format!(
        "{}.{}.{}.{}",
        key.key_data, key.rolling_start_number, key.rolling_period, key.report_type
    )
}

/// v2 key string: `keyData.rollingStartNumber.rollingPeriod`.
fn key_text_v2(key: &KeyText) -> String {
    format!(
        "{}.{}.{}",
        key.key_data, key.rolling_start_number, key.rolling_period
    )
}

/// The keys ordered by `keyData` (culture order), each rendered by `render`, joined by `,`.
fn keys_text(keys: &[KeyText], render: fn(&KeyText) -> String) -> String {
    let mut ordered: Vec<&KeyText> = keys.iter().collect();
    ordered.sort_by(|a, b| culture_compare(&a.key_data, &b.key_data));
    ordered
        .into_iter()
        .map(render)
        .collect::<Vec<_>>()
        .join(",")
}

/// The regions upper-cased (`ToUpperInvariant`) and ordered (culture order), joined by `,`.
fn regions_text(regions: &[String]) -> String {
    let mut upper: Vec<String> = regions.iter().map(|r| dotnet_upper_invariant(r)).collect();
    upper.sort_by(|a, b| culture_compare(a, b));
    upper.join(",")
}

/// .NET's `ToUpperInvariant`: a one-to-one mapping per character, so a character whose full
/// upper case has several characters (`ß` → `SS`) stays as it is, unlike Rust's `to_uppercase`.
fn dotnet_upper_invariant(text: &str) -> String {
    text.chars()
        .map(|c| {
            let mut upper = c.to_uppercase();
            match (upper.next(), upper.next()) {
                (Some(single), None) => single,
                _ => c,
            }
        })
        .collect()
}

/// One event log's clear text, `hasConsent.epoch.type.subtype.content` (COCOA's
/// `EventLogModel.ClearText`; with the idempotency key in front, its SHA-256 is the stored id).
pub fn event_log_text(log: &EventLogText) -> String {
    format!(
        "{}.{}.{}.{}.{}",
        dotnet_bool(log.has_consent),
        log.epoch,
        log.kind,
        log.subtype,
        log.content_json
    )
}

/// The event logs in submitted order, each as `event_log_text`, joined by `,`.
fn event_logs_text(logs: &[EventLogText]) -> String {
    logs.iter()
        .map(event_log_text)
        .collect::<Vec<_>>()
        .join(",")
}

/// Compacts a JSON text the way Newtonsoft's `ToString(Formatting.None)` lays it out: every
/// insignificant whitespace character (space, tab, CR, LF) outside strings is removed, and
/// everything else, key order, string contents and escapes, number spellings, stays byte for
/// byte. (Newtonsoft re-serializes rather than compacts, so it would also rewrite escapes such as
/// `\u00e9`, number forms such as `1e3`, and date-like strings; the app's own content is written
/// by Newtonsoft in the first place, so its compact form is already what this returns.)
///
/// The input is not validated: malformed JSON is compacted as far as its strings can be told
/// apart, and a request carrying it fails elsewhere (or its attestation does not match).
pub fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else {
            match c {
                ' ' | '\t' | '\n' | '\r' => {}
                '"' => {
                    in_string = true;
                    out.push(c);
                }
                _ => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = "jp.go.mhlw.covid19radar";

    fn key(key_data: &str, rolling_start_number: u32, rolling_period: u32) -> KeyText {
        KeyText {
            key_data: key_data.to_owned(),
            rolling_start_number,
            rolling_period,
            report_type: 1,
        }
    }

    /// Three keys submitted in an order that is neither the culture order nor the ordinal one.
    /// Culture order compares letters case-insensitively first, so `abc…` comes before both
    /// `Abd…` and `ABD…` (c < d); those two tie on letters, and the tie-break puts lower case
    /// first at the first difference (`Abd` < `ABD`, b < B). Ordinal order is the reverse:
    /// `ABD…` < `Abd…` < `abc…` (every upper-case letter before every lower-case one).
    fn case_keys() -> Vec<KeyText> {
        vec![
            key("ABDAAAAAAAAAAAAAAAAAAA==", 2733120, 144),
            key("abcAAAAAAAAAAAAAAAAAAA==", 2733264, 144),
            key("AbdAAAAAAAAAAAAAAAAAAA==", 2733408, 0),
        ]
    }

    fn v3(has_symptom: bool, keys: Vec<KeyText>, regions: &[&str]) -> ClearTextSource {
        ClearTextSource::V3 {
            app_package_name: APP.to_owned(),
            onset: "2021-12-19T00:00:00.000+09:00".to_owned(),
            has_symptom,
            keys,
            regions: regions.iter().map(|r| (*r).to_owned()).collect(),
            verification_payload: "12345678".to_owned(),
        }
    }

    #[test]
    fn the_collator_builds_from_compiled_data() {
        assert!(COLLATOR.is_some());
    }

    #[test]
    fn v3_nonce_text_orders_keys_like_dotnet_culture_compare() {
        let text = v3(true, case_keys(), &["440"]).nonce_text();
        // abc < Abd < ABD: case-insensitive first, lower case before upper case on a tie.
        assert_eq!(
            text,
            "jp.go.mhlw.covid19radar|2021-12-19T00:00:00.000+09:00|HasSymptom|\
             abcAAAAAAAAAAAAAAAAAAA==.2733264.144.1,\
             AbdAAAAAAAAAAAAAAAAAAA==.2733408.0.1,\
             ABDAAAAAAAAAAAAAAAAAAA==.2733120.144.1\
             |440|12345678"
        );
        // What an ordinal sort would have produced instead, so the difference is real.
        let mut ordinal: Vec<String> = case_keys().into_iter().map(|k| k.key_data).collect();
        ordinal.sort();
        assert_eq!(
            ordinal,
            [
                "ABDAAAAAAAAAAAAAAAAAAA==",
                "AbdAAAAAAAAAAAAAAAAAAA==",
                "abcAAAAAAAAAAAAAAAAAAA=="
            ]
        );
    }

    #[test]
    fn symbols_sort_before_digits_and_digits_before_letters() {
        let keys = vec![
            key("aAAAAAAAAAAAAAAAAAAAAA==", 1, 144),
            key("9AAAAAAAAAAAAAAAAAAAAA==", 2, 144),
            key("+AAAAAAAAAAAAAAAAAAAAA==", 3, 144),
            key("/AAAAAAAAAAAAAAAAAAAAA==", 4, 144),
            key("AAAAAAAAAAAAAAAAAAAAAA==", 5, 144),
        ];
        let text = v3(false, keys, &["440"]).nonce_text();
        // Root collation: punctuation (`/`) before symbols (`+`), both before digits, digits
        // before letters, and `a` before `A` on the tie-break. Ordinal would give
        // `+` `/` `9` `A` `a`.
        assert_eq!(
            text,
            "jp.go.mhlw.covid19radar|2021-12-19T00:00:00.000+09:00|NoSymptom|\
             /AAAAAAAAAAAAAAAAAAAAA==.4.144.1,\
             +AAAAAAAAAAAAAAAAAAAAA==.3.144.1,\
             9AAAAAAAAAAAAAAAAAAAAA==.2.144.1,\
             aAAAAAAAAAAAAAAAAAAAAA==.1.144.1,\
             AAAAAAAAAAAAAAAAAAAAAA==.5.144.1\
             |440|12345678"
        );
    }

    #[test]
    fn regions_are_upper_cased_then_ordered() {
        let text = v3(true, Vec::new(), &["441", "jp", "440", "Ab"]).nonce_text();
        // Upper-cased first ("jp" → "JP", "Ab" → "AB"), then digits before letters.
        // No keys: the keys part is empty, so two separators meet.
        assert_eq!(
            text,
            "jp.go.mhlw.covid19radar|2021-12-19T00:00:00.000+09:00|HasSymptom||440,441,AB,JP|12345678"
        );
        // ToUpperInvariant is one-to-one: `ß` stays (Rust's to_uppercase would give "SS").
        assert_eq!(regions_text(&["ß".to_owned()]), "ß");
    }

    #[test]
    fn v3_transaction_seed_has_no_separators_and_no_processing_number() {
        let seed = v3(false, case_keys(), &["441", "440"]).transaction_seed();
        // App, onset, NoSymptom, keys (same order as the nonce), regions, glued together.
        assert_eq!(
            seed,
            "jp.go.mhlw.covid19radar2021-12-19T00:00:00.000+09:00NoSymptom\
             abcAAAAAAAAAAAAAAAAAAA==.2733264.144.1,\
             AbdAAAAAAAAAAAAAAAAAAA==.2733408.0.1,\
             ABDAAAAAAAAAAAAAAAAAAA==.2733120.144.1\
             440,441"
        );
        assert!(!seed.contains("12345678"));
    }

    #[test]
    fn v2_texts_leave_out_onset_symptom_and_report_type() {
        let source = ClearTextSource::V2 {
            app_package_name: APP.to_owned(),
            keys: case_keys(),
            regions: vec!["440".to_owned()],
            verification_payload: "87654321".to_owned(),
        };
        // Keys as `keyData.rollingStartNumber.rollingPeriod`, culture order as in v3.
        assert_eq!(
            source.nonce_text(),
            "jp.go.mhlw.covid19radar|\
             abcAAAAAAAAAAAAAAAAAAA==.2733264.144,\
             AbdAAAAAAAAAAAAAAAAAAA==.2733408.0,\
             ABDAAAAAAAAAAAAAAAAAAA==.2733120.144\
             |440|87654321"
        );
        assert_eq!(
            source.transaction_seed(),
            "jp.go.mhlw.covid19radar\
             abcAAAAAAAAAAAAAAAAAAA==.2733264.144,\
             AbdAAAAAAAAAAAAAAAAAAA==.2733408.0,\
             ABDAAAAAAAAAAAAAAAAAAA==.2733120.144\
             440"
        );
    }

    fn event_logs() -> ClearTextSource {
        ClearTextSource::EventLog {
            idempotency_key: "0f8fad5b-d9cb-469f-a165-70867728950e".to_owned(),
            app_package_name: APP.to_owned(),
            logs: vec![
                // Submitted order is kept (no sorting), and unconsented logs are included.
                EventLogText {
                    has_consent: true,
                    epoch: 1640995200,
                    kind: "ExposureNotification".to_owned(),
                    subtype: "ExposureNotified".to_owned(),
                    content_json: compact_json("{ \"notifiedTimeInMillis\" : 1640995200000 }"),
                },
                EventLogText {
                    has_consent: false,
                    epoch: 1640908800,
                    kind: "survey".to_owned(),
                    subtype: "survey".to_owned(),
                    content_json: compact_json("\"a string stays quoted\""),
                },
            ],
        }
    }

    #[test]
    fn event_log_nonce_text_renders_bools_like_dotnet_and_keeps_order() {
        assert_eq!(
            event_logs().nonce_text(),
            "0f8fad5b-d9cb-469f-a165-70867728950e|jp.go.mhlw.covid19radar|\
             True.1640995200.ExposureNotification.ExposureNotified.{\"notifiedTimeInMillis\":1640995200000},\
             False.1640908800.survey.survey.\"a string stays quoted\""
        );
    }

    #[test]
    fn event_log_transaction_seed_leaves_out_the_idempotency_key() {
        assert_eq!(
            event_logs().transaction_seed(),
            "jp.go.mhlw.covid19radar|\
             True.1640995200.ExposureNotification.ExposureNotified.{\"notifiedTimeInMillis\":1640995200000},\
             False.1640908800.survey.survey.\"a string stays quoted\""
        );
    }

    #[test]
    fn compact_json_removes_only_insignificant_whitespace() {
        let raw = "{\n  \"q1\" : 1,\r\n\t\"q2\": null, \"start_date\": 1640995200,\n  \
                   \"note\": \"two  spaces, a \\\"quote\\\" and \\\\\",\n  \
                   \"exposure_data\": { \"daily_summaries\": [ { \"DateMillisSinceEpoch\": 1649289600000, \"ExposureDetected\": 1 } ] }\n}";
        // Key order kept; spaces inside the string and its escapes kept; everything else gone.
        assert_eq!(
            compact_json(raw),
            "{\"q1\":1,\"q2\":null,\"start_date\":1640995200,\
             \"note\":\"two  spaces, a \\\"quote\\\" and \\\\\",\
             \"exposure_data\":{\"daily_summaries\":[{\"DateMillisSinceEpoch\":1649289600000,\"ExposureDetected\":1}]}}"
        );
        // Non-ASCII text and number spellings are left as they are.
        assert_eq!(
            compact_json("[ \"日本 語\" , 1.50 , -0 ]"),
            "[\"日本 語\",1.50,-0]"
        );
        assert_eq!(compact_json("{\"a\":1}"), "{\"a\":1}");
    }
}
