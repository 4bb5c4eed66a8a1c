//! DynamoDB adapters for the log side:
//! - the log-IDs table (`pk` = canonical log ID; `issuer`, `issued_at`, `used`, `expires_at`),
//!   which also records each used upload grant (`pk` = `grant#{nonce}`, until the grant expires);
//! - the operation-logs table (`pk` = log ID, `sk` = `meta` or `chunk#{upload}#{index}`): the
//!   stored bytes are cut into chunks under DynamoDB's 400 KB item limit; the `meta` item, written
//!   last and in one transaction with the use of the log ID or grant, is what makes a log exist.
//!   Its `sha256` (`NewOperationLog::digest`) tells a retry of the same upload from another log; its
//!   `received_day` feeds the sparse `by-received-day` index the helpdesk lists from;
//! - the event-logs table (`pk` = COCOA's event-log id).
//!
//! Every item carries `expires_at` (TTL), and every read skips what has expired, as TTL deletion
//! can lag by days.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, Put, TransactWriteItem, Update,
};
use futures_util::{StreamExt, TryStreamExt, stream};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use crate::adapters::dynamo::{Item, code, number, put_if_absent, query_all, string};
use crate::ports::{
    EventLogRecord, EventLogStore, LogFormat, LogIdIssuer, LogIdRecord, LogIdRegistry,
    LogStoreOutcome, LogSummary, NewOperationLog, OperationLogStore, Spends, StoreError,
};

/// The stored bytes per chunk item: well under the 400 KB item limit with the keys and attributes.
pub const CHUNK_BYTES: usize = 350_000;
/// The operation-logs table's index of `meta` items by the UTC day they were received.
pub const RECEIVED_DAY_INDEX: &str = "by-received-day";
const META: &str = "meta";
/// Chunk writes in flight at once.
const CHUNK_WRITES: usize = 4;

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// The issued log IDs.
pub struct DynamoLogIds {
    client: Client,
    table: String,
}

impl DynamoLogIds {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

impl LogIdRegistry for DynamoLogIds {
    async fn record_issued(
        &self,
        id: &str,
        issuer: LogIdIssuer,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        put_if_absent(
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(id))
                .item("issuer", s(issuer.as_str()))
                .item("issued_at", n(issued_at))
                .item("used", AttributeValue::Bool(false))
                .item("expires_at", n(expires_at)),
        )
        .await
    }

    async fn lookup(&self, id: &str) -> Result<Option<LogIdRecord>, StoreError> {
        let item = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(id))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| code(&e.into_service_error()))?
            .item;
        Ok(item.and_then(|item| {
            let expires_at = number(&item, "expires_at")?;
            let used = matches!(item.get("used"), Some(AttributeValue::Bool(true)));
            Some(LogIdRecord { used, expires_at })
        }))
    }
}

/// The consented operation logs; `log_ids_table` is the table whose issued IDs an upload uses.
pub struct DynamoOperationLogs {
    client: Client,
    table: String,
    log_ids_table: String,
}

impl DynamoOperationLogs {
    pub fn new(client: Client, table: impl Into<String>, log_ids_table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            log_ids_table: log_ids_table.into(),
        }
    }

    async fn meta(&self, id: &str) -> Result<Option<Item>, StoreError> {
        Ok(self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(id))
            .key("sk", s(META))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| code(&e.into_service_error()))?
            .item)
    }

    async fn delete_items(&self, id: &str, sort_keys: Vec<String>) -> Result<(), StoreError> {
        stream::iter(sort_keys)
            .map(|sk| {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("pk", s(id))
                    .key("sk", s(sk))
                    .send()
            })
            .buffer_unordered(CHUNK_WRITES)
            .map_err(|e| code(&e.into_service_error()))
            .try_for_each(|_| async { Ok(()) })
            .await
    }

    async fn sort_keys(&self, id: &str, prefix: Option<&str>) -> Result<Vec<String>, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .expression_attribute_values(":pk", s(id))
            .projection_expression("sk")
            .consistent_read(true);
        query = match prefix {
            Some(prefix) => query
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":prefix", s(prefix)),
            None => query.key_condition_expression("pk = :pk"),
        };
        Ok(query_all(query)
            .await?
            .iter()
            .filter_map(|item| string(item, "sk").map(str::to_owned))
            .collect())
    }
}

fn chunk_prefix(upload: &str) -> String {
    format!("chunk#{upload}#")
}

