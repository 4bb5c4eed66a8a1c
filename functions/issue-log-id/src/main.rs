use lambda_http::{Error, run, service_fn};
use shared::adapters::{
    AwsTimeouts, DynamoDbClient, aws_config, dynamo_logs::DynamoLogIds, kms_mac::KmsMac,
};
use shared::config::{IssueLogIdConfig, process_env};
use shared::logs::IssueLogIds;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = IssueLogIdConfig::from_env(&process_env())?;
    let aws = aws_config(AwsTimeouts::REQUEST).await;
    let service = IssueLogIds {
        mac: KmsMac::from_config(&aws, config.mac_key_id),
        registry: DynamoLogIds::new(DynamoDbClient::new(&aws), config.log_ids_table),
    };
    let api_key = config.inquiry_log_api_key;
    run(service_fn(|request| {
        issue_log_id::handle(&service, &api_key, request)
    }))
    .await
}
