//! The exporter end to end at national scale: `publish-exports`' real run path (its use case
//! with its production adapters) against a private DynamoDB Local and moto, over N synthetic
//! released keys (`e2e::load`), with the unavoidable read beside it as the baseline.
//!
//! `cargo bench -p e2e --bench export_run` measures N = 10^4, 10^5 and 10^6 (`EXPORT_RUN_SIZES`,
//! comma-separated, picks others); `cargo test -p e2e --bench export_run` (as `scripts/test` runs
//! it) runs the smoke size, 20,000 keys in files of at most 8,000 and runs of at most about
//! 12,000 (`MAX_KEYS_PER_RUN`: so a second run releases the rest). Each size gets fresh
//! services: load the keys over 24 release hours, set the exporter's cursor just before them
//! (a run reads exactly those hours, as a run after a day's pause would), read them once bare
//! (the baseline: a paginated Query of every hour, the same index and projection, items
//! counted and dropped), then run the exporter once, then check what it published:
//! - list.json lists each file once, and the files are the release's consecutive batch numbers;
//! - each file is a GAEN export whose signature verifies against the KMS key's public half;
//! - every loaded key is in exactly one file, and no file holds anything else;
//! - no file holds more keys than the limit, and the files are the release's split (each but the
//!   last ceil(keys / files) keys, the last the rest).
//!
//! A failed check ends the bench with an error: at the smoke size this is a test. Peak RSS is the
//! bench process's `VmHWM` during the run (reset just before it through `/proc/self/clear_refs`),
//! so it counts what the run holds on top of the bench's own data.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::time::{Duration, Instant};

use e2e::load::{LoadPlan, load_released_keys};
use e2e::services::{self, LocalService};
use e2e::{ExporterSetup, RequestCounter, bucket_objects, listed_exports};
use shared::adapters::AwsTimeouts;
use shared::adapters::dynamo_exports::{DynamoExportLedger, DynamoReleasedKeys};
use shared::domain::export::ExportPublicKey;
use shared::export_run::{MAX_KEYS_PER_RUN, RELEASE_READS_IN_FLIGHT, never};
use shared::ports::{ExportLedger, ExportState};
use time::OffsetDateTime;

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const REGION: &str = "440";
const RELEASE_HOURS: i64 = 24;

/// One size's figures.
struct Row {
    keys: usize,
    /// Keys still within their TTL when the run started: what the files must hold.
    live: usize,
    users: usize,
    load: Duration,
    baseline: Duration,
    baseline_items: usize,
    baseline_units: f64,
    baseline_requests: u64,
    run: Duration,
    /// CPU time the bench process used during the run (user + system, every thread): what a
    /// Lambda's share of a vCPU has to cover.
    run_cpu: Duration,
    /// The run's read, publish and list times (its report).
    phases: (Duration, Duration, Duration),
    rss_before_kib: u64,
    peak_kib: u64,
    requests: BTreeMap<String, u64>,
    read_units: f64,
    files: usize,
    keys_per_file: (usize, usize),
    zip_bytes: usize,
}

