//! Typed configuration, read once from the environment at cold start. The variable names are the
//! ones infra/stack.json declares for each function (a test keeps them in step).

use std::time::Duration;

use crate::domain::diagnosis::{DayWindow, SubmissionRules};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is not set")]
    Missing(&'static str),
    #[error("environment variable {name} is invalid: {expected}")]
    Invalid {
        name: &'static str,
        expected: &'static str,
    },
}

/// Reads variables through `lookup`, so tests need not touch the process environment.
pub struct Env<F: Fn(&str) -> Option<String>>(pub F);

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn optional(&self, name: &'static str) -> Option<String> {
        (self.0)(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    fn required(&self, name: &'static str) -> Result<String, ConfigError> {
        self.optional(name).ok_or(ConfigError::Missing(name))
    }

    fn window(&self, name: &'static str, default: DayWindow) -> Result<DayWindow, ConfigError> {
        match self.optional(name) {
            None => Ok(default),
            Some(text) => DayWindow::parse(&text).ok_or(ConfigError::Invalid {
                name,
                expected: "FROM..TO, e.g. -3..10",
            }),
        }
    }
}

/// The process environment.
pub fn process_env() -> Env<impl Fn(&str) -> Option<String>> {
    Env(|name: &str| std::env::var(name).ok())
}

/// How to reach HER-SYS and read its answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HersysConfig {
    pub url: String,
    pub parameter_name: String,
    /// Sent as `Ocp-Apim-Subscription-Key` when set. Never logged.
    pub api_key: Option<String>,
    /// HER-SYS `result` code → HTTP status (200 proceeds; 4xx refuses; others are failures).
    pub result_status: Vec<(String, u16)>,
    pub timeout: Duration,
    /// Mutual TLS: client certificate chain and private key, PEM. Never logged.
    pub client_identity_pem: Option<String>,
    /// Extra CA certificates (PEM) to trust for HER-SYS's server certificate.
    pub ca_pem: Option<String>,
}

impl HersysConfig {
    pub fn status_of(&self, result: &str) -> Option<u16> {
        self.result_status
            .iter()
            .find(|(code, _)| code == result)
            .map(|(_, status)| *status)
    }

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        const TABLE: &str = "RESULT=STATUS pairs separated by commas, e.g. VALID=200,INVALID=406";
        let table = env.required("HERSYS_RESULT_STATUS")?;
        let mut result_status = Vec::new();
        for pair in table.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (code, status) = pair.rsplit_once('=').ok_or(ConfigError::Invalid {
                name: "HERSYS_RESULT_STATUS",
                expected: TABLE,
            })?;
            let status = status
                .trim()
                .parse::<u16>()
                .ok()
                .filter(|s| (200..600).contains(s))
                .ok_or(ConfigError::Invalid {
                    name: "HERSYS_RESULT_STATUS",
                    expected: TABLE,
                })?;
            result_status.push((code.trim().to_owned(), status));
        }
        let timeout_ms = match env.optional("HERSYS_TIMEOUT_MS") {
            None => 3000,
            Some(ms) => ms
                .parse()
                .ok()
                .filter(|ms| *ms > 0)
                .ok_or(ConfigError::Invalid {
                    name: "HERSYS_TIMEOUT_MS",
                    expected: "a positive number of milliseconds",
                })?,
        };
        Ok(Self {
            url: env.required("HERSYS_URL")?,
            parameter_name: env.required("HERSYS_PARAMETER_NAME")?,
            api_key: env.optional("HERSYS_API_KEY"),
            result_status,
            timeout: Duration::from_millis(timeout_ms),
            client_identity_pem: env.optional("HERSYS_CLIENT_IDENTITY_PEM"),
            ca_pem: env.optional("HERSYS_CA_PEM"),
        })
    }
}

/// `submit-keys`' configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubmitKeysConfig {
    pub keys_table: String,
    pub rules: SubmissionRules,
    /// The function that alone talks to HER-SYS.
    pub verifier_function: String,
    /// The KMS HMAC key verification tokens carry a MAC from.
    pub mac_key_id: String,
    pub used_tokens_table: String,
}

