//! Apple DeviceCheck's `validate_device_token`, as COCOA's server called it
//! (reference/cocoa-api.md §5.3): `POST {url}` with an ES256 JWT from the developer's DeviceCheck
//! key (`Authorization: Bearer …`, header `{"alg":"ES256","kid":<key id>}`, claims
//! `{"iss":<team id>,"iat":<unix seconds>}`) and the JSON body
//! `{"device_token", "transaction_id", "timestamp"}`. Apple answers 200 for a genuine device
//! token, and 400 (or another status) otherwise.
//!
//! The `transaction_id` is base64(SHA-256(UTF-8 transaction seed)): the request's clear text
//! without separators, so the same device token cannot vouch for a different submission.
//!
//! The device token, the JWT and the seed are never logged nor put into an error.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use rustls_pki_types::PrivatePkcs8KeyDer;
use rustls_pki_types::pem::PemObject;

/// Apple's production endpoint (COCOA's; the development one was commented out).
pub const APPLE_URL: &str = "https://api.devicecheck.apple.com/v1/validate_device_token";

/// How long Apple may take before the attestation counts as failed.
pub const TIMEOUT: Duration = Duration::from_secs(3);

/// Why a DeviceCheck client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DeviceCheckSetupError {
    /// Not a P-256 PKCS#8 key, as PEM (Apple's `.p8`) or as base64 DER (COCOA's setting).
    #[error("DeviceCheck private key is not a P-256 PKCS#8 key (PEM or base64 DER)")]
    PrivateKey,
    #[error("DeviceCheck HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

/// Why a device token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DeviceCheckError {
    /// Apple answered, and not 200 (400: the token is not a genuine device's).
    #[error("DeviceCheck refused the device token (status {status})")]
    Refused { status: u16 },
    /// Apple could not be asked or did not answer in time.
    #[error("DeviceCheck unavailable: {reason}")]
    Unavailable { reason: &'static str },
    /// The JWT could not be signed.
    #[error("DeviceCheck JWT could not be signed")]
    Signing,
}

/// A client of `validate_device_token`, holding the developer's DeviceCheck signing key.
pub struct DeviceCheckClient {
    http: reqwest::Client,
    url: String,
    key_id: String,
    team_id: String,
    key: EcdsaKeyPair,
    rng: SystemRandom,
}

impl fmt::Debug for DeviceCheckClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCheckClient")
            .field("url", &self.url)
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .finish_non_exhaustive()
    }
}

