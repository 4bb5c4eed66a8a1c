use lambda_http::{Error, run, service_fn};
use shared::adapters::{
    AwsTimeouts, DynamoDbClient,
    attestation::{AttestationConfig, PlatformAttestation},
    aws_config,
    dynamo_logs::DynamoEventLogs,
};
use shared::config::{AcceptEventLogsConfig, process_env};
use shared::logs::AcceptEventLogs;

#[tokio::main]
async fn main() -> Result<(), Error> {
    shared::telemetry::init();
    let config = AcceptEventLogsConfig::from_env(&process_env())?;
    let attestation =
        PlatformAttestation::from_config(&AttestationConfig::from_env(&process_env())?)?;
    let aws = aws_config(AwsTimeouts::REQUEST).await;
    let service = AcceptEventLogs {
        attestation,
        store: DynamoEventLogs::new(DynamoDbClient::new(&aws), config.event_logs_table),
        survey_until: config.survey_retention_until,
    };
    run(service_fn(|request| {
        accept_event_logs::handle(&service, request)
    }))
    .await
}
