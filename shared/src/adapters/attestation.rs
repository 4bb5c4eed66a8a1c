//! Device attestation adapters: COCOA's per-platform dispatch (reference/cocoa-api.md §5.1) over
//! SafetyNet (Android) and DeviceCheck (iOS), each switched on or off by configuration.

use std::time::SystemTime;

use crate::adapters::devicecheck::{self, DeviceCheckClient, DeviceCheckSetupError};
use crate::adapters::safetynet::{SafetyNetRootsError, SafetyNetVerifier};
use crate::config::{ConfigError, Env};
use crate::domain::attestation::AttestationSubject;
use crate::ports::{AttestationError, DeviceAttestation};

/// Accepts every device, as COCOA did with `*DeviceValidationEnabled=false`. The SafetyNet and
/// DeviceCheck verifiers replace it per platform when they are switched on.
#[derive(Debug, Default, Clone, Copy)]
pub struct PermitAllDevices;

impl DeviceAttestation for PermitAllDevices {
    async fn attest(&self, _subject: &AttestationSubject) -> Result<(), AttestationError> {
        Ok(())
    }
}

/// COCOA's device verification: the `platform` must be exactly `"android"` or `"ios"` (anything
/// else fails, even with both verifiers off, as COCOA's dispatch found no app configuration for
/// it); a platform whose verifier is `None` (disabled) passes; otherwise its verifier decides.
#[derive(Debug, Default)]
pub struct PlatformAttestation {
    /// SafetyNet against the request's nonce text; `None`: Android attestation disabled.
    pub android: Option<SafetyNetVerifier>,
    /// DeviceCheck with the request's transaction seed; `None`: iOS attestation disabled.
    pub ios: Option<DeviceCheckClient>,
}

impl DeviceAttestation for PlatformAttestation {
    async fn attest(&self, subject: &AttestationSubject) -> Result<(), AttestationError> {
        match subject.platform.as_str() {
            "android" => {
                let Some(verifier) = &self.android else {
                    return Ok(());
                };
                verifier
                    .verify(
                        &subject.payload,
                        &subject.clear_text.nonce_text(),
                        SystemTime::now(),
                    )
                    .map_err(|error| {
                        // The error names the failed check only (no payload, no clear text).
                        tracing::info!(platform = "android", reason = %error, "device attestation failed");
                        AttestationError
                    })
            }
            "ios" => {
                let Some(client) = &self.ios else {
                    return Ok(());
                };
                client
                    .validate_device_token(&subject.payload, &subject.clear_text.transaction_seed())
                    .await
                    .map_err(|error| {
                        tracing::info!(platform = "ios", reason = %error, "device attestation failed");
                        AttestationError
                    })
            }
            _ => {
                tracing::info!(platform = "unsupported", "device attestation failed");
                Err(AttestationError)
            }
        }
    }
}

/// Why `PlatformAttestation::from_config` could not build a verifier.
#[derive(Debug, thiserror::Error)]
pub enum AttestationSetupError {
    #[error("SafetyNet roots: {0}")]
    SafetyNetRoots(#[from] SafetyNetRootsError),
    #[error("DeviceCheck: {0}")]
    DeviceCheck(#[from] DeviceCheckSetupError),
}

/// The DeviceCheck settings, present when iOS attestation is on. `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceCheckConfig {
    pub url: String,
    pub key_id: String,
    pub team_id: String,
    /// The `.p8` key: PEM, or base64 DER. Secret: never logged.
    pub private_key: String,
}

impl std::fmt::Debug for DeviceCheckConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCheckConfig")
            .field("url", &self.url)
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

/// Which platforms are attested, and how (COCOA's `AndroidDeviceValidationEnabled`,
/// `iOSDeviceValidationEnabled`, `iOSDeviceCheck*`). Both are off unless switched on, as in
/// COCOA's example settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttestationConfig {
    /// `None`: Android attestation off.
    pub android: Option<AndroidConfig>,
    /// `None`: iOS attestation off.
    pub ios: Option<DeviceCheckConfig>,
}

/// The SafetyNet settings, present when Android attestation is on.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AndroidConfig {
    /// PEM roots replacing the bundled Google roots; `None`: the bundled ones.
    pub roots_pem: Option<String>,
}

