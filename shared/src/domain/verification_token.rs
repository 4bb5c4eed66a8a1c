//! Verification tokens: what `verify-processing-number` hands out once HER-SYS has accepted a
//! processing number, and `submit-keys` accepts, once, in its place.
//!
//! A token is opaque to the client: `base64url(body || mac)` where `body` = version (1 byte) ||
//! token id (16 random bytes) || expiry (8 bytes, big-endian unix seconds) and `mac` =
//! HMAC-SHA-256 (the KMS HMAC key) over a domain label and the body. It names no person and
//! carries nothing of the processing number: it proves only "HER-SYS said yes, recently".

use base64::Engine as _;

pub const TOKEN_VERSION: u8 = 1;
pub const TOKEN_ID_LENGTH: usize = 16;
pub const MAC_LENGTH: usize = 32;
const BODY_LENGTH: usize = 1 + TOKEN_ID_LENGTH + 8;
/// Length of the text form: base64url without padding of body and MAC.
pub const TOKEN_TEXT_LENGTH: usize = ((BODY_LENGTH + MAC_LENGTH) * 8).div_ceil(6);
/// Tokens live this long.
pub const TOKEN_LIFETIME_SECONDS: i64 = 15 * 60;
/// Separates these MACs from any other use of the same KMS key (log IDs, upload grants).
const MAC_LABEL: &[u8] = b"cocoa/verification-token/v1\n";

/// The part of a token its MAC covers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TokenBody {
    pub id: [u8; TOKEN_ID_LENGTH],
    pub expires_at: i64,
}

impl TokenBody {
    fn bytes(&self) -> [u8; BODY_LENGTH] {
        let mut bytes = [0u8; BODY_LENGTH];
        bytes[0] = TOKEN_VERSION;
        bytes[1..1 + TOKEN_ID_LENGTH].copy_from_slice(&self.id);
        bytes[1 + TOKEN_ID_LENGTH..].copy_from_slice(&self.expires_at.to_be_bytes());
        bytes
    }

    /// The message the MAC is computed over.
    pub fn mac_message(&self) -> Vec<u8> {
        [MAC_LABEL, &self.bytes()].concat()
    }

    /// The token's text, given the MAC over `mac_message()`.
    pub fn to_text(&self, mac: &[u8; MAC_LENGTH]) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([&self.bytes()[..], mac].concat())
    }

    /// The id as the used-tokens table stores it.
    pub fn id_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// A token's text taken apart; its MAC is not checked yet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UncheckedToken {
    pub body: TokenBody,
    pub mac: [u8; MAC_LENGTH],
}

impl UncheckedToken {
    /// Parses the text form; `None` for anything that is not a token of this version.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_TEXT_LENGTH {
            return None;
        }
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .ok()?;
        if bytes.len() != BODY_LENGTH + MAC_LENGTH || bytes[0] != TOKEN_VERSION {
            return None;
        }
        let id = bytes[1..1 + TOKEN_ID_LENGTH].try_into().ok()?;
        let expires_at =
            i64::from_be_bytes(bytes[1 + TOKEN_ID_LENGTH..BODY_LENGTH].try_into().ok()?);
        let mac = bytes[BODY_LENGTH..].try_into().ok()?;
        Some(Self {
            body: TokenBody { id, expires_at },
            mac,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_through_its_text() {
        let body = TokenBody {
            id: [7; 16],
            expires_at: 1_795_392_900,
        };
        let text = body.to_text(&[9; 32]);
        assert_eq!(text.len(), TOKEN_TEXT_LENGTH);
        let parsed = UncheckedToken::parse(&text).expect("parses");
        assert_eq!(parsed, UncheckedToken { body, mac: [9; 32] });
        assert_eq!(body.id_hex(), "07".repeat(16));
    }

    #[test]
    fn other_texts_are_not_tokens() {
        let text = TokenBody {
            id: [7; 16],
            expires_at: 1,
        }
        .to_text(&[9; 32]);
        assert!(UncheckedToken::parse(&text[1..]).is_none());
        assert!(UncheckedToken::parse("99999910").is_none());
        assert!(UncheckedToken::parse(&"!".repeat(TOKEN_TEXT_LENGTH)).is_none());
        let mut wrong_version = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&text)
            .expect("b64");
        wrong_version[0] = 2;
        let wrong_version = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(wrong_version);
        assert!(UncheckedToken::parse(&wrong_version).is_none());
    }

    #[test]
    fn the_mac_covers_a_labelled_body() {
        let a = TokenBody {
            id: [1; 16],
            expires_at: 5,
        };
        let b = TokenBody {
            id: [1; 16],
            expires_at: 6,
        };
        assert!(
            a.mac_message()
                .starts_with(b"cocoa/verification-token/v1\n")
        );
        assert_ne!(a.mac_message(), b.mac_message());
    }
}
