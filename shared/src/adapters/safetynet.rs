//! Offline verification of Android SafetyNet attestations, as COCOA's server did it
//! (reference/cocoa-api.md §5.2): the app sends the compact JWS Google's SafetyNet API returned,
//! and the request is genuine when
//!
//! 1. the certificates in the JWS header (`x5c`, leaf first) chain to a trusted root, every one
//!    valid now,
//! 2. the leaf certificate is valid for `attest.android.com`,
//! 3. the JWS signature verifies with the leaf's key (`RS256`, which Google uses, or `ES256`),
//! 4. the payload's `nonce` claim is the SHA-256 of the request's clear text (the app asked
//!    SafetyNet to sign exactly that).
//!
//! Like COCOA, the other claims (`apkPackageName`, `ctsProfileMatch`, `basicIntegrity`,
//! `timestampMs`) are not checked: COCOA's configuration never set the policy knobs for them.
//! Unlike COCOA's `X509Certificate2.Verify()`, revocation is not checked (no network calls).
//!
//! Errors name the check that failed and never carry the JWS payload or the clear text (which
//! holds the processing number); certificate details in them are Google's, not the user's.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::{DecodePaddingMode, general_purpose};
use ring::digest::{SHA256, digest};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, DnsName, ServerName, TrustAnchor, UnixTime};
use serde::Deserialize;
use webpki::{EndEntityCert, KeyUsage};

/// The name SafetyNet attestation certificates are issued for.
pub const ATTESTATION_HOST: &str = "attest.android.com";

/// The roots Google's attestation certificates chain to (shared/certs/README.md): GTS Root R1,
/// and GlobalSign Root CA (R1), which cross-signs it. GlobalSign Root CA - R2, the root of the
/// older chains, expired in December 2021 and is not bundled.
const GOOGLE_ROOTS_PEM: &[&[u8]] = &[
    include_bytes!("../../certs/GTS_Root_R1.pem"),
    include_bytes!("../../certs/GlobalSign_Root_CA.pem"),
];

/// Base64 as the JWS parts are written (URL alphabet, RFC 7515 leaves padding out; accepted
/// either way).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Base64 as `x5c` certificates and the `nonce` claim are written (standard alphabet).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a set of root certificates cannot be trusted for SafetyNet verification.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SafetyNetRootsError {
    #[error("no root certificate given")]
    NoRoots,
    #[error("root certificate PEM is unreadable")]
    Pem,
    /// Cannot happen (a unit test builds the verifier), but is not worth a panic.
    #[error("attest.android.com is not a valid DNS name")]
    HostName,
    #[error("root certificate {index} is not a usable trust anchor: {source}")]
    Anchor {
        index: usize,
        #[source]
        source: webpki::Error,
    },
}

/// Which check a SafetyNet attestation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SafetyNetError {
    /// Not a compact JWS of three base64url parts with a JSON header and payload.
    #[error("malformed JWS: {0}")]
    Malformed(&'static str),
    /// The header's `alg` is neither `RS256` nor `ES256`.
    #[error("unsupported JWS algorithm")]
    UnsupportedAlgorithm,
    /// The header has no `x5c` certificate.
    #[error("JWS header carries no certificate")]
    NoCertificate,
    /// An `x5c` entry is not base64 or not an X.509 certificate.
    #[error("x5c certificate {index} is unreadable")]
    UnreadableCertificate { index: usize },
    /// A certificate of the chain is expired or not yet valid.
    #[error("certificate not valid at this time: {0}")]
    NotValidNow(webpki::Error),
    /// The chain does not lead to a trusted root (or is otherwise invalid).
    #[error("certificate chain not trusted: {0}")]
    UntrustedChain(webpki::Error),
    /// The leaf certificate is not issued for `attest.android.com`.
    #[error("leaf certificate is not valid for attest.android.com: {0}")]
    WrongHost(webpki::Error),
    /// The JWS signature does not verify with the leaf certificate's key.
    #[error("JWS signature does not verify")]
    BadSignature,
    /// The payload has no `nonce` claim (e.g. SafetyNet answered with an `error` claim).
    #[error("JWS payload has no nonce")]
    MissingNonce,
    /// The nonce is not the SHA-256 of this request's clear text.
    #[error("nonce does not match the request")]
    NonceMismatch,
}