impl AttestationConfig {
    /// Every variable `from_env` reads.
    pub const VARIABLES: &'static [&'static str] = VARIABLES;

    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let android = flag(env, "ANDROID_ATTESTATION_ENABLED")?.then(|| AndroidConfig {
            roots_pem: optional(env, "SAFETYNET_ROOTS_PEM"),
        });
        let ios = if flag(env, "IOS_ATTESTATION_ENABLED")? {
            Some(DeviceCheckConfig {
                url: optional(env, "DEVICECHECK_URL")
                    .unwrap_or_else(|| devicecheck::APPLE_URL.to_owned()),
                key_id: required(env, "DEVICECHECK_KEY_ID")?,
                team_id: required(env, "DEVICECHECK_TEAM_ID")?,
                private_key: required(env, "DEVICECHECK_PRIVATE_KEY")?,
            })
        } else {
            None
        };
        Ok(Self { android, ios })
    }
}

/// Every variable `AttestationConfig::from_env` reads (for the deployment declaration).
pub const VARIABLES: &[&str] = &[
    "ANDROID_ATTESTATION_ENABLED",
    "SAFETYNET_ROOTS_PEM",
    "IOS_ATTESTATION_ENABLED",
    "DEVICECHECK_URL",
    "DEVICECHECK_KEY_ID",
    "DEVICECHECK_TEAM_ID",
    "DEVICECHECK_PRIVATE_KEY",
];

impl PlatformAttestation {
    /// Builds the verifiers the configuration switches on (at cold start).
    pub fn from_config(config: &AttestationConfig) -> Result<Self, AttestationSetupError> {
        let android = match &config.android {
            None => None,
            Some(AndroidConfig { roots_pem: None }) => {
                Some(SafetyNetVerifier::with_google_roots()?)
            }
            Some(AndroidConfig {
                roots_pem: Some(pem),
            }) => Some(SafetyNetVerifier::with_roots_pem(pem.as_bytes())?),
        };
        let ios = match &config.ios {
            None => None,
            Some(ios) => Some(DeviceCheckClient::new(
                ios.url.clone(),
                ios.key_id.clone(),
                ios.team_id.clone(),
                &ios.private_key,
            )?),
        };
        Ok(Self { android, ios })
    }
}

