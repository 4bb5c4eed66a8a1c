//! Upload grants: what `GET /api/inquirylog` hands the COCOA app so it can upload an operation log.
//!
//! The unmodified app receives `{"sas_token": "..."}` and appends the string, as is, to
//! `PUT {endpoint}/{container}/cocoa_log_{uuid}.zip?{sas_token}`: it expects an Azure SAS query
//! string and treats it as opaque. Ours looks like one but is a MAC'd, 10-minute, create-only
//! grant:
//!
//! `sv=cocoa1&sr=c&sp=c&se=<expiry, unix seconds>&sn=<16-byte nonce>&sig=<MAC>`
//!
//! where nonce and MAC are base64url without padding (so the whole string is URL-safe and the app
//! can append it unescaped), and the MAC is HMAC-SHA-256 (the KMS HMAC key) over a domain label,
//! the permission, the expiry and the nonce. `sv`, `sr` and `sp` are fixed; `sv` versions the
//! format. The grant names no person and no blob: the blob name is the app's own choice,
//! `cocoa_log_{uuid}.zip` (see `blob_log_id`), and "create-only" means the upload may not replace
//! an existing blob.

use base64::Engine as _;

/// Grants live this long.
pub const GRANT_LIFETIME_SECONDS: i64 = 10 * 60;
pub const NONCE_LENGTH: usize = 16;
pub const MAC_LENGTH: usize = 32;
/// Longest query `parse_query` looks at, in bytes.
pub const MAX_QUERY_LENGTH: usize = 1024;
/// Separates these MACs from any other use of the same KMS key (verification tokens, log IDs).
const MAC_LABEL: &[u8] = b"cocoa/upload-grant/v1\n";
/// The format version (`sv`).
const VERSION: &str = "cocoa1";
/// The only permission (`sp`): create.
const PERMISSION: &str = "c";
/// The only resource type (`sr`): a blob in the container.
const RESOURCE: &str = "c";
const BLOB_PREFIX: &str = "cocoa_log_";
const BLOB_SUFFIX: &str = ".zip";
/// `Guid.ToString()`: 8-4-4-4-12 hex digits.
const UUID_LENGTH: usize = 36;
const UUID_HYPHENS: [usize; 4] = [8, 13, 18, 23];

/// Why a query is not a grant. Names the parameter, never quotes a value.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum GrantError {
    #[error("the upload grant is longer than {MAX_QUERY_LENGTH} bytes")]
    TooLong,
    #[error("the upload grant has no {0} parameter")]
    Missing(&'static str),
    #[error("the upload grant's {0} parameter is not valid")]
    Invalid(&'static str),
    #[error("the upload grant has more than one {0} parameter")]
    Duplicate(&'static str),
}

/// The part of a grant its MAC covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct UploadGrant {
    /// Unix seconds; the grant is live strictly before this.
    pub expires_at: i64,
    pub nonce: [u8; NONCE_LENGTH],
}

impl UploadGrant {
    /// A grant issued at `now_unix`, live for `GRANT_LIFETIME_SECONDS`.
    pub fn issue(now_unix: i64, nonce: [u8; NONCE_LENGTH]) -> Self {
        Self {
            expires_at: now_unix.saturating_add(GRANT_LIFETIME_SECONDS),
            nonce,
        }
    }

    /// The message the MAC is computed over: the label, then fixed-length fields: the permission
    /// (1 byte, `c`), the expiry (8 bytes, big-endian) and the nonce (16 bytes).
    pub fn mac_message(&self) -> Vec<u8> {
        [
            MAC_LABEL,
            PERMISSION.as_bytes(),
            &self.expires_at.to_be_bytes(),
            &self.nonce,
        ]
        .concat()
    }

    /// The grant's query string, given the MAC over `mac_message()`. Only URL-safe characters.
    pub fn to_query(&self, mac: &[u8; MAC_LENGTH]) -> String {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "sv={VERSION}&sr={RESOURCE}&sp={PERMISSION}&se={}&sn={}&sig={}",
            self.expires_at,
            b64.encode(self.nonce),
            b64.encode(mac)
        )
    }

    /// Whether the grant may still be used at `now_unix`.
    pub fn is_live(&self, now_unix: i64) -> bool {
        now_unix < self.expires_at
    }
}

/// A grant's query taken apart; its MAC is not checked yet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UncheckedGrant {
    pub grant: UploadGrant,
    pub mac: [u8; MAC_LENGTH],
}

