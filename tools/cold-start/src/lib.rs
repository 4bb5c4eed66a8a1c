//! A minimal Lambda Runtime API on loopback, and a way to start a function binary against it,
//! natively or as an aarch64 binary under Debian's `qemu-aarch64`.
//!
//! It speaks just enough of the Runtime API (`GET /2018-06-01/runtime/invocation/next`,
//! `POST …/invocation/{id}/response`, `POST …/invocation/{id}/error`, `POST …/init/error`) for
//! two uses: the `cold-start` command times process start to the first `next` request, and the
//! end-to-end test `tests/tests/artefacts.rs` hands a function one real event from `events/` and
//! reads its answer, the way Lambda's own Runtime API would.
//!
//! The HTTP here is hand-written (request line, headers, a `Content-Length` or chunked body) rather
//! than a server crate's: it is loopback-only test tooling, one client at a time, and the
//! workspace keeps no HTTP server dependency.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Where Debian's `libc6-arm64-cross` and `libgcc-s1-arm64-cross` put the aarch64 glibc.
pub const AARCH64_SYSROOT: &str = "/usr/aarch64-linux-gnu";

/// How a binary is started.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// As it is (an x86_64 binary on this host).
    Native,
    /// `qemu-aarch64 -L /usr/aarch64-linux-gnu <binary>`: user-mode emulation with the arm64
    /// glibc of Debian's cross packages as the dynamic loader's root.
    Aarch64Qemu,
}

/// The workspace root (two levels above this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The functions' environment on the running local stack: `.local/functions.env`
/// (`NAME="value"` lines, JSON-quoted values), which `scripts/stack.py` writes and
/// `cargo lambda watch` reads.
pub fn stack_environment(root: &Path) -> Result<BTreeMap<String, String>, String> {
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

/// One request a function made to the Runtime API.
#[derive(Debug)]
pub struct RuntimeRequest {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
    reply: mpsc::Sender<Vec<u8>>,
}

impl RuntimeRequest {
    /// Answers the request with `status` and `body`, plus `headers`.
    pub async fn answer(&self, status: u16, headers: &[(&str, String)], body: &[u8]) {
        let mut head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            if status < 300 { "OK" } else { "Error" },
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        let _ = self.reply.send(bytes).await;
    }
}

/// What a function answered to one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// `POST /2018-06-01/runtime/invocation/{id}/response`: the handler's result.
    Response(Vec<u8>),
    /// `POST …/invocation/{id}/error`: the handler failed.
    Error(Vec<u8>),
    /// `POST /2018-06-01/runtime/init/error`: the function failed before its first event.
    InitError(Vec<u8>),
}

/// A Runtime API listening on an ephemeral loopback port.
pub struct RuntimeApi {
    address: SocketAddr,
    requests: mpsc::Receiver<RuntimeRequest>,
}

impl RuntimeApi {
    pub async fn bind() -> Result<Self, String> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| e.to_string())?;
        let address = listener.local_addr().map_err(|e| e.to_string())?;
        let (sender, requests) = mpsc::channel(16);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_connection(socket, sender.clone()));
            }
        });
        Ok(Self { address, requests })
    }

    /// `AWS_LAMBDA_RUNTIME_API`'s value.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The next request any connection made, within `timeout`.
    pub async fn request(&mut self, timeout: Duration) -> Result<RuntimeRequest, String> {
        tokio::time::timeout(timeout, self.requests.recv())
            .await
            .map_err(|_| format!("no Runtime API request within {timeout:?}"))?
            .ok_or_else(|| "the Runtime API stopped".to_owned())
    }

    /// Waits for the function's first `next` request (it is then ready for an event).
    pub async fn ready(&mut self, timeout: Duration) -> Result<RuntimeRequest, String> {
        let request = self.request(timeout).await?;
        match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/2018-06-01/runtime/invocation/next") => Ok(request),
            ("POST", "/2018-06-01/runtime/init/error") => Err(format!(
                "init error: {}",
                String::from_utf8_lossy(&request.body)
            )),
            (method, path) => Err(format!("unexpected first request {method} {path}")),
        }
    }

    /// Hands `event` to the function once it asks for one, and returns what it answered.
    pub async fn invoke(
        &mut self,
        event: &[u8],
        function_name: &str,
        timeout: Duration,
    ) -> Result<Outcome, String> {
        let next = match self.ready(timeout).await {
            Ok(next) => next,
            Err(message) if message.starts_with("init error: ") => {
                return Ok(Outcome::InitError(
                    message
                        .trim_start_matches("init error: ")
                        .as_bytes()
                        .to_vec(),
                ));
            }
            Err(message) => return Err(message),
        };
        let request_id = "artefact-check-0001";
        let deadline = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            + timeout;
        next.answer(
            200,
            &[
                ("lambda-runtime-aws-request-id", request_id.to_owned()),
                (
                    "lambda-runtime-deadline-ms",
                    deadline.as_millis().to_string(),
                ),
                (
                    "lambda-runtime-invoked-function-arn",
                    format!("arn:aws:lambda:ap-northeast-1:123456789012:function:{function_name}"),
                ),
                (
                    "lambda-runtime-trace-id",
                    "Root=1-00000000-000000000000000000000000;Sampled=0".to_owned(),
                ),
            ],
            event,
        )
        .await;
        let answer = self.request(timeout).await?;
        let response_path = format!("/2018-06-01/runtime/invocation/{request_id}/response");
        let error_path = format!("/2018-06-01/runtime/invocation/{request_id}/error");
        let outcome = match (answer.method.as_str(), answer.path.as_str()) {
            ("POST", path) if path == response_path => Outcome::Response(answer.body.clone()),
            ("POST", path) if path == error_path => Outcome::Error(answer.body.clone()),
            (method, path) => return Err(format!("unexpected request {method} {path}")),
        };
        answer.answer(202, &[], b"{\"status\":\"OK\"}").await;
        Ok(outcome)
    }
}

