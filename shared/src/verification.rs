//! Processing-number verification: the use case of `verify-processing-number` (check a number
//! with HER-SYS, hand out a single-use token), and the redemption of those tokens in
//! `submit-keys`.

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::diagnosis::{SubmissionDigest, VerificationPayload};
use crate::domain::processing_number::{MalformedProcessingNumber, ProcessingNumber};
use crate::domain::verification_token::{
    TOKEN_ID_LENGTH, TOKEN_LIFETIME_SECONDS, TokenBody, UncheckedToken,
};
use crate::ports::{
    MacError, MessageAuthenticator, ProcessingNumberVerifier, SubmissionVerifier, UsedTokenStore,
    VerificationError,
};
use crate::request::{BodyError, parse_json};

/// `POST /api/v1/verification` bodies are a number and some padding: a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 16 * 1024;
/// What a refused token answers, as a refused number does (COCOA's 406).
const REFUSED: VerificationError = VerificationError::Refused { status: 406 };

/// `POST /api/v1/verification`'s body.
#[derive(Deserialize)]
pub struct VerificationRequest {
    #[serde(rename = "processingNumber")]
    pub processing_number: Option<String>,
    /// Ignored: it only makes every request the same size on the wire.
    #[serde(default)]
    pub padding: Option<String>,
}

/// Its 200 answer.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct IssuedToken {
    pub token: String,
    #[serde(rename = "expiresAt")]
    pub expires_at: String,
}

/// The direct (Lambda Invoke) request `submit-keys` sends for a raw processing number.
#[derive(Serialize, Deserialize)]
pub struct DirectVerification {
    #[serde(rename = "processingNumber")]
    pub processing_number: String,
}

/// Its answer: the status the submission should get (200 = verified).
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
pub struct DirectVerificationResult {
    pub status: u16,
}