fn main() -> Result<()> {
    let measuring = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = match std::env::var("EXPORT_RUN_SIZES") {
        Ok(list) if measuring => list
            .split(',')
            .map(|n| n.trim().parse())
            .collect::<std::result::Result<_, _>>()?,
        _ if measuring => vec![10_000, 100_000, 1_000_000],
        _ => vec![20_000],
    };
    let declared_max = declared_max_keys_per_file()?;
    let max_keys_per_file = if measuring { declared_max } else { 8_000 };
    // At the smoke size, a cap that splits the backlog over two runs.
    let max_keys_per_run = if measuring { MAX_KEYS_PER_RUN } else { 12_000 };
    // The exporter's `RELEASE_READS_IN_FLIGHT` setting, as the Lambda would be given it.
    let reads_in_flight = match std::env::var("RELEASE_READS_IN_FLIGHT") {
        Ok(n) => n.parse()?,
        Err(_) => RELEASE_READS_IN_FLIGHT,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    println!(
        "publish-exports end to end ({}, {} cores; DynamoDB Local and moto on the same machine), files of at most {max_keys_per_file} keys, {RELEASE_HOURS} release hours, {reads_in_flight} read at once",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut rows = Vec::new();
    for keys in sizes {
        let row = runtime.block_on(one_size(
            keys,
            max_keys_per_file,
            reads_in_flight,
            max_keys_per_run,
        ))?;
        print_row(&row);
        rows.push(row);
    }
    println!();
    println!(
        "| N | load | baseline (bare Query) | run (CPU) | run / baseline | peak RSS (growth) | bytes/key | DynamoDB requests (read units) | S3 puts | KMS calls | files × keys |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for row in &rows {
        let dynamodb: u64 = row
            .requests
            .iter()
            .filter(|(name, _)| name.to_lowercase().starts_with("dynamodb"))
            .map(|(_, n)| n)
            .sum();
        let s3_puts = row
            .requests
            .get("S3.PutObject")
            .copied()
            .unwrap_or_default();
        let kms: u64 = row
            .requests
            .iter()
            .filter(|(name, _)| name.to_lowercase().starts_with("kms"))
            .map(|(_, n)| n)
            .sum();
        let growth = row.peak_kib.saturating_sub(row.rss_before_kib);
        println!(
            "| {} | {:.1} s | {:.2} s | {:.2} s ({:.2} s) | {:.2}× | {:.0} MB ({:.0} MB) | {:.0} | {dynamodb} ({:.0}) | {s3_puts} | {kms} | {} × {}–{} |",
            row.keys,
            row.load.as_secs_f64(),
            row.baseline.as_secs_f64(),
            row.run.as_secs_f64(),
            row.run_cpu.as_secs_f64(),
            row.run.as_secs_f64() / row.baseline.as_secs_f64(),
            row.peak_kib as f64 / 1024.0,
            growth as f64 / 1024.0,
            growth as f64 * 1024.0 / row.keys as f64,
            row.read_units,
            row.files,
            row.keys_per_file.0,
            row.keys_per_file.1,
        );
    }
    Ok(())
}

fn print_row(row: &Row) {
    println!(
        "N = {} ({} within their TTL): {} users loaded in {:.1} s; baseline {:.2} s ({} items, {} requests, {:.0} read units); run {:.2} s (read {:.2} s, build + sign + upload {:.2} s, list {:.2} s); peak RSS {:.0} MB ({:.0} MB before); {} files of {}–{} keys, {} bytes of zips; requests {:?}, read units {:.0}",
        row.keys,
        row.live,
        row.users,
        row.load.as_secs_f64(),
        row.baseline.as_secs_f64(),
        row.baseline_items,
        row.baseline_requests,
        row.baseline_units,
        row.run.as_secs_f64(),
        row.phases.0.as_secs_f64(),
        row.phases.1.as_secs_f64(),
        row.phases.2.as_secs_f64(),
        row.peak_kib as f64 / 1024.0,
        row.rss_before_kib as f64 / 1024.0,
        row.files,
        row.keys_per_file.0,
        row.keys_per_file.1,
        row.zip_bytes,
        row.requests,
        row.read_units,
    );
}

async fn one_size(
    keys: usize,
    max_keys_per_file: usize,
    reads_in_flight: usize,
    max_keys_per_run: usize,
) -> Result<Row> {
    let dynamodb = LocalService::dynamodb_local_in_memory();
    let moto = LocalService::moto();
    tokio::join!(dynamodb.start(), moto.start());
    let counter = RequestCounter::default();
    let config = services::sdk_config(AwsTimeouts::BATCH).await;
    let ddb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&config)
            .endpoint_url(dynamodb.endpoint())
            .interceptor(counter.clone())
            .build(),
    );
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .endpoint_url(moto.endpoint())
            .force_path_style(true)
            .interceptor(counter.clone())
            .build(),
    );
    let kms = aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(&config)
            .endpoint_url(moto.endpoint())
            .interceptor(counter.clone())
            .build(),
    );
    let tables = services::create_declared_tables(&ddb).await;
    let bucket = services::create_export_bucket(&s3).await;
    let signing_key = services::create_signing_key(&kms).await;

    let now = OffsetDateTime::now_utc();
    let plan = LoadPlan::ending_before(REGION, keys, RELEASE_HOURS, now.unix_timestamp());
    let loaded = load_released_keys(&ddb, &tables["keys"], &plan).await?;
    let last_hour = loaded
        .per_hour
        .keys()
        .next_back()
        .copied()
        .unwrap_or(plan.last_release_hour);
    DynamoExportLedger::new(ddb.clone(), &tables["exports"])
        .save_state(
            REGION,
            &ExportState {
                cursor_hour: Some(plan.first_release_hour - 3600),
                ..ExportState::default()
            },
        )
        .await?;

    let started = Instant::now();
    let (baseline_items, baseline_units, baseline_requests) =
        bare_read(&ddb, &tables["keys"], &plan, last_hour, reads_in_flight).await?;
    let mut baseline = started.elapsed();
    if baseline_items != keys {
        return Err(format!("the baseline read {baseline_items} of {keys} keys").into());
    }

    let exporter = ExporterSetup {
        dynamodb: ddb.clone(),
        keys_table: &tables["keys"],
        exports_table: &tables["exports"],
        s3: s3.clone(),
        bucket: &bucket,
        kms: kms.clone(),
        signing_key: &signing_key,
        regions: vec![REGION.into()],
        max_keys_per_file,
        base_url: format!("{}/{bucket}", moto.endpoint()),
        reads_in_flight,
        max_keys_per_run,
    }
    .build()
    .await;
    let public_key = kms
        .get_public_key()
        .key_id(&signing_key)
        .send()
        .await?
        .public_key
        .ok_or("no public key")?;
    let verifying_key = ExportPublicKey::from_spki_der(public_key.as_ref())?;
    counter.take();
    let rss_before_kib = status_kib("VmRSS")?;
    std::fs::write("/proc/self/clear_refs", "5")?;
    let cpu_before = cpu_time()?;
    let started = Instant::now();
    let reports = exporter.run(now, &never).await?;
    let run = started.elapsed();
    let run_cpu = cpu_time()?.saturating_sub(cpu_before);
    let peak_kib = status_kib("VmHWM")?;
    let requests = counter.take();
    let report = reports.first().ok_or("no region report")?.clone();
    // A backlog over the per-run cap is released over several runs: the next ones (untimed)
    // release the hours after the first run's.
    let mut written = vec![report.files_written.clone()];
    let mut hours = report.hours_read;
    for _ in 0..8 {
        let next = exporter.run(now, &never).await?;
        let next = next.first().ok_or("no region report")?;
        if next.keys_released == 0 {
            break;
        }
        hours += next.hours_read;
        written.push(next.files_written.clone());
    }
    counter.take();
    if (written.len() > 1) != (keys >= max_keys_per_run) {
        return Err(format!(
            "{} runs for {keys} keys with at most {max_keys_per_run} a run",
            written.len()
        )
        .into());
    }
    if hours > loaded.per_hour.len() + 2 {
        return Err(format!("{hours} hours read for {} loaded", loaded.per_hour.len()).into());
    }
    eprintln!(
        "N = {keys}: run {:.2} s (read {:.2} s, publish {:.2} s, list {:.2} s), peak RSS {} KiB ({rss_before_kib} KiB before), {:?}",
        run.as_secs_f64(),
        report.read_time.as_secs_f64(),
        report.publish_time.as_secs_f64(),
        report.list_time.as_secs_f64(),
        peak_kib,
        report
    );
    // The baseline again, after the run: the faster of the two counts (so neither read gains
    // from coming second, and the ratio errs high).
    let started = Instant::now();
    bare_read(&ddb, &tables["keys"], &plan, last_hour, reads_in_flight).await?;
    baseline = baseline.min(started.elapsed());
    counter.take();

    let published = bucket_objects(&s3, &bucket, &format!("c19r/{REGION}/")).await;
    let (files, keys_per_file, zip_bytes, live) = check_published(
        &published,
        &bucket,
        &verifying_key,
        &loaded.keys,
        now.unix_timestamp(),
        max_keys_per_file,
        &written,
    )?;
    Ok(Row {
        keys,
        live,
        users: loaded.users,
        load: loaded.elapsed,
        baseline,
        baseline_items,
        baseline_units,
        baseline_requests,
        run,
        run_cpu,
        phases: (report.read_time, report.publish_time, report.list_time),
        rss_before_kib,
        peak_kib,
        requests,
        read_units: report.read_units,
        files,
        keys_per_file,
        zip_bytes,
    })
}

