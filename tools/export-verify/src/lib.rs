//! `export-verify`: the operator's check of a published GAEN export file, from the bucket, from
//! the URL phones download it from, or from disk.
//!
//! ```text
//! export-verify <zip path | http(s)://host/path | s3://bucket/key> --public-key <PEM or DER file>
//! ```
//!
//! It fetches the zip, reads both entries (checking the `export.bin` header and both protobufs),
//! verifies `export.sig` (ECDSA P-256 / SHA-256 over the whole `export.bin`) against the public
//! key registered with Apple and Google, and prints a summary: key count, time range (UTC),
//! region, batch, signature infos, and the rolling starts, rolling periods, report types,
//! transmission risks and days since onset seen. The last line is `VERIFIED: ...` or
//! `FAILED: ...`; the exit status is 0 only after `VERIFIED` (1 for a failed check, 2 for bad
//! usage). Key bytes are never printed.
//!
//! S3 uses the usual AWS environment (credentials, `AWS_REGION`, `AWS_ENDPOINT_URL_S3`).

use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use shared::domain::export::{
    ExportPublicKey, MAX_EXPORT_BIN_BYTES, MAX_EXPORT_SIG_BYTES, ParseError, ParsedExport,
    PublicKeyError, SignatureInfo, parse_export_zip, proto,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One line of help, printed on bad usage.
pub const USAGE: &str = "usage: export-verify <zip path | http(s)://host/path | s3://bucket/key> --public-key <PEM or DER file>";
/// Largest zip fetched: the largest `export.bin` and `export.sig` the parser reads, stored, plus
/// room for the zip's own records.
pub const MAX_ZIP_BYTES: u64 = MAX_EXPORT_BIN_BYTES + MAX_EXPORT_SIG_BYTES + (1 << 20);
/// Largest public-key file read (a PEM P-256 key is under 200 bytes).
const MAX_KEY_FILE_BYTES: u64 = 64 << 10;
const HTTP_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit status after `VERIFIED`.
pub const EXIT_VERIFIED: u8 = 0;
/// Exit status when a fetch, a parse or the signature check failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit status for bad usage.
pub const EXIT_USAGE: u8 = 2;

/// Where the zip comes from.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Source {
    File(PathBuf),
    /// An `http://` or `https://` URL.
    Http(String),
    S3 {
        bucket: String,
        key: String,
    },
}

impl Source {
    /// `s3://bucket/key`, an `http(s)://` URL, or else a file path.
    pub fn parse(text: &str) -> Result<Self, ToolError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            return match rest.split_once('/') {
                Some((bucket, key)) if !bucket.is_empty() && !key.is_empty() => Ok(Self::S3 {
                    bucket: bucket.to_owned(),
                    key: key.to_owned(),
                }),
                _ => Err(ToolError::Usage(format!(
                    "an S3 source is s3://bucket/key, not {text:?}"
                ))),
            };
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(Self::Http(text.to_owned()));
        }
        if text.is_empty() {
            return Err(ToolError::Usage("an empty source".into()));
        }
        Ok(Self::File(PathBuf::from(text)))
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Http(url) => f.write_str(url),
            Self::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

/// What the command line asks for.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    Help,
    Verify { source: Source, public_key: PathBuf },
}

/// Why the command could not finish its check.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("HTTP fetch failed: {0}")]
    Http(String),
    #[error("S3 fetch failed: {0}")]
    S3(String),
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("public key: {0}")]
    PublicKey(#[from] PublicKeyError),
    #[error("{0}")]
    Parse(#[from] ParseError),
}

/// Reads the arguments after the program name: one source and `--public-key FILE` (or
/// `--public-key=FILE`), in any order; `-h`/`--help` alone asks for help.
pub fn parse_args(args: &[String]) -> Result<Command, ToolError> {
    let mut source = None;
    let mut public_key = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "-h" || arg == "--help" {
            return Ok(Command::Help);
        } else if arg == "--public-key" {
            let file = args
                .next()
                .ok_or_else(|| ToolError::Usage("--public-key needs a file".into()))?;
            public_key = Some(PathBuf::from(file));
        } else if let Some(file) = arg.strip_prefix("--public-key=") {
            public_key = Some(PathBuf::from(file));
        } else if arg.starts_with("--") {
            return Err(ToolError::Usage(format!("unknown option {arg}")));
        } else if source.is_some() {
            return Err(ToolError::Usage(format!("a second source {arg:?}")));
        } else {
            source = Some(Source::parse(arg)?);
        }
    }
    match (source, public_key) {
        (Some(source), Some(public_key)) => Ok(Command::Verify { source, public_key }),
        (None, _) => Err(ToolError::Usage("no zip path or URL given".into())),
        (_, None) => Err(ToolError::Usage("--public-key is required".into())),
    }
}

