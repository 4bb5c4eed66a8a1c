//! Processing-number verification: the use case of `verify-processing-number` (check a number
//! with HER-SYS, hand out a single-use token), and the redemption of those tokens in
//! `submit-keys`.

use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::domain::diagnosis::VerificationPayload;
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
/// redeemed before (a conditional write, so two concurrent redemptions cannot both win).
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
            .consume(&token.body.id_hex(), token.body.expires_at)
            .await
            .map_err(|_| VerificationError::Unavailable {
                reason: "used-token store unavailable",
            })?;
        if first_use { Ok(()) } else { Err(REFUSED) }
    }
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
        now: OffsetDateTime,
    ) -> Result<(), VerificationError> {
        match payload {
            VerificationPayload::ProcessingNumber(number) => self.numbers.verify(number).await,
            VerificationPayload::Token(token) => self.tokens.redeem(token, now).await,
            VerificationPayload::Malformed => Err(REFUSED),
        }
    }
}