/// Reads requests off one connection in order and hands each to the API, then writes its reply.
async fn serve_connection(socket: TcpStream, requests: mpsc::Sender<RuntimeRequest>) {
    let (reader, mut writer) = socket.into_split();
    let mut reader = BufReader::new(reader);
    loop {
        let Ok(Some((method, path, body))) = read_request(&mut reader).await else {
            return;
        };
        let (reply, mut replies) = mpsc::channel(1);
        let request = RuntimeRequest {
            method,
            path,
            body,
            reply,
        };
        if requests.send(request).await.is_err() {
            return;
        }
        // A `next` the caller never answers (the function is killed first) ends here.
        let Some(bytes) = replies.recv().await else {
            return;
        };
        if writer.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

type Request = (String, String, Vec<u8>);

/// One HTTP/1.1 request: its method, path and body (`Content-Length` or chunked).
async fn read_request<R: AsyncBufReadExt + Unpin>(
    reader: &mut R,
) -> Result<Option<Request>, String> {
    let mut line = String::new();
    if reader
        .read_line(&mut line)
        .await
        .map_err(|e| e.to_string())?
        == 0
    {
        return Ok(None);
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut header = String::new();
        if reader
            .read_line(&mut header)
            .await
            .map_err(|e| e.to_string())?
            == 0
        {
            return Ok(None);
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value
                    .parse()
                    .map_err(|_| format!("content-length {value:?}"))?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            }
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            reader
                .read_line(&mut size)
                .await
                .map_err(|e| e.to_string())?;
            let size = usize::from_str_radix(size.trim().split(';').next().unwrap_or("0"), 16)
                .map_err(|_| format!("chunk size {size:?}"))?;
            let mut chunk = vec![0; size + 2];
            reader
                .read_exact(&mut chunk)
                .await
                .map_err(|e| e.to_string())?;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..size]);
        }
    } else {
        body.resize(length, 0);
        reader
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Some((method, path, body)))
}

/// A function process started against a [`RuntimeApi`].
pub struct Function {
    pub child: Child,
    pub started: Instant,
}

impl Function {
    /// Starts `binary` with only `env` and the Lambda runtime's own variables (as Lambda does:
    /// nothing of this process's environment leaks in, except `PATH`).
    pub fn start(
        binary: &Path,
        machine: Machine,
        name: &str,
        api: &RuntimeApi,
        env: &BTreeMap<String, String>,
        log: Option<&std::fs::File>,
    ) -> Result<Self, String> {
        let output = || -> Result<Stdio, String> {
            match log {
                Some(file) => Ok(file.try_clone().map_err(|e| e.to_string())?.into()),
                None => Ok(Stdio::null()),
            }
        };
        let mut command = match machine {
            Machine::Native => Command::new(binary),
            Machine::Aarch64Qemu => {
                let mut command = Command::new("qemu-aarch64");
                command.arg("-L").arg(AARCH64_SYSROOT).arg(binary);
                command
            }
        };
        command
            .env_clear()
            .envs(env)
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", api.address().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "local")
            .stdin(Stdio::null())
            .stdout(output()?)
            .stderr(output()?)
            .kill_on_drop(true);
        let started = Instant::now();
        let child = command.spawn().map_err(|e| {
            format!(
                "{} ({machine:?}): {e}{}",
                binary.display(),
                if machine == Machine::Aarch64Qemu {
                    "; scripts/setup installs qemu-user"
                } else {
                    ""
                }
            )
        })?;
        Ok(Self { child, started })
    }

    /// Peak resident set size so far (`VmHWM`, kB); under qemu, the emulator's.
    pub fn peak_rss_kb(&self) -> Option<u64> {
        let pid = self.child.id()?;
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

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}