/// Verifies SafetyNet attestation JWSs against a fixed set of trusted roots, offline.
pub struct SafetyNetVerifier {
    anchors: Vec<TrustAnchor<'static>>,
    /// `ATTESTATION_HOST`, parsed once.
    host: ServerName<'static>,
}

impl fmt::Debug for SafetyNetVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SafetyNetVerifier")
            .field("roots", &self.anchors.len())
            .finish()
    }
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    x5c: Vec<String>,
}

#[derive(Deserialize)]
struct Claims {
    nonce: Option<String>,
}

impl SafetyNetVerifier {
    /// Trusts the bundled Google roots (the production setting).
    pub fn with_google_roots() -> Result<Self, SafetyNetRootsError> {
        let mut roots = Vec::new();
        for pem in GOOGLE_ROOTS_PEM {
            roots.extend(parse_pem(pem)?);
        }
        Self::with_roots(roots)
    }

    /// Trusts the certificates in a PEM text instead (configuration, tests).
    pub fn with_roots_pem(pem: &[u8]) -> Result<Self, SafetyNetRootsError> {
        Self::with_roots(parse_pem(pem)?)
    }

    /// Trusts the given DER certificates instead (tests).
    pub fn with_roots(roots: Vec<CertificateDer<'static>>) -> Result<Self, SafetyNetRootsError> {
        if roots.is_empty() {
            return Err(SafetyNetRootsError::NoRoots);
        }
        let anchors = roots
            .iter()
            .enumerate()
            .map(|(index, der)| {
                webpki::anchor_from_trusted_cert(der)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|source| SafetyNetRootsError::Anchor { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let host = DnsName::try_from(ATTESTATION_HOST)
            .map_err(|_| SafetyNetRootsError::HostName)?
            .to_owned();
        Ok(Self {
            anchors,
            host: ServerName::DnsName(host),
        })
    }

    /// Checks that `jws` is a genuine SafetyNet attestation, valid at `now`, whose nonce is the
    /// SHA-256 of `nonce_text` (UTF-8).
    pub fn verify(
        &self,
        jws: &str,
        nonce_text: &str,
        now: SystemTime,
    ) -> Result<(), SafetyNetError> {
        let mut parts = jws.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SafetyNetError::Malformed("not three dot-separated parts"));
        };
        let header: Header = BASE64URL
            .decode(header_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(SafetyNetError::Malformed("header is not base64url JSON"))?;
        let signature = BASE64URL
            .decode(signature_b64)
            .map_err(|_| SafetyNetError::Malformed("signature is not base64url"))?;
        let (algorithm, signature) = match header.alg.as_str() {
            "RS256" => (webpki::ring::RSA_PKCS1_2048_8192_SHA256, signature),
            "ES256" => (
                webpki::ring::ECDSA_P256_SHA256,
                p256_signature_to_der(&signature).ok_or(SafetyNetError::BadSignature)?,
            ),
            _ => return Err(SafetyNetError::UnsupportedAlgorithm),
        };

        let certificates = header
            .x5c
            .iter()
            .enumerate()
            .map(|(index, text)| {
                BASE64
                    .decode(text)
                    .map(CertificateDer::from)
                    .map_err(|_| SafetyNetError::UnreadableCertificate { index })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (leaf_der, intermediates) = certificates
            .split_first()
            .ok_or(SafetyNetError::NoCertificate)?;
        let leaf = EndEntityCert::try_from(leaf_der)
            .map_err(|_| SafetyNetError::UnreadableCertificate { index: 0 })?;
        let since_epoch = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        leaf.verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &self.anchors,
            intermediates,
            UnixTime::since_unix_epoch(since_epoch),
            KeyUsage::server_auth(),
            None,
            None,
        )
        .map_err(|error| match error {
            webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                SafetyNetError::NotValidNow(error)
            }
            other => SafetyNetError::UntrustedChain(other),
        })?;
        leaf.verify_is_valid_for_subject_name(&self.host)
            .map_err(SafetyNetError::WrongHost)?;

        let signed = &jws[..header_b64.len() + 1 + payload_b64.len()];
        leaf.verify_signature(algorithm, signed.as_bytes(), &signature)
            .map_err(|_| SafetyNetError::BadSignature)?;

        let claims: Claims = BASE64URL
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or(SafetyNetError::Malformed("payload is not base64url JSON"))?;
        let nonce = claims.nonce.ok_or(SafetyNetError::MissingNonce)?;
        let expected = digest(&SHA256, nonce_text.as_bytes());
        match BASE64.decode(nonce) {
            Ok(bytes) if bytes == expected.as_ref() => Ok(()),
            _ => Err(SafetyNetError::NonceMismatch),
        }
    }
}

/// The base64 text SafetyNet returns as `nonce` for a clear text: base64(SHA-256(UTF-8)).
pub fn expected_nonce(nonce_text: &str) -> String {
    general_purpose::STANDARD.encode(digest(&SHA256, nonce_text.as_bytes()))
}

fn parse_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, SafetyNetRootsError> {
    let roots = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| SafetyNetRootsError::Pem)?;
    if roots.is_empty() {
        return Err(SafetyNetRootsError::NoRoots);
    }
    Ok(roots)
}

/// A JWS `ES256` signature is the raw `r || s` (32 bytes each); the verifier takes the ASN.1 DER
/// `ECDSA-Sig-Value` (`SEQUENCE { INTEGER r, INTEGER s }`). `None` if it is not 64 bytes.
fn p256_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() != 64 {
        return None;
    }
    let (r, s) = raw.split_at(32);
    let (r, s) = (der_unsigned_integer(r), der_unsigned_integer(s));
    // At most 2 × (2 + 33) = 70 bytes: the short length form always fits.
    let length = u8::try_from(r.len() + s.len()).ok()?;
    let mut der = Vec::with_capacity(2 + usize::from(length));
    der.extend_from_slice(&[0x30, length]);
    der.extend_from_slice(&r);
    der.extend_from_slice(&s);
    Some(der)
}

