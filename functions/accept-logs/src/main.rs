use lambda_http::{Error, run, service_fn};
use shared::adapters::{
    AwsTimeouts, DynamoDbClient, aws_config,
    dynamo_logs::{DynamoLogIds, DynamoOperationLogs},
    kms_mac::KmsMac,
};
use shared::config::{AcceptLogsConfig, process_env};
use shared::logs::AcceptLogs;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = AcceptLogsConfig::from_env(&process_env())?;
    let aws = aws_config(AwsTimeouts::UPLOAD).await;
    let dynamodb = DynamoDbClient::new(&aws);
    let service = AcceptLogs {
        mac: KmsMac::from_config(&aws, config.mac_key_id),
        registry: DynamoLogIds::new(dynamodb.clone(), config.log_ids_table.clone()),
        store: DynamoOperationLogs::new(dynamodb, config.logs_table, config.log_ids_table),
    };
    let container = config.log_container;
    run(service_fn(|request| {
        accept_logs::handle(&service, &container, request)
    }))
    .await
}
