//! Synthetic released keys, written straight into a keys table: the exporter's input at national
//! scale, for `tests/benches/export_run.rs` and the `load-keys` command.
//!
//! The keys are what `submit-keys` would have stored for positive users uploading over a span of
//! release hours: each user reports a symptom onset 1 to 11 days before the upload and uploads the
//! full-day keys (rolling period 144) of every day from 3 days before the onset (the start of the
//! window `submit-keys` keeps) to the day before the upload, at most 14: 4 to 14 keys, 9 on
//! average, with their days since onset, transmission risk 4 and report type "confirmed test", as
//! COCOA's v3 app sends them. Uploads follow a day in Japan (few at night, most from 09:00 to
//! 23:00 JST), and each is released the hour after it was received (`ExposureKey::release_at`:
//! the keys ended long before). Items are built by the production adapter's
//! `dynamo_keys::key_item`, so they have exactly the table's real shape, and written with
//! parallel `BatchWriteItem`s of 25.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{PutRequest, WriteRequest};
use base64::Engine as _;
use futures_util::{StreamExt as _, stream};
use ring::rand::{SecureRandom, SystemRandom};
use shared::adapters::dynamo_keys::key_item;
use shared::domain::exposure_key::{
    ExposureKey, INTERVAL_SECONDS, KEY_LENGTH, KeyData, KeyId, ReportType,
};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// DynamoDB's limit of items per `BatchWriteItem`.
const BATCH: usize = 25;
/// Relative upload rate per hour of the day in Japan (JST 00:00 … 23:00).
const JST_HOURLY_WEIGHT: [u32; 24] = [
    3, 2, 1, 1, 1, 1, 2, 4, 6, 8, 9, 9, 9, 9, 9, 9, 9, 9, 10, 10, 10, 9, 7, 5,
];

/// What to load.
#[derive(Clone, Debug)]
pub struct LoadPlan {
    pub region: String,
    /// How many keys (the last user may upload fewer than their days would give).
    pub keys: usize,
    /// The first and the last hour uploads are released in (unix seconds, whole hours,
    /// inclusive): each is received in the hour before. The day-old key of an upload received
    /// in the first hour of a UTC day is released an hour later (two hours after its period
    /// ended, `ExposureKey::release_at`), so keys can be released up to one hour after
    /// `last_release_hour`; `Loaded::per_hour` says where they are.
    pub first_release_hour: i64,
    pub last_release_hour: i64,
    /// `BatchWriteItem`s in flight at once.
    pub concurrency: usize,
}

impl LoadPlan {
    /// `keys` keys over `hours` release hours that end two hours before the current one, so
    /// that every key (see `last_release_hour`) is old enough for an export run at `now` to read.
    pub fn ending_before(region: &str, keys: usize, hours: i64, now: i64) -> Self {
        let last = now.div_euclid(HOUR) * HOUR - 2 * HOUR;
        Self {
            region: region.to_owned(),
            keys,
            first_release_hour: last - (hours.max(1) - 1) * HOUR,
            last_release_hour: last,
            concurrency: 16,
        }
    }
}

/// What was loaded.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Every key's bytes and its TTL (`ExposureKey::expires_at`: an export made from then on
    /// leaves it out), in the order written.
    pub keys: Vec<([u8; KEY_LENGTH], i64)>,
    pub users: usize,
    /// Keys per release hour.
    pub per_hour: BTreeMap<i64, usize>,
    /// `BatchWriteItem` calls, retries of unprocessed items included.
    pub requests: usize,
    pub elapsed: Duration,
}

/// A small, fast generator for the keys' metadata (xorshift64*); the key bytes come from the
/// system's secure generator. Not a dependency: 6 lines, and nothing here needs more.
struct Metadata(u64);

impl Metadata {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The synthetic users' keys, with the time each was received.
struct Uploads {
    plan: LoadPlan,
    metadata: Metadata,
    random: SystemRandom,
    /// Cumulative upload weight of each release hour of the plan.
    hour_weights: Vec<(i64, u64)>,
    pending: Vec<(ExposureKey, i64)>,
    generated: usize,
    users: usize,
}

impl Uploads {
    fn new(plan: LoadPlan) -> Result<Self, String> {
        let random = SystemRandom::new();
        let mut seed = [0u8; 8];
        random.fill(&mut seed).map_err(|_| "no randomness")?;
        let mut total = 0u64;
        let mut hour_weights = Vec::new();
        let mut hour = plan.first_release_hour;
        while hour <= plan.last_release_hour {
            // Received in the hour before its release hour, in JST (UTC+9).
            let received_jst = (hour - HOUR + 9 * HOUR).rem_euclid(DAY) / HOUR;
            total += u64::from(JST_HOURLY_WEIGHT[received_jst as usize]);
            hour_weights.push((hour, total));
            hour += HOUR;
        }
        Ok(Self {
            plan,
            metadata: Metadata(u64::from_le_bytes(seed) | 1),
            random,
            hour_weights,
            pending: Vec::new(),
            generated: 0,
            users: 0,
        })
    }