impl DeviceCheckClient {
    /// `private_key` is the `.p8` key Apple issued: its PEM text, or the base64 of its DER (the
    /// PEM body alone, as COCOA's `iOSDeviceCheckPrivateKey` held it).
    pub fn new(
        url: impl Into<String>,
        key_id: impl Into<String>,
        team_id: impl Into<String>,
        private_key: &str,
    ) -> Result<Self, DeviceCheckSetupError> {
        let rng = SystemRandom::new();
        let der = pkcs8_der(private_key).ok_or(DeviceCheckSetupError::PrivateKey)?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &rng)
            .map_err(|_| DeviceCheckSetupError::PrivateKey)?;
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(TIMEOUT.min(Duration::from_secs(1)))
            .build()
            .map_err(DeviceCheckSetupError::Client)?;
        Ok(Self {
            http,
            url: url.into(),
            key_id: key_id.into(),
            team_id: team_id.into(),
            key,
            rng,
        })
    }

    /// Asks Apple whether `device_token` is a genuine device's token for this transaction.
    pub async fn validate_device_token(
        &self,
        device_token: &str,
        transaction_seed: &str,
    ) -> Result<(), DeviceCheckError> {
        let now = SystemTime::now();
        let body = serde_json::json!({
            "device_token": device_token,
            "transaction_id": transaction_id(transaction_seed),
            "timestamp": unix_millis(now),
        });
        let response = self
            .http
            .post(&self.url)
            .bearer_auth(self.bearer_token(now)?)
            .json(&body)
            .send()
            .await
            .map_err(|error| DeviceCheckError::Unavailable {
                reason: if error.is_timeout() {
                    "timeout"
                } else {
                    "request failed"
                },
            })?;
        match response.status().as_u16() {
            200 => Ok(()),
            status => Err(DeviceCheckError::Refused { status }),
        }
    }

    /// The ES256 JWT Apple authenticates the developer by, issued at `now`.
    fn bearer_token(&self, now: SystemTime) -> Result<String, DeviceCheckError> {
        let header = serde_json::json!({ "alg": "ES256", "kid": self.key_id });
        let claims = serde_json::json!({ "iss": self.team_id, "iat": unix_seconds(now) });
        let signed = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(&self.rng, signed.as_bytes())
            .map_err(|_| DeviceCheckError::Signing)?;
        Ok(format!(
            "{signed}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        ))
    }
}

/// The `transaction_id` COCOA sent for a transaction seed: base64(SHA-256(UTF-8 seed)).
pub fn transaction_id(transaction_seed: &str) -> String {
    STANDARD.encode(digest(&SHA256, transaction_seed.as_bytes()))
}

fn unix_seconds(now: SystemTime) -> u64 {
    now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()
}

fn unix_millis(now: SystemTime) -> u64 {
    u64::try_from(
        now.duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis(),
    )
    .unwrap_or(u64::MAX)
}

/// The PKCS#8 DER of a private key given as PEM or as base64 DER (whitespace ignored).
fn pkcs8_der(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.contains("-----BEGIN") {
        return PrivatePkcs8KeyDer::from_pem_slice(text.as_bytes())
            .ok()
            .map(|key| key.secret_pkcs8_der().to_vec());
    }
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    STANDARD.decode(compact).ok()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpListener;
    use std::sync::mpsc;

    use ring::signature::{ECDSA_P256_SHA256_FIXED, KeyPair, UnparsedPublicKey};
    use serde_json::Value;

    use super::*;

    fn test_key() -> (Vec<u8>, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .expect("key")
            .as_ref()
            .to_vec();
        let public = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .expect("key")
            .public_key()
            .as_ref()
            .to_vec();
        (pkcs8, public)
    }

    fn pem(der: &[u8]) -> String {
        let body = STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).expect("ascii"))
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    }

    /// Decodes a JWT part as JSON.
    fn part(jwt: &str, index: usize) -> Value {
        let text = jwt.split('.').nth(index).expect("part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).expect("base64url")).expect("json")
    }

    #[test]
    fn the_jwt_is_es256_with_kid_iss_and_iat_and_verifies() {
        let (pkcs8, public) = test_key();
        let client =
            DeviceCheckClient::new(APPLE_URL, "KEY123", "TEAM456", &pem(&pkcs8)).expect("client");
        let now = UNIX_EPOCH + Duration::from_secs(1_717_200_000);
        let jwt = client.bearer_token(now).expect("jwt");
        assert_eq!(
            part(&jwt, 0),
            serde_json::json!({"alg": "ES256", "kid": "KEY123"})
        );
        assert_eq!(
            part(&jwt, 1),
            serde_json::json!({"iss": "TEAM456", "iat": 1_717_200_000})
        );
        let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
            )
            .expect("the signature verifies with the key's public half");
    }

    #[test]
    fn the_private_key_is_accepted_as_pem_or_base64_der_only() {
        let (pkcs8, _) = test_key();
        assert!(DeviceCheckClient::new(APPLE_URL, "k", "t", &pem(&pkcs8)).is_ok());
        assert!(DeviceCheckClient::new(APPLE_URL, "k", "t", &STANDARD.encode(&pkcs8)).is_ok());
        // The PEM body split over lines, as pasted from the .p8 file.
        let body = pem(&pkcs8)
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(DeviceCheckClient::new(APPLE_URL, "k", "t", &body).is_ok());
        for bad in [
            "",
            "not base64!",
            "AAAA",
            "-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----",
        ] {
            let error = DeviceCheckClient::new(APPLE_URL, "k", "t", bad).expect_err("bad key");
            assert!(matches!(error, DeviceCheckSetupError::PrivateKey));
        }
    }

    #[test]
    fn the_transaction_id_is_base64_of_sha256_of_the_seed() {
        // SHA-256("abc") = ba7816bf…f20015ad; its standard base64:
        assert_eq!(
            transaction_id("abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
    }

    /// One request, as the local server received it.
    struct Received {
        request_line: String,
        /// Names lower-cased.
        headers: Vec<(String, String)>,
        body: String,
    }

    /// A local server on a free port that answers one request with `status`; returns its URL and
    /// what it received.
    fn serve_once(status: u16) -> (String, mpsc::Receiver<Received>) {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!(
            "http://{}/v1/validate_device_token",
            listener.local_addr().expect("address")
        );
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            reader.read_line(&mut request_line).expect("request line");
            let mut headers = Vec::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).expect("header");
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':') {
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
            }
            let length: usize = headers
                .iter()
                .find(|(name, _)| name == "content-length")
                .and_then(|(_, value)| value.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; length];
            reader.read_exact(&mut body).expect("body");
            let mut stream = stream;
            write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .expect("answer");
            let _ = sender.send(Received {
                request_line: request_line.trim_end().to_owned(),
                headers,
                body: String::from_utf8(body).expect("utf-8"),
            });
        });
        (url, receiver)
    }

    #[tokio::test]
    async fn a_validation_posts_the_jwt_and_the_transaction_and_passes_on_200() {
        let (pkcs8, public) = test_key();
        let (url, received) = serve_once(200);
        let client = DeviceCheckClient::new(url, "KEY123", "TEAM456", &STANDARD.encode(&pkcs8))
            .expect("client");
        let before = unix_millis(SystemTime::now());
        assert_eq!(
            client
                .validate_device_token("DEVICE-TOKEN-BASE64", "seed text")
                .await,
            Ok(())
        );
        let Received {
            request_line,
            headers,
            body,
        } = received.recv().expect("a request");
        assert_eq!(request_line, "POST /v1/validate_device_token HTTP/1.1");
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with("application/json"));
        let jwt = header("authorization")
            .strip_prefix("Bearer ")
            .expect("bearer")
            .to_owned();
        assert_eq!(part(&jwt, 0)["kid"], "KEY123");
        assert_eq!(part(&jwt, 1)["iss"], "TEAM456");
        let (signed, signature) = jwt.rsplit_once('.').expect("parts");
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &public)
            .verify(
                signed.as_bytes(),
                &URL_SAFE_NO_PAD.decode(signature).expect("base64url"),
            )
            .expect("signature");
        let body: Value = serde_json::from_str(&body).expect("json body");
        assert_eq!(body["device_token"], "DEVICE-TOKEN-BASE64");
        assert_eq!(body["transaction_id"], transaction_id("seed text"));
        let timestamp = body["timestamp"].as_u64().expect("unix ms");
        assert!(timestamp >= before && timestamp < before + 60_000);
    }

    #[tokio::test]
    async fn any_other_status_refuses_and_no_server_is_unavailable() {
        let (pkcs8, _) = test_key();
        let (url, _received) = serve_once(400);
        let client = DeviceCheckClient::new(url, "k", "t", &pem(&pkcs8)).expect("client");
        assert_eq!(
            client
                .validate_device_token("ATTESTATION-PAYLOAD-x", "seed")
                .await,
            Err(DeviceCheckError::Refused { status: 400 })
        );
        // A port nobody listens on (bound, then closed).
        let port = TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("address")
            .port();
        let client =
            DeviceCheckClient::new(format!("http://127.0.0.1:{port}/"), "k", "t", &pem(&pkcs8))
                .expect("client");
        let error = client
            .validate_device_token("ATTESTATION-PAYLOAD-x", "seed")
            .await
            .expect_err("no server");
        assert!(matches!(error, DeviceCheckError::Unavailable { .. }));
        assert!(!format!("{error} {error:?}").contains("ATTESTATION-PAYLOAD"));
    }
}