/// Runs the command: `args` without the program name. Writes the summary and the verdict to
/// `out`, usage errors to `err`; returns the exit status.
pub async fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    let (source, key_path) = match parse_args(args) {
        Ok(Command::Help) => {
            let _ = writeln!(out, "{USAGE}");
            return EXIT_VERIFIED;
        }
        Ok(Command::Verify { source, public_key }) => (source, public_key),
        Err(error) => {
            let _ = writeln!(err, "export-verify: {error}\n{USAGE}");
            return EXIT_USAGE;
        }
    };
    let checked = async {
        let key_bytes = read_file(&key_path, MAX_KEY_FILE_BYTES, "the public-key file")?;
        let key = ExportPublicKey::from_pem_or_der(&key_bytes)?;
        let zip = fetch(&source).await?;
        Ok::<_, ToolError>((key, zip))
    }
    .await;
    let verified = match checked {
        Ok((key, zip)) => {
            let _ = writeln!(out, "source:             {source} ({} bytes)", zip.len());
            check(&zip, &key, out).unwrap_or(false)
        }
        Err(error) => {
            let _ = writeln!(out, "FAILED: {error}");
            false
        }
    };
    if verified { EXIT_VERIFIED } else { EXIT_FAILED }
}

/// Parses and verifies one zip, writing the summary and then `VERIFIED: ...` or `FAILED: ...`
/// to `out`. True when verified.
pub fn check(zip: &[u8], key: &ExportPublicKey, out: &mut dyn Write) -> io::Result<bool> {
    let parsed = match parse_export_zip(zip) {
        Ok(parsed) => parsed,
        Err(error) => {
            writeln!(out, "FAILED: {error}")?;
            return Ok(false);
        }
    };
    write!(out, "{}", Summary::of(&parsed))?;
    match parsed.verify(key) {
        Ok(signature) => {
            writeln!(
                out,
                "VERIFIED: {} signs the whole export.bin ({} bytes) for batch {} of {}",
                describe(&signature.signature_info),
                parsed.export_bin.len(),
                signature.batch_num,
                signature.batch_size
            )?;
            Ok(true)
        }
        Err(error) => {
            writeln!(out, "FAILED: {error}")?;
            Ok(false)
        }
    }
}

/// Fetches the zip, refusing more than [`MAX_ZIP_BYTES`].
pub async fn fetch(source: &Source) -> Result<Vec<u8>, ToolError> {
    match source {
        Source::File(path) => read_file(path, MAX_ZIP_BYTES, "the zip"),
        Source::Http(url) => fetch_http(url).await,
        Source::S3 { bucket, key } => fetch_s3(bucket, key).await,
    }
}

fn read_file(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ToolError> {
    let read_error = |source| ToolError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_error)?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > limit {
        return Err(ToolError::TooLarge { what, limit });
    }
    Ok(bytes)
}

async fn fetch_http(url: &str) -> Result<Vec<u8>, ToolError> {
    let http_error = |error: reqwest::Error| ToolError::Http(error.to_string());
    let client = reqwest::Client::builder()
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(http_error)?;
    let mut response = client.get(url).send().await.map_err(http_error)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ToolError::Http(format!("{url} answered {status}")));
    }
    let too_large = ToolError::TooLarge {
        what: "the zip",
        limit: MAX_ZIP_BYTES,
    };
    if response
        .content_length()
        .is_some_and(|len| len > MAX_ZIP_BYTES)
    {
        return Err(too_large);
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http_error)? {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_ZIP_BYTES {
            return Err(too_large);
        }
    }
    Ok(bytes)
}

