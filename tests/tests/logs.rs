//! Consented operation logs through the local stack: log IDs (issued, forged, unknown, reused,
//! expired), uploads with redaction, COCOA's unmodified inquirylog + blob-style flow, and the
//! 60-day limit with a moved clock (in process, with the production adapters).

use std::io::{Read, Write};

use e2e::*;
use serde_json::{Value, json};
use shared::adapters::dynamo_logs::{DynamoLogIds, DynamoOperationLogs};
use shared::adapters::kms_mac::KmsMac;
use shared::adapters::retention::{ExpiredExportFiles, ExpiredItems};
use shared::domain::log_id::LogId;
use shared::domain::operation_log::decode_log;
use shared::logs::{AcceptLogError, AcceptLogs, EnforceRetention, IssueLogIds};
use shared::ports::{
    LogFormat, LogIdIssuer, LogIdRegistry, MessageAuthenticator, OperationLogStore,
};
use time::{Duration, OffsetDateTime};

/// A processing number, an e-mail address, a phone number, an IP address, a MAC address and a
/// TEK, inside an upload's free text: none may reach the table.
const PRIVATE: &[&str] = &[
    "12345678",
    "taro@example.jp",
    "090-1234-5678",
    "203.0.113.9",
    "00:1A:2B:3C:4D:5E",
    "AAECAwQFBgcICQoLDA0ODw==",
];

fn upload_body() -> Value {
    json!({
        "consent": true,
        "consentedAt": "2026-11-23T09:00:00Z",
        "logInfo": {"appVersion": "3.0.0", "os": "Android", "osVersion": "13", "deviceModel": "Pixel 7"},
        "entries": [
            {"time": "2026-11-23T08:58:00Z", "operation": "NotifyOtherPage.Submit",
             "succeeded": false,
             "inputs": {"processingNumber": "12345678", "contact": "taro@example.jp / 090-1234-5678"},
             "outputs": {"status": 406, "server": "203.0.113.9"},
             "state": {"bluetooth": "00:1A:2B:3C:4D:5E", "tek": "AAECAwQFBgcICQoLDA0ODw=="}},
            {"time": "2026-11-23T08:59:00Z", "operation": "ExposureDetection",
             "succeeded": true, "inputs": null, "outputs": {"matches": 0}, "state": null}
        ]
    })
}

async fn issue_over_http(stack: &Stack) -> String {
    let (status, body) = stack.send("POST", "/api/v1/logs", "", &[]).await;
    assert_eq!(status, 201, "{body}");
    let issued: Value = serde_json::from_str(&body).expect("JSON");
    let id = issued["logId"].as_str().expect("logId").to_owned();
    assert!(issued["expiresAt"].as_str().is_some());
    id
}

fn logs_store(stack: &Stack) -> DynamoOperationLogs {
    DynamoOperationLogs::new(
        stack.dynamodb.clone(),
        stack.resource("table:operation-logs"),
        stack.resource("table:log-ids"),
    )
}

fn mac(stack: &Stack) -> KmsMac {
    KmsMac::new(stack.kms.clone(), stack.resource("kms:mac"))
}

fn issuer(stack: &Stack) -> IssueLogIds<KmsMac, DynamoLogIds> {
    IssueLogIds {
        mac: mac(stack),
        registry: DynamoLogIds::new(stack.dynamodb.clone(), stack.resource("table:log-ids")),
    }
}

fn acceptor(stack: &Stack) -> AcceptLogs<KmsMac, DynamoLogIds, DynamoOperationLogs> {
    AcceptLogs {
        mac: mac(stack),
        registry: DynamoLogIds::new(stack.dynamodb.clone(), stack.resource("table:log-ids")),
        store: logs_store(stack),
    }
}

/// Items of the operation-logs table stored under `id`.
async fn stored_under(stack: &Stack, id: &str) -> usize {
    stack
        .scan(&stack.resource("table:operation-logs"))
        .await
        .iter()
        .filter(|item| string(item, "pk").as_deref() == Some(id))
        .count()
}

fn canonical(id: &str) -> String {
    LogId::parse(id).expect("a log ID").canonical()
}

