//! `publish-exports`' use case: released keys become signed GAEN export files in the bucket, then
//! `list.json` is rewritten.
//!
//! Crash safety. A run commits to a release (hours, batch numbers, `created`) in the ledger before
//! it writes anything public, and a rerun resumes exactly that release: the same closed hours give
//! the same keys, split the same way, under the same batch numbers; a file already in the bucket
//! is never written again (conditional put), so no published file ever changes, and every
//! released key ends up in exactly one file. Only hours at least `grace` old are read: an hour
//! only ever receives keys written before it starts (`ExposureKey::release_at`), so a closed hour
//! never changes.
//!
//! Reads grow with what is released: one Query per region and elapsed hour, never a Scan.

use std::time::{Duration, Instant};

use time::OffsetDateTime;

use crate::domain::export::ExportKey;
use crate::domain::exposure_key::{INTERVAL_SECONDS, KEY_RETENTION_SECONDS};
use crate::ports::{
    BucketError, ExportBucket, ExportLedger, ExportState, Object, PendingRelease, PublishedBatch,
    ReleasedKeySource, StoreError,
};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Published files stay listed while any of their keys started within this window.
pub const PUBLISH_WINDOW_SECONDS: i64 = 14 * DAY;
/// Release hours read at once, by default: each hour is its own partition of the index, so the
/// reads do not compete in DynamoDB (docs/BENCHMARKS.md, "The exporter end to end").
pub const RELEASE_READS_IN_FLIGHT: usize = 8;
/// A run releases at most about this many keys (whole hours; `ExportSettings::max_keys_per_run`),
/// so that it always fits the exporter Lambda's memory and timeout (docs/BENCHMARKS.md, "The
/// exporter end to end"): a backlog larger than this is released over several runs.
pub const MAX_KEYS_PER_RUN: usize = 5_000_000;
/// A first run looks back this far.
const FIRST_RUN_LOOKBACK_SECONDS: i64 = 15 * DAY;
/// Zips never change: phones and CloudFront may keep them for a year.
pub const ZIP_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// list.json changes every run.
pub const LIST_CACHE_CONTROL: &str = "public, max-age=300, must-revalidate";

/// What the exporter is configured with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSettings {
    pub regions: Vec<String>,
    /// Releases with fewer real keys are padded up to this many (default 1,000).
    pub min_keys_per_release: usize,
    /// Above this, a release is split into several files (default 250,000).
    pub max_keys_per_file: usize,
    /// Where phones fetch the bucket's objects from (CloudFront), without a trailing slash.
    pub base_url: String,
    /// How old an hour must be before it is read (longer than a submission can take).
    pub grace_seconds: i64,
    /// Release hours read at once (default `RELEASE_READS_IN_FLIGHT`).
    pub reads_in_flight: usize,
    /// A new release stops at the hour that brings it to this many keys (default
    /// `MAX_KEYS_PER_RUN`); the next run releases the hours after it.
    pub max_keys_per_run: usize,
}

/// One file to build: its keys (real ones; the builder pads) and what goes into its header.
pub struct FileSpec<'a> {
    pub region: &'a str,
    pub keys: &'a [ExportKey],
    pub start_timestamp: u64,
    pub end_timestamp: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("export file could not be built: {0}")]
pub struct FileError(pub String);

/// Builds a signed, verified export zip (`export.bin` then `export.sig`).
pub trait ExportFileFactory {
    fn build(&self, spec: &FileSpec<'_>)
    -> impl Future<Output = Result<Vec<u8>, FileError>> + Send;
}

/// Points where a test may stop a run, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checkpoint {
    /// The release is committed in the ledger; nothing is public yet.
    ReleasePlanned,
    /// File `i` of the release is in the bucket.
    FileUploaded(u32),
    /// Every file of the release is recorded in the ledger.
    FilesRecorded,
    /// The cursor has moved past the release.
    StateAdvanced,
    /// list.json is rewritten; retired files are not yet deleted.
    ListWritten,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Bucket(#[from] BucketError),
    #[error(transparent)]
    File(#[from] FileError),
    #[error("run stopped at {0:?}")]
    Interrupted(Checkpoint),
}

/// What a run did in one region.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RegionReport {
    pub region: String,
    pub hours_read: usize,
    /// Requests (pages) the reads of released keys took, and the read capacity they consumed.
    pub read_requests: u64,
    pub read_units: f64,
    /// Time spent reading released keys; building, signing and uploading the files (and
    /// recording them); rewriting list.json and retiring old files.
    pub read_time: Duration,
    pub publish_time: Duration,
    pub list_time: Duration,
    pub keys_released: usize,
    pub files_written: Vec<u64>,
    pub files_already_present: Vec<u64>,
    pub listed: usize,
    pub retired: usize,
}

/// One element of list.json, fields in COCOA's order.
#[derive(serde::Serialize)]
struct ListEntry<'a> {
    region: &'a str,
    url: String,
    created: i64,
}

