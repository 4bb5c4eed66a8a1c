//! A malformed processing number never reaches HER-SYS, by either door. One test alone in its
//! binary: it counts the stand-in's requests, which other tests would move.

use e2e::*;
use serde_json::{Value, json};
use time::Duration;

async fn hersys_requests(stack: &Stack) -> u64 {
    let port = stack.description["ports"]["hersys"]
        .as_u64()
        .expect("hersys port");
    let stats: Value = reqwest::get(format!("http://127.0.0.1:{port}/stats"))
        .await
        .expect("stand-in")
        .json()
        .await
        .expect("JSON");
    stats["requests"].as_u64().expect("count")
}

#[tokio::test]
async fn malformed_numbers_never_reach_hersys() {
    let stack = Stack::connect().await;
    let before = hersys_requests(&stack).await;
    for malformed in [
        "1234567",
        "123456789",
        "abcdefgh",
        "9999991O",
        " 99999910",
        "99999910 ",
        "９９９９９９１０",
    ] {
        let (status, _) = stack
            .send(
                "POST",
                "/api/v1/verification",
                json!({"processingNumber": malformed}).to_string(),
                &[],
            )
            .await;
        assert_eq!(status, 400, "{malformed:?}");
        let keys = vec![TestKey::on(today_utc() - Duration::days(1))];
        let body = v3_body(
            &keys,
            today_utc() - Duration::days(1),
            malformed,
            &random_id(),
        );
        let (status, _) = stack.put_json("/api/v3/diagnosis", &body, &[]).await;
        assert_eq!(status, 406, "{malformed:?}");
        assert!(stack.stored_items_for(&keys).await.is_empty());
    }
    assert_eq!(
        hersys_requests(&stack).await,
        before,
        "HER-SYS saw none of them"
    );
    // The control: a well-formed number does reach it, by each door.
    let (status, _) = stack
        .send(
            "POST",
            "/api/v1/verification",
            json!({"processingNumber": VALID_NUMBER}).to_string(),
            &[],
        )
        .await;
    assert_eq!(status, 200);
    let keys = vec![TestKey::on(today_utc() - Duration::days(1))];
    let (status, _) = stack
        .put_json(
            "/api/v3/diagnosis",
            &v3_body(
                &keys,
                today_utc() - Duration::days(1),
                REFUSED_NUMBER,
                &random_id(),
            ),
            &[],
        )
        .await;
    assert_eq!(status, 406);
    assert_eq!(hersys_requests(&stack).await, before + 2);
}
