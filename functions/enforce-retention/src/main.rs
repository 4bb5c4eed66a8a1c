use lambda_http::lambda_runtime::{Error, run, service_fn};
use shared::adapters::retention::{ExpiredExportFiles, ExpiredItems};
use shared::adapters::{AwsTimeouts, DynamoDbClient, aws_config, s3_bucket::s3_client};
use shared::config::{EnforceRetentionConfig, process_env};
use shared::logs::EnforceRetention;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = EnforceRetentionConfig::from_env(&process_env())?;
    let aws = aws_config(AwsTimeouts::BATCH).await;
    let dynamodb = DynamoDbClient::new(&aws);
    let service = EnforceRetention {
        tables: config
            .tables
            .iter()
            .map(|table| ExpiredItems::new(dynamodb.clone(), table.clone()))
            .collect(),
        files: vec![ExpiredExportFiles::new(
            s3_client(&aws),
            config.export_bucket,
            config.export_prefix,
            config.export_retention_seconds,
        )],
    };
    run(service_fn(|event| {
        enforce_retention::handle(&service, event)
    }))
    .await
}