#[tokio::test]
async fn an_issued_id_takes_one_redacted_upload() {
    let stack = Stack::connect().await;
    let id = issue_over_http(&stack).await;
    assert_eq!(id.len(), 29, "five groups of five: {id}");
    // Read over the phone: lower case and without hyphens is the same ID.
    let typed = id.replace('-', "").to_lowercase();
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{typed}"), &upload_body(), &[])
        .await;
    assert_eq!(status, 201, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(answer["logId"], id.as_str());
    assert_eq!(answer["redacted"]["processing-number"], 1);
    assert_eq!(answer["redacted"]["email"], 1);

    let (again, body) = stack
        .put_json(&format!("/api/v1/logs/{id}"), &upload_body(), &[])
        .await;
    assert_eq!(
        again, 201,
        "the app's retry of the same log is accepted again: {body}"
    );
    let mut other = upload_body();
    other["entries"][1]["operation"] = json!("ExposureDetection.Retry");
    let (again, _) = stack
        .put_json(&format!("/api/v1/logs/{id}"), &other, &[])
        .await;
    assert_eq!(again, 409, "a log ID is used by one log");
    assert_eq!(
        stored_under(&stack, &canonical(&id)).await,
        2,
        "meta and one chunk, once"
    );

    let (summary, stored) = logs_store(&stack)
        .get(&canonical(&id), OffsetDateTime::now_utc().unix_timestamp())
        .await
        .expect("store answers")
        .expect("the log is there");
    assert_eq!(summary.format, LogFormat::Json);
    let text = String::from_utf8(decode_log(&stored).expect("inflates")).expect("UTF-8");
    assert!(text.contains("NotifyOtherPage.Submit") && text.contains("\"status\":406"));
    for private in PRIVATE {
        assert!(!text.contains(private), "{private} was stored");
    }
    // Nothing private anywhere in the table's raw items either (chunks are deflated, so check
    // the inflated text above; the meta item holds counts only).
    let items = stack.scan(&stack.resource("table:operation-logs")).await;
    for item in items
        .iter()
        .filter(|i| string(i, "pk").as_deref() == Some(&canonical(&id)))
    {
        let debug = format!("{item:?}");
        for private in PRIVATE {
            assert!(!debug.contains(private));
        }
    }
}

#[tokio::test]
async fn forged_unknown_and_malformed_ids_store_nothing() {
    let stack = Stack::connect().await;
    let genuine = LogId::parse(&issue_over_http(&stack).await).expect("ID");

    // Forged: a real random part with a made-up tag.
    let mut tag = *genuine.tag();
    tag[0] ^= 1;
    let forged = LogId::new(*genuine.random(), tag);
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{forged}"), &upload_body(), &[])
        .await;
    assert_eq!(status, 403, "{body}");

    // Unknown: a correctly MAC'd ID this service never recorded.
    let random: [u8; 10] = random_bytes(10).try_into().expect("10 bytes");
    let mac_value = mac(&stack)
        .generate_mac(&LogId::mac_message(&random))
        .await
        .expect("MAC");
    let unknown = LogId::from_mac(random, &mac_value);
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{unknown}"), &upload_body(), &[])
        .await;
    assert_eq!(status, 404, "{body}");

    // Malformed: a check symbol that does not match.
    let mut text = genuine.canonical();
    let last = if text.ends_with('0') { "1" } else { "0" };
    text.replace_range(text.len() - 1.., last);
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{text}"), &upload_body(), &[])
        .await;
    assert_eq!(status, 400, "{body}");

    for id in [forged.canonical(), unknown.canonical(), text] {
        assert_eq!(
            stored_under(&stack, &id).await,
            0,
            "nothing stored for {id}"
        );
    }
    // The genuine ID was not spent by any of that.
    let (status, _) = stack
        .put_json(&format!("/api/v1/logs/{genuine}"), &upload_body(), &[])
        .await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn an_expired_id_and_a_refused_consent_store_nothing() {
    let stack = Stack::connect().await;
    let two_days_ago = OffsetDateTime::now_utc().unix_timestamp() - 2 * 86_400;
    let expired = issuer(&stack)
        .issue(LogIdIssuer::Helpdesk, two_days_ago)
        .await
        .expect("issued in the past");
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{}", expired.id), &upload_body(), &[])
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(stored_under(&stack, &expired.id.canonical()).await, 0);

    let id = issue_over_http(&stack).await;
    let mut no_consent = upload_body();
    no_consent["consent"] = json!(false);
    let (status, body) = stack
        .put_json(&format!("/api/v1/logs/{id}"), &no_consent, &[])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("Consent"), "{body}");
    let (status, _) = stack
        .send(
            "PUT",
            &format!("/api/v1/logs/{id}"),
            "{\"consent\": tru",
            &[],
        )
        .await;
    assert_eq!(status, 400);
    let mut oversized = upload_body();
    oversized["entries"][1]["state"] = json!("x".repeat(10 * 1024 * 1024));
    let (status, _) = stack
        .put_json(&format!("/api/v1/logs/{id}"), &oversized, &[])
        .await;
    assert_eq!(status, 413, "over 10 MiB");
    assert_eq!(stored_under(&stack, &canonical(&id)).await, 0);
    let record = DynamoLogIds::new(stack.dynamodb.clone(), stack.resource("table:log-ids"))
        .lookup(&canonical(&id))
        .await
        .expect("lookup")
        .expect("recorded");
    assert!(!record.used, "a refused upload leaves the ID unused");
}

#[tokio::test]
async fn no_user_facing_route_deletes_a_log() {
    let stack = Stack::connect().await;
    let id = issue_over_http(&stack).await;
    let (status, _) = stack
        .put_json(&format!("/api/v1/logs/{id}"), &upload_body(), &[])
        .await;
    assert_eq!(status, 201);
    for path in [format!("/api/v1/logs/{id}"), "/api/v1/logs".to_owned()] {
        let (status, _) = stack.send("DELETE", &path, "", &[]).await;
        assert!((400..500).contains(&status), "DELETE {path}: {status}");
    }
    assert!(
        stored_under(&stack, &canonical(&id)).await >= 2,
        "meta and a chunk remain"
    );
    let declaration: Value = serde_json::from_str(
        &std::fs::read_to_string(workspace_root().join("infra/stack.json")).expect("declaration"),
    )
    .expect("JSON");
    for function in declaration["functions"].as_array().expect("functions") {
        for route in function["routes"].as_array().expect("routes") {
            assert!(!route.as_str().unwrap_or_default().starts_with("DELETE"));
        }
    }
}

fn app_zip(uuid: &str) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let header = "\"output_date\",\"log_level\",\"message\",\"method\",\"file_path\",\"line_number\",\"platform\",\"platform_version\",\"model\",\"device_type\",\"app_version\",\"build_number\"\n";
    for day in ["20221120", "20221121"] {
        writer
            .start_file(
                format!("logs/cocoa_log_{day}.csv"),
                zip::write::SimpleFileOptions::default(),
            )
            .expect("entry");
        writer
            .write_all(format!("{header}\"2022/11/20 10:11:12\",\"Info\",\"send {uuid} from 192.168.10.20 for 12345678\",\"UploadAsync\",\"/src/StorageService.cs\",\"120\",\"Android\",\"13\",\"Pixel 7\",\"Physical\",\"3.0.0\",\"150\"\n").as_bytes())
            .expect("data");
    }
    writer.finish().expect("zip").into_inner()
}

