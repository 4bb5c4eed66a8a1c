//! `helpdesk`: see the library (`src/lib.rs`) for the commands.

use std::process::ExitCode;

use helpdesk::Helpdesk;
use shared::adapters::dynamo_logs::{DynamoEventLogs, DynamoOperationLogs};
use shared::adapters::{AwsTimeouts, DynamoDbClient, aws_config};

fn setting(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let aws = aws_config(AwsTimeouts::BATCH).await;
    let dynamodb = DynamoDbClient::new(&aws);
    let helpdesk = Helpdesk {
        logs: DynamoOperationLogs::new(
            dynamodb.clone(),
            setting("LOGS_TABLE", "cocoa-operation-logs"),
            setting("LOG_IDS_TABLE", "cocoa-log-ids"),
        ),
        event_logs: DynamoEventLogs::new(dynamodb, setting("EVENT_LOGS_TABLE", "cocoa-event-logs")),
        lambda: aws_sdk_lambda::Client::new(&aws),
        issue_function: setting("ISSUE_LOG_ID_FUNCTION", "issue-log-id"),
        now: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    match helpdesk.run(&args, &mut std::io::stdout()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("helpdesk: {error}");
            ExitCode::from(1)
        }
    }
}
