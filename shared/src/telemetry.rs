//! Structured JSON logs.
//!
//! Log lines carry only the fields a call site names explicitly; no request, header, body or
//! request context is ever logged, so no address, processing number, attestation payload or key
//! reaches CloudWatch. Third-party crates are held at `warn`: at `debug` and below, HTTP clients
//! may write request details.

use tracing_subscriber::EnvFilter;

const QUIET_DEPENDENCIES: &[&str] = &[
    "aws_smithy",
    "aws_sdk",
    "aws_config",
    "hyper",
    "reqwest",
    "rustls",
    "h2",
    "tower",
];

/// Installs the JSON subscriber once per process; the level comes from `AWS_LAMBDA_LOG_LEVEL`
/// (Lambda's advanced logging controls), else `RUST_LOG`, else `info`.
pub fn init() {
    let mut filter = EnvFilter::try_from_env("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    for target in QUIET_DEPENDENCIES {
        if let Ok(directive) = format!("{target}=warn").parse() {
            filter = filter.add_directive(directive);
        }
    }
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_target(false)
        .with_current_span(true)
        .with_span_list(false)
        .try_init();
}

/// Counts one event in a CloudWatch metric through the Embedded Metric Format: one JSON line on
/// stdout that CloudWatch Logs turns into a metric, with no API call. Namespace `COCOA`,
/// dimensions `Function` and `Outcome`, unit `Count`. Only fixed names go in.
pub fn count(metric: &'static str, function: &'static str, outcome: &'static str) {
    let timestamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or_default();
    let line = serde_json::json!({
        "_aws": {
            "Timestamp": timestamp,
            "CloudWatchMetrics": [{
                "Namespace": "COCOA",
                "Dimensions": [["Function", "Outcome"]],
                "Metrics": [{"Name": metric, "Unit": "Count"}],
            }],
        },
        "Function": function,
        "Outcome": outcome,
        metric: 1,
    });
    println!("{line}");
}
