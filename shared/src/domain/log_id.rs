//! Log IDs: what links a helpdesk inquiry to an uploaded operation log.
//!
//! The server issues a log ID (to the app, or to the helpdesk), a person reads it out over the
//! phone, and the helpdesk types it in. It must be unforgeable, so that nobody can attach a log to
//! (or fetch the log of) an inquiry that is not theirs.
//!
//! An ID is 80 random bits followed by a 40-bit tag: the first 40 bits of HMAC-SHA-256, computed by
//! KMS with the service's HMAC key over a domain label and the random part. The random part makes
//! collisions between issued IDs negligible; the tag makes forging one expensive: the only way to
//! find a valid tag without the key is to guess, and every guess costs a KMS-checked request, with
//! a 2^-40 chance of success each.
//!
//! The 120 bits are written in Crockford base32 (24 symbols, big-endian) followed by one Crockford
//! check symbol (the value mod 37), shown as five hyphen-separated groups of five, upper case:
//! `7Q2M4-…`. Crockford's alphabet has no I, L, O or U, so the text is unambiguous when read
//! aloud; on input, case, hyphens and spaces are ignored and I/L are read as 1 and O as 0. The check
//! symbol catches any single wrong symbol and any swap of two adjacent symbols before an AWS call
//! is made.

use std::fmt;
use std::str::FromStr;

/// Random bytes in a log ID (80 bits).
pub const LOG_ID_RANDOM_BYTES: usize = 10;
/// Tag bytes in a log ID: the first 40 bits of the HMAC-SHA-256 over `LogId::mac_message`.
pub const LOG_ID_TAG_BYTES: usize = 5;
/// Length of an HMAC-SHA-256.
pub const MAC_LENGTH: usize = 32;
/// Symbols in the text form: 24 for the 120-bit value, one check symbol.
pub const LOG_ID_SYMBOLS: usize = VALUE_SYMBOLS + 1;
/// Longest input `parse` looks at, in bytes (separators included).
pub const MAX_INPUT_LENGTH: usize = 64;
/// Separates these MACs from any other use of the same KMS key (verification tokens, upload
/// grants).
const MAC_LABEL: &[u8] = b"cocoa/log-id/v1\n";
/// Symbols encoding the value: 120 bits, 5 bits each.
const VALUE_SYMBOLS: usize = (LOG_ID_RANDOM_BYTES + LOG_ID_TAG_BYTES) * 8 / 5;
/// Symbols per hyphen-separated group in the display form.
const GROUP_SYMBOLS: usize = 5;
/// Crockford's base32 alphabet, then the five extra check symbols (values 32–36).
const SYMBOLS: &[u8; 37] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ*~$=U";
/// The check symbol is the value modulo this prime.
const CHECK_MODULUS: u128 = 37;

/// Why a text is not a log ID. The messages never quote the input.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum LogIdError {
    /// More than `MAX_INPUT_LENGTH` bytes.
    #[error("a log ID is at most {MAX_INPUT_LENGTH} characters long")]
    TooLong,
    /// Not 25 symbols once hyphens and spaces are dropped.
    #[error("a log ID has {LOG_ID_SYMBOLS} symbols, not {symbols}")]
    WrongLength { symbols: usize },
    /// The symbol at `position` (counting from 1, hyphens and spaces not counted) is not in the
    /// alphabet (or is a check-only symbol outside the check position).
    #[error("symbol {position} of the log ID is not valid")]
    InvalidSymbol { position: usize },
    /// The check symbol does not match: a symbol was probably misread or two were swapped.
    #[error("the log ID's check symbol does not match")]
    CheckSymbolMismatch,
}

/// A log ID: random part and tag. Its tag is not checked by `parse`: see `tag_matches`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct LogId {
    random: [u8; LOG_ID_RANDOM_BYTES],
    tag: [u8; LOG_ID_TAG_BYTES],
}

impl LogId {
    pub fn new(random: [u8; LOG_ID_RANDOM_BYTES], tag: [u8; LOG_ID_TAG_BYTES]) -> Self {
        Self { random, tag }
    }

    /// The ID for `random`, given the MAC over `mac_message(&random)`: keeps its first 5 bytes.
    pub fn from_mac(random: [u8; LOG_ID_RANDOM_BYTES], mac: &[u8; MAC_LENGTH]) -> Self {
        Self {
            random,
            tag: truncate(mac),
        }
    }

    pub fn random(&self) -> &[u8; LOG_ID_RANDOM_BYTES] {
        &self.random
    }

    pub fn tag(&self) -> &[u8; LOG_ID_TAG_BYTES] {
        &self.tag
    }

