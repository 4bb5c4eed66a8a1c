//! SafetyNet attestation switched on, end to end through `submit-keys`' handler with its real
//! adapters (DynamoDB Local, KMS on moto, `verify-processing-number` through the Lambda Invoke API
//! of the running stack) and a SafetyNet verifier trusting a test root the test makes. The local
//! stack itself runs with attestation off, as COCOA's did; here the handler is called in process.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use e2e::*;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    date_time_ymd,
};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use shared::adapters::attestation::PlatformAttestation;
use shared::adapters::dynamo_keys::DynamoExposureKeyStore;
use shared::adapters::dynamo_tokens::DynamoUsedTokens;
use shared::adapters::kms_mac::KmsMac;
use shared::adapters::lambda_verifier::LambdaVerifier;
use shared::adapters::safetynet::SafetyNetVerifier;
use shared::submission::SubmitKeys;
use shared::verification::{PayloadVerifier, TokenRedemption};
use time::Duration;

struct Ca {
    der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(2040, 1, 1);
    let key = KeyPair::generate().expect("key");
    let der = params.self_signed(&key).expect("root").der().to_vec();
    Ca {
        der,
        issuer: Issuer::new(params, key),
    }
}

/// A leaf for `host`, signed by `ca`, valid from 2020 to `until`, and a JWS signer with its key.
fn leaf(ca: &Ca, host: &str, until: i32) -> (Vec<u8>, EcdsaKeyPair) {
    let key = KeyPair::generate().expect("key");
    let mut params = CertificateParams::new(vec![host.to_owned()]).expect("params");
    params.distinguished_name.push(DnType::CommonName, host);
    params.not_before = date_time_ymd(2020, 1, 1);
    params.not_after = date_time_ymd(until, 1, 1);
    let der = params
        .signed_by(&key, &ca.issuer)
        .expect("leaf")
        .der()
        .to_vec();
    let signer = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        key.serialized_der(),
        &SystemRandom::new(),
    )
    .expect("P-256 key");
    (der, signer)
}

/// A SafetyNet attestation JWS (ES256) with `x5c` = [leaf] whose nonce is SHA-256 of `nonce_text`.
fn jws(leaf: &(Vec<u8>, EcdsaKeyPair), nonce_text: &str) -> String {
    let header = serde_json::json!({"alg": "ES256", "x5c": [STANDARD.encode(&leaf.0)]}).to_string();
    let nonce = STANDARD.encode(digest(&SHA256, nonce_text.as_bytes()));
    let claims = serde_json::json!({"nonce": nonce, "apkPackageName": "jp.go.mhlw.covid19radar", "basicIntegrity": true}).to_string();
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = leaf
        .1
        .sign(&SystemRandom::new(), signed.as_bytes())
        .expect("signature");
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
}

/// The v3 clear text exactly as the app builds it for one key (`DeviceVerifierUtils`).
fn nonce_text(body: &serde_json::Value) -> String {
    let key = &body["keys"][0];
    format!(
        "jp.go.mhlw.covid19radar|{}|HasSymptom|{}.{}.{}.{}|440|{}",
        body["onsetOfSymptomOrTestDate"].as_str().expect("onset"),
        key["keyData"].as_str().expect("key"),
        key["rollingStartNumber"],
        key["rollingPeriod"],
        key["reportType"],
        body["verificationPayload"].as_str().expect("number"),
    )
}

/// `submit-keys` with its production adapters and SafetyNet on.
type Service = SubmitKeys<
    PayloadVerifier<LambdaVerifier, KmsMac, DynamoUsedTokens>,
    PlatformAttestation,
    DynamoExposureKeyStore,
>;