/// The unavoidable read: every release hour of the plan through `last_hour`, paginated, with the
/// exporter's own Query (`DynamoReleasedKeys::each_page`: its index and projection) and number of
/// hours in flight; the items are counted and dropped. Returns the items, the read units and the
/// requests.
async fn bare_read(
    ddb: &aws_sdk_dynamodb::Client,
    table: &str,
    plan: &LoadPlan,
    last_hour: i64,
    reads_in_flight: usize,
) -> Result<(usize, f64, u64)> {
    use futures_util::StreamExt as _;
    let source = DynamoReleasedKeys::new(ddb.clone(), table);
    let hours = (0..)
        .map(|i| plan.first_release_hour + i * 3600)
        .take_while(|hour| *hour <= last_hour);
    let reads = futures_util::stream::iter(hours)
        .map(|hour| {
            let source = &source;
            async move {
                let (mut items, mut units, mut requests) = (0usize, 0f64, 0u64);
                source
                    .each_page(REGION, hour, |page| {
                        requests += 1;
                        units += page
                            .consumed_capacity
                            .as_ref()
                            .and_then(|c| c.capacity_units)
                            .unwrap_or(0.0);
                        items += page.items.map_or(0, |items| items.len());
                    })
                    .await?;
                Ok::<_, shared::ports::StoreError>((items, units, requests))
            }
        })
        .buffered(reads_in_flight.max(1))
        .collect::<Vec<_>>()
        .await;
    let mut total = (0, 0.0, 0);
    for read in reads {
        let (items, units, requests) = read?;
        total = (total.0 + items, total.1 + units, total.2 + requests);
    }
    Ok(total)
}

