use lambda_http::lambda_runtime::{Error, run, service_fn};
use shared::adapters::dynamo_exports::{DynamoExportLedger, DynamoReleasedKeys};
use shared::adapters::{AwsTimeouts, aws_config, kms_signer::KmsSigner, s3_bucket::S3ExportBucket};
use shared::config::{PublishExportsConfig, process_env};
use shared::export_run::{PublishExports, SignedExportFiles};

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = PublishExportsConfig::from_env(&process_env())?;
    let aws = aws_config(AwsTimeouts::BATCH).await;
    let dynamodb = shared::adapters::DynamoDbClient::new(&aws);
    let signer = KmsSigner::from_config(&aws, config.signing_key_id);
    // Every signature is checked against this before anything is published.
    let public_key = signer.public_key().await?;
    let service = PublishExports {
        source: DynamoReleasedKeys::new(dynamodb.clone(), config.keys_table),
        ledger: DynamoExportLedger::new(dynamodb, config.exports_table),
        bucket: S3ExportBucket::from_config(&aws, config.bucket),
        files: SignedExportFiles {
            signer,
            public_key,
            verification_key_id: config.verification_key_id,
            verification_key_version: config.verification_key_version,
            min_keys: config.settings.min_keys_per_release,
        },
        settings: config.settings,
    };
    run(service_fn(|event| publish_exports::handle(&service, event))).await
}