async fn service(stack: &Stack, root: &Ca) -> Service {
    let env = |name: &str| stack.environment(name);
    let (dynamodb, kms, lambda) = (
        stack.dynamodb.clone(),
        stack.kms.clone(),
        stack.lambda.clone(),
    );
    SubmitKeys {
        rules: declared_submission_rules(),
        verifier: PayloadVerifier {
            numbers: LambdaVerifier::new(lambda, env("VERIFIER_FUNCTION_NAME")),
            tokens: TokenRedemption {
                mac: KmsMac::new(kms, env("MAC_KEY_ID")),
                used: DynamoUsedTokens::new(dynamodb.clone(), env("USED_TOKENS_TABLE")),
            },
        },
        attestation: PlatformAttestation {
            android: Some(
                SafetyNetVerifier::with_roots(vec![root.der.clone().into()]).expect("verifier"),
            ),
            ios: None,
        },
        store: DynamoExposureKeyStore::new(dynamodb, env("KEYS_TABLE")),
    }
}

/// Builds the `deviceVerificationPayload` for a request body.
type Payload<'a> = dyn Fn(&serde_json::Value) -> String + 'a;

#[tokio::test]
async fn only_a_genuine_attestation_over_the_right_clear_text_passes() {
    let stack = Stack::connect().await;
    let root = ca("Test SafetyNet Root");
    let other_root = ca("Another Root");
    let service = service(&stack, &root).await;
    let genuine_leaf = leaf(&root, "attest.android.com", 2040);

    let submission = |payload: &dyn Fn(&serde_json::Value) -> String| {
        let keys = vec![TestKey::on(today_utc() - Duration::days(1))];
        let mut body = v3_body(
            &keys,
            today_utc() - Duration::days(1),
            VALID_NUMBER,
            &random_id(),
        );
        body["deviceVerificationPayload"] = serde_json::Value::String(payload(&body));
        (keys, body)
    };
    let cases: Vec<(&str, Box<Payload<'_>>, u16)> = vec![
        (
            "genuine",
            Box::new(|b| jws(&genuine_leaf, &nonce_text(b))),
            200,
        ),
        (
            "wrong nonce",
            Box::new(|b| {
                jws(
                    &genuine_leaf,
                    &nonce_text(b).replace("HasSymptom", "NoSymptom"),
                )
            }),
            400,
        ),
        (
            "wrong root",
            Box::new(|b| {
                jws(
                    &leaf(&other_root, "attest.android.com", 2040),
                    &nonce_text(b),
                )
            }),
            400,
        ),
        (
            "wrong host",
            Box::new(|b| jws(&leaf(&root, "attest.example.com", 2040), &nonce_text(b))),
            400,
        ),
        (
            "expired certificate",
            Box::new(|b| jws(&leaf(&root, "attest.android.com", 2021), &nonce_text(b))),
            400,
        ),
        (
            "altered payload",
            Box::new(|b| {
                let token = jws(&genuine_leaf, &nonce_text(b));
                let parts: Vec<&str> = token.split('.').collect();
                let altered = URL_SAFE_NO_PAD.encode(
                    String::from_utf8(URL_SAFE_NO_PAD.decode(parts[1]).expect("claims"))
                        .expect("utf-8")
                        .replace("true", "false"),
                );
                format!("{}.{altered}.{}", parts[0], parts[2])
            }),
            400,
        ),
        (
            "not a JWS",
            Box::new(|_| format!("{ATTESTATION_MARKER}{}", random_id())),
            400,
        ),
    ];
    for (name, payload, expected) in cases {
        let (keys, body) = submission(payload.as_ref());
        let response = submit_keys::handle(&service, v3_request(&body))
            .await
            .expect("infallible");
        assert_eq!(response.status().as_u16(), expected, "{name}");
        if expected == 400 {
            assert_eq!(response.body().as_ref(), b"Invalid Device", "{name}");
            assert!(
                stack.stored_items_for(&keys).await.is_empty(),
                "{name}: nothing stored"
            );
        } else {
            assert_eq!(
                stack.stored_items_for(&keys).await.len(),
                1,
                "{name}: stored"
            );
        }
    }
}
