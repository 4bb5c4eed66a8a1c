//! Reading export zips, ours or any other GAEN server's: entries are found by name in any order,
//! stored or deflated; an absent `rolling_period` is 144; unknown fields are skipped. Every input
//! gives a value or an error, never a panic, and memory stays bounded (limits below), whatever the
//! zip claims about its sizes.

use std::io::{Cursor, Read};

use prost::Message as _;

use super::{EXPORT_BIN_NAME, EXPORT_SIG_NAME, ExportKey, HEADER, SignatureInfo, proto};
use crate::domain::exposure_key::{KEY_LENGTH, KeyData, MAX_ROLLING_PERIOD, ReportType};

/// Largest `export.bin` read: 64 MiB, twice the reference server's theoretical maximum of about
/// 750,000 keys (google-en-server.md §1.8).
pub const MAX_EXPORT_BIN_BYTES: u64 = 64 << 20;
/// Largest `export.sig` read: ten signatures take well under 2 KiB.
pub const MAX_EXPORT_SIG_BYTES: u64 = 64 << 10;
/// What readers accept as transmission risk (google-en-server.md §1.4).
const MAX_TRANSMISSION_RISK: i32 = 8;

/// Why an export could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not a readable zip: {0}")]
    Zip(#[from] ::zip::result::ZipError),
    #[error("the zip has no {0} entry")]
    MissingEntry(&'static str),
    #[error("the zip has more than one {0} entry")]
    DuplicateEntry(&'static str),
    #[error("{name} is larger than {limit} bytes")]
    EntryTooLarge { name: &'static str, limit: u64 },
    /// Bad compressed data, or a CRC-32 that does not match.
    #[error("{name} cannot be read: {source}")]
    EntryRead {
        name: &'static str,
        source: std::io::Error,
    },
    #[error("export.bin does not start with the 16-byte header \"EK Export v1    \"")]
    Header,
    #[error("{entry} is not a valid protobuf: {source}")]
    Protobuf {
        entry: &'static str,
        source: prost::DecodeError,
    },
    /// A key that readers reject (google-en-server.md §1.4); `list` is `keys` or `revised_keys`.
    #[error("{list}[{index}]: {reason}")]
    InvalidKey {
        list: &'static str,
        index: usize,
        reason: &'static str,
    },
}

/// The `TemporaryExposureKeyExport` of an `export.bin`. Absent scalar fields read as their
/// protobuf defaults (0, the empty string).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExportContents {
    pub start_timestamp: u64,
    pub end_timestamp: u64,
    pub region: String,
    pub batch_num: i32,
    pub batch_size: i32,
    pub signature_infos: Vec<SignatureInfo>,
    pub keys: Vec<ExportKey>,
    pub revised_keys: Vec<ExportKey>,
}

/// One `TEKSignature` of an `export.sig`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ExportSignature {
    pub signature_info: SignatureInfo,
    pub batch_num: i32,
    pub batch_size: i32,
    /// As found: DER ECDSA-Sig-Value when the producer followed the format.
    pub signature: Vec<u8>,
}

/// A whole export file, read.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ParsedExport {
    pub contents: ExportContents,
    pub signatures: Vec<ExportSignature>,
    /// `export.bin` as stored (header included): what the signatures cover.
    pub export_bin: Vec<u8>,
}

/// Reads an export zip: both entries by name (wherever they are, stored or deflated, CRC-32
/// checked), the header, and both protobufs.
pub fn parse_export_zip(zip: &[u8]) -> Result<ParsedExport, ParseError> {
    let mut archive = ::zip::ZipArchive::new(Cursor::new(zip))?;
    for name in [EXPORT_BIN_NAME, EXPORT_SIG_NAME] {
        let count = archive.file_names().filter(|entry| *entry == name).count();
        if count > 1 {
            return Err(ParseError::DuplicateEntry(name));
        }
    }
    let export_bin = read_entry(&mut archive, EXPORT_BIN_NAME, MAX_EXPORT_BIN_BYTES)?;
    let export_sig = read_entry(&mut archive, EXPORT_SIG_NAME, MAX_EXPORT_SIG_BYTES)?;
    Ok(ParsedExport {
        contents: parse_export_bin(&export_bin)?,
        signatures: parse_export_sig(&export_sig)?,
        export_bin,
    })
}