fn summary(item: &Item) -> Option<LogSummary> {
    let redactions = match item.get("redactions") {
        Some(AttributeValue::M(map)) => {
            let mut pairs: Vec<(String, u64)> = map
                .iter()
                .filter_map(|(kind, count)| match count {
                    AttributeValue::N(count) => Some((kind.clone(), count.parse().ok()?)),
                    _ => None,
                })
                .collect();
            pairs.sort();
            pairs
        }
        _ => Vec::new(),
    };
    Some(LogSummary {
        id: string(item, "pk")?.to_owned(),
        format: LogFormat::parse(string(item, "format")?)?,
        received_at: number(item, "received_at")?,
        expires_at: number(item, "expires_at")?,
        original_bytes: u64::try_from(number(item, "original_bytes")?).ok()?,
        stored_bytes: u64::try_from(number(item, "stored_bytes")?).ok()?,
        redactions,
    })
}

/// The UTC day of a unix time, as the index partitions by it.
fn day_of(unix: i64) -> Option<String> {
    let date = OffsetDateTime::from_unix_timestamp(unix).ok()?.date();
    Some(format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

/// Which condition cancelled the transaction (the meta item's, then the spent right's); `None`
/// when it was a conflict with another transaction on the same items (the caller's retry decides
/// then).
fn which_condition_failed(
    reasons: &[CancellationReason],
    spends: Spends,
) -> Option<LogStoreOutcome> {
    let code = |index: usize| reasons.get(index).and_then(|r| r.code()).unwrap_or("None");
    match (code(0), code(1), spends) {
        ("ConditionalCheckFailed", _, _) => Some(LogStoreOutcome::AlreadyStored),
        (_, "ConditionalCheckFailed", Spends::IssuedLogId) => {
            Some(LogStoreOutcome::IdNoLongerIssued)
        }
        (_, "ConditionalCheckFailed", Spends::UploadGrant { .. }) => {
            Some(LogStoreOutcome::GrantUsed)
        }
        _ => None,
    }
}

/// The log-IDs table's item that records a used upload grant. Log IDs are hex and hyphens, so
/// the prefix keeps the two apart.
fn grant_key(nonce: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "grant#{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(nonce)
    )
}

impl DynamoOperationLogs {
    /// The transaction item that spends the upload's single-use right.
    fn spend(&self, id: &str, spends: Spends, now: i64) -> Result<TransactWriteItem, StoreError> {
        Ok(match spends {
            Spends::IssuedLogId => TransactWriteItem::builder()
                .update(
                    Update::builder()
                        .table_name(&self.log_ids_table)
                        .key("pk", s(id))
                        .update_expression("SET used = :true, used_at = :now")
                        .condition_expression(
                            "attribute_exists(pk) AND used = :false AND expires_at > :now",
                        )
                        .expression_attribute_values(":true", AttributeValue::Bool(true))
                        .expression_attribute_values(":false", AttributeValue::Bool(false))
                        .expression_attribute_values(":now", n(now))
                        .build()
                        .map_err(|_| StoreError("log-ID update incomplete".into()))?,
                )
                .build(),
            Spends::UploadGrant { nonce, expires_at } => TransactWriteItem::builder()
                .put(
                    Put::builder()
                        .table_name(&self.log_ids_table)
                        .item("pk", s(grant_key(&nonce)))
                        .item("used", AttributeValue::Bool(true))
                        .item("used_at", n(now))
                        .item("expires_at", n(expires_at))
                        .condition_expression("attribute_not_exists(pk)")
                        .build()
                        .map_err(|_| StoreError("grant item incomplete".into()))?,
                )
                .build(),
        })
    }

    /// What is stored under `id` when the upload's transaction did not answer `Ok`. The answer
    /// may have been lost after the commit (a 500, a timeout), or an SDK retry of a committed
    /// transaction cancelled on its own condition: the meta item decides. The chunks of `upload`
    /// are removed only when the transaction surely did not commit (it was cancelled or
    /// throttled, and the meta item is not this upload's); after any other error they are left
    /// to their TTL, since the transaction may still be in flight.
    async fn settle(
        &self,
        log: &NewOperationLog<'_>,
        upload: &str,
        error: TransactWriteItemsError,
    ) -> Result<LogStoreOutcome, StoreError> {
        let cancelled = match &error {
            TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                which_condition_failed(cancelled.cancellation_reasons(), log.spends)
            }
            _ => None,
        };
        let refused = cancelled.is_some() || is_refused_unprocessed(&error);
        let Ok(meta) = self.meta(log.id).await else {
            return Err(code(&error));
        };
        if let Some(meta) = &meta
            && string(meta, "upload") == Some(upload)
        {
            return Ok(LogStoreOutcome::Stored);
        }
        if refused && let Ok(orphans) = self.sort_keys(log.id, Some(&chunk_prefix(upload))).await {
            let _ = self.delete_items(log.id, orphans).await;
        }
        match (cancelled, &meta) {
            (Some(LogStoreOutcome::AlreadyStored), Some(meta)) => Ok(existing(meta, &log.digest)),
            (Some(outcome), _) => Ok(outcome),
            (None, _) => Err(code(&error)),
        }
    }
}

