//! `register`: COCOA's `POST /api/register`. Since 2021-12 COCOA answers fixed dummy values and
//! stores nothing; the app only looks at the status (200) and records its own start date.

use lambda_http::{Body, Request, Response};
use serde::Serialize;
use shared::http;

/// COCOA's `RegisterResultModel` with its dummy values (reference/cocoa-api.md §3.1).
#[derive(Serialize)]
pub struct RegisterResult {
    #[serde(rename = "userUuid")]
    pub user_uuid: &'static str,
    pub secret: &'static str,
    #[serde(rename = "jumpConsistentSeed")]
    pub jump_consistent_seed: u64,
}

const DUMMY_USER_UUID: &str = "000000000000000000000000000000000";
const DUMMY_SECRET_BYTES: [u8; 556] = [b'0'; 556];
const DUMMY_SECRET: &str = match std::str::from_utf8(&DUMMY_SECRET_BYTES) {
    Ok(secret) => secret,
    Err(_) => "",
};

pub const DUMMY: RegisterResult = RegisterResult {
    user_uuid: DUMMY_USER_UUID,
    secret: DUMMY_SECRET,
    jump_consistent_seed: 0,
};

pub async fn handle(request: Request) -> Result<Response<Body>, std::convert::Infallible> {
    if !request.uri().path().ends_with("/register") {
        return Ok(http::not_found());
    }
    if request.method() != lambda_http::http::Method::POST {
        return Ok(http::method_not_allowed("POST"));
    }
    tracing::info!("register answered");
    Ok(http::json(200, &DUMMY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummy_values_have_cocoas_lengths() {
        assert_eq!(DUMMY.user_uuid.len(), 33);
        assert_eq!(DUMMY.secret.len(), 556);
        assert!(
            DUMMY.secret.bytes().all(|b| b == b'0') && DUMMY.user_uuid.bytes().all(|b| b == b'0')
        );
    }
}
