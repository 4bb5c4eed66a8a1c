//! The exporter's DynamoDB side: released keys from the keys table's `by-release` index, and its
//! own ledger table (`pk`/`sk`): `state#{region}` (progress and any pending release), `counter`
//! (batch numbers), `batches#{region}` (published files, TTL when they leave list.json).

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity, ReturnValue};

use crate::adapters::dynamo::{Item, code, number, query_all, query_pages};
use crate::adapters::dynamo_keys::RELEASE_INDEX;
use crate::domain::export::ExportKey;
use crate::domain::exposure_key::{KEY_LENGTH, KeyData, ReportType, release_partition};
use crate::ports::{
    ExportLedger, ExportState, PendingRelease, PublishedBatch, ReleasedHour, ReleasedKeySource,
    StoreError,
};

fn text<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The attributes an export file needs from a keys-table item (`export_key`): the Query's
/// projection (never empty), so the item's id, release hour and times are neither sent nor parsed.
pub const EXPORT_ATTRIBUTES: &[&str] = &[
    "key_data",
    "rolling_start_number",
    "rolling_period",
    "transmission_risk",
    "report_type",
    "days_since_onset",
];

/// Reads released keys: one Query of the `by-release` index per region and hour.
pub struct DynamoReleasedKeys {
    client: Client,
    table: String,
}