// `Env`'s own readers are private to `config`; these apply the same rule (trimmed, empty = unset).
fn optional<F: Fn(&str) -> Option<String>>(env: &Env<F>, name: &'static str) -> Option<String> {
    (env.0)(name)
        .map(|value| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn required<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
) -> Result<String, ConfigError> {
    optional(env, name).ok_or(ConfigError::Missing(name))
}

/// A boolean switch, off when unset.
fn flag<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    name: &'static str,
) -> Result<bool, ConfigError> {
    match optional(env, name)
        .map(|v| v.to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false" | "0" | "no" | "off") => Ok(false),
        Some("true" | "1" | "yes" | "on") => Ok(true),
        Some(_) => Err(ConfigError::Invalid {
            name,
            expected: "true or false",
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use base64::Engine as _;
    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};

    use super::*;
    use crate::domain::attestation::ClearTextSource;

    fn env(pairs: &[(&str, &str)]) -> Env<impl Fn(&str) -> Option<String>> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Env(move |name: &str| map.get(name).cloned())
    }

    fn subject(platform: &str) -> AttestationSubject {
        AttestationSubject {
            platform: platform.to_owned(),
            payload: "ATTESTATION-PAYLOAD-not-a-jws".to_owned(),
            clear_text: ClearTextSource::V2 {
                app_package_name: "jp.go.mhlw.covid19radar".to_owned(),
                keys: Vec::new(),
                regions: vec!["440".to_owned()],
                verification_payload: "12345678".to_owned(),
            },
        }
    }

    fn test_key_base64() -> String {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .expect("key");
        base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref())
    }

    #[tokio::test]
    async fn disabled_platforms_pass_and_unknown_platforms_fail() {
        let attestation = PlatformAttestation::default();
        assert_eq!(attestation.attest(&subject("android")).await, Ok(()));
        assert_eq!(attestation.attest(&subject("ios")).await, Ok(()));
        // Exact, case-sensitive names only, as COCOA's dispatch.
        for platform in ["Android", "IOS", "windows", ""] {
            assert_eq!(
                attestation.attest(&subject(platform)).await,
                Err(AttestationError),
                "{platform}"
            );
        }
    }

    #[tokio::test]
    async fn an_enabled_platform_is_verified() {
        let attestation = PlatformAttestation::from_config(&AttestationConfig {
            android: Some(AndroidConfig::default()),
            ios: Some(DeviceCheckConfig {
                // Nothing listens on port 9 of the loopback: DeviceCheck is unavailable.
                url: "http://127.0.0.1:9/v1/validate_device_token".to_owned(),
                key_id: "k".to_owned(),
                team_id: "t".to_owned(),
                private_key: test_key_base64(),
            }),
        })
        .expect("verifiers");
        // A payload that is no SafetyNet JWS fails on Android, and iOS fails closed.
        assert_eq!(
            attestation.attest(&subject("android")).await,
            Err(AttestationError)
        );
        assert_eq!(
            attestation.attest(&subject("ios")).await,
            Err(AttestationError)
        );
        // Android on, iOS off: only Android is checked.
        let android_only = PlatformAttestation {
            ios: None,
            ..attestation
        };
        assert_eq!(android_only.attest(&subject("ios")).await, Ok(()));
    }

    #[test]
    fn both_platforms_are_off_by_default() {
        assert_eq!(
            AttestationConfig::from_env(&env(&[])),
            Ok(AttestationConfig::default())
        );
        let verifiers =
            PlatformAttestation::from_config(&AttestationConfig::default()).expect("none");
        assert!(verifiers.android.is_none() && verifiers.ios.is_none());
    }

    #[test]
    fn ios_needs_its_key_settings_and_defaults_to_apple() {
        assert_eq!(
            AttestationConfig::from_env(&env(&[("IOS_ATTESTATION_ENABLED", "true")])),
            Err(ConfigError::Missing("DEVICECHECK_KEY_ID"))
        );
        let config = AttestationConfig::from_env(&env(&[
            ("IOS_ATTESTATION_ENABLED", "TRUE"),
            ("DEVICECHECK_KEY_ID", "KEY123"),
            ("DEVICECHECK_TEAM_ID", "TEAM456"),
            ("DEVICECHECK_PRIVATE_KEY", "c2VjcmV0"),
        ]))
        .expect("config");
        let ios = config.ios.clone().expect("ios on");
        assert_eq!(ios.url, devicecheck::APPLE_URL);
        assert!(config.android.is_none());
        // The key never shows in Debug output.
        assert!(!format!("{config:?}").contains("c2VjcmV0"));
        // A key that is no P-256 PKCS#8 key fails at cold start, not per request.
        assert!(matches!(
            PlatformAttestation::from_config(&config),
            Err(AttestationSetupError::DeviceCheck(
                DeviceCheckSetupError::PrivateKey
            ))
        ));
    }

    #[test]
    fn android_uses_the_bundled_roots_unless_given_others() {
        let config = AttestationConfig::from_env(&env(&[("ANDROID_ATTESTATION_ENABLED", "1")]))
            .expect("config");
        assert_eq!(config.android, Some(AndroidConfig { roots_pem: None }));
        assert!(
            PlatformAttestation::from_config(&config)
                .expect("bundled roots")
                .android
                .is_some()
        );
        let config = AttestationConfig::from_env(&env(&[
            ("ANDROID_ATTESTATION_ENABLED", "true"),
            ("SAFETYNET_ROOTS_PEM", "not a certificate"),
        ]))
        .expect("config");
        assert!(matches!(
            PlatformAttestation::from_config(&config),
            Err(AttestationSetupError::SafetyNetRoots(_))
        ));
        assert!(matches!(
            AttestationConfig::from_env(&env(&[("ANDROID_ATTESTATION_ENABLED", "maybe")])),
            Err(ConfigError::Invalid {
                name: "ANDROID_ATTESTATION_ENABLED",
                ..
            })
        ));
    }

    #[test]
    fn reads_only_the_variables_it_lists() {
        let asked = RefCell::new(Vec::<String>::new());
        let env = Env(|name: &str| {
            asked.borrow_mut().push(name.to_owned());
            match name {
                "ANDROID_ATTESTATION_ENABLED" | "IOS_ATTESTATION_ENABLED" => {
                    Some("true".to_owned())
                }
                _ => Some("x".to_owned()),
            }
        });
        AttestationConfig::from_env(&env).expect("config");
        let mut asked = asked.into_inner();
        asked.sort();
        asked.dedup();
        let mut listed: Vec<String> = VARIABLES.iter().map(|s| (*s).to_owned()).collect();
        listed.sort();
        assert_eq!(asked, listed);
        assert_eq!(AttestationConfig::VARIABLES, VARIABLES);
    }
}