/// Errors DynamoDB answers without processing the request (throttling, limits, a transaction
/// cancelled by a conflict): nothing of it was written.
fn is_refused_unprocessed(error: &TransactWriteItemsError) -> bool {
    use aws_sdk_dynamodb::error::ProvideErrorMetadata as _;
    matches!(
        error.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TransactionCanceledException"
                | "TransactionConflictException"
        )
    )
}

/// The stored log's expiry when `meta` records the log with `digest` (`NewOperationLog::digest`:
/// of the redacted log, which is stored beside it, so the digest reveals nothing it does not).
fn same_log_expires_at(meta: &Item, digest: &[u8; 32]) -> Option<i64> {
    match meta.get("sha256") {
        Some(AttributeValue::B(stored)) if stored.as_ref() == digest => number(meta, "expires_at"),
        _ => None,
    }
}

/// `StoredBefore` when `meta` is the same log, else `AlreadyStored`.
fn existing(meta: &Item, digest: &[u8; 32]) -> LogStoreOutcome {
    match same_log_expires_at(meta, digest) {
        Some(expires_at) => LogStoreOutcome::StoredBefore { expires_at },
        None => LogStoreOutcome::AlreadyStored,
    }
}

impl OperationLogStore for DynamoOperationLogs {
    async fn store(&self, log: NewOperationLog<'_>) -> Result<LogStoreOutcome, StoreError> {
        if let Some(meta) = self.meta(log.id).await? {
            return Ok(existing(&meta, &log.digest));
        }
        let mut nonce = [0u8; 8];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError("no randomness".into()))?;
        let upload: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let chunks: Vec<(String, Vec<u8>)> = log
            .body
            .chunks(CHUNK_BYTES)
            .enumerate()
            .map(|(index, bytes)| {
                (
                    format!("{}{index:05}", chunk_prefix(&upload)),
                    bytes.to_vec(),
                )
            })
            .collect();
        let chunk_count = chunks.len();
        stream::iter(chunks)
            .map(|(sk, bytes)| {
                self.client
                    .put_item()
                    .table_name(&self.table)
                    .item("pk", s(log.id))
                    .item("sk", s(sk))
                    .item("data", AttributeValue::B(bytes.into()))
                    .item("expires_at", n(log.expires_at))
                    .send()
            })
            .buffer_unordered(CHUNK_WRITES)
            .map_err(|e| code(&e.into_service_error()))
            .try_for_each(|_| async { Ok(()) })
            .await?;

