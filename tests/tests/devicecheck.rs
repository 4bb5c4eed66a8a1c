//! The DeviceCheck client over a real connection, against the local stack's stand-in for Apple's
//! `validate_device_token` (scripts/devicecheck_standin.py): Apple's answer decides, and the
//! `transaction_id` sent is base64(SHA-256(UTF-8 transaction seed)).
//!
//! The stand-in accepts a device token `VALID-DEVICE:<id>` only when the request's
//! `transaction_id` is exactly `<id>`, so these tests compute the id themselves, independently of
//! the client, and a client sending any other id fails them.

use base64::Engine as _;
use e2e::{Stack, random_id};
use ring::digest::{SHA256, digest};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use shared::adapters::attestation::PlatformAttestation;
use shared::adapters::devicecheck::{DeviceCheckClient, DeviceCheckError};
use shared::domain::attestation::{AttestationSubject, ClearTextSource, KeyText};
use shared::ports::{AttestationError, DeviceAttestation};

/// A client of the stand-in, signing its JWT with a fresh P-256 key (PKCS#8, base64 DER).
fn client(stack: &Stack) -> DeviceCheckClient {
    let port = stack.description["ports"]["devicecheck"]
        .as_u64()
        .expect("devicecheck port");
    let pkcs8 =
        EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .expect("P-256 key");
    DeviceCheckClient::new(
        format!("http://127.0.0.1:{port}/v1/validate_device_token"),
        "E2EKEYID01",
        "E2ETEAMID1",
        &base64::engine::general_purpose::STANDARD.encode(pkcs8.as_ref()),
    )
    .expect("DeviceCheck client")
}

/// base64(SHA-256(UTF-8 seed)), computed here rather than by the code under test.
fn expected_transaction_id(seed: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(digest(&SHA256, seed.as_bytes()))
}

#[tokio::test]
async fn a_genuine_device_token_passes_and_another_fails() {
    let stack = Stack::connect().await;
    let client = client(&stack);
    let seed = format!("jp.go.mhlw.covid19radar{}", random_id());
    assert_eq!(
        client
            .validate_device_token(&format!("VALID-DEVICE-{}", random_id()), &seed)
            .await,
        Ok(())
    );
    assert_eq!(
        client
            .validate_device_token(&format!("FORGED-DEVICE-{}", random_id()), &seed)
            .await,
        Err(DeviceCheckError::Refused { status: 400 })
    );
}

#[tokio::test]
async fn the_transaction_id_is_base64_of_sha256_of_the_seed() {
    let stack = Stack::connect().await;
    let client = client(&stack);
    let seed = format!("jp.go.mhlw.covid19radar{}NoSymptom440", random_id());
    let token = format!("VALID-DEVICE:{}", expected_transaction_id(&seed));
    assert_eq!(client.validate_device_token(&token, &seed).await, Ok(()));
    // The same token for another seed: the stand-in sees a different id and refuses, so the
    // assertion above holds only when the id the client sent is the one computed here.
    assert_eq!(
        client
            .validate_device_token(&token, &format!("{seed}441"))
            .await,
        Err(DeviceCheckError::Refused { status: 400 })
    );
}

#[tokio::test]
async fn ios_attestation_sends_the_v3_transaction_seed() {
    let stack = Stack::connect().await;
    let attestation = PlatformAttestation {
        android: None,
        ios: Some(client(&stack)),
    };
    let subject = |payload: String| AttestationSubject {
        platform: "ios".to_owned(),
        payload,
        clear_text: ClearTextSource::V3 {
            app_package_name: "jp.go.mhlw.covid19radar".to_owned(),
            onset: "2021-12-19T00:00:00.000+09:00".to_owned(),
            has_symptom: true,
            keys: vec![
                KeyText {
                    key_data: "ABDAAAAAAAAAAAAAAAAAAA==".to_owned(),
                    rolling_start_number: 2733120,
                    rolling_period: 144,
                    report_type: 1,
                },
                KeyText {
                    key_data: "abcAAAAAAAAAAAAAAAAAAA==".to_owned(),
                    rolling_start_number: 2733264,
                    rolling_period: 144,
                    report_type: 1,
                },
            ],
            regions: vec!["440".to_owned()],
            verification_payload: "12345678".to_owned(),
        },
    };
    // No separators, no processing number; keys in .NET culture order (abc… before ABD…).
    let seed = "jp.go.mhlw.covid19radar2021-12-19T00:00:00.000+09:00HasSymptom\
                abcAAAAAAAAAAAAAAAAAAA==.2733264.144.1,ABDAAAAAAAAAAAAAAAAAAA==.2733120.144.1\
                440";
    let genuine = subject(format!("VALID-DEVICE:{}", expected_transaction_id(seed)));
    assert_eq!(attestation.attest(&genuine).await, Ok(()));
    // The ordinal key order would have given another seed, and another id.
    let ordinal_seed = "jp.go.mhlw.covid19radar2021-12-19T00:00:00.000+09:00HasSymptom\
                        ABDAAAAAAAAAAAAAAAAAAA==.2733120.144.1,abcAAAAAAAAAAAAAAAAAAA==.2733264.144.1\
                        440";
    let ordinal = subject(format!(
        "VALID-DEVICE:{}",
        expected_transaction_id(ordinal_seed)
    ));
    assert_eq!(attestation.attest(&ordinal).await, Err(AttestationError));
    let forged = subject(format!("FORGED-DEVICE-{}", random_id()));
    assert_eq!(attestation.attest(&forged).await, Err(AttestationError));
}
