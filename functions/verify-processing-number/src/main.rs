use lambda_http::lambda_runtime::{Error, run, service_fn};
use shared::adapters::{AwsTimeouts, aws_config, hersys::HersysVerifier, kms_mac::KmsMac};
use shared::config::{VerifierConfig, process_env};
use shared::verification::IssueTokens;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = VerifierConfig::from_env(&process_env())?;
    let aws = aws_config(AwsTimeouts::REQUEST).await;
    let service = IssueTokens {
        verifier: HersysVerifier::new(config.hersys)?,
        mac: KmsMac::from_config(&aws, config.mac_key_id),
    };
    run(service_fn(|event| {
        verify_processing_number::handle(&service, event)
    }))
    .await
}
