//! SPEC §7's export bars, measured: building, signing and deflate-zipping 1,000,000 keys costs at
//! most 10× one SHA-256 pass over the same `export.bin`, the zip takes at most 20.2 bytes per key,
//! and the process stays under 256 MB.
//!
//! `cargo bench -p shared --bench export` (the workspace's release profile, as Lambda runs it);
//! `taskset -c 0 cargo bench -p shared --bench export` for one core. Prints the CPU and the cores
//! the process may use, then the median (and the best) of several runs of each. On a shared
//! machine the load changes from second to second, so the hash is timed twice: taking turns with
//! the builds (the same load as they saw) and back to back after them; the ratio divides by the
//! lower median of the two. It measures and reports, it does not fail on a bar.

use std::error::Error;
use std::hint::black_box;
use std::time::{Duration, Instant};

use ring::rand::{SecureRandom, SystemRandom};
use shared::adapters::local_signer::LocalSigner;
use shared::domain::export::{
    ExportHeader, ExportKey, SignatureInfo, build_export, encode_export_bin, parse_export_zip,
};
use shared::domain::exposure_key::{KeyData, ReportType, interval_number};
use time::macros::datetime;

const MAX_RATIO: f64 = 10.0;
const MAX_BYTES_PER_KEY: f64 = 20.2;
const MAX_PEAK_RSS_MB: f64 = 256.0;