async fn fetch_s3(bucket: &str, key: &str) -> Result<Vec<u8>, ToolError> {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    // Path-style addressing against an overridden endpoint (a local emulator), where names like
    // `bucket.127.0.0.1` do not resolve.
    let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    let client = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&config)
            .force_path_style(path_style)
            .build(),
    );
    let output = client
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .map_err(|error| {
            ToolError::S3(aws_sdk_s3::error::DisplayErrorContext(error).to_string())
        })?;
    let too_large = ToolError::TooLarge {
        what: "the zip",
        limit: MAX_ZIP_BYTES,
    };
    if output
        .content_length()
        .is_some_and(|len| u64::try_from(len).map_or(true, |len| len > MAX_ZIP_BYTES))
    {
        return Err(too_large);
    }
    let mut body = output.body;
    let mut bytes = Vec::new();
    while let Some(chunk) = body
        .try_next()
        .await
        .map_err(|error| ToolError::S3(error.to_string()))?
    {
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > MAX_ZIP_BYTES {
            return Err(too_large);
        }
    }
    Ok(bytes)
}

/// What an export holds, without its key bytes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Summary {
    pub keys: usize,
    pub revised_keys: usize,
    pub start_timestamp: u64,
    pub end_timestamp: u64,
    pub region: String,
    pub batch_num: i32,
    pub batch_size: i32,
    pub signature_infos: Vec<SignatureInfo>,
    /// Per `TEKSignature`: its info, batch (num, size) and signature length.
    pub signatures: Vec<(SignatureInfo, (i32, i32), usize)>,
    /// Lowest and highest rolling start interval number of `keys`.
    pub rolling_starts: Option<(u32, u32)>,
    /// Rolling period → number of keys.
    pub rolling_periods: BTreeMap<u32, usize>,
    /// Report type (`None` = absent) → number of keys.
    pub report_types: BTreeMap<Option<u8>, usize>,
    /// Transmission risk → number of keys.
    pub transmission_risks: BTreeMap<u8, usize>,
    /// Lowest and highest days since onset, and how many keys have none.
    pub days_since_onset: (Option<(i32, i32)>, usize),
    /// Whether `keys` are in key-byte order (the reference server's order; COCOA's original
    /// server shuffled them instead, which phones accept too).
    pub sorted: bool,
}

impl Summary {
    pub fn of(parsed: &ParsedExport) -> Self {
        let contents = &parsed.contents;
        let keys = &contents.keys;
        let mut summary = Self {
            keys: keys.len(),
            revised_keys: contents.revised_keys.len(),
            start_timestamp: contents.start_timestamp,
            end_timestamp: contents.end_timestamp,
            region: contents.region.clone(),
            batch_num: contents.batch_num,
            batch_size: contents.batch_size,
            signature_infos: contents.signature_infos.clone(),
            signatures: parsed
                .signatures
                .iter()
                .map(|s| {
                    (
                        s.signature_info.clone(),
                        (s.batch_num, s.batch_size),
                        s.signature.len(),
                    )
                })
                .collect(),
            rolling_starts: None,
            rolling_periods: BTreeMap::new(),
            report_types: BTreeMap::new(),
            transmission_risks: BTreeMap::new(),
            days_since_onset: (None, 0),
            sorted: keys
                .windows(2)
                .all(|pair| pair[0].key_data <= pair[1].key_data),
        };
        for key in keys {
            let start = key.rolling_start_number;
            summary.rolling_starts = Some(
                summary
                    .rolling_starts
                    .map_or((start, start), |(low, high)| {
                        (low.min(start), high.max(start))
                    }),
            );
            *summary
                .rolling_periods
                .entry(key.rolling_period)
                .or_default() += 1;
            *summary
                .report_types
                .entry(key.report_type.map(|r| r.value()))
                .or_default() += 1;
            *summary
                .transmission_risks
                .entry(key.transmission_risk)
                .or_default() += 1;
            match key.days_since_onset {
                Some(days) => {
                    summary.days_since_onset.0 = Some(
                        summary
                            .days_since_onset
                            .0
                            .map_or((days, days), |(low, high)| (low.min(days), high.max(days))),
                    );
                }
                None => summary.days_since_onset.1 += 1,
            }
        }
        summary
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "keys:               {} (revised keys: {})",
            self.keys, self.revised_keys
        )?;
        writeln!(
            f,
            "time range (UTC):   {} .. {} ({} .. {})",
            utc(self.start_timestamp),
            utc(self.end_timestamp),
            self.start_timestamp,
            self.end_timestamp
        )?;
        writeln!(f, "region:             {:?}", self.region)?;
        writeln!(
            f,
            "batch:              {} of {}",
            self.batch_num, self.batch_size
        )?;
        for info in &self.signature_infos {
            writeln!(f, "signature info:     {}", describe(info))?;
        }
        for (info, (num, size), len) in &self.signatures {
            writeln!(
                f,
                "export.sig:         {}, batch {num} of {size}, {len}-byte signature",
                describe(info)
            )?;
        }
        match self.rolling_starts {
            Some((low, high)) => writeln!(
                f,
                "rolling starts:     {low} .. {high} ({} .. {})",
                utc(u64::from(low) * 600),
                utc(u64::from(high) * 600)
            )?,
            None => writeln!(f, "rolling starts:     none")?,
        }
        writeln!(
            f,
            "rolling periods:    {}",
            counts(&self.rolling_periods, |period| period.to_string())
        )?;
        writeln!(
            f,
            "report types:       {}",
            counts(&self.report_types, |report_type| match report_type {
                None => "absent".to_owned(),
                Some(value) => report_type_name(*value),
            })
        )?;
        writeln!(
            f,
            "transmission risks: {}",
            counts(&self.transmission_risks, |risk| risk.to_string())
        )?;
        let (range, absent) = self.days_since_onset;
        let range = range.map_or("none".to_owned(), |(low, high)| format!("{low} .. {high}"));
        writeln!(f, "days since onset:   {range}, absent in {absent}")?;
        if !self.sorted {
            writeln!(
                f,
                "note:               keys are not in key-byte order (the reference server sorts them)"
            )?;
        }
        Ok(())
    }
}