    /// The message the MAC is computed over: a domain label and the random part.
    pub fn mac_message(random: &[u8; LOG_ID_RANDOM_BYTES]) -> Vec<u8> {
        [MAC_LABEL, random].concat()
    }

    /// Whether the tag is the first 5 bytes of `mac` (the MAC over `mac_message(self.random())`),
    /// compared in constant time.
    pub fn tag_matches(&self, mac: &[u8; MAC_LENGTH]) -> bool {
        let expected = truncate(mac);
        let difference = self
            .tag
            .iter()
            .zip(expected.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        std::hint::black_box(difference) == 0
    }

    /// The 25 symbols without hyphens: the storage key.
    pub fn canonical(&self) -> String {
        self.symbols().iter().map(|&s| char::from(s)).collect()
    }

    /// Parses the text form; see the module documentation for what is accepted.
    pub fn parse(text: &str) -> Result<Self, LogIdError> {
        if text.len() > MAX_INPUT_LENGTH {
            return Err(LogIdError::TooLong);
        }
        let mut symbols = ['\0'; LOG_ID_SYMBOLS];
        let mut count = 0usize;
        for c in text.chars().filter(|&c| c != '-' && c != ' ') {
            if let Some(slot) = symbols.get_mut(count) {
                *slot = c;
            }
            count += 1;
        }
        if count != LOG_ID_SYMBOLS {
            return Err(LogIdError::WrongLength { symbols: count });
        }
        let (check, data) = match symbols.split_last() {
            Some(split) => split,
            None => return Err(LogIdError::WrongLength { symbols: 0 }),
        };
        let mut value = 0u128;
        for (index, &c) in data.iter().enumerate() {
            match symbol_value(c) {
                Some(v) if v < 32 => value = (value << 5) | u128::from(v),
                _ => {
                    return Err(LogIdError::InvalidSymbol {
                        position: index + 1,
                    });
                }
            }
        }
        let check = symbol_value(*check).ok_or(LogIdError::InvalidSymbol {
            position: LOG_ID_SYMBOLS,
        })?;
        if value % CHECK_MODULUS != u128::from(check) {
            return Err(LogIdError::CheckSymbolMismatch);
        }
        let [_, random @ .., t0, t1, t2, t3, t4] = value.to_be_bytes();
        Ok(Self {
            random,
            tag: [t0, t1, t2, t3, t4],
        })
    }

    /// The 120-bit value: random part, then tag, big-endian.
    fn value(&self) -> u128 {
        self.random
            .iter()
            .chain(self.tag.iter())
            .fold(0u128, |value, &b| (value << 8) | u128::from(b))
    }

    /// The 24 value symbols and the check symbol, as ASCII.
    fn symbols(&self) -> [u8; LOG_ID_SYMBOLS] {
        let value = self.value();
        let mut symbols = [0u8; LOG_ID_SYMBOLS];
        for (index, symbol) in symbols.iter_mut().enumerate() {
            let digit = if index < VALUE_SYMBOLS {
                (value >> (5 * (VALUE_SYMBOLS - 1 - index))) & 31
            } else {
                value % CHECK_MODULUS
            };
            // `digit` < 37 = SYMBOLS.len(): the fallback is never taken.
            *symbol = SYMBOLS.get(digit as usize).copied().unwrap_or(b'0');
        }
        symbols
    }
}

impl fmt::Display for LogId {
    /// Five hyphen-separated groups of five upper-case symbols.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, group) in self.symbols().chunks(GROUP_SYMBOLS).enumerate() {
            if index > 0 {
                f.write_str("-")?;
            }
            for &s in group {
                fmt::Write::write_char(f, char::from(s))?;
            }
        }
        Ok(())
    }
}