impl SubmitKeysConfig {
    /// The variables the deployment declares for `submit-keys` (infra/stack.json; a test checks).
    pub const DECLARED: &'static [&'static str] = &[
        "KEYS_TABLE",
        "SUPPORTED_REGIONS",
        "SYMPTOM_ONSET_WINDOW_DAYS",
        "TEST_DATE_WINDOW_DAYS",
        "VERIFIER_FUNCTION_NAME",
        "MAC_KEY_ID",
        "USED_TOKENS_TABLE",
    ];
    pub const OPTIONAL: &'static [&'static str] = &[];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let supported_regions = regions(env)?;
        Ok(Self {
            keys_table: env.required("KEYS_TABLE")?,
            rules: SubmissionRules {
                supported_regions,
                symptom_onset_window: env
                    .window("SYMPTOM_ONSET_WINDOW_DAYS", DayWindow { from: -3, to: 10 })?,
                test_date_window: env
                    .window("TEST_DATE_WINDOW_DAYS", DayWindow { from: -3, to: 7 })?,
            },
            verifier_function: env.required("VERIFIER_FUNCTION_NAME")?,
            mac_key_id: env.required("MAC_KEY_ID")?,
            used_tokens_table: env.required("USED_TOKENS_TABLE")?,
        })
    }
}

/// `verify-processing-number`'s configuration: the only one holding HER-SYS's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    pub hersys: HersysConfig,
    pub mac_key_id: String,
}

impl VerifierConfig {
    pub const DECLARED: &'static [&'static str] = &[
        "HERSYS_URL",
        "HERSYS_PARAMETER_NAME",
        "HERSYS_RESULT_STATUS",
        "MAC_KEY_ID",
    ];
    /// Secrets and tuning an operator adds: API key, mutual-TLS identity, extra CA, timeout.
    pub const OPTIONAL: &'static [&'static str] = &[
        "HERSYS_API_KEY",
        "HERSYS_TIMEOUT_MS",
        "HERSYS_CLIENT_IDENTITY_PEM",
        "HERSYS_CA_PEM",
    ];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            hersys: HersysConfig::from_env(env)?,
            mac_key_id: env.required("MAC_KEY_ID")?,
        })
    }
}

/// `publish-exports`' configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishExportsConfig {
    pub keys_table: String,
    pub exports_table: String,
    pub bucket: String,
    pub signing_key_id: String,
    /// `SignatureInfo.verification_key_id` and `..._version` as registered with Google/Apple.
    pub verification_key_id: String,
    pub verification_key_version: String,
    pub settings: crate::export_run::ExportSettings,
}

impl PublishExportsConfig {
    pub const DECLARED: &'static [&'static str] = &[
        "KEYS_TABLE",
        "EXPORTS_TABLE",
        "EXPORT_BUCKET",
        "EXPORT_BASE_URL",
        "SIGNING_KEY_ID",
        "VERIFICATION_KEY_ID",
        "VERIFICATION_KEY_VERSION",
        "SUPPORTED_REGIONS",
        "MIN_KEYS_PER_RELEASE",
        "MAX_KEYS_PER_FILE",
    ];
    pub const OPTIONAL: &'static [&'static str] = &[
        "EXPORT_GRACE_SECONDS",
        "RELEASE_READS_IN_FLIGHT",
        "MAX_KEYS_PER_RUN",
    ];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let count = |name: &'static str, default: usize| -> Result<usize, ConfigError> {
            match env.optional(name) {
                None => Ok(default),
                Some(text) => {
                    text.parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(ConfigError::Invalid {
                            name,
                            expected: "a positive whole number",
                        })
                }
            }
        };
        let grace_seconds = match env.optional("EXPORT_GRACE_SECONDS") {
            None => 300,
            Some(text) => {
                text.parse::<i64>()
                    .ok()
                    .filter(|n| *n >= 60)
                    .ok_or(ConfigError::Invalid {
                        name: "EXPORT_GRACE_SECONDS",
                        expected: "seconds, at least 60",
                    })?
            }
        };
        Ok(Self {
            keys_table: env.required("KEYS_TABLE")?,
            exports_table: env.required("EXPORTS_TABLE")?,
            bucket: env.required("EXPORT_BUCKET")?,
            signing_key_id: env.required("SIGNING_KEY_ID")?,
            verification_key_id: env.required("VERIFICATION_KEY_ID")?,
            verification_key_version: env.required("VERIFICATION_KEY_VERSION")?,
            settings: crate::export_run::ExportSettings {
                regions: regions(env)?,
                min_keys_per_release: count("MIN_KEYS_PER_RELEASE", 1000)?,
                max_keys_per_file: count("MAX_KEYS_PER_FILE", 250_000)?,
                base_url: env
                    .required("EXPORT_BASE_URL")?
                    .trim_end_matches('/')
                    .to_owned(),
                grace_seconds,
                reads_in_flight: count(
                    "RELEASE_READS_IN_FLIGHT",
                    crate::export_run::RELEASE_READS_IN_FLIGHT,
                )?,
                max_keys_per_run: count("MAX_KEYS_PER_RUN", crate::export_run::MAX_KEYS_PER_RUN)?,
            },
        })
    }
}