/// The parameters a grant consists of, in the order missing or invalid ones are reported.
const PARAMETERS: [&str; 6] = ["sv", "sr", "sp", "se", "sn", "sig"];

/// Parses a grant's query string (as the app sends it, with or without a leading `?`).
///
/// Parameters may come in any order; unknown ones, and empty segments, are ignored; a known one
/// given twice is `Duplicate` (the first seen, in query order). Then, parameter by parameter in the
/// order `sv sr sp se sn sig`, a missing one is `Missing`, a wrong one `Invalid`. Values are taken
/// literally (no percent-decoding): `se` is decimal digits only, `sn` and `sig` base64url without
/// padding. Names are case-sensitive.
pub fn parse_query(query: &str) -> Result<UncheckedGrant, GrantError> {
    if query.len() > MAX_QUERY_LENGTH {
        return Err(GrantError::TooLong);
    }
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut values: [Option<&str>; PARAMETERS.len()] = [None; PARAMETERS.len()];
    for segment in query.split('&').filter(|s| !s.is_empty()) {
        let (name, value) = match segment.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (segment, None),
        };
        let Some((&known, slot)) = PARAMETERS
            .iter()
            .zip(values.iter_mut())
            .find(|(known, _)| **known == name)
        else {
            continue;
        };
        if slot.is_some() {
            return Err(GrantError::Duplicate(known));
        }
        // A known name without `=` counts as present but empty, so it is `Invalid`, not `Missing`.
        *slot = Some(value.unwrap_or(""));
    }
    let [sv, sr, sp, se, sn, sig] = values;
    let sv = sv.ok_or(GrantError::Missing("sv"))?;
    if sv != VERSION {
        return Err(GrantError::Invalid("sv"));
    }
    let sr = sr.ok_or(GrantError::Missing("sr"))?;
    if sr != RESOURCE {
        return Err(GrantError::Invalid("sr"));
    }
    let sp = sp.ok_or(GrantError::Missing("sp"))?;
    if sp != PERMISSION {
        return Err(GrantError::Invalid("sp"));
    }
    let se = se.ok_or(GrantError::Missing("se"))?;
    let expires_at = parse_seconds(se).ok_or(GrantError::Invalid("se"))?;
    let sn = sn.ok_or(GrantError::Missing("sn"))?;
    let nonce = decode_fixed::<NONCE_LENGTH>(sn).ok_or(GrantError::Invalid("sn"))?;
    let sig = sig.ok_or(GrantError::Missing("sig"))?;
    let mac = decode_fixed::<MAC_LENGTH>(sig).ok_or(GrantError::Invalid("sig"))?;
    Ok(UncheckedGrant {
        grant: UploadGrant { expires_at, nonce },
        mac,
    })
}

/// A non-negative `i64` written in decimal digits only (no sign, no spaces).
fn parse_seconds(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Exactly `N` bytes in base64url without padding.
fn decode_fixed<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != (N * 8).div_ceil(6) {
        return None;
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text)
        .ok()?
        .try_into()
        .ok()
}