/// Reads `export.bin`: the header, then the `TemporaryExposureKeyExport`, checking each key as
/// the reference importer does (16 bytes, a rolling start, a rolling period in 1..=144,
/// transmission risk 0..=8, a known report type).
pub fn parse_export_bin(bin: &[u8]) -> Result<ExportContents, ParseError> {
    let body = bin.strip_prefix(HEADER).ok_or(ParseError::Header)?;
    let export =
        proto::TemporaryExposureKeyExport::decode(body).map_err(|source| ParseError::Protobuf {
            entry: EXPORT_BIN_NAME,
            source,
        })?;
    let keys = convert_keys("keys", &export.keys)?;
    let revised_keys = convert_keys("revised_keys", &export.revised_keys)?;
    Ok(ExportContents {
        start_timestamp: export.start_timestamp(),
        end_timestamp: export.end_timestamp(),
        region: export.region().to_owned(),
        batch_num: export.batch_num(),
        batch_size: export.batch_size(),
        signature_infos: export
            .signature_infos
            .iter()
            .map(SignatureInfo::from_proto)
            .collect(),
        keys,
        revised_keys,
    })
}

/// Reads `export.sig`: a `TEKSignatureList`.
pub fn parse_export_sig(sig: &[u8]) -> Result<Vec<ExportSignature>, ParseError> {
    let list = proto::TekSignatureList::decode(sig).map_err(|source| ParseError::Protobuf {
        entry: EXPORT_SIG_NAME,
        source,
    })?;
    Ok(list
        .signatures
        .iter()
        .map(|signature| ExportSignature {
            signature_info: signature
                .signature_info
                .as_ref()
                .map(SignatureInfo::from_proto)
                .unwrap_or_else(|| SignatureInfo::from_proto(&proto::SignatureInfo::default())),
            batch_num: signature.batch_num(),
            batch_size: signature.batch_size(),
            signature: signature.signature().to_vec(),
        })
        .collect())
}

/// The bytes of the entry called `name`, refusing more than `limit` bytes whatever the zip
/// declares (a small zip may inflate to gigabytes).
fn read_entry(
    archive: &mut ::zip::ZipArchive<Cursor<&[u8]>>,
    name: &'static str,
    limit: u64,
) -> Result<Vec<u8>, ParseError> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(::zip::result::ZipError::FileNotFound) => return Err(ParseError::MissingEntry(name)),
        Err(error) => return Err(error.into()),
    };
    if file.size() > limit {
        return Err(ParseError::EntryTooLarge { name, limit });
    }
    let capacity = usize::try_from(file.size()).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ParseError::EntryRead { name, source })?;
    if bytes.len() as u64 > limit {
        return Err(ParseError::EntryTooLarge { name, limit });
    }
    Ok(bytes)
}

fn convert_keys(
    list: &'static str,
    keys: &[proto::TemporaryExposureKey],
) -> Result<Vec<ExportKey>, ParseError> {
    keys.iter()
        .enumerate()
        .map(|(index, key)| {
            convert_key(key).map_err(|reason| ParseError::InvalidKey {
                list,
                index,
                reason,
            })
        })
        .collect()
}