impl FromStr for LogId {
    type Err = LogIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The first `LOG_ID_TAG_BYTES` bytes of a MAC.
fn truncate(mac: &[u8; MAC_LENGTH]) -> [u8; LOG_ID_TAG_BYTES] {
    let [a, b, c, d, e, ..] = *mac;
    [a, b, c, d, e]
}

/// The value (0–36) of an input symbol, ignoring case and reading I and L as 1, O as 0. Values
/// 32–36 are check symbols only.
fn symbol_value(c: char) -> Option<u8> {
    let c = match c.to_ascii_uppercase() {
        'I' | 'L' => '1',
        'O' => '0',
        c => c,
    };
    if !c.is_ascii() {
        return None;
    }
    let position = SYMBOLS.iter().position(|&s| char::from(s) == c)?;
    u8::try_from(position).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::{SecureRandom as _, SystemRandom};

    fn random_id(rng: &SystemRandom) -> LogId {
        let mut random = [0u8; LOG_ID_RANDOM_BYTES];
        let mut tag = [0u8; LOG_ID_TAG_BYTES];
        rng.fill(&mut random).expect("random");
        rng.fill(&mut tag).expect("random");
        LogId::new(random, tag)
    }

    fn sample() -> LogId {
        LogId::new(
            [0x3c, 0x92, 0x7a, 0x01, 0xfe, 0x55, 0x10, 0x88, 0xc4, 0x2d],
            [0x9b, 0x07, 0xe3, 0x61, 0xaa],
        )
    }

    #[test]
    fn known_vectors() {
        let zero = LogId::new([0; 10], [0; 5]);
        assert_eq!(zero.canonical(), "0".repeat(25));
        assert_eq!(zero.to_string(), "00000-00000-00000-00000-00000");
        // 2^120 - 1 ≡ 2^12 - 1 = 4095 ≡ 25 (mod 37), since 2^36 ≡ 1; symbol 25 is S.
        let ones = LogId::new([0xff; 10], [0xff; 5]);
        assert_eq!(ones.canonical(), format!("{}S", "Z".repeat(24)));
        assert_eq!(ones.to_string(), "ZZZZZ-ZZZZZ-ZZZZZ-ZZZZZ-ZZZZS");
        // Value 1: last value symbol 1, check 1. Value 32: "10", check 32 = '*'.
        let one = LogId::new([0; 10], [0, 0, 0, 0, 1]);
        assert_eq!(one.canonical(), format!("{}11", "0".repeat(23)));
        let thirty_two = LogId::new([0; 10], [0, 0, 0, 0, 32]);
        assert_eq!(thirty_two.canonical(), format!("{}10*", "0".repeat(22)));
        for id in [zero, ones, one, thirty_two] {
            assert_eq!(LogId::parse(&id.canonical()), Ok(id));
        }
    }

    #[test]
    fn ids_round_trip_through_their_text() {
        let rng = SystemRandom::new();
        for _ in 0..2000 {
            let id = random_id(&rng);
            let text = id.to_string();
            assert_eq!(text.len(), 29);
            assert_eq!(text.matches('-').count(), 4);
            assert_eq!(text.parse::<LogId>(), Ok(id));
            assert_eq!(LogId::parse(&id.canonical()), Ok(id));
            assert_eq!(id.canonical(), text.replace('-', ""));
        }
    }

    #[test]
    fn case_hyphens_and_spaces_are_ignored() {
        let id = sample();
        let text = id.to_string();
        assert_eq!(LogId::parse(&text.to_ascii_lowercase()), Ok(id));
        let spaced: String = id
            .canonical()
            .chars()
            .enumerate()
            .flat_map(|(i, c)| [c, if i % 2 == 0 { ' ' } else { '-' }])
            .collect();
        assert_eq!(spaced.len(), 50);
        assert_eq!(LogId::parse(&format!(" -{spaced}")), Ok(id));
        assert_eq!(LogId::parse(&text.replace('-', " ")), Ok(id));
    }

    #[test]
    fn confusables_are_folded() {
        // Value 1 is "0…01" + check "1"; write the 0s as O/o and the 1s as I/l.
        let id = LogId::new([0; 10], [0, 0, 0, 0, 1]);
        let text = format!("{}Il", "Oo".repeat(11) + "O");
        assert_eq!(LogId::parse(&text), Ok(id));
        assert_eq!(LogId::parse(&format!("{}iL", "o".repeat(23))), Ok(id));
    }

    #[test]
    fn every_single_substitution_is_caught() {
        let rng = SystemRandom::new();
        let mut ids: Vec<LogId> = (0..50).map(|_| random_id(&rng)).collect();
        ids.push(sample());
        for id in ids {
            let canonical: Vec<u8> = id.canonical().into_bytes();
            for position in 0..LOG_ID_SYMBOLS {
                for &replacement in SYMBOLS.iter() {
                    if replacement == canonical[position] {
                        continue;
                    }
                    let mut altered = canonical.clone();
                    altered[position] = replacement;
                    let altered = String::from_utf8(altered).expect("ascii");
                    assert!(LogId::parse(&altered).is_err(), "{altered}");
                }
            }
        }
    }

    #[test]
    fn every_adjacent_transposition_is_caught() {
        let rng = SystemRandom::new();
        let mut ids: Vec<LogId> = (0..500).map(|_| random_id(&rng)).collect();
        ids.push(sample());
        for id in ids {
            let canonical: Vec<u8> = id.canonical().into_bytes();
            for position in 0..LOG_ID_SYMBOLS - 1 {
                if canonical[position] == canonical[position + 1] {
                    continue;
                }
                let mut altered = canonical.clone();
                altered.swap(position, position + 1);
                let altered = String::from_utf8(altered).expect("ascii");
                assert!(LogId::parse(&altered).is_err(), "{altered}");
            }
        }
    }

    #[test]
    fn check_symbol_mismatch_is_reported() {
        let canonical = sample().canonical();
        let (data, check) = canonical.split_at(24);
        let wrong = if check == "0" { "1" } else { "0" };
        assert_eq!(
            LogId::parse(&format!("{data}{wrong}")),
            Err(LogIdError::CheckSymbolMismatch)
        );
    }

    #[test]
    fn malformed_texts_are_rejected() {
        let canonical = sample().canonical();
        assert_eq!(
            LogId::parse(&"-".repeat(MAX_INPUT_LENGTH + 1)),
            Err(LogIdError::TooLong)
        );
        assert_eq!(
            LogId::parse(&format!("{canonical}{}", " ".repeat(39))),
            Ok(sample())
        );
        assert_eq!(
            LogId::parse(&format!("{canonical}{}", " ".repeat(40))),
            Err(LogIdError::TooLong)
        );
        assert_eq!(
            LogId::parse(""),
            Err(LogIdError::WrongLength { symbols: 0 })
        );
        assert_eq!(
            LogId::parse(&canonical[1..]),
            Err(LogIdError::WrongLength { symbols: 24 })
        );
        assert_eq!(
            LogId::parse(&format!("{canonical}0")),
            Err(LogIdError::WrongLength { symbols: 26 })
        );
        assert_eq!(
            LogId::parse(&format!("{}#{}", &canonical[..3], &canonical[4..])),
            Err(LogIdError::InvalidSymbol { position: 4 })
        );
        // U and the other check-only symbols are valid only in the check position.
        for check_only in ["U", "u", "*", "~", "$", "="] {
            assert_eq!(
                LogId::parse(&format!("{check_only}{}", &canonical[1..])),
                Err(LogIdError::InvalidSymbol { position: 1 })
            );
        }
        assert_eq!(
            LogId::parse(&format!("{}é", &canonical[..24])),
            Err(LogIdError::InvalidSymbol { position: 25 })
        );
        assert_eq!(
            LogId::parse(&format!("{}_", &canonical[..24])),
            Err(LogIdError::InvalidSymbol { position: 25 })
        );
        assert_eq!(
            LogId::parse(&format!("{}\t{}", &canonical[..5], &canonical[5..24])),
            Err(LogIdError::InvalidSymbol { position: 6 })
        );
    }

    #[test]
    fn check_only_symbols_are_accepted_in_the_check_position() {
        let rng = SystemRandom::new();
        let mut seen = [false; 5];
        for _ in 0..5000 {
            let id = random_id(&rng);
            let canonical = id.canonical();
            let check = canonical.as_bytes()[24];
            if let Some(i) = SYMBOLS[32..].iter().position(|&s| s == check) {
                seen[i] = true;
                assert_eq!(LogId::parse(&canonical.to_ascii_lowercase()), Ok(id));
            }
        }
        assert!(seen.iter().all(|&s| s), "{seen:?}");
    }

    #[test]
    fn the_tag_is_the_start_of_the_mac() {
        let mut mac = [0u8; 32];
        for (i, b) in mac.iter_mut().enumerate() {
            *b = u8::try_from(i * 7 + 3).expect("small");
        }
        let id = LogId::from_mac([4; 10], &mac);
        assert_eq!(id.tag(), &[3, 10, 17, 24, 31]);
        assert_eq!(id.random(), &[4; 10]);
        assert!(id.tag_matches(&mac));
        for i in 0..LOG_ID_TAG_BYTES {
            for bit in 0..8 {
                let mut other = mac;
                other[i] ^= 1 << bit;
                assert!(!id.tag_matches(&other));
            }
        }
        let mut tail = mac;
        tail[LOG_ID_TAG_BYTES] ^= 1;
        assert!(id.tag_matches(&tail));
    }

    #[test]
    fn the_mac_covers_a_labelled_random_part() {
        let message = LogId::mac_message(&[9; 10]);
        assert!(message.starts_with(b"cocoa/log-id/v1\n"));
        assert!(message.ends_with(&[9; 10]));
        assert_eq!(message.len(), MAC_LABEL.len() + 10);
        assert_ne!(message, LogId::mac_message(&[8; 10]));
    }
}
