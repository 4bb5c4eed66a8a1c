use lambda_http::{Error, run, service_fn};
use shared::adapters::{
    attestation::PermitAllDevices, aws_config, dynamo_keys::DynamoExposureKeyStore,
    hersys::HersysVerifier,
};
use shared::config::{SubmitKeysConfig, process_env};
use shared::submission::SubmitKeys;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = SubmitKeysConfig::from_env(&process_env())?;
    let aws = aws_config().await;
    let service = SubmitKeys {
        rules: config.rules,
        verifier: HersysVerifier::new(config.hersys)?,
        attestation: PermitAllDevices,
        store: DynamoExposureKeyStore::from_config(&aws, config.keys_table),
    };
    run(service_fn(|request| submit_keys::handle(&service, request))).await
}
