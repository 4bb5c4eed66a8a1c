//! `enforce-retention`: run daily by an EventBridge schedule; also invokable by an operator (the
//! event is ignored). Deletes what is past its deadline everywhere: operation logs, event logs,
//! survey answers, log IDs, used tokens, keys, the exporter's expired records, and export zips
//! older than their retention. A place that fails does not stop the others; the run then fails,
//! so the schedule's retry and alarm take over.

use lambda_http::lambda_runtime::{Diagnostic, LambdaEvent};
use serde_json::{Value, json};
use shared::logs::EnforceRetention;
use shared::ports::RetentionSweep;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
#[error("retention incomplete: {failed} place(s) failed")]
pub struct SweepFailed {
    pub failed: usize,
}

impl From<SweepFailed> for Diagnostic {
    fn from(error: SweepFailed) -> Self {
        Self {
            error_type: "RetentionSweepFailed".into(),
            error_message: error.to_string(),
        }
    }
}

/// One sweep at `now` (unix seconds): what each place deleted.
pub async fn sweep<T, F>(service: &EnforceRetention<T, F>, now: i64) -> Result<Value, SweepFailed>
where
    T: RetentionSweep + Sync,
    F: RetentionSweep + Sync,
{
    let (purged, failures) = service.run(now).await;
    for place in &purged {
        tracing::info!(place = %place.place, deleted = place.deleted, "retention swept");
    }
    for failure in &failures {
        tracing::error!(error = %failure, "retention sweep failed; the next run retries");
    }
    if !failures.is_empty() {
        return Err(SweepFailed {
            failed: failures.len(),
        });
    }
    let deleted: u64 = purged.iter().map(|p| p.deleted).sum();
    Ok(json!({
        "deleted": deleted,
        "places": purged.iter().map(|p| json!({"place": p.place, "deleted": p.deleted})).collect::<Vec<_>>(),
    }))
}

pub async fn handle<T, F>(
    service: &EnforceRetention<T, F>,
    _event: LambdaEvent<Value>,
) -> Result<Value, SweepFailed>
where
    T: RetentionSweep + Sync,
    F: RetentionSweep + Sync,
{
    sweep(service, OffsetDateTime::now_utc().unix_timestamp()).await
}
