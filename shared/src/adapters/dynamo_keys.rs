//! The keys table in DynamoDB.
//!
//! Item layout: `pk` = `"{region}#{key id}"` (one item per key and region, so a conditional put
//! stores each key once however often and whenever it is resent), `release` =
//! `"{region}#{YYYY-MM-DDTHH}"` (the hour whose export publishes it; the partition key of the
//! `by-release` index, which an export queries hour by hour), `key_data` (B, 16 bytes),
//! `rolling_start_number`, `rolling_period`, `transmission_risk`, `report_type` and
//! `days_since_onset` (N, absent when unknown), `release_at` (N, unix seconds) and `expires_at`
//! (N, the TTL). Nothing else: no processing number, attestation payload, address or
//! submission time.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use futures_util::future::join_all;

use crate::adapters::dynamo::put_if_absent;
use crate::domain::exposure_key::{ExposureKey, release_partition};
use crate::ports::{ExposureKeyStore, StoreError, StoreOutcome};

/// The index an export reads released keys from.
pub const RELEASE_INDEX: &str = "by-release";

pub struct DynamoExposureKeyStore {
    client: Client,
    table: String,
}

impl DynamoExposureKeyStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }

    async fn put(&self, key: &ExposureKey, received_at: i64) -> Result<bool, StoreError> {
        put_if_absent(
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(key_item(key, received_at))),
        )
        .await
    }
}

/// The keys table's item for `key`, received at `received_at` (unix seconds): the layout above.
/// Public so that a loader can write items exactly as `submit-keys` does.
pub fn key_item(key: &ExposureKey, received_at: i64) -> HashMap<String, AttributeValue> {
    let number = |n: i64| AttributeValue::N(n.to_string());
    let release_at = key.release_at(received_at);
    let mut item = HashMap::with_capacity(10);
    item.insert(
        "pk".to_owned(),
        AttributeValue::S(format!("{}#{}", key.region, key.id.as_str())),
    );
    item.insert(
        "release".to_owned(),
        AttributeValue::S(release_partition(&key.region, release_at)),
    );
    item.insert(
        "key_data".to_owned(),
        AttributeValue::B(Blob::new(key.key_data.as_bytes().to_vec())),
    );
    item.insert(
        "rolling_start_number".to_owned(),
        number(key.rolling_start_number.into()),
    );
    item.insert(
        "rolling_period".to_owned(),
        number(key.rolling_period.into()),
    );
    item.insert(
        "transmission_risk".to_owned(),
        number(key.transmission_risk.into()),
    );
    item.insert("release_at".to_owned(), number(release_at));
    item.insert("expires_at".to_owned(), number(key.expires_at()));
    if let Some(report_type) = key.report_type {
        item.insert("report_type".to_owned(), number(report_type.value().into()));
    }
    if let Some(days) = key.days_since_onset {
        item.insert("days_since_onset".to_owned(), number(days.into()));
    }
    item
}

impl ExposureKeyStore for DynamoExposureKeyStore {
    async fn store(
        &self,
        keys: &[ExposureKey],
        received_at: i64,
    ) -> Result<StoreOutcome, StoreError> {
        // One conditional put per key, all at once: a retry finds its keys present and adds
        // nothing, and a retry after a partial failure stores exactly the missing ones.
        let results = join_all(keys.iter().map(|key| self.put(key, received_at))).await;
        let mut outcome = StoreOutcome::default();
        for result in results {
            if result? {
                outcome.stored += 1;
            } else {
                outcome.already_present += 1;
            }
        }
        Ok(outcome)
    }
}