fn convert_key(key: &proto::TemporaryExposureKey) -> Result<ExportKey, &'static str> {
    let bytes =
        <[u8; KEY_LENGTH]>::try_from(key.key_data()).map_err(|_| "key_data is not 16 bytes")?;
    let rolling_start_number = key
        .rolling_start_interval_number
        .ok_or("missing rolling_start_interval_number")?;
    let rolling_start_number = u32::try_from(rolling_start_number)
        .map_err(|_| "negative rolling_start_interval_number")?;
    let rolling_period = u32::try_from(key.rolling_period())
        .ok()
        .filter(|period| (1..=MAX_ROLLING_PERIOD).contains(period))
        .ok_or("rolling_period outside 1..=144")?;
    #[allow(deprecated)] // deprecated in GAEN v1.5, still carried
    let transmission_risk = key.transmission_risk_level();
    let transmission_risk = u8::try_from(transmission_risk)
        .ok()
        .filter(|risk| i32::from(*risk) <= MAX_TRANSMISSION_RISK)
        .ok_or("transmission_risk_level outside 0..=8")?;
    let report_type = match key.report_type {
        None => None,
        Some(value) => Some(
            u32::try_from(value)
                .ok()
                .and_then(ReportType::new)
                .ok_or("unknown report_type")?,
        ),
    };
    Ok(ExportKey {
        key_data: KeyData::new(bytes),
        rolling_start_number,
        rolling_period,
        transmission_risk,
        report_type,
        days_since_onset: key.days_since_onset_of_symptoms,
    })
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;
    use crate::domain::export::{ExportHeader, encode_export_bin, encode_export_sig};

    fn header() -> ExportHeader {
        ExportHeader {
            region: "440".into(),
            start_timestamp: 1_600_000_000,
            end_timestamp: 1_600_086_400,
            signature_info: SignatureInfo::ecdsa_p256_sha256("440", "v1"),
        }
    }

    fn keys() -> Vec<ExportKey> {
        vec![
            ExportKey {
                key_data: KeyData::new([2; 16]),
                rolling_start_number: 2_733_120,
                rolling_period: 144,
                transmission_risk: 4,
                report_type: Some(ReportType::CONFIRMED_TEST),
                days_since_onset: Some(-2),
            },
            ExportKey {
                key_data: KeyData::new([1; 16]),
                rolling_start_number: 2_733_264,
                rolling_period: 60,
                transmission_risk: 1,
                report_type: None,
                days_since_onset: None,
            },
        ]
    }

    /// A zip written with the `zip` crate: entries in the given order and method.
    fn zip_of(entries: &[(&str, &[u8])], method: ::zip::CompressionMethod) -> Vec<u8> {
        let mut writer = ::zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = ::zip::write::SimpleFileOptions::default().compression_method(method);
        for (name, bytes) in entries {
            writer.start_file(*name, options).expect("entry");
            writer.write_all(bytes).expect("write");
        }
        writer.finish().expect("zip").into_inner()
    }

    #[test]
    fn reads_back_what_the_builder_writes() {
        let mut keys = keys();
        let bin = encode_export_bin(&header(), &mut keys).expect("encodes");
        let sig = encode_export_sig(&header().signature_info, b"sig");
        let zip = zip_of(
            &[("export.sig", &sig), ("export.bin", &bin)],
            ::zip::CompressionMethod::Stored,
        );
        let parsed = parse_export_zip(&zip).expect("parses");
        assert_eq!(parsed.export_bin, bin);
        assert_eq!(parsed.contents.keys, keys);
        assert_eq!(parsed.contents.region, "440");
        assert_eq!(
            (
                parsed.contents.start_timestamp,
                parsed.contents.end_timestamp
            ),
            (1_600_000_000, 1_600_086_400)
        );
        assert_eq!(
            (parsed.contents.batch_num, parsed.contents.batch_size),
            (1, 1)
        );
        assert_eq!(
            parsed.contents.signature_infos,
            vec![header().signature_info]
        );
        assert!(parsed.contents.revised_keys.is_empty());
        assert_eq!(parsed.signatures.len(), 1);
        assert_eq!(parsed.signatures[0].signature, b"sig");
    }

    #[test]
    fn absent_rolling_period_is_a_day_and_unknown_fields_are_skipped() {
        let message = proto::TemporaryExposureKeyExport {
            keys: vec![proto::TemporaryExposureKey {
                key_data: Some(vec![5; 16]),
                rolling_start_interval_number: Some(100),
                variant_of_concern: Some(2),
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut bin = HEADER.to_vec();
        bin.extend_from_slice(&message.encode_to_vec());
        // Field 99 (varint 1) and field 100 (4 bytes), which no version of the proto has.
        bin.extend_from_slice(&[0x98, 0x06, 0x01, 0xA2, 0x06, 0x04, 1, 2, 3, 4]);
        let contents = parse_export_bin(&bin).expect("parses");
        let key = contents.keys[0];
        assert_eq!(key.rolling_period, 144);
        assert_eq!(key.transmission_risk, 0);
        assert_eq!((key.report_type, key.days_since_onset), (None, None));
        assert_eq!(contents.region, "");
    }

    #[test]
    fn keys_readers_reject_are_errors_naming_the_key() {
        let cases: [(proto::TemporaryExposureKey, &str); 5] = [
            (
                proto::TemporaryExposureKey {
                    key_data: Some(vec![1; 15]),
                    rolling_start_interval_number: Some(1),
                    ..Default::default()
                },
                "key_data is not 16 bytes",
            ),
            (
                proto::TemporaryExposureKey {
                    key_data: Some(vec![1; 16]),
                    ..Default::default()
                },
                "missing rolling_start_interval_number",
            ),
            (
                proto::TemporaryExposureKey {
                    key_data: Some(vec![1; 16]),
                    rolling_start_interval_number: Some(1),
                    rolling_period: Some(145),
                    ..Default::default()
                },
                "rolling_period outside 1..=144",
            ),
            (
                proto::TemporaryExposureKey {
                    key_data: Some(vec![1; 16]),
                    rolling_start_interval_number: Some(1),
                    report_type: Some(6),
                    ..Default::default()
                },
                "unknown report_type",
            ),
            (
                proto::TemporaryExposureKey {
                    key_data: Some(vec![1; 16]),
                    rolling_start_interval_number: Some(-1),
                    ..Default::default()
                },
                "negative rolling_start_interval_number",
            ),
        ];
        for (key, expected) in cases {
            let message = proto::TemporaryExposureKeyExport {
                revised_keys: vec![key],
                ..Default::default()
            };
            let mut bin = HEADER.to_vec();
            bin.extend_from_slice(&message.encode_to_vec());
            match parse_export_bin(&bin) {
                Err(ParseError::InvalidKey {
                    list: "revised_keys",
                    index: 0,
                    reason,
                }) => assert_eq!(reason, expected),
                other => panic!("expected {expected}, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_inputs_are_errors() {
        assert!(matches!(parse_export_zip(b""), Err(ParseError::Zip(_))));
        assert!(matches!(
            parse_export_zip(b"PK\x03\x04 not really"),
            Err(ParseError::Zip(_))
        ));
        assert!(matches!(
            parse_export_bin(b"EK Export v2    "),
            Err(ParseError::Header)
        ));
        assert!(matches!(
            parse_export_bin(b"EK Export v1"),
            Err(ParseError::Header)
        ));
        assert!(matches!(
            parse_export_bin(b"EK Export v1    \x3a\x05\x01"),
            Err(ParseError::Protobuf { .. })
        ));
        assert!(matches!(
            parse_export_sig(b"\x0a\xff\xff\xff\xff\x0f"),
            Err(ParseError::Protobuf { .. })
        ));
        let only_bin = zip_of(
            &[("export.bin", HEADER)],
            ::zip::CompressionMethod::Deflated,
        );
        assert!(matches!(
            parse_export_zip(&only_bin),
            Err(ParseError::MissingEntry("export.sig"))
        ));
    }

    #[test]
    fn a_corrupted_entry_fails_its_crc() {
        let mut keys = keys();
        let bin = encode_export_bin(&header(), &mut keys).expect("encodes");
        let mut zip = zip_of(
            &[("export.bin", &bin), ("export.sig", b"")],
            ::zip::CompressionMethod::Stored,
        );
        // The stored export.bin starts after the 30-byte local header and its 10-byte name.
        zip[40 + 20] ^= 0x01;
        assert!(matches!(
            parse_export_zip(&zip),
            Err(ParseError::EntryRead { .. })
        ));
    }

    /// A smoke test until the parser is fuzzed: thousands of corrupted zips and export.bins
    /// (flipped bytes, truncations) give values or errors, never a panic.
    #[test]
    fn corrupted_inputs_never_panic() {
        let mut keys = keys();
        let bin = encode_export_bin(&header(), &mut keys).expect("encodes");
        let sig = encode_export_sig(&header().signature_info, &[0x30; 71]);
        let originals = [
            zip_of(
                &[("export.bin", &bin), ("export.sig", &sig)],
                ::zip::CompressionMethod::Deflated,
            ),
            zip_of(
                &[("export.sig", &sig), ("export.bin", &bin)],
                ::zip::CompressionMethod::Stored,
            ),
        ];
        let mut state = 0x2545_F491_4F6C_DD1D_u64;
        let mut next = move |below: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % below as u64) as usize
        };
        for round in 0..4_000 {
            let original = if round % 2 == 0 {
                &originals[0]
            } else {
                &originals[1]
            };
            let mut bytes = original.clone();
            for _ in 0..=next(4) {
                let at = next(bytes.len());
                bytes[at] = next(256) as u8;
            }
            if round % 5 == 0 {
                bytes.truncate(next(bytes.len()));
            }
            let _ = parse_export_zip(&bytes);
            let mut mutated_bin = bin.clone();
            let at = 16 + next(mutated_bin.len() - 16);
            mutated_bin[at] = next(256) as u8;
            mutated_bin.truncate(16 + next(mutated_bin.len() - 15));
            let _ = parse_export_bin(&mutated_bin);
            let _ = parse_export_sig(&mutated_bin[16..]);
        }
    }

    #[test]
    fn entries_beyond_the_limit_are_refused_without_reading_them_whole() {
        let big = vec![0u8; (MAX_EXPORT_SIG_BYTES + 1) as usize];
        let zip = zip_of(
            &[("export.bin", HEADER), ("export.sig", &big)],
            ::zip::CompressionMethod::Deflated,
        );
        assert!(matches!(
            parse_export_zip(&zip),
            Err(ParseError::EntryTooLarge {
                name: "export.sig",
                ..
            })
        ));
    }
}