        let day = day_of(log.received_at).ok_or(StoreError("receipt time out of range".into()))?;
        let redactions = log
            .redactions
            .iter()
            .map(|(kind, count)| ((*kind).to_owned(), n(count)))
            .collect();
        let meta = Put::builder()
            .table_name(&self.table)
            .item("pk", s(log.id))
            .item("sk", s(META))
            .item("format", s(log.format.as_str()))
            .item("upload", s(&upload))
            .item("chunks", n(chunk_count))
            .item("original_bytes", n(log.original_bytes))
            .item("stored_bytes", n(log.body.len()))
            .item("sha256", AttributeValue::B(log.digest.to_vec().into()))
            .item("received_at", n(log.received_at))
            .item("received_day", s(day))
            .item("expires_at", n(log.expires_at))
            .item("redactions", AttributeValue::M(redactions))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|_| StoreError("meta item incomplete".into()))?;
        let transaction = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(meta).build())
            .transact_items(self.spend(log.id, log.spends, log.received_at)?);
        match transaction.send().await {
            Ok(_) => Ok(LogStoreOutcome::Stored),
            Err(error) => self.settle(&log, &upload, error.into_service_error()).await,
        }
    }

    async fn stored_before(&self, id: &str, digest: &[u8; 32]) -> Result<Option<i64>, StoreError> {
        Ok(self
            .meta(id)
            .await?
            .and_then(|meta| same_log_expires_at(&meta, digest)))
    }

    async fn get(&self, id: &str, now: i64) -> Result<Option<(LogSummary, Vec<u8>)>, StoreError> {
        let Some(meta) = self.meta(id).await? else {
            return Ok(None);
        };
        let Some(summary) = summary(&meta) else {
            return Err(StoreError("unreadable log record".into()));
        };
        if summary.expires_at <= now {
            return Ok(None);
        }
        let upload = string(&meta, "upload").unwrap_or_default();
        let chunks = number(&meta, "chunks").unwrap_or_default();
        let query = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(id))
            .expression_attribute_values(":prefix", s(chunk_prefix(upload)))
            .consistent_read(true);
        let items = query_all(query).await?;
        if i64::try_from(items.len()).ok() != Some(chunks) {
            return Err(StoreError("log chunks missing".into()));
        }
        let mut body = Vec::with_capacity(usize::try_from(summary.stored_bytes).unwrap_or(0));
        for item in &items {
            match item.get("data") {
                Some(AttributeValue::B(bytes)) => body.extend_from_slice(bytes.as_ref()),
                _ => return Err(StoreError("log chunk unreadable".into())),
            }
        }
        Ok(Some((summary, body)))
    }

    async fn list(&self, since: i64, now: i64) -> Result<Vec<LogSummary>, StoreError> {
        // Nothing older than the retention period can still be there to list.
        let first = since.max(now - crate::domain::operation_log::LOG_RETENTION_SECONDS - 86_400);
        let mut logs = Vec::new();
        let mut day = first - first.rem_euclid(86_400);
        while day <= now {
            let Some(name) = day_of(day) else { break };
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(RECEIVED_DAY_INDEX)
                .key_condition_expression("received_day = :day")
                .expression_attribute_values(":day", s(name));
            logs.extend(
                query_all(query)
                    .await?
                    .iter()
                    .filter_map(summary)
                    .filter(|log| log.received_at >= since && log.expires_at > now),
            );
            day += 86_400;
        }
        logs.sort_by(|a, b| (a.received_at, &a.id).cmp(&(b.received_at, &b.id)));
        Ok(logs)
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let existed = self.meta(id).await?.is_some();
        // The meta item first: from then on the log is gone for every reader, and a failure
        // halfway leaves only unreachable chunks (which keep their TTL).
        if existed {
            self.client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .delete(
                            Delete::builder()
                                .table_name(&self.table)
                                .key("pk", s(id))
                                .key("sk", s(META))
                                .build()
                                .map_err(|_| StoreError("delete incomplete".into()))?,
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| code(&e.into_service_error()))?;
        }
        let rest = self.sort_keys(id, None).await?;
        self.delete_items(id, rest).await?;
        Ok(existed)
    }
}

/// The consented event logs and survey answers.
pub struct DynamoEventLogs {
    client: Client,
    table: String,
}

impl DynamoEventLogs {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    /// Every stored, unexpired entry of `kind` (the helpdesk's survey report; a Scan, as the
    /// report reads the whole survey anyway).
    pub async fn scan_kind(&self, kind: &str, now: i64) -> Result<Vec<EventLogRecord>, StoreError> {
        let mut records = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(&self.table)
                .filter_expression("#type = :kind AND expires_at > :now")
                .expression_attribute_names("#type", "type")
                .expression_attribute_values(":kind", s(kind))
                .expression_attribute_values(":now", n(now))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| code(&e.into_service_error()))?;
            records.extend(page.items().iter().filter_map(event_log_record));
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(records),
            }
        }
    }
}

fn event_log_record(item: &Item) -> Option<EventLogRecord> {
    Some(EventLogRecord {
        id: string(item, "pk")?.to_owned(),
        epoch: number(item, "epoch")?,
        kind: string(item, "type")?.to_owned(),
        subtype: string(item, "subtype")?.to_owned(),
        content: string(item, "content")?.to_owned(),
        created: number(item, "created")?,
        expires_at: number(item, "expires_at")?,
    })
}

impl DynamoEventLogs {
    /// Stores the entry unless its id is already stored; `Ok(false)` for a repeat.
    async fn put_one(&self, entry: &EventLogRecord) -> Result<bool, StoreError> {
        put_if_absent(
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", s(&entry.id))
                .item("epoch", n(entry.epoch))
                .item("type", s(&entry.kind))
                .item("subtype", s(&entry.subtype))
                .item("content", s(&entry.content))
                .item("created", n(entry.created))
                .item("expires_at", n(entry.expires_at)),
        )
        .await
    }
}

impl EventLogStore for DynamoEventLogs {
    async fn put_new(&self, entries: &[EventLogRecord]) -> Result<usize, StoreError> {
        let puts: Vec<_> = entries.iter().map(|entry| self.put_one(entry)).collect();
        let results: Vec<bool> = stream::iter(puts).buffer_unordered(8).try_collect().await?;
        Ok(results.into_iter().filter(|new| *new).count())
    }
}