fn describe(info: &SignatureInfo) -> String {
    format!(
        "key id {:?}, version {:?}, algorithm {}",
        info.verification_key_id, info.verification_key_version, info.signature_algorithm
    )
}

fn report_type_name(value: u8) -> String {
    proto::temporary_exposure_key::ReportType::try_from(i32::from(value))
        .map_or_else(|_| value.to_string(), |name| name.as_str_name().to_owned())
}

/// `value: count` pairs, in order.
fn counts<K>(map: &BTreeMap<K, usize>, name: impl Fn(&K) -> String) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(key, count)| format!("{}: {count}", name(key)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// RFC 3339 in UTC, or the raw number when it is no representable time.
fn utc(seconds: u64) -> String {
    i64::try_from(seconds)
        .ok()
        .and_then(|seconds| OffsetDateTime::from_unix_timestamp(seconds).ok())
        .and_then(|time| time.format(&Rfc3339).ok())
        .unwrap_or_else(|| format!("{seconds} (not a valid time)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|arg| (*arg).to_owned()).collect()
    }

    #[test]
    fn sources_are_told_apart() {
        assert_eq!(
            Source::parse("s3://exports/c19r/440/1.zip").expect("s3"),
            Source::S3 {
                bucket: "exports".into(),
                key: "c19r/440/1.zip".into()
            }
        );
        assert!(Source::parse("s3://exports").is_err());
        assert!(Source::parse("s3:///key").is_err());
        assert_eq!(
            Source::parse("https://cdn.example/c19r/440/1.zip").expect("url"),
            Source::Http("https://cdn.example/c19r/440/1.zip".into())
        );
        assert_eq!(
            Source::parse("1.zip").expect("file"),
            Source::File("1.zip".into())
        );
    }

    #[test]
    fn arguments_in_any_order() {
        let expected = Command::Verify {
            source: Source::File("a.zip".into()),
            public_key: "pub.pem".into(),
        };
        assert_eq!(
            parse_args(&args(&["a.zip", "--public-key", "pub.pem"])).ok(),
            Some(expected.clone())
        );
        assert_eq!(
            parse_args(&args(&["--public-key=pub.pem", "a.zip"])).ok(),
            Some(expected)
        );
        assert_eq!(parse_args(&args(&["--help"])).ok(), Some(Command::Help));
        for bad in [
            &["a.zip"][..],
            &["--public-key", "pub.pem"],
            &["a.zip", "--public-key"],
            &["a.zip", "b.zip", "--public-key", "k"],
            &["a.zip", "--key", "k"],
        ] {
            assert!(
                matches!(parse_args(&args(bad)), Err(ToolError::Usage(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn times_print_as_utc_or_as_numbers() {
        assert_eq!(utc(1_600_000_000), "2020-09-13T12:26:40Z");
        assert_eq!(utc(u64::MAX), format!("{} (not a valid time)", u64::MAX));
        assert_eq!(report_type_name(1), "CONFIRMED_TEST");
        assert_eq!(report_type_name(9), "9");
    }
}
