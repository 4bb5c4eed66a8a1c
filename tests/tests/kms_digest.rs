//! The project's moto launcher (scripts/moto_server.py) makes KMS `Sign` honour
//! `MessageType=DIGEST`, as real KMS does: a signature over SHA-256(message) must verify with
//! openssl against the original message. Plain moto signs SHA-256(digest) instead.

use std::process::Command;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use e2e::{Stack, random_bytes, random_id};
use ring::digest::{SHA256, digest};

struct Files(std::path::PathBuf);

impl Files {
    fn new() -> Self {
        let dir = std::env::temp_dir().join(format!("kms-digest-{}", random_id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }
    fn write(&self, name: &str, bytes: &[u8]) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, bytes).expect("write");
        path.to_string_lossy().into_owned()
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `openssl dgst -sha256 -verify`: true when openssl prints "Verified OK".
fn openssl_verifies(
    files: &Files,
    public_key_der: &[u8],
    signature: &[u8],
    message: &[u8],
) -> bool {
    let der = files.write("public.der", public_key_der);
    let pem = files.0.join("public.pem").to_string_lossy().into_owned();
    let converted = Command::new("openssl")
        .args([
            "pkey", "-pubin", "-inform", "DER", "-in", &der, "-out", &pem,
        ])
        .status()
        .expect("openssl runs");
    assert!(converted.success(), "openssl converts the KMS public key");
    let output = Command::new("openssl")
        .args([
            "dgst",
            "-sha256",
            "-verify",
            &pem,
            "-signature",
            &files.write("sig.der", signature),
            &files.write("msg.bin", message),
        ])
        .output()
        .expect("openssl runs");
    output.status.success() && String::from_utf8_lossy(&output.stdout).contains("Verified OK")
}

async fn sign(stack: &Stack, key_id: &str, message: &[u8], message_type: MessageType) -> Vec<u8> {
    stack
        .kms
        .sign()
        .key_id(key_id)
        .message(Blob::new(message))
        .message_type(message_type)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("KMS signs")
        .signature
        .expect("a signature")
        .into_inner()
}

#[tokio::test]
async fn a_digest_signature_verifies_against_the_original_message() {
    let stack = Stack::connect().await;
    let key_id = stack.resource("kms:export-signing");
    let public_key = stack
        .kms
        .get_public_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("public key");
    let public_key = public_key.public_key.expect("DER public key").into_inner();
    let files = Files::new();
    let message = random_bytes(4096);
    let message_digest = digest(&SHA256, &message);

    let signature = sign(
        &stack,
        &key_id,
        message_digest.as_ref(),
        MessageType::Digest,
    )
    .await;
    assert!(
        openssl_verifies(&files, &public_key, &signature, &message),
        "DIGEST signature verifies"
    );

    // The control: what unpatched moto does (sign the digest as a message) does not verify, so
    // the assertion above can fail.
    let double_hashed = sign(&stack, &key_id, message_digest.as_ref(), MessageType::Raw).await;
    assert!(!openssl_verifies(
        &files,
        &public_key,
        &double_hashed,
        &message
    ));
    // And a DIGEST signature does not verify against another message.
    assert!(!openssl_verifies(
        &files,
        &public_key,
        &signature,
        b"another message"
    ));
    // KMS's own Verify agrees, with MessageType=DIGEST.
    let verified = stack
        .kms
        .verify()
        .key_id(&key_id)
        .message(Blob::new(message_digest.as_ref()))
        .message_type(MessageType::Digest)
        .signature(Blob::new(signature))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .expect("KMS verifies");
    assert!(verified.signature_valid);
}

#[tokio::test]
async fn a_digest_of_the_wrong_length_is_refused() {
    let stack = Stack::connect().await;
    let key_id = stack.resource("kms:export-signing");
    let result = stack
        .kms
        .sign()
        .key_id(&key_id)
        .message(Blob::new(vec![1u8; 20]))
        .message_type(MessageType::Digest)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await;
    assert!(result.is_err(), "KMS refuses a 20-byte SHA-256 digest");
}
