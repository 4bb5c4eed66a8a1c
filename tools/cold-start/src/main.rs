//! `cold-start`: how long each function takes from process start to ready for its first event,
//! and how much memory it holds by then, next to its binary size.
//!
//! For each function binary in `target/release/` (build them first: `cargo build --release -p …`),
//! it starts a minimal Lambda Runtime API on loopback (just enough to see the first
//! `GET /2018-06-01/runtime/invocation/next`), starts the binary with the Lambda environment
//! (`AWS_LAMBDA_RUNTIME_API` and friends) and the function's own variables from the running local
//! stack (`.local/functions.env`, written by `scripts/dev`), and measures the time until that first
//! request arrives. Peak RSS is `VmHWM` of the process at that moment. The process is then killed.
//! The same is done ROUNDS times per function; the median and the spread are printed.
//!
//! Needs the local stack (`scripts/dev`), because `publish-exports` reads its public key from KMS
//! at cold start, as it does in Lambda.
//!
//! `cargo run --release -p cold-start [-- ROUNDS]` measures the release binaries (the reported
//! figures). `cargo run -p cold-start -- 2 debug` starts the debug binaries the local stack built,
//! as `scripts/test` does to prove the tool works; those figures mean nothing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;
use tokio::process::Command;

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

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// `.local/functions.env`: `NAME="value"` lines (JSON-quoted values).
fn stack_environment(root: &Path) -> Result<BTreeMap<String, String>, String> {
    let path = root.join(".local/functions.env");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "{}: {e}; start the local stack with scripts/dev",
            path.display()
        )
    })?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (name, value) = line.split_once('=')?;
            let value: String = serde_json::from_str(value).ok()?;
            Some((name.to_owned(), value))
        })
        .collect())
}

/// Peak resident set size of a process so far (`VmHWM`, kB).
fn peak_rss_kb(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

struct Sample {
    ready: Duration,
    peak_rss_kb: u64,
}

async fn start_once(
    binary: &Path,
    name: &str,
    env: &BTreeMap<String, String>,
) -> Result<Sample, String> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .envs(env)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let pid = child.id().ok_or("no pid")?;
    let accepted = tokio::time::timeout(Duration::from_secs(20), listener.accept()).await;
    let (mut socket, _) = accepted
        .map_err(|_| format!("{name} did not ask for an event within 20 s"))?
        .map_err(|e| e.to_string())?;
    // The request line is enough: it is the `next` request (the only one a fresh runtime sends).
    let mut buffer = [0u8; 256];
    let read = socket.read(&mut buffer).await.map_err(|e| e.to_string())?;
    let ready = started.elapsed();
    let request = String::from_utf8_lossy(&buffer[..read]);
    if !request.starts_with("GET /2018-06-01/runtime/invocation/next") {
        return Err(format!("{name}: unexpected first request {request:?}"));
    }
    let peak_rss_kb = peak_rss_kb(pid).unwrap_or(0);
    let _ = child.kill().await;
    Ok(Sample { ready, peak_rss_kb })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let profile = match std::env::args().nth(2).as_deref() {
        None | Some("release") => "release",
        Some("debug") => "debug",
        Some(other) => return Err(format!("unknown profile {other:?}: release or debug")),
    };
    let root = workspace_root();
    let env = stack_environment(&root)?;
    println!(
        "cold start against a local Runtime API, {rounds} starts per function ({profile} binaries)"
    );
    println!("| function | binary | ready: median (min–max) | peak RSS at ready |");
    println!("|---|---|---|---|");
    for name in FUNCTIONS {
        let binary = root.join("target").join(profile).join(name);
        let size = std::fs::metadata(&binary)
            .map_err(|e| {
                format!(
                    "{}: {e}; build with cargo build{} -p {name}",
                    binary.display(),
                    if profile == "release" {
                        " --release"
                    } else {
                        ""
                    }
                )
            })?
            .len();
        let mut samples = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            samples.push(start_once(&binary, name, &env).await?);
        }
        let mut ready: Vec<f64> = samples
            .iter()
            .map(|s| s.ready.as_secs_f64() * 1000.0)
            .collect();
        ready.sort_by(f64::total_cmp);
        let peak = samples.iter().map(|s| s.peak_rss_kb).max().unwrap_or(0);
        println!(
            "| {name} | {:.2} MB | {:.1} ms ({:.1}–{:.1}) | {:.1} MB |",
            size as f64 / 1e6,
            ready[ready.len() / 2],
            ready[0],
            ready[ready.len() - 1],
            peak as f64 / 1024.0
        );
    }
    Ok(())
}