#[tokio::test]
async fn the_unmodified_cocoa_flow_uploads_a_zip() {
    let stack = Stack::connect().await;
    let api_key = stack.environment("INQUIRY_LOG_API_KEY");
    let (status, body) = stack.send("GET", "/api/inquirylog", "", &[]).await;
    assert_eq!((status, body.as_str()), (400, ""), "no x-api-key");
    let (status, _) = stack
        .send("GET", "/api/inquirylog", "", &[("x-api-key", "wrong")])
        .await;
    assert_eq!(status, 400);
    let (status, body) = stack
        .send("GET", "/api/inquirylog", "", &[("x-api-key", &api_key)])
        .await;
    assert_eq!(status, 200, "{body}");
    let sas: Value = serde_json::from_str(&body).expect("JSON");
    let sas = sas["sas_token"].as_str().expect("sas_token").to_owned();
    assert!(!sas.is_empty());

    let uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
        .replace("70867728950e", &random_id()[..12].to_lowercase());
    let path = format!("/inquiry-logs/cocoa_log_{uuid}.zip?{sas}");
    let blob_headers = [
        ("content-type", "application/octet-stream"),
        ("x-ms-blob-type", "BlockBlob"),
        ("if-none-match", "*"),
    ];
    let (status, body) = stack
        .send("PUT", &path, app_zip(&uuid), &blob_headers)
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = stack
        .send("PUT", &path, app_zip(&uuid), &blob_headers)
        .await;
    assert_eq!(
        status, 201,
        "the app's retry of the same upload is accepted again"
    );
    let (status, _) = stack
        .send("PUT", &path, app_zip(&random_id()), &blob_headers)
        .await;
    assert_eq!(status, 409, "a blob is created once");
    let (status, body) = stack
        .send(
            "PUT",
            &format!("/inquiry-logs/cocoa_log_{}.zip?{sas}", random_uuid()),
            app_zip(&uuid),
            &blob_headers,
        )
        .await;
    assert_eq!(status, 403, "a grant is used once: {body}");

    // A grant whose signature was altered, and a name that is not the app's.
    let tampered = sas.replace("sig=", "sig=A").replacen("sig=AA", "sig=BA", 1);
    let (status, _) = stack
        .send(
            "PUT",
            &format!("/inquiry-logs/cocoa_log_{}.zip?{tampered}", random_uuid()),
            app_zip(&uuid),
            &blob_headers,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = stack
        .send(
            "PUT",
            &format!("/inquiry-logs/other.zip?{sas}"),
            app_zip(&uuid),
            &blob_headers,
        )
        .await;
    assert_eq!(status, 400);

    let (summary, zip_bytes) = logs_store(&stack)
        .get(&uuid, OffsetDateTime::now_utc().unix_timestamp())
        .await
        .expect("store")
        .expect("the zip is retrievable");
    assert_eq!(summary.format, LogFormat::Zip);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).expect("a zip");
    assert_eq!(archive.len(), 2);
    let mut text = String::new();
    archive
        .by_name("cocoa_log_20221121.csv")
        .expect("the day's file")
        .read_to_string(&mut text)
        .expect("UTF-8");
    assert!(text.contains("UploadAsync"));
    assert!(!text.contains("192.168.10.20") && !text.contains("12345678"));
}

