//! `helpdesk`: the operator's command for consented operation logs and the usage survey, run with
//! the operator's own AWS credentials (never exposed as a user-facing route).
//!
//! ```text
//! helpdesk issue                              a log ID for an inquiry (through issue-log-id)
//! helpdesk get <logId> [--out FILE]           the redacted log: JSON printed, or a zip saved
//! helpdesk delete <logId>                     the investigation has ended: delete the log
//! helpdesk list --since YYYY-MM-DD            logs received since that day (UTC)
//! helpdesk survey-report --out-dir DIR        survey.csv and survey.png from every answer
//! ```
//! Tables and the function name come from `LOGS_TABLE`, `LOG_IDS_TABLE`, `EVENT_LOGS_TABLE` and
//! `ISSUE_LOG_ID_FUNCTION` (defaults: the names in infra/stack.json).

pub mod chart;

use std::io::Write;
use std::path::PathBuf;

use shared::adapters::dynamo_logs::{DynamoEventLogs, DynamoOperationLogs};
use shared::domain::log_id::LogId;
use shared::domain::operation_log::decode_log;
use shared::domain::survey::{SurveyReport, parse_survey};
use shared::logs::SURVEY_TYPE;
use shared::ports::{LogFormat, LogSummary, OperationLogStore};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub const USAGE: &str = "usage:
  helpdesk issue
  helpdesk get <logId> [--out FILE]
  helpdesk delete <logId>
  helpdesk list --since YYYY-MM-DD
  helpdesk survey-report --out-dir DIR";