    /// One more user's upload into `pending`.
    fn upload(&mut self) -> Result<(), String> {
        let total = self.hour_weights.last().map_or(1, |(_, w)| *w);
        let pick = self.metadata.below(total);
        let release_hour = self
            .hour_weights
            .iter()
            .find(|(_, cumulative)| pick < *cumulative)
            .map_or(self.plan.last_release_hour, |(hour, _)| *hour);
        let received_at = release_hour - HOUR + self.metadata.below(HOUR as u64) as i64;
        let today = received_at.div_euclid(DAY) * DAY;
        let onset_days_ago = 1 + self.metadata.below(11) as i64;
        let days = (onset_days_ago + 3).min(14);
        let idempotency_key = format!("{:016x}", self.metadata.next());
        let mut bytes = vec![0u8; KEY_LENGTH * days as usize];
        self.random.fill(&mut bytes).map_err(|_| "no randomness")?;
        for (back, key_bytes) in (1..=days).zip(bytes.chunks_exact(KEY_LENGTH)) {
            let start = today - back * DAY;
            let rolling_start_number =
                u32::try_from(start / INTERVAL_SECONDS).map_err(|_| "time out of range")?;
            let mut key = [0u8; KEY_LENGTH];
            key.copy_from_slice(key_bytes);
            let key_base64 = base64::engine::general_purpose::STANDARD.encode(key);
            let exposure_key = ExposureKey {
                id: KeyId::for_v3(&idempotency_key, &key_base64, rolling_start_number, 144),
                region: self.plan.region.clone(),
                key_data: KeyData::new(key),
                rolling_start_number,
                rolling_period: 144,
                transmission_risk: 4,
                report_type: Some(ReportType::CONFIRMED_TEST),
                days_since_onset: Some(i32::try_from(onset_days_ago - back).unwrap_or(0)),
            };
            self.pending.push((exposure_key, received_at));
        }
        self.users += 1;
        Ok(())
    }

    /// The next up to 25 keys.
    fn batch(&mut self) -> Result<Vec<(ExposureKey, i64)>, String> {
        while self.pending.len() < BATCH && self.generated + self.pending.len() < self.plan.keys {
            self.upload()?;
        }
        let wanted = BATCH
            .min(self.plan.keys - self.generated)
            .min(self.pending.len());
        self.generated += wanted;
        Ok(self.pending.drain(..wanted).collect())
    }
}

/// Writes `plan.keys` synthetic released keys into `table`.
pub async fn load_released_keys(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    plan: &LoadPlan,
) -> Result<Loaded, String> {
    let started = Instant::now();
    let mut uploads = Uploads::new(plan.clone())?;
    let mut loaded = Loaded {
        keys: Vec::with_capacity(plan.keys),
        ..Loaded::default()
    };
    // Generated as they are written (25 items at a time), never all at once.
    let mut failure = None;
    let batches = std::iter::from_fn(|| {
        let batch = match uploads.batch() {
            Ok(batch) if !batch.is_empty() => batch,
            Ok(_) => return None,
            Err(error) => {
                failure = Some(error);
                return None;
            }
        };
        let mut requests = Vec::with_capacity(batch.len());
        for (key, received_at) in &batch {
            *loaded
                .per_hour
                .entry(key.release_at(*received_at))
                .or_default() += 1;
            loaded
                .keys
                .push((*key.key_data.as_bytes(), key.expires_at()));
            let put = PutRequest::builder()
                .set_item(Some(key_item(key, *received_at)))
                .build();
            match put {
                Ok(put) => requests.push(WriteRequest::builder().put_request(put).build()),
                Err(error) => {
                    failure = Some(error.to_string());
                    return None;
                }
            }
        }
        Some(requests)
    });
    let calls: Vec<std::result::Result<usize, String>> = stream::iter(batches)
        .map(|requests| write_batch(client, table, requests))
        .buffer_unordered(plan.concurrency.max(1))
        .collect()
        .await;
    if let Some(error) = failure {
        return Err(error);
    }
    let calls: Vec<usize> = calls.into_iter().collect::<Result<_, _>>()?;
    loaded.users = uploads.users;
    loaded.requests = calls.iter().sum();
    loaded.elapsed = started.elapsed();
    Ok(loaded)
}

/// One `BatchWriteItem`, repeated for its unprocessed items (with backoff) until none are left;
/// returns the calls it took.
async fn write_batch(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
    mut requests: Vec<WriteRequest>,
) -> Result<usize, String> {
    let mut calls = 0;
    while !requests.is_empty() {
        if calls > 0 {
            tokio::time::sleep(Duration::from_millis(50 << calls.min(5))).await;
        }
        if calls > 20 {
            return Err("BatchWriteItem kept leaving items unprocessed".into());
        }
        calls += 1;
        let output = client
            .batch_write_item()
            .request_items(table, requests)
            .send()
            .await
            .map_err(|e| format!("BatchWriteItem: {}", e.into_service_error()))?;
        requests = output
            .unprocessed_items
            .and_then(|mut unprocessed| unprocessed.remove(table))
            .unwrap_or_default();
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_upload_the_days_submit_keys_keeps_released_in_the_plan() {
        let plan = LoadPlan::ending_before("440", 10_000, 24, 1_795_132_800 + 1_234);
        let mut uploads = Uploads::new(plan.clone()).expect("uploads");
        let mut keys = Vec::new();
        loop {
            let batch = uploads.batch().expect("batch");
            if batch.is_empty() {
                break;
            }
            assert!(batch.len() <= BATCH);
            keys.extend(batch);
        }
        assert_eq!(keys.len(), 10_000);
        assert!(uploads.users > 10_000 / 14 && uploads.users < 10_000 / 4);
        let mut hours = std::collections::BTreeSet::new();
        for (key, received_at) in &keys {
            let release = key.release_at(*received_at);
            assert!((plan.first_release_hour..=plan.last_release_hour + HOUR).contains(&release));
            assert!(release + HOUR <= 1_795_132_800, "readable by a run now");
            hours.insert(release);
            let days = key.days_since_onset.expect("days since onset");
            assert!(
                (-3..=10).contains(&days),
                "within submit-keys' window: {days}"
            );
            assert!(key.rolling_end() <= *received_at, "ended before the upload");
        }
        assert_eq!(hours.len(), 24, "every release hour gets keys");
    }
}