/// `issue-log-id`'s configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssueLogIdConfig {
    pub log_ids_table: String,
    pub mac_key_id: String,
    /// COCOA's `InquiryLogApiKey`: `GET /api/inquirylog` requires it as `x-api-key`. Never logged.
    pub inquiry_log_api_key: String,
}

impl IssueLogIdConfig {
    pub const DECLARED: &'static [&'static str] =
        &["LOG_IDS_TABLE", "MAC_KEY_ID", "INQUIRY_LOG_API_KEY"];
    pub const OPTIONAL: &'static [&'static str] = &[];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        Ok(Self {
            log_ids_table: env.required("LOG_IDS_TABLE")?,
            mac_key_id: env.required("MAC_KEY_ID")?,
            inquiry_log_api_key: env.required("INQUIRY_LOG_API_KEY")?,
        })
    }
}

/// `accept-logs`' configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptLogsConfig {
    pub logs_table: String,
    pub log_ids_table: String,
    pub mac_key_id: String,
    /// The first path segment of COCOA's blob-style upload (the app's `logStorageContainerName`).
    pub log_container: String,
}

impl AcceptLogsConfig {
    pub const DECLARED: &'static [&'static str] =
        &["LOGS_TABLE", "LOG_IDS_TABLE", "MAC_KEY_ID", "LOG_CONTAINER"];
    pub const OPTIONAL: &'static [&'static str] = &[];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let log_container = env.required("LOG_CONTAINER")?;
        if !log_container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(ConfigError::Invalid {
                name: "LOG_CONTAINER",
                expected: "lower-case letters, digits and hyphens (an Azure container name)",
            });
        }
        Ok(Self {
            logs_table: env.required("LOGS_TABLE")?,
            log_ids_table: env.required("LOG_IDS_TABLE")?,
            mac_key_id: env.required("MAC_KEY_ID")?,
            log_container,
        })
    }
}

/// `accept-event-logs`' configuration (device attestation is `AttestationConfig`'s).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptEventLogsConfig {
    pub event_logs_table: String,
    /// Survey answers are kept until then (unix seconds).
    pub survey_retention_until: i64,
}

impl AcceptEventLogsConfig {
    pub const DECLARED: &'static [&'static str] = &["EVENT_LOGS_TABLE", "SURVEY_RETENTION_UNTIL"];
    pub const OPTIONAL: &'static [&'static str] = &[];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let until = env.required("SURVEY_RETENTION_UNTIL")?;
        let until =
            time::OffsetDateTime::parse(&until, &time::format_description::well_known::Rfc3339)
                .map_err(|_| ConfigError::Invalid {
                    name: "SURVEY_RETENTION_UNTIL",
                    expected: "an RFC 3339 time, e.g. 2025-02-28T23:59:59+09:00",
                })?;
        Ok(Self {
            event_logs_table: env.required("EVENT_LOGS_TABLE")?,
            survey_retention_until: until.unix_timestamp(),
        })
    }
}

/// `enforce-retention`'s configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnforceRetentionConfig {
    /// Every table whose items carry `expires_at`.
    pub tables: Vec<String>,
    pub export_bucket: String,
    pub export_prefix: String,
    pub export_retention_seconds: i64,
}