/// The checks in the module comment. Returns the files, the fewest and most keys in one, and the
/// zips' total size.
fn check_published(
    published: &BTreeMap<String, Vec<u8>>,
    bucket: &str,
    verifying_key: &ExportPublicKey,
    loaded: &[([u8; 16], i64)],
    now: i64,
    max_keys_per_file: usize,
    written: &[Vec<u64>],
) -> Result<(usize, (usize, usize), usize, usize)> {
    let list = listed_exports(published, &format!("c19r/{REGION}/"), bucket, verifying_key)?;
    // A key past its TTL when the run starts is left out (as DynamoDB's TTL would remove it).
    let mut found: HashMap<[u8; 16], (u32, bool)> = loaded
        .iter()
        .map(|(key, expires_at)| (*key, (0, *expires_at > now)))
        .collect();
    let (mut fewest, mut most, mut bytes) = (usize::MAX, 0, 0);
    for file in &list {
        let object = &file.object;
        bytes += file.zip_bytes;
        let count = file.keys.len();
        if count > max_keys_per_file {
            return Err(format!("{object} holds {count} keys, over {max_keys_per_file}").into());
        }
        fewest = fewest.min(count);
        most = most.max(count);
        for key in &file.keys {
            match found.get_mut(key) {
                Some((seen, true)) => *seen += 1,
                Some((_, false)) => {
                    return Err(format!("{object} holds a key past its TTL").into());
                }
                None => return Err(format!("{object} holds a key that was never loaded").into()),
            }
        }
    }
    let live = found.values().filter(|(_, live)| *live).count();
    if found.values().any(|(seen, live)| *live && *seen != 1) {
        let lost = found
            .values()
            .filter(|(seen, live)| *live && *seen == 0)
            .count();
        let doubled = found.values().filter(|(seen, _)| *seen > 1).count();
        return Err(format!("{lost} loaded keys in no file, {doubled} in more than one").into());
    }
    // One release (one run): every file but the last holds ceil(keys / files), the last the rest.
    let files = list.len().max(1);
    let per_file = live.div_ceil(files);
    if written.len() == 1
        && (most != per_file.min(live) || fewest < live.saturating_sub(per_file * (files - 1)))
    {
        return Err(format!("files of {fewest} to {most} keys: not the release's split").into());
    }
    let runs = written.len();
    let written: Vec<u64> = written.concat();
    let expected_files = if runs == 1 {
        live.div_ceil(max_keys_per_file).max(1)
    } else {
        written.len()
    };
    if list.len() != expected_files || written.len() != list.len() {
        return Err(format!(
            "{} files listed, {} written, {expected_files} expected",
            list.len(),
            written.len()
        )
        .into());
    }
    let numbers: Vec<u64> = list
        .iter()
        .map(|file| {
            file.object
                .rsplit('/')
                .next()
                .and_then(|name| name.strip_suffix(".zip"))
                .and_then(|n| n.parse().ok())
                .ok_or("a file not named by its batch number")
        })
        .collect::<std::result::Result<_, _>>()?;
    let consecutive = numbers.windows(2).all(|pair| pair[1] == pair[0] + 1);
    if !consecutive || numbers != written {
        return Err(format!("batch numbers {numbers:?}, written {written:?}").into());
    }
    Ok((list.len(), (fewest, most), bytes, live))
}

/// `MAX_KEYS_PER_FILE` as `infra/stack.json` declares it for `publish-exports`.
fn declared_max_keys_per_file() -> Result<usize> {
    let declaration = services::declaration();
    let functions = declaration["functions"].as_array().ok_or("no functions")?;
    let exporter = functions
        .iter()
        .find(|f| f["name"] == "publish-exports")
        .ok_or("no publish-exports")?;
    Ok(exporter["environment"]["MAX_KEYS_PER_FILE"]
        .as_str()
        .ok_or("no MAX_KEYS_PER_FILE")?
        .parse()?)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// This process's CPU time so far (user + system, `/proc/self/stat` fields 14 and 15).
fn cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.rsplit_once(')').ok_or("unreadable /proc/self/stat")?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields
        .get(11..13)
        .ok_or("short /proc/self/stat")?
        .iter()
        .map(|f| f.parse::<u64>())
        .sum::<std::result::Result<_, _>>()?;
    // USER_HZ is 100 on every Linux these benches run on.
    Ok(Duration::from_millis(ticks * 10))
}

/// A `/proc/self/status` figure, in KiB.
fn status_kib(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(field).and_then(|l| l.strip_prefix(':')))
        .ok_or_else(|| format!("no {field} in /proc/self/status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}