/// Why `POST /api/v1/verification` gave no token.
#[derive(Debug, thiserror::Error)]
pub enum VerificationRequestError {
    #[error(transparent)]
    Body(#[from] BodyError),
    #[error("processingNumber must be exactly 8 ASCII digits")]
    NotEightDigits(#[from] MalformedProcessingNumber),
    #[error(transparent)]
    Verification(#[from] VerificationError),
    #[error("the token could not be issued")]
    Mac(#[from] MacError),
}

impl VerificationRequestError {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Body(BodyError::TooLarge { .. }) => "too_large",
            Self::Body(BodyError::Malformed { .. }) => "malformed_body",
            Self::NotEightDigits(_) => "not_eight_digits",
            Self::Verification(error) => error.kind(),
            Self::Mac(_) => "mac_unavailable",
        }
    }
}

/// `verify-processing-number`'s use case.
pub struct IssueTokens<V, M> {
    pub verifier: V,
    pub mac: M,
}

impl<V, M> IssueTokens<V, M>
where
    V: ProcessingNumberVerifier + Sync,
    M: MessageAuthenticator + Sync,
{
    /// Checks the number with HER-SYS; on success, a token valid for 15 minutes.
    pub async fn issue(
        &self,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<IssuedToken, VerificationRequestError> {
        let request: VerificationRequest = parse_json(body, MAX_BODY_BYTES)?;
        let number =
            ProcessingNumber::parse(request.processing_number.as_deref().unwrap_or_default())?;
        self.verifier.verify(&number).await?;
        let mut id = [0u8; TOKEN_ID_LENGTH];
        SystemRandom::new()
            .fill(&mut id)
            .map_err(|_| MacError("no randomness".into()))?;
        let body = TokenBody {
            id,
            expires_at: now.unix_timestamp() + TOKEN_LIFETIME_SECONDS,
        };
        let mac = self.mac.generate_mac(&body.mac_message()).await?;
        let expires_at = OffsetDateTime::from_unix_timestamp(body.expires_at)
            .ok()
            .and_then(|t| {
                t.format(&time::format_description::well_known::Rfc3339)
                    .ok()
            })
            .unwrap_or_default();
        Ok(IssuedToken {
            token: body.to_text(&mac),
            expires_at,
        })
    }

    /// The direct check `submit-keys` asks for: a status, 200 when HER-SYS accepted the number.
    pub async fn check(&self, request: &DirectVerification) -> DirectVerificationResult {
        let status = match ProcessingNumber::parse(&request.processing_number) {
            Err(_) => 400,
            Ok(number) => match self.verifier.verify(&number).await {
                Ok(()) => 200,
                Err(VerificationError::Refused { status }) => status,
                Err(VerificationError::Unavailable { .. }) => 503,
                Err(VerificationError::Throttled) => 429,
            },
        };
        DirectVerificationResult { status }
    }
}

/// Redeems tokens: the MAC must verify, the token must not have expired, and it must not have been
/// redeemed before by another submission (a conditional write, so two concurrent redemptions
/// cannot both win). The same submission may redeem it again within its lifetime: a submission
/// whose keys failed to store after its token was redeemed is told to retry, and its retry (the
/// identical body) must pass, or the user's keys are lost.
///
/// The used-tokens table holds the token's id and a binding: SHA-256 over a label, the token's
/// MAC and the submission's digest. Without the token (which only the phone and this request
/// hold) the binding cannot be tested against any set of keys, so the table links no token to
/// published keys.
pub struct TokenRedemption<M, U> {
    pub mac: M,
    pub used: U,
}

impl<M, U> TokenRedemption<M, U>
where
    M: MessageAuthenticator + Sync,
    U: UsedTokenStore + Sync,
{
    pub async fn redeem(
        &self,
        token: &UncheckedToken,
        submission: &SubmissionDigest,
        now: OffsetDateTime,
    ) -> Result<(), VerificationError> {
        if token.body.expires_at <= now.unix_timestamp() {
            return Err(REFUSED);
        }
        let genuine = self
            .mac
            .verify_mac(&token.body.mac_message(), &token.mac)
            .await
            .map_err(|_| VerificationError::Unavailable {
                reason: "MAC service unavailable",
            })?;
        if !genuine {
            return Err(REFUSED);
        }
        let first_use = self
            .used
            .consume(
                &token.body.id_hex(),
                &token_binding(token, submission),
                token.body.expires_at,
            )
            .await
            .map_err(|_| VerificationError::Unavailable {
                reason: "used-token store unavailable",
            })?;
        if first_use { Ok(()) } else { Err(REFUSED) }
    }
}

/// What the used-tokens table keeps of the submission that redeemed `token` (hex).
pub fn token_binding(token: &UncheckedToken, submission: &SubmissionDigest) -> String {
    let mut context = ring::digest::Context::new(&ring::digest::SHA256);
    context.update(b"cocoa-token-binding-v1\n");
    context.update(&token.mac);
    context.update(&submission.0);
    context
        .finish()
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `submit-keys`' verifier: a raw number goes to HER-SYS (through the verifier function), a token
/// is redeemed, anything else is refused without asking anyone.
pub struct PayloadVerifier<N, M, U> {
    pub numbers: N,
    pub tokens: TokenRedemption<M, U>,
}

impl<N, M, U> SubmissionVerifier for PayloadVerifier<N, M, U>
where
    N: ProcessingNumberVerifier + Sync,
    M: MessageAuthenticator + Sync,
    U: UsedTokenStore + Sync,
{
    async fn verify(
        &self,
        payload: &VerificationPayload,
        submission: &SubmissionDigest,
        now: OffsetDateTime,
    ) -> Result<(), VerificationError> {
        match payload {
            VerificationPayload::ProcessingNumber(number) => self.numbers.verify(number).await,
            VerificationPayload::Token(token) => self.tokens.redeem(token, submission, now).await,
            VerificationPayload::Malformed => Err(REFUSED),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;

    use time::macros::datetime;

    use super::*;
    use crate::adapters::local_mac::LocalMac;
    use crate::domain::attestation::KeyText;
    use crate::ports::StoreError;

    const NOW: OffsetDateTime = datetime!(2026-12-03 10:00 UTC);

    /// The used-tokens table in memory, with its conditional write's rule.
    #[derive(Default)]
    struct UsedInMemory(Mutex<HashMap<String, String>>);

    impl UsedTokenStore for UsedInMemory {
        async fn consume(&self, id: &str, binding: &str, _: i64) -> Result<bool, StoreError> {
            let mut used = self.0.lock().map_err(|_| StoreError("poisoned".into()))?;
            match used.get(id) {
                Some(bound) => Ok(bound == binding),
                None => {
                    used.insert(id.to_owned(), binding.to_owned());
                    Ok(true)
                }
            }
        }
    }

    fn redemption() -> TokenRedemption<LocalMac, UsedInMemory> {
        TokenRedemption {
            mac: LocalMac::new(b"test key"),
            used: UsedInMemory::default(),
        }
    }

    async fn token(redemption: &TokenRedemption<LocalMac, UsedInMemory>) -> UncheckedToken {
        let body = TokenBody {
            id: [7; TOKEN_ID_LENGTH],
            expires_at: NOW.unix_timestamp() + TOKEN_LIFETIME_SECONDS,
        };
        let mac = redemption
            .mac
            .generate_mac(&body.mac_message())
            .await
            .expect("a MAC");
        UncheckedToken::parse(&body.to_text(&mac)).expect("a token")
    }

    fn submission(idempotency_key: &str, key_data: &str) -> SubmissionDigest {
        SubmissionDigest::of(
            "v3",
            idempotency_key,
            &[KeyText {
                key_data: key_data.into(),
                rolling_start_number: 2_993_472,
                rolling_period: 144,
                report_type: 1,
            }],
        )
    }

    #[tokio::test]
    async fn a_redeemed_token_passes_again_only_for_the_same_submission() {
        let redemption = redemption();
        let token = token(&redemption).await;
        let first = submission("idem", "AAAAAAAAAAAAAAAAAAAAAA==");
        assert!(redemption.redeem(&token, &first, NOW).await.is_ok());
        // The app's retry after a failure to store: the same body, so the same digest.
        let later = NOW + time::Duration::minutes(10);
        assert!(redemption.redeem(&token, &first, later).await.is_ok());
        // Anyone else with the token: other keys, or another idempotency key.
        for other in [
            submission("idem", "AQAAAAAAAAAAAAAAAAAAAA=="),
            submission("other", "AAAAAAAAAAAAAAAAAAAAAA=="),
        ] {
            assert!(matches!(
                redemption.redeem(&token, &other, NOW).await,
                Err(VerificationError::Refused { status: 406 })
            ));
        }
        // Still the first submission's after those refusals.
        assert!(redemption.redeem(&token, &first, later).await.is_ok());
    }

    #[tokio::test]
    async fn the_same_submission_is_refused_once_the_token_expired_or_with_a_forged_mac() {
        let redemption = redemption();
        let token = token(&redemption).await;
        let first = submission("idem", "AAAAAAAAAAAAAAAAAAAAAA==");
        assert!(redemption.redeem(&token, &first, NOW).await.is_ok());
        let expired = NOW + time::Duration::seconds(TOKEN_LIFETIME_SECONDS);
        assert!(redemption.redeem(&token, &first, expired).await.is_err());
        let mut forged = UncheckedToken::parse(&token.body.to_text(&token.mac)).expect("token");
        forged.mac[0] ^= 1;
        assert!(redemption.redeem(&forged, &first, NOW).await.is_err());
    }

    #[test]
    fn the_binding_depends_on_the_token_and_the_submission() {
        let body = TokenBody {
            id: [1; TOKEN_ID_LENGTH],
            expires_at: 0,
        };
        let a = UncheckedToken::parse(&body.to_text(&[1; 32])).expect("token");
        let b = UncheckedToken::parse(&body.to_text(&[2; 32])).expect("token");
        let s = submission("idem", "AAAAAAAAAAAAAAAAAAAAAA==");
        let t = submission("idem", "AQAAAAAAAAAAAAAAAAAAAA==");
        assert_eq!(token_binding(&a, &s), token_binding(&a, &s));
        assert_ne!(token_binding(&a, &s), token_binding(&b, &s));
        assert_ne!(token_binding(&a, &s), token_binding(&a, &t));
        assert_eq!(token_binding(&a, &s).len(), 64);
    }
}