fn main() -> Result<(), Box<dyn Error>> {
    // Under `cargo bench` (which passes `--bench`): a million keys, 7 runs. Under `cargo test
    // --benches` (scripts/test): 10,000 keys once, to prove the bench works; those figures mean
    // nothing.
    let measuring = std::env::args().any(|a| a == "--bench");
    let (key_count, runs) = if measuring {
        (1_000_000, 7)
    } else {
        (10_000, 1)
    };
    let keys = sample_keys(key_count)?;
    let signer = LocalSigner::generate()?;
    let header = ExportHeader {
        region: "440".into(),
        start_timestamp: 1_795_132_800,
        end_timestamp: 1_795_219_200,
        signature_info: SignatureInfo::ecdsa_p256_sha256("440", "v1"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;

    let mut build = Vec::with_capacity(runs);
    let mut encode = Vec::with_capacity(runs);
    let mut hash = Vec::with_capacity(runs);
    let mut zip = Vec::new();
    let mut export_bin_len = 0;
    for _ in 0..runs {
        let mut input = keys.clone();
        let start = Instant::now();
        let built = runtime.block_on(build_export(&header, &mut input, &signer))?;
        build.push(start.elapsed());
        zip = built.zip;

        let mut input = keys.clone();
        let start = Instant::now();
        let export_bin = black_box(encode_export_bin(&header, &mut input)?);
        encode.push(start.elapsed());
        drop(input);

        // The baseline: one SHA-256 pass over the very export.bin the zip holds (the same keys).
        let start = Instant::now();
        black_box(ring::digest::digest(
            &ring::digest::SHA256,
            black_box(&export_bin),
        ));
        hash.push(start.elapsed());
        export_bin_len = export_bin.len();
    }

    // The hash again, back to back, over the export.bin of the keys.
    let mut sorted = keys.clone();
    let export_bin = encode_export_bin(&header, &mut sorted)?;
    drop(sorted);
    let mut hash_again = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        black_box(ring::digest::digest(
            &ring::digest::SHA256,
            black_box(&export_bin),
        ));
        hash_again.push(start.elapsed());
    }
    drop(export_bin);

    drop(keys);
    // Read before the check below, whose parse of a million keys takes more than the export.
    let peak_mb = peak_rss_kib()? as f64 / 1024.0;

    // Untimed: the zip reads back, holds every key, and its signature verifies.
    let parsed = parse_export_zip(&zip)?;
    parsed.verify(signer.public_key())?;
    if parsed.contents.keys.len() != key_count {
        return Err("the zip lost keys".into());
    }

    let best = |times: &[Duration]| times.iter().min().copied().unwrap_or_default();
    let best_hash = best(&hash).min(best(&hash_again));
    let (best_build, best_encode) = (best(&build), best(&encode));
    let (build, encode) = (median(&mut build), median(&mut encode));
    let (hash_between, hash_after) = (median(&mut hash), median(&mut hash_again));
    let hash = hash_between.min(hash_after);
    let ratio = build.as_secs_f64() / hash.as_secs_f64();
    let best_ratio = best_build.as_secs_f64() / best_hash.as_secs_f64();
    let zip_len = zip.len();
    let bytes_per_key = zip_len as f64 / key_count as f64;
    let verdict = |ok: bool| if ok { "ok" } else { "OVER THE BAR" };
    println!(
        "export of {key_count} keys ({} MB export.bin), median of {runs} runs (best in brackets)",
        export_bin_len / 1_000_000,
    );
    println!(
        "  CPU: {}; cores this process may use: {}; load average: {}",
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average()
    );
    println!(
        "  build + sign + deflate-zip: {:>8.1} ms ({:.1})",
        ms(build),
        ms(best_build)
    );
    println!(
        "    of which sort + protobuf: {:>8.1} ms ({:.1})  (encode_export_bin alone)",
        ms(encode),
        ms(best_encode)
    );
    println!(
        "  one SHA-256 pass:           {:>8.1} ms ({:.1})  (between the builds {:.1}, after them {:.1})",
        ms(hash),
        ms(best_hash),
        ms(hash_between),
        ms(hash_after)
    );
    println!(
        "  ratio:                      {ratio:>8.2}x ({best_ratio:.2}x)  (bar {MAX_RATIO}x: {})",
        verdict(ratio <= MAX_RATIO)
    );
    println!(
        "  zip: {zip_len} bytes = {bytes_per_key:.2} bytes/key (bar {MAX_BYTES_PER_KEY}: {})",
        verdict(bytes_per_key <= MAX_BYTES_PER_KEY)
    );
    println!(
        "  peak RSS (VmHWM, whole bench process): {peak_mb:.0} MB (bar {MAX_PEAK_RSS_MB} MB: {})",
        verdict(peak_mb < MAX_PEAK_RSS_MB)
    );
    Ok(())
}

/// A million random keys with COCOA-like metadata: rolling starts over 14 days, a full-day
/// period, transmission risk 4, report type 1 (confirmed test), days since onset -3..=10.
fn sample_keys(key_count: usize) -> Result<Vec<ExportKey>, Box<dyn Error>> {
    const DRAW: usize = 16 + 2;
    let first_day = interval_number(datetime!(2026-11-06 00:00 UTC));
    let first_day = u32::try_from(first_day)?;
    let mut random = vec![0u8; key_count * DRAW];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| "no randomness")?;
    random
        .chunks_exact(DRAW)
        .map(|draw| {
            let mut key = [0; 16];
            key.copy_from_slice(&draw[..16]);
            Ok(ExportKey {
                key_data: KeyData::new(key),
                rolling_start_number: first_day + 144 * u32::from(draw[16] % 14),
                rolling_period: 144,
                transmission_risk: 4,
                report_type: Some(ReportType::CONFIRMED_TEST),
                days_since_onset: Some(i32::from(draw[17] % 14) - 3),
            })
        })
        .collect()
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort_unstable();
    times[times.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// The first `model name` in /proc/cpuinfo (x86; other machines may not have one), with which of
/// the features the hash and the compressors lean on it has: hosts of one "kind" differ.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |wanted: &str| {
        info.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.trim() == wanted)
            .map(|(_, value)| value.trim().to_owned())
    };
    let flags = field("flags").unwrap_or_default();
    let features: Vec<&str> = ["sha_ni", "avx2", "avx512f", "pclmulqdq"]
        .into_iter()
        .filter(|feature| flags.split_whitespace().any(|flag| flag == *feature))
        .collect();
    format!(
        "{} [{}]",
        field("model name").unwrap_or_else(|| "unknown".to_owned()),
        features.join(" ")
    )
}

/// The 1-, 5- and 15-minute load averages (/proc/loadavg): the machine may be shared.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "unknown".to_owned(),
        |line| {
            line.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        },
    )
}

/// The process's peak resident set size (`VmHWM` in /proc/self/status), in KiB.
fn peak_rss_kib() -> Result<u64, Box<dyn Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .ok_or("no VmHWM in /proc/self/status")?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}