/// A big-endian unsigned number (≤ 32 bytes) as a DER INTEGER: leading zeros dropped (one kept
/// for zero), and a zero byte in front when the high bit is set, so it stays positive.
fn der_unsigned_integer(bytes: &[u8]) -> Vec<u8> {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    let digits = &bytes[start..];
    let pad = digits.first().is_some_and(|b| b & 0x80 != 0);
    let length = digits.len() + usize::from(pad);
    let mut der = Vec::with_capacity(2 + length);
    der.push(0x02);
    // ≤ 33: fits the short length form.
    der.push(u8::try_from(length).unwrap_or(u8::MAX));
    if pad {
        der.push(0);
    }
    der.extend_from_slice(digits);
    der
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        PKCS_RSA_SHA256, date_time_ymd,
    };
    use ring::rand::SystemRandom;
    use ring::signature::{
        ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, RSA_PKCS1_SHA256, RsaKeyPair,
    };

    use super::*;

    const NONCE_TEXT: &str = "jp.go.mhlw.covid19radar|2021-12-19T00:00:00.000+09:00|HasSymptom|\
                              AAAAAAAAAAAAAAAAAAAAAA==.2733120.144.1|440|12345678";

    /// A test RSA key (generated for these tests only): ring cannot generate RSA keys, and
    /// Google signs real attestations with RS256.
    const RSA_TEST_KEY: &str = include_str!("testdata/test-only-rsa2048.pk8.pem");

    /// 2024-06-01, inside every test certificate's validity.
    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_717_200_000)
    }

    struct Ca {
        der: CertificateDer<'static>,
        issuer: Issuer<'static, KeyPair>,
    }

    fn ca(name: &str, signer: Option<&Ca>) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(2040, 1, 1);
        let key = KeyPair::generate().expect("key");
        let certificate = match signer {
            None => params.self_signed(&key),
            Some(signer) => params.signed_by(&key, &signer.issuer),
        }
        .expect("CA certificate");
        Ca {
            der: certificate.der().clone(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A leaf certificate for `host`, valid until `not_after`, signed by `issuer`.
    fn leaf(
        key: &KeyPair,
        host: &str,
        not_after: (i32, u8, u8),
        issuer: &Ca,
    ) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec![host.to_owned()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, host);
        params.not_before = date_time_ymd(2020, 1, 1);
        params.not_after = date_time_ymd(not_after.0, not_after.1, not_after.2);
        params
            .signed_by(key, &issuer.issuer)
            .expect("leaf certificate")
            .der()
            .clone()
    }

    fn ec_signer(key: &KeyPair) -> impl Fn(&[u8]) -> Vec<u8> {
        let pair = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            key.serialized_der(),
            &SystemRandom::new(),
        )
        .expect("P-256 key");
        move |message| {
            pair.sign(&SystemRandom::new(), message)
                .expect("signature")
                .as_ref()
                .to_vec()
        }
    }

    fn claims(nonce_text: &str) -> String {
        format!(
            r#"{{"nonce":"{}","timestampMs":1717200000000,"apkPackageName":"jp.go.mhlw.covid19radar","ctsProfileMatch":true,"basicIntegrity":true}}"#,
            expected_nonce(nonce_text)
        )
    }

    /// A compact JWS as SafetyNet returns it: `x5c` leaf first, parts base64url without padding.
    fn jws(
        alg: &str,
        chain: &[&CertificateDer<'_>],
        payload: &str,
        sign: impl Fn(&[u8]) -> Vec<u8>,
    ) -> String {
        let x5c: Vec<String> = chain
            .iter()
            .map(|c| general_purpose::STANDARD.encode(c.as_ref()))
            .collect();
        let header = serde_json::json!({ "alg": alg, "x5c": x5c }).to_string();
        let signed = format!(
            "{}.{}",
            general_purpose::URL_SAFE_NO_PAD.encode(header),
            general_purpose::URL_SAFE_NO_PAD.encode(payload)
        );
        let signature = sign(signed.as_bytes());
        format!(
            "{signed}.{}",
            general_purpose::URL_SAFE_NO_PAD.encode(signature)
        )
    }

    /// Root → intermediate → leaf for attest.android.com (P-256), and a verifier trusting root.
    struct Fixture {
        root: Ca,
        intermediate: Ca,
        leaf_key: KeyPair,
        leaf: CertificateDer<'static>,
    }

    fn fixture() -> Fixture {
        let root = ca("Test Root", None);
        let intermediate = ca("Test Intermediate", Some(&root));
        let leaf_key = KeyPair::generate().expect("key");
        let leaf = leaf(&leaf_key, ATTESTATION_HOST, (2030, 1, 1), &intermediate);
        Fixture {
            root,
            intermediate,
            leaf_key,
            leaf,
        }
    }

    impl Fixture {
        fn verifier(&self) -> SafetyNetVerifier {
            SafetyNetVerifier::with_roots(vec![self.root.der.clone()]).expect("verifier")
        }

        fn jws(&self, payload: &str) -> String {
            jws(
                "ES256",
                &[&self.leaf, &self.intermediate.der],
                payload,
                ec_signer(&self.leaf_key),
            )
        }
    }

    #[test]
    fn a_genuine_attestation_with_the_right_nonce_passes() {
        let f = fixture();
        assert_eq!(
            f.verifier()
                .verify(&f.jws(&claims(NONCE_TEXT)), NONCE_TEXT, now()),
            Ok(())
        );
    }

    #[test]
    fn an_rs256_attestation_passes() {
        let root = ca("Test Root", None);
        let key =
            KeyPair::from_pkcs8_pem_and_sign_algo(RSA_TEST_KEY, &PKCS_RSA_SHA256).expect("RSA key");
        let leaf = leaf(&key, ATTESTATION_HOST, (2030, 1, 1), &root);
        let pair = RsaKeyPair::from_pkcs8(key.serialized_der()).expect("ring RSA key");
        let token = jws("RS256", &[&leaf], &claims(NONCE_TEXT), |message| {
            let mut signature = vec![0; pair.public().modulus_len()];
            pair.sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("signature");
            signature
        });
        let verifier = SafetyNetVerifier::with_roots(vec![root.der]).expect("verifier");
        assert_eq!(verifier.verify(&token, NONCE_TEXT, now()), Ok(()));
        // The same token under a claimed ES256: the key and the algorithm disagree.
        let mut parts: Vec<&str> = token.split('.').collect();
        let header = general_purpose::URL_SAFE_NO_PAD.encode(
            String::from_utf8(
                general_purpose::URL_SAFE_NO_PAD
                    .decode(parts[0])
                    .expect("header"),
            )
            .expect("utf-8")
            .replace("RS256", "ES256"),
        );
        parts[0] = &header;
        assert!(
            verifier
                .verify(&parts.join("."), NONCE_TEXT, now())
                .is_err()
        );
    }

    #[test]
    fn a_wrong_nonce_fails() {
        let f = fixture();
        // Signed for one processing number, presented with another.
        let other = NONCE_TEXT.replace("12345678", "12345679");
        assert_eq!(
            f.verifier()
                .verify(&f.jws(&claims(&other)), NONCE_TEXT, now()),
            Err(SafetyNetError::NonceMismatch)
        );
        assert_eq!(
            f.verifier()
                .verify(&f.jws(r#"{"error":"internal_error"}"#), NONCE_TEXT, now()),
            Err(SafetyNetError::MissingNonce)
        );
    }

    #[test]
    fn a_chain_to_another_root_fails() {
        let f = fixture();
        let stranger = ca("Another Root", None);
        let verifier = SafetyNetVerifier::with_roots(vec![stranger.der]).expect("verifier");
        assert!(matches!(
            verifier.verify(&f.jws(&claims(NONCE_TEXT)), NONCE_TEXT, now()),
            Err(SafetyNetError::UntrustedChain(_))
        ));
        // A leaf alone, without the intermediate that links it to the root, fails the same way.
        let token = jws(
            "ES256",
            &[&f.leaf],
            &claims(NONCE_TEXT),
            ec_signer(&f.leaf_key),
        );
        assert!(matches!(
            f.verifier().verify(&token, NONCE_TEXT, now()),
            Err(SafetyNetError::UntrustedChain(_))
        ));
    }

    #[test]
    fn a_leaf_for_another_host_fails() {
        let f = fixture();
        let key = KeyPair::generate().expect("key");
        let other = leaf(&key, "attest.example.com", (2030, 1, 1), &f.intermediate);
        let token = jws(
            "ES256",
            &[&other, &f.intermediate.der],
            &claims(NONCE_TEXT),
            ec_signer(&key),
        );
        assert!(matches!(
            f.verifier().verify(&token, NONCE_TEXT, now()),
            Err(SafetyNetError::WrongHost(_))
        ));
    }

    #[test]
    fn an_expired_leaf_fails() {
        let f = fixture();
        let key = KeyPair::generate().expect("key");
        let expired = leaf(&key, ATTESTATION_HOST, (2024, 1, 1), &f.intermediate);
        let token = jws(
            "ES256",
            &[&expired, &f.intermediate.der],
            &claims(NONCE_TEXT),
            ec_signer(&key),
        );
        assert!(matches!(
            f.verifier().verify(&token, NONCE_TEXT, now()),
            Err(SafetyNetError::NotValidNow(
                webpki::Error::CertExpired { .. }
            ))
        ));
        // The same leaf passed while it was valid: the clock is what fails it.
        assert_eq!(
            f.verifier().verify(
                &token,
                NONCE_TEXT,
                UNIX_EPOCH + Duration::from_secs(1_690_000_000)
            ),
            Ok(())
        );
    }

    #[test]
    fn an_altered_payload_fails() {
        let f = fixture();
        let token = f.jws(&claims(&NONCE_TEXT.replace("12345678", "00000000")));
        // Swap in the payload the attacker needs, keeping Google's signature.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[1] = general_purpose::URL_SAFE_NO_PAD.encode(claims(NONCE_TEXT));
        assert_eq!(
            f.verifier().verify(&parts.join("."), NONCE_TEXT, now()),
            Err(SafetyNetError::BadSignature)
        );
        // A flipped signature byte fails the same way.
        let mut parts: Vec<String> = f
            .jws(&claims(NONCE_TEXT))
            .split('.')
            .map(str::to_owned)
            .collect();
        let mut signature = general_purpose::URL_SAFE_NO_PAD
            .decode(&parts[2])
            .expect("signature");
        signature[10] ^= 1;
        parts[2] = general_purpose::URL_SAFE_NO_PAD.encode(signature);
        assert_eq!(
            f.verifier().verify(&parts.join("."), NONCE_TEXT, now()),
            Err(SafetyNetError::BadSignature)
        );
    }

    #[test]
    fn malformed_jws_fail_without_echoing_anything() {
        let f = fixture();
        let verifier = f.verifier();
        let good = f.jws(&claims(NONCE_TEXT));
        let (header, rest) = good.split_once('.').expect("dots");
        let cases = [
            String::new(),
            "ATTESTATION-PAYLOAD-not-a-jws".to_owned(),
            format!("{good}.extra"),
            format!("{header}.{rest}").replacen('.', "", 1),
            format!("!!!.{rest}"),
            format!(
                "{}.{rest}",
                general_purpose::URL_SAFE_NO_PAD.encode("not json")
            ),
        ];
        for case in &cases {
            let error = verifier.verify(case, NONCE_TEXT, now()).expect_err("fails");
            assert!(matches!(error, SafetyNetError::Malformed(_)), "{error:?}");
            assert!(!error.to_string().contains("ATTESTATION-PAYLOAD"));
        }
        let no_certificates = jws("ES256", &[], &claims(NONCE_TEXT), ec_signer(&f.leaf_key));
        assert_eq!(
            verifier.verify(&no_certificates, NONCE_TEXT, now()),
            Err(SafetyNetError::NoCertificate)
        );
        let none_alg = jws("none", &[&f.leaf], &claims(NONCE_TEXT), |_| Vec::new());
        assert_eq!(
            verifier.verify(&none_alg, NONCE_TEXT, now()),
            Err(SafetyNetError::UnsupportedAlgorithm)
        );
        let garbage_certificate = good.replacen(
            header,
            &general_purpose::URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","x5c":["MIIB"]}"#),
            1,
        );
        assert_eq!(
            verifier.verify(&garbage_certificate, NONCE_TEXT, now()),
            Err(SafetyNetError::UnreadableCertificate { index: 0 })
        );
    }

    #[test]
    fn errors_never_contain_the_nonce_text_or_the_payload() {
        let f = fixture();
        let error = f
            .verifier()
            .verify(&f.jws(&claims("other text")), NONCE_TEXT, now())
            .expect_err("fails");
        let message = format!("{error} {error:?}");
        assert!(!message.contains("12345678"));
        assert!(!message.contains(&expected_nonce("other text")));
    }

    #[test]
    fn the_bundled_google_roots_load() {
        let verifier = SafetyNetVerifier::with_google_roots().expect("bundled roots");
        assert_eq!(verifier.anchors.len(), 2);
        // And a real Google-shaped token signed by a test chain is not trusted by them.
        let f = fixture();
        assert!(matches!(
            verifier.verify(&f.jws(&claims(NONCE_TEXT)), NONCE_TEXT, now()),
            Err(SafetyNetError::UntrustedChain(_))
        ));
    }

    #[test]
    fn roots_from_pem_replace_the_bundled_ones() {
        let f = fixture();
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            general_purpose::STANDARD.encode(f.root.der.as_ref())
        );
        let verifier = SafetyNetVerifier::with_roots_pem(pem.as_bytes()).expect("verifier");
        assert_eq!(
            verifier.verify(&f.jws(&claims(NONCE_TEXT)), NONCE_TEXT, now()),
            Ok(())
        );
        assert_eq!(
            SafetyNetVerifier::with_roots_pem(b"no certificate here").err(),
            Some(SafetyNetRootsError::NoRoots)
        );
        assert_eq!(
            SafetyNetVerifier::with_roots(Vec::new()).err(),
            Some(SafetyNetRootsError::NoRoots)
        );
    }

    #[test]
    fn es256_signatures_convert_to_der() {
        // High bit set: a zero byte keeps the INTEGER positive; leading zeros are dropped.
        let mut raw = [0u8; 64];
        raw[0] = 0x80;
        raw[31] = 1;
        raw[63] = 5;
        let der = p256_signature_to_der(&raw).expect("64 bytes");
        let mut expected = vec![0x30, 0x26, 0x02, 0x21, 0x00, 0x80];
        expected.extend_from_slice(&[0; 30]);
        expected.extend_from_slice(&[1, 0x02, 0x01, 0x05]);
        assert_eq!(der, expected);
        assert_eq!(
            p256_signature_to_der(&[0; 64]),
            Some(vec![0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00])
        );
        assert_eq!(p256_signature_to_der(&[1; 63]), None);
    }
}
