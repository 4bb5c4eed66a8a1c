use lambda_http::{Error, run, service_fn};
use shared::adapters::{
    AwsTimeouts,
    attestation::{AttestationConfig, PlatformAttestation},
    aws_config,
    dynamo_keys::DynamoExposureKeyStore,
    dynamo_tokens::DynamoUsedTokens,
    kms_mac::KmsMac,
    lambda_verifier::LambdaVerifier,
};
use shared::config::{SubmitKeysConfig, process_env};
use shared::submission::SubmitKeys;
use shared::verification::{PayloadVerifier, TokenRedemption};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = SubmitKeysConfig::from_env(&process_env())?;
    let attestation =
        PlatformAttestation::from_config(&AttestationConfig::from_env(&process_env())?)?;
    let aws = aws_config(AwsTimeouts::REQUEST).await;
    let service = SubmitKeys {
        rules: config.rules,
        verifier: PayloadVerifier {
            numbers: LambdaVerifier::from_config(&aws, config.verifier_function),
            tokens: TokenRedemption {
                mac: KmsMac::from_config(&aws, config.mac_key_id),
                used: DynamoUsedTokens::from_config(&aws, config.used_tokens_table),
            },
        },
        attestation,
        store: DynamoExposureKeyStore::from_config(&aws, config.keys_table),
    };
    run(service_fn(|request| submit_keys::handle(&service, request))).await
}