impl DynamoReleasedKeys {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// An item of the keys table as an export key (36 bytes: a million fit in a small Lambda; the
/// item's id and region are not carried); `None` for an item that is not one.
fn export_key(item: &Item) -> Option<ExportKey> {
    let key_data = match item.get("key_data") {
        Some(AttributeValue::B(bytes)) => {
            KeyData::new(<[u8; KEY_LENGTH]>::try_from(bytes.as_ref()).ok()?)
        }
        _ => return None,
    };
    Some(ExportKey {
        key_data,
        rolling_start_number: u32::try_from(number(item, "rolling_start_number")?).ok()?,
        rolling_period: u32::try_from(number(item, "rolling_period")?).ok()?,
        transmission_risk: u8::try_from(number(item, "transmission_risk")?).ok()?,
        report_type: number(item, "report_type")
            .and_then(|v| u32::try_from(v).ok())
            .and_then(ReportType::new),
        days_since_onset: number(item, "days_since_onset").and_then(|v| i32::try_from(v).ok()),
    })
}

impl DynamoReleasedKeys {
    /// The Query of one release hour, page by page: what `released` reads (the index, the
    /// projection, the consumed capacity), for a caller that wants the pages themselves.
    pub async fn each_page(
        &self,
        region: &str,
        hour: i64,
        on_page: impl FnMut(QueryOutput),
    ) -> Result<(), StoreError> {
        // Every name through an alias: none can collide with DynamoDB's reserved words.
        let aliases: Vec<String> = (0..EXPORT_ATTRIBUTES.len())
            .map(|i| format!("#a{i}"))
            .collect();
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(RELEASE_INDEX)
            .key_condition_expression("#r = :r")
            .expression_attribute_names("#r", "release")
            .expression_attribute_values(":r", AttributeValue::S(release_partition(region, hour)))
            .projection_expression(aliases.join(","))
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        for (alias, name) in aliases.into_iter().zip(EXPORT_ATTRIBUTES) {
            query = query.expression_attribute_names(alias, *name);
        }
        query_pages(query, on_page).await
    }
}

impl ReleasedKeySource for DynamoReleasedKeys {
    async fn released(&self, region: &str, hour: i64) -> Result<ReleasedHour, StoreError> {
        let mut read = ReleasedHour::default();
        let mut unreadable = 0;
        // Page by page: each page's items become export keys (36 bytes each) before the next
        // page is read, so what is held is the keys, never an hour's items.
        self.each_page(region, hour, |page| {
            read.requests += 1;
            read.read_units += page
                .consumed_capacity
                .as_ref()
                .and_then(|c| c.capacity_units)
                .unwrap_or(0.0);
            let items = page.items.unwrap_or_default();
            let before = read.keys.len();
            read.keys.extend(items.iter().filter_map(export_key));
            unreadable += items.len() - (read.keys.len() - before);
        })
        .await?;
        if unreadable > 0 {
            tracing::warn!(
                region,
                hour,
                unreadable,
                "keys table items that are not keys were skipped"
            );
        }
        Ok(read)
    }
}

/// The exporter's ledger table.
pub struct DynamoExportLedger {
    client: Client,
    table: String,
}

impl DynamoExportLedger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

const RETAIN_BATCH_RECORD_SECONDS: i64 = 86_400;

impl ExportLedger for DynamoExportLedger {
    async fn state(&self, region: &str) -> Result<ExportState, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("state#{region}")))
            .key("sk", AttributeValue::S("-".into()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| code(&e.into_service_error()))?
            .item;
        let Some(item) = item else {
            return Ok(ExportState::default());
        };
        let pending = match (
            number(&item, "pending_after"),
            number(&item, "pending_through"),
            number(&item, "pending_first_batch"),
            number(&item, "pending_files"),
            number(&item, "pending_created"),
        ) {
            (Some(after_hour), Some(through_hour), Some(first), Some(files), Some(created_ms)) => {
                Some(PendingRelease {
                    after_hour,
                    through_hour,
                    first_batch: u64::try_from(first)
                        .map_err(|_| StoreError("corrupt pending release".into()))?,
                    files: u32::try_from(files)
                        .map_err(|_| StoreError("corrupt pending release".into()))?,
                    created_ms,
                })
            }
            _ => None,
        };
        Ok(ExportState {
            cursor_hour: number(&item, "cursor_hour"),
            last_created_ms: number(&item, "last_created").unwrap_or_default(),
            pending,
            version: number(&item, "version")
                .and_then(|v| u64::try_from(v).ok())
                .unwrap_or_default(),
        })
    }

    async fn save_state(&self, region: &str, state: &ExportState) -> Result<(), StoreError> {
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("state#{region}")))
            .item("sk", AttributeValue::S("-".into()))
            .item("last_created", n(state.last_created_ms))
            .item("version", n(state.version + 1))
            .condition_expression("attribute_not_exists(pk) OR #v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(state.version));
        if let Some(cursor) = state.cursor_hour {
            request = request.item("cursor_hour", n(cursor));
        }
        if let Some(pending) = state.pending {
            request = request
                .item("pending_after", n(pending.after_hour))
                .item("pending_through", n(pending.through_hour))
                .item("pending_first_batch", n(pending.first_batch))
                .item("pending_files", n(pending.files))
                .item("pending_created", n(pending.created_ms));
        }
        request.send().await.map(|_| ()).map_err(|e| {
            let e = e.into_service_error();
            if e.is_conditional_check_failed_exception() {
                StoreError("another export run changed the state".into())
            } else {
                code(&e)
            }
        })
    }

    async fn allocate_batches(&self, count: u32) -> Result<u64, StoreError> {
        let output = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S("counter".into()))
            .key("sk", AttributeValue::S("batch".into()))
            .update_expression("ADD #c :n")
            .expression_attribute_names("#c", "value")
            .expression_attribute_values(":n", n(count))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| code(&e.into_service_error()))?;
        let last = output
            .attributes
            .as_ref()
            .and_then(|a| number(a, "value"))
            .and_then(|v| u64::try_from(v).ok())
            .ok_or_else(|| StoreError("batch counter unreadable".into()))?;
        Ok(last + 1 - u64::from(count))
    }

    async fn record_batch(&self, region: &str, batch: &PublishedBatch) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", AttributeValue::S(format!("batches#{region}")))
            .item("sk", AttributeValue::S(format!("{:012}", batch.batch_num)))
            .item("batch_num", n(batch.batch_num))
            .item("created", n(batch.created_ms))
            .item("object_key", AttributeValue::S(batch.object_key.clone()))
            .item("key_count", n(batch.key_count))
            .item("keys_until", n(batch.keys_until))
            .item(
                "expires_at",
                n(batch.keys_until + RETAIN_BATCH_RECORD_SECONDS),
            )
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code(&e.into_service_error()))
    }

    async fn batches(&self, region: &str) -> Result<Vec<PublishedBatch>, StoreError> {
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :p")
            .expression_attribute_values(":p", AttributeValue::S(format!("batches#{region}")))
            .consistent_read(true);
        let batch = |item: &Item| {
            Some(PublishedBatch {
                batch_num: u64::try_from(number(item, "batch_num")?).ok()?,
                created_ms: number(item, "created")?,
                object_key: text(item, "object_key")?.to_owned(),
                key_count: u32::try_from(number(item, "key_count")?).ok()?,
                keys_until: number(item, "keys_until")?,
            })
        };
        Ok(query_all(query).await?.iter().filter_map(batch).collect())
    }

    async fn forget_batch(&self, region: &str, batch_num: u64) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(format!("batches#{region}")))
            .key("sk", AttributeValue::S(format!("{batch_num:012}")))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| code(&e.into_service_error()))
    }
}
