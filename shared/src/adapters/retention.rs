//! Retention sweeps: what `enforce-retention` deletes where DynamoDB TTL has not acted yet (it can
//! lag by days, and emulators never act), and export files past their 14 days in S3.

use aws_sdk_dynamodb::Client as DynamoDbClient;
use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, WriteRequest};
use aws_sdk_s3::Client as S3Client;

use crate::adapters::dynamo::{Item, code};
use crate::ports::{Purged, RetentionSweep, StoreError};

/// DynamoDB's batch-write limit.
const BATCH: usize = 25;
/// Unprocessed batch items are retried this many times (with a short pause) before the sweep
/// gives up; the next run picks up what is left.
const BATCH_RETRIES: u32 = 5;

/// A table whose items carry a TTL attribute `expires_at`.
pub struct ExpiredItems {
    client: DynamoDbClient,
    table: String,
}

impl ExpiredItems {
    pub fn new(client: DynamoDbClient, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// The table's key attribute names (partition, and sort if any).
    async fn key_names(&self) -> Result<Vec<String>, StoreError> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| code(&e.into_service_error()))?
            .table
            .ok_or(StoreError("table not described".into()))?;
        Ok(table
            .key_schema()
            .iter()
            .map(|k| k.attribute_name().to_owned())
            .collect())
    }

    async fn delete_batch(&self, keys: Vec<Item>) -> Result<(), StoreError> {
        let mut requests: Vec<WriteRequest> = keys
            .into_iter()
            .filter_map(|key| {
                let delete = DeleteRequest::builder().set_key(Some(key)).build().ok()?;
                Some(WriteRequest::builder().delete_request(delete).build())
            })
            .collect();
        for attempt in 0..=BATCH_RETRIES {
            if requests.is_empty() {
                return Ok(());
            }
            if attempt > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(100 << attempt)).await;
            }
            let output = self
                .client
                .batch_write_item()
                .request_items(&self.table, requests)
                .send()
                .await
                .map_err(|e| code(&e.into_service_error()))?;
            requests = output
                .unprocessed_items
                .and_then(|mut m| m.remove(&self.table))
                .unwrap_or_default();
        }
        Err(StoreError("deletes left unprocessed".into()))
    }
}

impl RetentionSweep for ExpiredItems {
    async fn purge_expired(&self, now: i64) -> Result<Purged, StoreError> {
        let key_names = self.key_names().await?;
        let projection = key_names
            .iter()
            .enumerate()
            .map(|(i, _)| format!("#k{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut deleted = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let mut scan = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("expires_at <= :now")
                .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
                .projection_expression(&projection)
                .set_exclusive_start_key(start.take());
            for (i, name) in key_names.iter().enumerate() {
                scan = scan.expression_attribute_names(format!("#k{i}"), name);
            }
            let page = scan
                .send()
                .await
                .map_err(|e| code(&e.into_service_error()))?;
            let items = page.items.unwrap_or_default();
            for batch in items.chunks(BATCH) {
                self.delete_batch(batch.to_vec()).await?;
                deleted += batch.len() as u64;
            }
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(Purged {
            place: self.table.clone(),
            deleted,
        })
    }
}

/// Export zips under a prefix of the exports bucket, deleted once older than `max_age_seconds`
/// (`list.json` is the exporter's and is never touched here).
pub struct ExpiredExportFiles {
    client: S3Client,
    bucket: String,
    prefix: String,
    max_age_seconds: i64,
}

impl ExpiredExportFiles {
    pub fn new(
        client: S3Client,
        bucket: impl Into<String>,
        prefix: impl Into<String>,
        max_age_seconds: i64,
    ) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            prefix: prefix.into(),
            max_age_seconds,
        }
    }
}

impl RetentionSweep for ExpiredExportFiles {
    async fn purge_expired(&self, now: i64) -> Result<Purged, StoreError> {
        let s3_error = |e: &dyn aws_sdk_s3::error::ProvideErrorMetadata| {
            StoreError(e.code().unwrap_or("request failed").to_owned())
        };
        let cutoff = now - self.max_age_seconds;
        let mut deleted = 0u64;
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&self.prefix)
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| s3_error(&e.into_service_error()))?;
            for object in page.contents() {
                let (Some(key), Some(modified)) = (object.key(), object.last_modified()) else {
                    continue;
                };
                if key.ends_with(".zip") && modified.secs() <= cutoff {
                    self.client
                        .delete_object()
                        .bucket(&self.bucket)
                        .key(key)
                        .send()
                        .await
                        .map_err(|e| s3_error(&e.into_service_error()))?;
                    deleted += 1;
                }
            }
            match page.next_continuation_token {
                Some(next) if page.is_truncated == Some(true) => token = Some(next),
                _ => break,
            }
        }
        Ok(Purged {
            place: format!("s3://{}/{}", self.bucket, self.prefix),
            deleted,
        })
    }
}