impl EnforceRetentionConfig {
    pub const DECLARED: &'static [&'static str] = &[
        "RETENTION_TABLES",
        "EXPORT_BUCKET",
        "EXPORT_PREFIX",
        "EXPORT_RETENTION_DAYS",
    ];
    pub const OPTIONAL: &'static [&'static str] = &[];

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let tables: Vec<String> = env
            .required("RETENTION_TABLES")?
            .split(',')
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect();
        let days = env
            .required("EXPORT_RETENTION_DAYS")?
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=365).contains(d))
            .ok_or(ConfigError::Invalid {
                name: "EXPORT_RETENTION_DAYS",
                expected: "whole days, 1 to 365",
            })?;
        Ok(Self {
            tables,
            export_bucket: env.required("EXPORT_BUCKET")?,
            export_prefix: env.required("EXPORT_PREFIX")?,
            export_retention_seconds: days * 86_400,
        })
    }
}

/// `SUPPORTED_REGIONS` (default `440`), split as the app splits its own list.
fn regions<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Vec<String>, ConfigError> {
    let regions: Vec<String> = env
        .optional("SUPPORTED_REGIONS")
        .unwrap_or_else(|| "440".to_owned())
        .split([',', ';', ':'])
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    if regions.is_empty() {
        return Err(ConfigError::Invalid {
            name: "SUPPORTED_REGIONS",
            expected: "a comma-separated list of regions, e.g. 440",
        });
    }
    Ok(regions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    const BASE: &[(&str, &str)] = &[
        ("KEYS_TABLE", "keys"),
        ("VERIFIER_FUNCTION_NAME", "verify-processing-number"),
        ("MAC_KEY_ID", "mac-key"),
        ("USED_TOKENS_TABLE", "used-tokens"),
    ];
    const VERIFIER: &[(&str, &str)] = &[
        ("MAC_KEY_ID", "mac-key"),
        ("HERSYS_URL", "http://127.0.0.1:8090/verify"),
        ("HERSYS_PARAMETER_NAME", "processingNumber"),
        ("HERSYS_RESULT_STATUS", "VALID=200, INVALID_OR_EXPIRED=406"),
    ];

    #[test]
    fn defaults_follow_cocoa() {
        let config = SubmitKeysConfig::from_env(&env(BASE)).expect("config");
        assert_eq!(config.rules.supported_regions, ["440"]);
        assert_eq!(
            config.rules.symptom_onset_window,
            DayWindow { from: -3, to: 10 }
        );
        assert_eq!(config.rules.test_date_window, DayWindow { from: -3, to: 7 });
        let verifier = VerifierConfig::from_env(&env(VERIFIER)).expect("config");
        assert_eq!(verifier.hersys.status_of("INVALID_OR_EXPIRED"), Some(406));
        assert_eq!(verifier.hersys.status_of("OTHER"), None);
        assert_eq!(verifier.hersys.timeout, Duration::from_secs(3));
        assert_eq!(verifier.hersys.api_key, None);
    }

    #[test]
    fn missing_and_invalid_settings_name_the_variable() {
        let missing: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(k, _)| *k != "KEYS_TABLE")
            .collect();
        assert_eq!(
            SubmitKeysConfig::from_env(&env(&missing)).err(),
            Some(ConfigError::Missing("KEYS_TABLE"))
        );
        let mut bad = BASE.to_vec();
        bad.push(("SYMPTOM_ONSET_WINDOW_DAYS", "ten"));
        assert!(matches!(
            SubmitKeysConfig::from_env(&env(&bad)),
            Err(ConfigError::Invalid {
                name: "SYMPTOM_ONSET_WINDOW_DAYS",
                ..
            })
        ));
        let mut bad_table = VERIFIER.to_vec();
        bad_table[3] = ("HERSYS_RESULT_STATUS", "VALID=ok");
        assert!(VerifierConfig::from_env(&env(&bad_table)).is_err());
    }

    /// The variables a configuration asks the environment for, given `pairs`.
    fn asked<T>(
        pairs: &[(&str, &str)],
        load: impl Fn(&Env<&dyn Fn(&str) -> Option<String>>) -> T,
    ) -> Vec<String> {
        let asked = std::cell::RefCell::new(Vec::<String>::new());
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        let lookup = |name: &str| {
            asked.borrow_mut().push(name.to_owned());
            map.get(name).map(|v| (*v).to_owned())
        };
        load(&Env(&lookup));
        let mut asked = asked.into_inner();
        asked.sort();
        asked.dedup();
        asked
    }

    fn listed(declared: &[&str], optional: &[&str]) -> Vec<String> {
        let mut listed: Vec<String> = declared
            .iter()
            .chain(optional)
            .map(|s| (*s).to_owned())
            .collect();
        listed.sort();
        listed
    }

    #[test]
    fn configurations_read_only_the_variables_they_list() {
        assert_eq!(
            asked(BASE, |env| SubmitKeysConfig::from_env(env).is_ok()),
            listed(SubmitKeysConfig::DECLARED, SubmitKeysConfig::OPTIONAL)
        );
        assert_eq!(
            asked(VERIFIER, |env| VerifierConfig::from_env(env).is_ok()),
            listed(VerifierConfig::DECLARED, VerifierConfig::OPTIONAL)
        );
        let exporter: Vec<(&str, &str)> = PublishExportsConfig::DECLARED
            .iter()
            .map(|n| (*n, "1"))
            .collect();
        assert_eq!(
            asked(&exporter, |env| PublishExportsConfig::from_env(env).is_ok()),
            listed(
                PublishExportsConfig::DECLARED,
                PublishExportsConfig::OPTIONAL
            )
        );
    }

    #[test]
    fn log_side_configurations_read_only_the_variables_they_list() {
        fn all(
            declared: &[&'static str],
            value: &'static str,
        ) -> Vec<(&'static str, &'static str)> {
            declared.iter().map(|n| (*n, value)).collect()
        }
        assert_eq!(
            asked(&all(IssueLogIdConfig::DECLARED, "x"), |env| {
                IssueLogIdConfig::from_env(env).is_ok()
            }),
            listed(IssueLogIdConfig::DECLARED, IssueLogIdConfig::OPTIONAL)
        );
        assert_eq!(
            asked(&all(AcceptLogsConfig::DECLARED, "x"), |env| {
                AcceptLogsConfig::from_env(env).is_ok()
            }),
            listed(AcceptLogsConfig::DECLARED, AcceptLogsConfig::OPTIONAL)
        );
        let events = [
            ("EVENT_LOGS_TABLE", "events"),
            ("SURVEY_RETENTION_UNTIL", "2025-02-28T23:59:59+09:00"),
        ];
        let config = AcceptEventLogsConfig::from_env(&env(&events)).expect("config");
        assert_eq!(config.survey_retention_until, 1_740_754_799);
        assert_eq!(
            asked(&events, |env| AcceptEventLogsConfig::from_env(env).is_ok()),
            listed(
                AcceptEventLogsConfig::DECLARED,
                AcceptEventLogsConfig::OPTIONAL
            )
        );
        let retention = [
            ("RETENTION_TABLES", "a, b,,c"),
            ("EXPORT_BUCKET", "exports"),
            ("EXPORT_PREFIX", "c19r/"),
            ("EXPORT_RETENTION_DAYS", "14"),
        ];
        let config = EnforceRetentionConfig::from_env(&env(&retention)).expect("config");
        assert_eq!(config.tables, ["a", "b", "c"]);
        assert_eq!(config.export_retention_seconds, 14 * 86_400);
        assert_eq!(
            asked(&retention, |env| EnforceRetentionConfig::from_env(env)
                .is_ok()),
            listed(
                EnforceRetentionConfig::DECLARED,
                EnforceRetentionConfig::OPTIONAL
            )
        );
        let mut bad = all(AcceptLogsConfig::DECLARED, "x");
        bad[3] = ("LOG_CONTAINER", "Inquiry/Logs");
        assert!(matches!(
            AcceptLogsConfig::from_env(&env(&bad)),
            Err(ConfigError::Invalid {
                name: "LOG_CONTAINER",
                ..
            })
        ));
    }

    #[test]
    fn regions_split_like_the_app_splits_them() {
        let mut pairs = BASE.to_vec();
        pairs.push(("SUPPORTED_REGIONS", "440;441, 442"));
        let config = SubmitKeysConfig::from_env(&env(&pairs)).expect("config");
        assert_eq!(config.rules.supported_regions, ["440", "441", "442"]);
    }
}