/// Uploads a log as if received at `received`, through the production use case and adapters.
async fn upload_at(stack: &Stack, received: OffsetDateTime) -> String {
    let issued = issuer(stack)
        .issue(LogIdIssuer::App, received.unix_timestamp())
        .await
        .expect("issued");
    let body = upload_body().to_string();
    acceptor(stack)
        .accept_json(&issued.id.to_string(), body.as_bytes(), received)
        .await
        .expect("accepted");
    issued.id.canonical()
}

#[tokio::test]
async fn a_log_past_sixty_days_is_never_served_and_retention_deletes_it() {
    let stack = Stack::connect().await;
    let now = OffsetDateTime::now_utc();
    let too_old = upload_at(&stack, now - Duration::days(60) - Duration::seconds(1)).await;
    let still_kept = upload_at(&stack, now - Duration::days(59)).await;
    let store = logs_store(&stack);
    let unix = now.unix_timestamp();
    assert!(store.get(&too_old, unix).await.expect("get").is_none());
    assert!(store.get(&still_kept, unix).await.expect("get").is_some());
    let listed: Vec<String> = store
        .list(unix - 61 * 86_400, unix)
        .await
        .expect("list")
        .into_iter()
        .map(|l| l.id)
        .collect();
    assert!(listed.contains(&still_kept) && !listed.contains(&too_old));

    // DynamoDB TTL has not acted (emulators never do): the items are still in the table.
    assert!(stored_under(&stack, &too_old).await >= 2);
    let retention = EnforceRetention {
        tables: vec![ExpiredItems::new(
            stack.dynamodb.clone(),
            stack.resource("table:operation-logs"),
        )],
        files: Vec::<ExpiredExportFiles>::new(),
    };
    let (purged, failures) = retention.run(unix).await;
    assert!(failures.is_empty(), "{failures:?}");
    assert!(purged[0].deleted >= 2, "{purged:?}");
    assert_eq!(stored_under(&stack, &too_old).await, 0);
    assert!(stored_under(&stack, &still_kept).await >= 2);
    assert!(store.get(&still_kept, unix).await.expect("get").is_some());
}

#[tokio::test]
async fn a_log_id_used_while_an_upload_was_in_flight_is_refused_once() {
    let stack = Stack::connect().await;
    let now = OffsetDateTime::now_utc();
    let issued = issuer(&stack)
        .issue(LogIdIssuer::App, now.unix_timestamp())
        .await
        .expect("issued");
    let body = upload_body().to_string();
    let mut other = upload_body();
    other["entries"][1]["operation"] = json!("ExposureDetection.Other");
    let other = other.to_string();
    let text = issued.id.to_string();
    let accept = acceptor(&stack);
    let (a, b) = tokio::join!(
        accept.accept_json(&text, body.as_bytes(), now),
        accept.accept_json(&text, other.as_bytes(), now)
    );
    let successes = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert!(successes <= 1, "two logs under one ID: {a:?} {b:?}");
    for result in [&a, &b] {
        assert!(
            matches!(
                result,
                Ok(_) | Err(AcceptLogError::UsedLogId) | Err(AcceptLogError::Store(_))
            ),
            "{result:?}"
        );
    }
    // A client told to retry (two transactions that collided) succeeds now; one told "used" is
    // told so again; the winner's retry is accepted again.
    let (winner, loser) = if b.is_ok() {
        (&other, &body)
    } else {
        (&body, &other)
    };
    let retry = accept.accept_json(&text, winner.as_bytes(), now).await;
    assert!(retry.is_ok(), "{retry:?}");
    let retry = accept.accept_json(&text, loser.as_bytes(), now).await;
    assert!(matches!(retry, Err(AcceptLogError::UsedLogId)), "{retry:?}");
    // One meta item and the chunks of one upload: the loser's chunks were removed.
    let items = stack.scan(&stack.resource("table:operation-logs")).await;
    let uploads: std::collections::BTreeSet<String> = items
        .iter()
        .filter(|i| string(i, "pk").as_deref() == Some(&issued.id.canonical()))
        .filter_map(|i| string(i, "sk"))
        .filter_map(|sk| sk.strip_prefix("chunk#").map(|r| r[..16].to_owned()))
        .collect();
    assert_eq!(uploads.len(), 1, "{uploads:?}");
}