pub struct PublishExports<S, L, B, F> {
    pub source: S,
    pub ledger: L,
    pub bucket: B,
    pub files: F,
    pub settings: ExportSettings,
}

fn floor_hour(t: i64) -> i64 {
    t.div_euclid(HOUR) * HOUR
}

/// Never stops: production's fault hook.
pub fn never(_: Checkpoint) -> bool {
    false
}

impl<S, L, B, F> PublishExports<S, L, B, F>
where
    S: ReleasedKeySource + Sync,
    L: ExportLedger + Sync,
    B: ExportBucket + Sync,
    F: ExportFileFactory + Sync,
{
    /// One run over every region. `stop_at` returns true where a test wants the run to die.
    pub async fn run(
        &self,
        now: OffsetDateTime,
        stop_at: &(dyn Fn(Checkpoint) -> bool + Sync),
    ) -> Result<Vec<RegionReport>, ExportError> {
        let mut reports = Vec::with_capacity(self.settings.regions.len());
        for region in &self.settings.regions {
            reports.push(self.run_region(region, now, stop_at).await?);
        }
        Ok(reports)
    }

    fn file_count(&self, keys: usize) -> u32 {
        let max = self.settings.max_keys_per_file.max(1);
        u32::try_from(keys.div_ceil(max).max(1)).unwrap_or(u32::MAX)
    }

    /// The keys released in `(after, through]`, still within retention at `as_of`, sorted by key
    /// bytes (the order they are split in and written in), and the last hour read: with
    /// `key_cap`, reading stops after the hour that brings the keys to the cap (a release never
    /// splits an hour), so one run holds and builds a bounded release and the next run goes on
    /// from there.
    async fn released(
        &self,
        region: &str,
        after: i64,
        through: i64,
        as_of: i64,
        key_cap: Option<usize>,
        report: &mut RegionReport,
    ) -> Result<(Vec<ExportKey>, i64), ExportError> {
        use futures_util::StreamExt as _;
        let started = Instant::now();
        let mut keys = Vec::new();
        let hours = (1..)
            .map(|i| after + i * HOUR)
            .take_while(|hour| *hour <= through);
        // Several hours in flight (each hour is its own partition of the index), taken in order.
        let mut reads = futures_util::stream::iter(hours)
            .map(|hour| async move { (hour, self.source.released(region, hour).await) })
            .buffered(self.settings.reads_in_flight.max(1));
        let mut last = after;
        while let Some((hour, read)) = reads.next().await {
            let read = read?;
            report.read_requests += u64::from(read.requests);
            report.read_units += read.read_units;
            keys.extend(read.keys.into_iter().filter(|k| {
                i64::from(k.rolling_start_number) * INTERVAL_SECONDS + KEY_RETENTION_SECONDS > as_of
            }));
            report.hours_read += 1;
            last = hour;
            if key_cap.is_some_and(|cap| keys.len() >= cap) {
                break;
            }
        }
        keys.sort_unstable_by_key(|k| k.key_data);
        report.read_time += started.elapsed();
        Ok((keys, last))
    }

    async fn run_region(
        &self,
        region: &str,
        now: OffsetDateTime,
        stop_at: &(dyn Fn(Checkpoint) -> bool + Sync),
    ) -> Result<RegionReport, ExportError> {
        let stop = |checkpoint| {
            if stop_at(checkpoint) {
                Err(ExportError::Interrupted(checkpoint))
            } else {
                Ok(())
            }
        };
        let mut report = RegionReport {
            region: region.to_owned(),
            ..RegionReport::default()
        };
        let now_s = now.unix_timestamp();
        let now_ms = i64::try_from(now.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
        let mut state = self.ledger.state(region).await?;
        let target = floor_hour(now_s - self.settings.grace_seconds);

        // A new release's keys are read once, to plan it and to build it; a resumed release reads
        // its (closed, unchanging) hours again.
        let pending = match state.pending {
            Some(pending) => Some((pending, None)),
            None => {
                let after = state
                    .cursor_hour
                    .unwrap_or(floor_hour(target - FIRST_RUN_LOOKBACK_SECONDS));
                if target <= after {
                    None
                } else {
                    // Filtered as of the release's `created`, as a resumed run filters them.
                    let created_ms = now_ms.max(state.last_created_ms + 1);
                    let (keys, through) = self
                        .released(
                            region,
                            after,
                            target,
                            created_ms.div_euclid(1000),
                            Some(self.settings.max_keys_per_run),
                            &mut report,
                        )
                        .await?;
                    if keys.is_empty() {
                        state.cursor_hour = Some(through);
                        self.save(region, &mut state).await?;
                        None
                    } else {
                        let files = self.file_count(keys.len());
                        let first_batch = self.ledger.allocate_batches(files).await?;
                        let pending = PendingRelease {
                            after_hour: after,
                            through_hour: through,
                            first_batch,
                            files,
                            created_ms,
                        };
                        state.pending = Some(pending);
                        self.save(region, &mut state).await?;
                        stop(Checkpoint::ReleasePlanned)?;
                        Some((pending, Some(keys)))
                    }
                }
            }
        };

        if let Some((pending, keys)) = pending {
            self.publish(region, &pending, keys, &mut report, &stop)
                .await?;
            state.cursor_hour = Some(pending.through_hour);
            state.last_created_ms = pending.created_ms + i64::from(pending.files) - 1;
            state.pending = None;
            self.save(region, &mut state).await?;
            stop(Checkpoint::StateAdvanced)?;
        }
        let started = Instant::now();
        self.rewrite_list(region, now_s, &mut report, &stop).await?;
        report.list_time = started.elapsed();
        Ok(report)
    }

    async fn save(&self, region: &str, state: &mut ExportState) -> Result<(), ExportError> {
        self.ledger.save_state(region, state).await?;
        state.version += 1;
        Ok(())
    }

    /// Builds and uploads every file of a committed release, then records them.
    async fn publish(
        &self,
        region: &str,
        pending: &PendingRelease,
        keys: Option<Vec<ExportKey>>,
        report: &mut RegionReport,
        stop: &(dyn Fn(Checkpoint) -> Result<(), ExportError> + Sync),
    ) -> Result<(), ExportError> {
        let keys = match keys {
            Some(keys) => keys,
            None => {
                let as_of = pending.created_ms.div_euclid(1000);
                // The committed hours, all of them, whatever the cap is now.
                self.released(
                    region,
                    pending.after_hour,
                    pending.through_hour,
                    as_of,
                    None,
                    report,
                )
                .await?
                .0
            }
        };
        report.keys_released = keys.len();
        let started = Instant::now();
        let files = usize::try_from(pending.files).unwrap_or(1).max(1);
        let chunk = keys.len().div_ceil(files).max(1);
        let mut batches = Vec::with_capacity(files);
        for index in 0..pending.files {
            let position = usize::try_from(index).unwrap_or(usize::MAX);
            let part = keys.chunks(chunk).nth(position).unwrap_or(&[]);
            let batch_num = pending.first_batch + u64::from(index);
            let object_key = format!("c19r/{region}/{batch_num}.zip");
            let start = part
                .iter()
                .map(|k| i64::from(k.rolling_start_number) * 600)
                .min()
                .unwrap_or(pending.through_hour);
            let newest_start = part
                .iter()
                .map(|k| i64::from(k.rolling_start_number) * 600)
                .max()
                .unwrap_or(start);
            // `end` covers every key (each ends at least two hours before its release hour) and
            // differs between files, as batch 1/1 files must (google-en-server.md §1.3).
            let end = pending.through_hour + i64::from(index);
            let spec = FileSpec {
                region,
                keys: part,
                start_timestamp: u64::try_from(start).unwrap_or_default(),
                end_timestamp: u64::try_from(end).unwrap_or_default(),
            };
            let zip = self.files.build(&spec).await?;
            let object = Object {
                key: &object_key,
                body: zip,
                content_type: "application/zip",
                cache_control: ZIP_CACHE_CONTROL,
            };
            if self.bucket.put_new(object).await? {
                report.files_written.push(batch_num);
            } else {
                report.files_already_present.push(batch_num);
            }
            stop(Checkpoint::FileUploaded(index))?;
            batches.push(PublishedBatch {
                batch_num,
                created_ms: pending.created_ms + i64::from(index),
                object_key,
                key_count: u32::try_from(part.len()).unwrap_or(u32::MAX),
                keys_until: newest_start + PUBLISH_WINDOW_SECONDS,
            });
        }
        for batch in &batches {
            self.ledger.record_batch(region, batch).await?;
        }
        report.publish_time += started.elapsed();
        stop(Checkpoint::FilesRecorded)
    }

    /// list.json: every file with a key still within 14 days, oldest first; files past that
    /// leave the list, then the bucket and the ledger.
    async fn rewrite_list(
        &self,
        region: &str,
        now: i64,
        report: &mut RegionReport,
        stop: &(dyn Fn(Checkpoint) -> Result<(), ExportError> + Sync),
    ) -> Result<(), ExportError> {
        let mut batches = self.ledger.batches(region).await?;
        batches.sort_by_key(|b| b.batch_num);
        let (live, retired): (Vec<_>, Vec<_>) =
            batches.into_iter().partition(|b| b.keys_until > now);
        let entries: Vec<ListEntry<'_>> = live
            .iter()
            .map(|b| ListEntry {
                region,
                url: format!("{}/{}", self.settings.base_url, b.object_key),
                created: b.created_ms,
            })
            .collect();
        let body = serde_json::to_vec(&entries).map_err(|e| FileError(e.to_string()))?;
        let key = format!("c19r/{region}/list.json");
        self.bucket
            .put(Object {
                key: &key,
                body,
                content_type: "application/json",
                cache_control: LIST_CACHE_CONTROL,
            })
            .await?;
        report.listed = live.len();
        stop(Checkpoint::ListWritten)?;
        for batch in retired {
            self.bucket.delete(&batch.object_key).await?;
            self.ledger.forget_batch(region, batch.batch_num).await?;
            report.retired += 1;
        }
        Ok(())
    }
}

/// Production's file factory: pads small releases, builds and signs the file through `signer`
/// (KMS), and checks the signature against the key's public half before the file can be
/// uploaded: a file phones would reject is never published.
pub struct SignedExportFiles<G> {
    pub signer: G,
    /// DER SubjectPublicKeyInfo of the signing key.
    pub public_key: Vec<u8>,
    pub verification_key_id: String,
    pub verification_key_version: String,
    /// Releases with fewer real keys are padded up to this many.
    pub min_keys: usize,
}

impl<G: crate::ports::ExportSigner + Sync> ExportFileFactory for SignedExportFiles<G> {
    async fn build(&self, spec: &FileSpec<'_>) -> Result<Vec<u8>, FileError> {
        use crate::domain::export::{ExportHeader, SignatureInfo, build_export, pad_release};

        let mut keys: Vec<ExportKey> = spec.keys.to_vec();
        pad_release(&mut keys, self.min_keys, &ring::rand::SystemRandom::new())
            .map_err(|e| FileError(e.to_string()))?;
        let header = ExportHeader {
            region: spec.region.to_owned(),
            start_timestamp: spec.start_timestamp,
            end_timestamp: spec.end_timestamp,
            signature_info: SignatureInfo::ecdsa_p256_sha256(
                &self.verification_key_id,
                &self.verification_key_version,
            ),
        };
        let built = build_export(&header, &mut keys, &self.signer)
            .await
            .map_err(|e| FileError(e.to_string()))?;
        crate::domain::export::verify_digest_signature(
            &self.public_key,
            &built.digest,
            &built.signature,
        )
        .map_err(|e| {
            FileError(format!(
                "the signature does not verify against the public key: {e}"
            ))
        })?;
        Ok(built.zip)
    }
}
