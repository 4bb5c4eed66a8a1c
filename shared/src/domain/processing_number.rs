//! HER-SYS processing numbers (処理番号): 8 ASCII digits that prove a diagnosis.
//!
//! A processing number is private: it may reach HER-SYS and nowhere else. The type cannot be
//! printed (`Debug` redacts, there is no `Display`) and is not `Serialize`, so it cannot slip into
//! a log line, an error message or a table by accident.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct ProcessingNumber(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a processing number is exactly 8 ASCII digits")]
pub struct MalformedProcessingNumber;

impl ProcessingNumber {
    /// Accepts what the app accepts: `\A[0-9]{8}\z`.
    pub fn parse(text: &str) -> Result<Self, MalformedProcessingNumber> {
        if text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err(MalformedProcessingNumber)
        }
    }

    /// The digits, for the one adapter that sends them to HER-SYS.
    pub fn expose_to_hersys(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ProcessingNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ProcessingNumber(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_eight_ascii_digits_parse() {
        assert!(ProcessingNumber::parse("99999910").is_ok());
        for bad in [
            "9999991",
            "999999100",
            "9999991a",
            "",
            " 9999991",
            "９９９９９９１０",
        ] {
            assert_eq!(
                ProcessingNumber::parse(bad),
                Err(MalformedProcessingNumber),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_digits() {
        let number = ProcessingNumber::parse("99999910").expect("valid");
        assert!(!format!("{number:?}").contains("9999"));
    }
}