/// What the command works on: the stores, the function that issues IDs, and the clock.
pub struct Helpdesk {
    pub logs: DynamoOperationLogs,
    pub event_logs: DynamoEventLogs,
    pub lambda: aws_sdk_lambda::Client,
    pub issue_function: String,
    pub now: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum HelpdeskError {
    #[error("{0}\n{USAGE}")]
    Usage(&'static str),
    #[error("not a log ID: {0}")]
    LogId(String),
    #[error("no log {0} (never stored, deleted, or past its 60 days)")]
    NoSuchLog(String),
    #[error("the store is unavailable: {0}")]
    Store(#[from] shared::ports::StoreError),
    #[error("the stored log is damaged")]
    Damaged,
    #[error("could not write {0}")]
    Write(String),
    #[error("issue-log-id failed: {0}")]
    Issue(String),
    #[error("survey chart: {0}")]
    Chart(String),
}

fn text_time(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

/// The stored name of a log ID as the helpdesk reads it: a service log ID (any case, hyphens or
/// not), or the UUID of a COCOA blob-style upload.
pub fn log_key(text: &str) -> Result<String, HelpdeskError> {
    if let Ok(id) = LogId::parse(text) {
        return Ok(id.canonical());
    }
    let lower = text.trim().to_ascii_lowercase();
    let uuid_shape = lower.len() == 36
        && lower.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    if uuid_shape {
        Ok(lower)
    } else {
        Err(HelpdeskError::LogId(text.chars().take(64).collect()))
    }
}

fn describe(log: &LogSummary) -> String {
    let display = LogId::parse(&log.id)
        .map(|id| id.to_string())
        .unwrap_or_else(|_| log.id.clone());
    let redactions: Vec<String> = log
        .redactions
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect();
    format!(
        "{display}\t{}\treceived {}\texpires {}\t{} bytes\tredacted: {}",
        log.format.as_str(),
        text_time(log.received_at),
        text_time(log.expires_at),
        log.original_bytes,
        if redactions.is_empty() {
            "none".to_owned()
        } else {
            redactions.join(",")
        }
    )
}

fn write_file(path: &PathBuf, bytes: &[u8]) -> Result<(), HelpdeskError> {
    std::fs::write(path, bytes).map_err(|_| HelpdeskError::Write(path.display().to_string()))
}

impl Helpdesk {
    pub async fn run(&self, args: &[String], out: &mut impl Write) -> Result<(), HelpdeskError> {
        let command = args.first().map(String::as_str);
        let rest = args.get(1..).unwrap_or_default();
        let option = |name: &str| -> Option<&String> {
            rest.iter()
                .position(|a| a == name)
                .and_then(|i| rest.get(i + 1))
        };
        let write = |out: &mut dyn Write, text: String| -> Result<(), HelpdeskError> {
            writeln!(out, "{text}").map_err(|_| HelpdeskError::Write("stdout".into()))
        };
        match command {
            Some("issue") => {
                let id = self.issue().await?;
                write(out, id)
            }
            Some("get") => {
                let id = log_key(
                    rest.first()
                        .ok_or(HelpdeskError::Usage("get needs a log ID"))?,
                )?;
                let (summary, body) = self
                    .logs
                    .get(&id, self.now)
                    .await?
                    .ok_or_else(|| HelpdeskError::NoSuchLog(id.clone()))?;
                let bytes = match summary.format {
                    LogFormat::Json => decode_log(&body).map_err(|_| HelpdeskError::Damaged)?,
                    LogFormat::Zip => body,
                };
                let target = option("--out").map(PathBuf::from).or_else(|| {
                    (summary.format == LogFormat::Zip)
                        .then(|| PathBuf::from(format!("cocoa_log_{id}.zip")))
                });
                match target {
                    Some(path) => {
                        write_file(&path, &bytes)?;
                        write(
                            out,
                            format!("{}\nsaved {}", describe(&summary), path.display()),
                        )
                    }
                    None => {
                        let pretty = serde_json::from_slice::<serde_json::Value>(&bytes)
                            .and_then(|v| serde_json::to_string_pretty(&v))
                            .map_err(|_| HelpdeskError::Damaged)?;
                        write(out, pretty)
                    }
                }
            }
            Some("delete") => {
                let id = log_key(
                    rest.first()
                        .ok_or(HelpdeskError::Usage("delete needs a log ID"))?,
                )?;
                if self.logs.delete(&id).await? {
                    write(out, format!("deleted {id}"))
                } else {
                    Err(HelpdeskError::NoSuchLog(id))
                }
            }
            Some("list") => {
                let since = option("--since")
                    .ok_or(HelpdeskError::Usage("list needs --since YYYY-MM-DD"))?;
                let day = time::Date::parse(
                    since,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .map_err(|_| HelpdeskError::Usage("--since must be YYYY-MM-DD"))?;
                let since = day.midnight().assume_utc().unix_timestamp();
                let logs = self.logs.list(since, self.now).await?;
                let mut lines: Vec<String> = logs.iter().map(describe).collect();
                lines.push(format!("{} log(s)", logs.len()));
                write(out, lines.join("\n"))
            }
            Some("survey-report") => {
                let dir = PathBuf::from(
                    option("--out-dir")
                        .ok_or(HelpdeskError::Usage("survey-report needs --out-dir DIR"))?,
                );
                std::fs::create_dir_all(&dir)
                    .map_err(|_| HelpdeskError::Write(dir.display().to_string()))?;
                let records = self.event_logs.scan_kind(SURVEY_TYPE, self.now).await?;
                let mut report = SurveyReport::default();
                let mut unreadable = 0usize;
                for record in &records {
                    match serde_json::from_str(&record.content)
                        .ok()
                        .and_then(|content| parse_survey(&content).ok())
                    {
                        Some(answer) => report.add(&answer),
                        None => unreadable += 1,
                    }
                }
                write_file(&dir.join("survey.csv"), report.to_csv().as_bytes())?;
                let png = chart::daily_chart_png(&report.daily_totals())
                    .map_err(|e| HelpdeskError::Chart(e.to_string()))?;
                write_file(&dir.join("survey.png"), &png)?;
                write(
                    out,
                    format!(
                        "{} answer(s), {unreadable} unreadable\nwrote {} and {}",
                        report.answers(),
                        dir.join("survey.csv").display(),
                        dir.join("survey.png").display()
                    ),
                )
            }
            _ => Err(HelpdeskError::Usage("unknown command")),
        }
    }

    /// Asks `issue-log-id` for a helpdesk log ID, through Lambda Invoke with the operator's
    /// credentials (the HTTP route is IAM-authorised in the deployment).
    async fn issue(&self) -> Result<String, HelpdeskError> {
        let event = serde_json::json!({
            "version": "2.0",
            "routeKey": "POST /api/v1/helpdesk/logs",
            "rawPath": "/api/v1/helpdesk/logs",
            "rawQueryString": "",
            "headers": {"content-type": "application/json"},
            "requestContext": {
                "http": {"method": "POST", "path": "/api/v1/helpdesk/logs", "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "helpdesk"},
                "routeKey": "POST /api/v1/helpdesk/logs",
                "stage": "$default",
                "requestId": "helpdesk",
                "accountId": "helpdesk",
                "apiId": "helpdesk",
                "domainName": "helpdesk",
                "domainPrefix": "helpdesk",
                "time": "01/Jan/2026:00:00:00 +0000",
                "timeEpoch": 0
            },
            "isBase64Encoded": false
        });
        let output = self
            .lambda
            .invoke()
            .function_name(&self.issue_function)
            .payload(aws_sdk_lambda::primitives::Blob::new(event.to_string()))
            .send()
            .await
            .map_err(|e| HelpdeskError::Issue(e.to_string()))?;
        let payload: serde_json::Value = output
            .payload
            .as_ref()
            .and_then(|p| serde_json::from_slice(p.as_ref()).ok())
            .ok_or(HelpdeskError::Issue("no answer".into()))?;
        if payload["statusCode"] != 201 {
            return Err(HelpdeskError::Issue(format!(
                "status {}",
                payload["statusCode"]
            )));
        }
        let body: serde_json::Value = payload["body"]
            .as_str()
            .and_then(|b| serde_json::from_str(b).ok())
            .ok_or(HelpdeskError::Issue("unreadable answer".into()))?;
        Ok(format!(
            "{}\texpires {}",
            body["logId"].as_str().unwrap_or_default(),
            body["expiresAt"].as_str().unwrap_or_default()
        ))
    }
}
