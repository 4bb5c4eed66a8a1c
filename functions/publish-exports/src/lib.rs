//! `publish-exports`: run by an EventBridge schedule (every 4 hours by default); also invokable
//! directly by an operator (the event is ignored: a run always works from the clock).

use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use shared::export_run::{ExportError, ExportFileFactory, PublishExports, never};
use shared::ports::{ExportBucket, ExportLedger, ReleasedKeySource};
use time::OffsetDateTime;

/// A failed run: Lambda reports it (and the schedule's retry and dead-letter queue take over).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct RunFailed(#[from] ExportError);

impl From<RunFailed> for Diagnostic {
    fn from(error: RunFailed) -> Self {
        Self {
            error_type: "ExportRunFailed".into(),
            error_message: error.to_string(),
        }
    }
}

pub async fn handle<S, L, B, F>(
    service: &PublishExports<S, L, B, F>,
    _event: LambdaEvent<Value>,
) -> Result<Value, RunFailed>
where
    S: ReleasedKeySource + Sync,
    L: ExportLedger + Sync,
    B: ExportBucket + Sync,
    F: ExportFileFactory + Sync,
{
    let reports = service
        .run(OffsetDateTime::now_utc(), &never)
        .await
        .inspect_err(|error| {
            tracing::error!(error = %error, "export run failed; the next run resumes it");
        })?;
    let mut summary = Vec::with_capacity(reports.len());
    for report in &reports {
        tracing::info!(
            region = %report.region,
            hours_read = report.hours_read,
            read_requests = report.read_requests,
            read_units = report.read_units,
            read_ms = report.read_time.as_millis() as u64,
            publish_ms = report.publish_time.as_millis() as u64,
            list_ms = report.list_time.as_millis() as u64,
            keys_released = report.keys_released,
            files_written = ?report.files_written,
            files_already_present = ?report.files_already_present,
            listed = report.listed,
            retired = report.retired,
            "export run"
        );
        summary.push(json!({
            "region": report.region,
            "keysReleased": report.keys_released,
            "filesWritten": report.files_written,
            "listed": report.listed,
        }));
    }
    Ok(json!({ "regions": summary }))
}