/// The uuid in a blob name the app writes, `cocoa_log_{uuid}.zip`, lower-cased.
///
/// The uuid is .NET's `Guid.ToString()`: 36 characters, 8-4-4-4-12 hex digits (either case; no
/// version check). The prefix and the `.zip` extension must be lower case, as the app writes them.
/// Anything else (other names, path separators, percent-escapes, braces, extra characters) is
/// `None`.
pub fn blob_log_id(blob_name: &str) -> Option<String> {
    if blob_name.len() != BLOB_PREFIX.len() + UUID_LENGTH + BLOB_SUFFIX.len() {
        return None;
    }
    let uuid = blob_name
        .strip_prefix(BLOB_PREFIX)?
        .strip_suffix(BLOB_SUFFIX)?;
    if uuid.len() != UUID_LENGTH {
        return None;
    }
    let well_formed = uuid.bytes().enumerate().all(|(index, b)| {
        if UUID_HYPHENS.contains(&index) {
            b == b'-'
        } else {
            b.is_ascii_hexdigit()
        }
    });
    well_formed.then(|| uuid.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 16] = [
        0xfb, 0xff, 0x01, 0x7e, 0x3e, 0x3f, 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80,
        0x90,
    ];
    const MAC: [u8; 32] = [0xfe; 32];

    fn grant() -> UploadGrant {
        UploadGrant {
            expires_at: 1_795_392_900,
            nonce: NONCE,
        }
    }

    fn query() -> String {
        grant().to_query(&MAC)
    }

    fn expected() -> UncheckedGrant {
        UncheckedGrant {
            grant: grant(),
            mac: MAC,
        }
    }

    /// The query with one parameter's segment replaced (or removed, for `None`).
    fn with(name: &str, segment: Option<&str>) -> String {
        query()
            .split('&')
            .filter_map(|s| {
                if s.split_once('=').map(|(n, _)| n) == Some(name) {
                    segment.map(str::to_owned)
                } else {
                    Some(s.to_owned())
                }
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    #[test]
    fn a_grant_round_trips_through_its_query() {
        let query = query();
        assert!(query.starts_with("sv=cocoa1&sr=c&sp=c&se=1795392900&sn="));
        assert!(
            query
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_=&".contains(&b)),
            "{query}"
        );
        assert_eq!(parse_query(&query), Ok(expected()));
        assert_eq!(parse_query(&format!("?{query}")), Ok(expected()));
        let zero = UploadGrant {
            expires_at: 0,
            nonce: [0; 16],
        };
        assert_eq!(
            parse_query(&zero.to_query(&[0; 32])),
            Ok(UncheckedGrant {
                grant: zero,
                mac: [0; 32]
            })
        );
    }

    #[test]
    fn parameters_may_come_in_any_order_with_extras() {
        let mut segments: Vec<String> = query().split('&').map(str::to_owned).collect();
        segments.reverse();
        assert_eq!(parse_query(&segments.join("&")), Ok(expected()));
        segments.rotate_left(2);
        segments.insert(3, "comp=block".to_owned());
        segments.insert(0, "x".to_owned());
        segments.push("SIG=whatever".to_owned());
        segments.push(String::new());
        let reordered = format!("?&{}", segments.join("&"));
        assert_eq!(parse_query(&reordered), Ok(expected()));
    }

    #[test]
    fn each_missing_parameter_is_reported() {
        for name in PARAMETERS {
            assert_eq!(
                parse_query(&with(name, None)),
                Err(GrantError::Missing(name)),
                "{name}"
            );
        }
        assert_eq!(parse_query(""), Err(GrantError::Missing("sv")));
        assert_eq!(parse_query("?"), Err(GrantError::Missing("sv")));
    }

    #[test]
    fn each_duplicate_parameter_is_reported() {
        let query = query();
        for segment in query.split('&') {
            let name = PARAMETERS
                .into_iter()
                .find(|n| segment.starts_with(&format!("{n}=")))
                .expect("known");
            assert_eq!(
                parse_query(&format!("{query}&{segment}")),
                Err(GrantError::Duplicate(name)),
                "{name}"
            );
            assert_eq!(
                parse_query(&format!("{query}&{name}")),
                Err(GrantError::Duplicate(name)),
                "{name}"
            );
        }
    }

    #[test]
    fn each_invalid_parameter_is_reported() {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let short_nonce = format!("sn={}", b64.encode([1u8; 15]));
        let long_nonce = format!("sn={}", b64.encode([1u8; 17]));
        let short_mac = format!("sig={}", b64.encode([1u8; 31]));
        let standard_mac = format!(
            "sig={}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(MAC)
        );
        let padded_nonce = format!("sn={}==", b64.encode(NONCE));
        let percent_nonce = format!("sn={}%3D%3D", b64.encode(NONCE));
        let cases: Vec<(&'static str, Vec<String>)> = vec![
            ("sv", vec!["sv=".into(), "sv=cocoa2".into(), "sv".into()]),
            ("sr", vec!["sr=b".into(), "sr=C".into(), "sr=".into()]),
            ("sp", vec!["sp=cw".into(), "sp=w".into(), "sp=r".into()]),
            (
                "se",
                vec![
                    "se=".into(),
                    "se=-1".into(),
                    "se=+5".into(),
                    "se=1.5".into(),
                    "se= 5".into(),
                    "se=99999999999999999999".into(),
                    "se=2026-01-01".into(),
                ],
            ),
            (
                "sn",
                vec![
                    "sn=".into(),
                    short_nonce,
                    long_nonce,
                    padded_nonce,
                    percent_nonce,
                    "sn=!!!!!!!!!!!!!!!!!!!!!!".into(),
                ],
            ),
            (
                "sig",
                vec![
                    "sig=".into(),
                    short_mac,
                    standard_mac,
                    "sig=".to_owned() + &"A".repeat(44),
                ],
            ),
        ];
        for (name, segments) in cases {
            for segment in segments {
                assert_eq!(
                    parse_query(&with(name, Some(&segment))),
                    Err(GrantError::Invalid(name)),
                    "{segment}"
                );
            }
        }
        assert_eq!(
            parse_query(&with("se", Some("se=9223372036854775807"))).map(|g| g.grant.expires_at),
            Ok(i64::MAX)
        );
    }

    #[test]
    fn long_queries_are_refused() {
        let padded = format!("{}&x={}", query(), "y".repeat(MAX_QUERY_LENGTH));
        assert_eq!(parse_query(&padded), Err(GrantError::TooLong));
        let query = query();
        let fits = format!(
            "{query}&x={}",
            "y".repeat(MAX_QUERY_LENGTH - query.len() - 3)
        );
        assert_eq!(fits.len(), MAX_QUERY_LENGTH);
        assert_eq!(parse_query(&fits), Ok(expected()));
    }

    #[test]
    fn the_mac_covers_a_labelled_expiry_and_nonce() {
        let original = grant().mac_message();
        assert!(original.starts_with(b"cocoa/upload-grant/v1\n"));
        assert_eq!(original.len(), MAC_LABEL.len() + 1 + 8 + 16);
        // A grant whose `se` was edited parses, but to a message the original MAC does not cover.
        let edited = with("se", Some("se=1795399999"));
        let parsed = parse_query(&edited).expect("parses");
        assert_eq!(parsed.mac, MAC);
        assert_ne!(parsed.grant.mac_message(), original);
        let mut other_nonce = grant();
        other_nonce.nonce[15] ^= 1;
        assert_ne!(other_nonce.mac_message(), original);
    }

    #[test]
    fn a_grant_is_live_until_it_expires() {
        let grant = UploadGrant::issue(1_000, [0; 16]);
        assert_eq!(grant.expires_at, 1_600);
        assert!(grant.is_live(1_000));
        assert!(grant.is_live(1_599));
        assert!(!grant.is_live(1_600));
        assert!(!grant.is_live(1_601));
        assert_eq!(UploadGrant::issue(i64::MAX, [0; 16]).expires_at, i64::MAX);
    }

    #[test]
    fn blob_names_the_app_writes_are_accepted() {
        let uuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        assert_eq!(
            blob_log_id(&format!("cocoa_log_{uuid}.zip")).as_deref(),
            Some(uuid)
        );
        assert_eq!(
            blob_log_id(&format!("cocoa_log_{}.zip", uuid.to_ascii_uppercase())).as_deref(),
            Some(uuid)
        );
        assert_eq!(
            blob_log_id("cocoa_log_00000000-0000-0000-0000-000000000000.zip").as_deref(),
            Some("00000000-0000-0000-0000-000000000000")
        );
    }

    #[test]
    fn other_blob_names_are_refused() {
        let uuid = "3f2504e0-4f89-41d3-9a0c-0305e82c3301";
        for name in [
            String::new(),
            "cocoa_log_../x.zip".to_owned(),
            format!("cocoa_log_{uuid}.ZIP"),
            format!("COCOA_LOG_{uuid}.zip"),
            format!("cocoa_log_{uuid}.zip/"),
            format!("/cocoa_log_{uuid}.zip"),
            format!("x/cocoa_log_{uuid}.zip"),
            format!("cocoa_log_{uuid}"),
            format!("cocoa_log_{uuid}.zip.zip"),
            format!("cocoa_log_{uuid}.tar"),
            format!("cocoa_log_{{{uuid}}}.zip"),
            format!("cocoa_log_{}.zip", uuid.replace('-', "")),
            format!("cocoa_log_{}.zip", &uuid[..35]),
            format!("cocoa_log_{uuid}0.zip"),
            format!("cocoa_log_{}.zip", uuid.replacen('3', "g", 1)),
            format!("cocoa_log_{}.zip", uuid.replacen('-', "_", 1)),
            format!("cocoa_log_{}x.zip", &uuid[..35]),
            format!("cocoa_log_{}%2F.zip", &uuid[..33]),
            format!("cocoa_log_{}/..zip", &uuid[..34]),
            "cocoa_log_3f2504e0-4f89-41d3-9a0c-0305e82c330-.zip".to_owned(),
            "cocoa_log_3f2504e04-f89-41d3-9a0c-0305e82c3301.zip".to_owned(),
            "cocoa_log_3f2504e0-4f89-41d3-9a0c-0305e82c33é.zip".to_owned(),
            "cocoa_log_".to_owned() + &"a".repeat(1000) + ".zip",
        ] {
            assert_eq!(blob_log_id(&name), None, "{name}");
        }
    }
}
