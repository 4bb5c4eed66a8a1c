//! `cold-start`: how long each function takes from process start to ready for its first event,
//! and how much memory it holds by then, next to its binary size; beside each, the same for
//! `lambda-hello` (a bare `lambda_runtime` function) started the same way in the same run, and
//! the ratio of the two.
//!
//! For each function it starts a minimal Lambda Runtime API on loopback (`cold_start::RuntimeApi`),
//! starts the binary with the Lambda environment (`AWS_LAMBDA_RUNTIME_API` and friends) and the
//! function's own variables from the running local stack (`.local/functions.env`, written by
//! `scripts/dev`), and measures the time until its first `next` request arrives. Peak RSS is
//! `VmHWM` of the process at that moment. The process is then killed. The same is done ROUNDS
//! times per function; the median and the spread are printed.
//!
//! Needs the local stack (`scripts/dev`), because `publish-exports` reads its public key from KMS
//! at cold start, as it does in Lambda.
//!
//! - `cargo run --release -p cold-start [-- ROUNDS]`: the x86_64 release binaries in
//!   `target/release/` (`cargo build --release -p … -p lambda-hello` first).
//! - `cargo run --release -p cold-start -- ROUNDS arm64`: the deployable arm64 artefacts
//!   (`target/lambda/<name>/bootstrap`, from `scripts/package`) under `qemu-aarch64`. Emulated
//!   times mean little alone; the ratio to `lambda-hello` under the same qemu is the figure.
//!   Peak RSS is then the emulator's.
//! - `cargo run -p cold-start -- 2 debug`: the debug binaries the local stack built, as
//!   `scripts/test` does to prove the tool works; those figures mean nothing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use cold_start::{Function, Machine, RuntimeApi, stack_environment, workspace_root};

const FUNCTIONS: &[&str] = &[
    "submit-keys",
    "verify-processing-number",
    "register",
    "publish-exports",
    "issue-log-id",
    "accept-logs",
    "accept-event-logs",
    "enforce-retention",
];

/// The yardstick every function is divided by.
const HELLO: &str = "lambda-hello";

#[derive(Clone, Copy)]
enum Build {
    Release,
    Debug,
    Arm64,
}

impl Build {
    fn binary(self, root: &Path, name: &str) -> PathBuf {
        match self {
            Build::Release => root.join("target/release").join(name),
            Build::Debug => root.join("target/debug").join(name),
            Build::Arm64 => root.join("target/lambda").join(name).join("bootstrap"),
        }
    }

    fn machine(self) -> Machine {
        match self {
            Build::Arm64 => Machine::Aarch64Qemu,
            Build::Release | Build::Debug => Machine::Native,
        }
    }

    fn how_to_build(self, name: &str) -> String {
        match self {
            Build::Release => format!("build with cargo build --release -p {name}"),
            Build::Debug => format!("build with cargo build -p {name}"),
            Build::Arm64 => "build with scripts/package".to_owned(),
        }
    }
}

struct Sample {
    ready: Duration,
    peak_rss_kb: u64,
}

struct Figures {
    size: u64,
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    peak_rss_kb: u64,
}

async fn start_once(
    binary: &Path,
    machine: Machine,
    name: &str,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<Sample, String> {
    let mut api = RuntimeApi::bind().await?;
    let function = Function::start(binary, machine, name, &api, env, None)?;
    let ready = api.ready(Duration::from_secs(60)).await;
    let elapsed = function.started.elapsed();
    let peak_rss_kb = function.peak_rss_kb().unwrap_or(0);
    function.stop().await;
    ready.map_err(|e| format!("{name}: {e}"))?;
    Ok(Sample {
        ready: elapsed,
        peak_rss_kb,
    })
}

async fn measure(
    build: Build,
    root: &Path,
    name: &str,
    rounds: usize,
    env: &std::collections::BTreeMap<String, String>,
) -> Result<Figures, String> {
    let binary = build.binary(root, name);
    let size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}; {}", binary.display(), build.how_to_build(name)))?
        .len();
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        samples.push(start_once(&binary, build.machine(), name, env).await?);
    }
    let mut ready: Vec<f64> = samples
        .iter()
        .map(|s| s.ready.as_secs_f64() * 1000.0)
        .collect();
    ready.sort_by(f64::total_cmp);
    Ok(Figures {
        size,
        median_ms: ready[ready.len() / 2],
        min_ms: ready[0],
        max_ms: ready[ready.len() - 1],
        peak_rss_kb: samples.iter().map(|s| s.peak_rss_kb).max().unwrap_or(0),
    })
}

fn row(name: &str, figures: &Figures, hello_median_ms: f64) {
    println!(
        "| {name} | {:.2} MB | {:.1} ms ({:.1}–{:.1}) | {:.1}× | {:.1} MB |",
        figures.size as f64 / 1e6,
        figures.median_ms,
        figures.min_ms,
        figures.max_ms,
        figures.median_ms / hello_median_ms,
        figures.peak_rss_kb as f64 / 1024.0
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let build = match std::env::args().nth(2).as_deref() {
        None | Some("release") => Build::Release,
        Some("debug") => Build::Debug,
        Some("arm64") => Build::Arm64,
        Some(other) => {
            return Err(format!("unknown build {other:?}: release, debug or arm64"));
        }
    };
    let root = workspace_root();
    let mut env = stack_environment(&root)?;
    env.insert("RUST_LOG".to_owned(), "warn".to_owned());
    let (label, machine) = match build {
        Build::Release => ("x86_64 release binaries", "native"),
        Build::Debug => ("x86_64 debug binaries", "native"),
        Build::Arm64 => ("arm64 artefacts of scripts/package", "qemu-aarch64"),
    };
    println!(
        "cold start against a local Runtime API, {rounds} starts per function ({label}, {machine})"
    );
    // The yardstick first and last: the ratio uses their mean, so a drift in the machine's
    // speed during the run shows as a gap between the two hello rows.
    let hello_before = measure(build, &root, HELLO, rounds, &env).await?;
    let mut measured = Vec::new();
    for name in FUNCTIONS {
        measured.push((*name, measure(build, &root, name, rounds, &env).await?));
    }
    let hello_after = measure(build, &root, HELLO, rounds, &env).await?;
    let hello = (hello_before.median_ms + hello_after.median_ms) / 2.0;
    println!("| function | binary | ready: median (min–max) | ÷ {HELLO} | peak RSS at ready |");
    println!("|---|---|---|---|---|");
    row(&format!("{HELLO} (before)"), &hello_before, hello);
    for (name, figures) in &measured {
        row(name, figures, hello);
    }
    row(&format!("{HELLO} (after)"), &hello_after, hello);
    Ok(())
}
