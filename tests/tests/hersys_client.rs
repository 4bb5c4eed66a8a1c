//! The HER-SYS client against stand-ins started here on loopback: mutual TLS (as COCOA's was
//! configured with a client certificate; certificates made by openssl for the test), the API-key
//! header, and no retry of a request HER-SYS received but answered too slowly.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use e2e::{VALID_NUMBER, random_id, workspace_root};
use shared::adapters::hersys::HersysVerifier;
use shared::config::HersysConfig;
use shared::domain::processing_number::ProcessingNumber;
use shared::ports::{ProcessingNumberVerifier, VerificationError};

fn openssl(dir: &Path, args: &[&str]) {
    let status = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(status.success(), "openssl {args:?}");
}

/// A CA, a server certificate for `localhost` and a client certificate, all signed by the CA.
fn make_certificates(dir: &Path) {
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    openssl(
        dir,
        &[
            &["req", "-x509"],
            &key[..],
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=test-ca",
            ],
        ]
        .concat(),
    );
    for (name, subject, extensions) in [
        (
            "server",
            "/CN=localhost",
            "subjectAltName=DNS:localhost\nextendedKeyUsage=serverAuth\n",
        ),
        (
            "client",
            "/CN=cocoa-backend",
            "extendedKeyUsage=clientAuth\n",
        ),
    ] {
        std::fs::write(dir.join(format!("{name}.ext")), extensions).expect("write");
        openssl(
            dir,
            &[
                &["req"],
                &key[..],
                &[
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                    "-subj",
                    subject,
                ],
            ]
            .concat(),
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "1",
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

struct StandIn(Child);

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn config(port: u16, identity: Option<String>, ca: String) -> HersysConfig {
    HersysConfig {
        url: format!("https://localhost:{port}/verify"),
        parameter_name: "processingNumber".into(),
        api_key: None,
        result_status: vec![("VALID".into(), 200), ("INVALID_OR_EXPIRED".into(), 406)],
        timeout: Duration::from_secs(3),
        client_identity_pem: identity,
        ca_pem: Some(ca),
    }
}

#[tokio::test]
async fn the_client_certificate_is_presented_and_required() {
    let dir = std::env::temp_dir().join(format!("hersys-mtls-{}", random_id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    make_certificates(&dir);
    let port = free_port();
    let root = workspace_root();
    let _stand_in = StandIn(
        Command::new(root.join(".local/venv/bin/python"))
            .arg(root.join("scripts/hersys_standin.py"))
            .env("HERSYS_PORT", port.to_string())
            .env("HERSYS_TLS_CERT", dir.join("server.pem"))
            .env("HERSYS_TLS_KEY", dir.join("server.key"))
            .env("HERSYS_TLS_CLIENT_CA", dir.join("ca.pem"))
            .spawn()
            .expect("the stand-in starts"),
    );
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("certificate file");
    let identity = format!("{}{}", read("client.pem"), read("client.key"));
    let number = ProcessingNumber::parse(VALID_NUMBER).expect("valid");

    let with_certificate =
        HersysVerifier::new(config(port, Some(identity), read("ca.pem"))).expect("client");
    assert_eq!(with_certificate.verify(&number).await, Ok(()));
    let refused = ProcessingNumber::parse("99999920").expect("valid");
    assert_eq!(
        with_certificate.verify(&refused).await,
        Err(VerificationError::Refused { status: 406 })
    );

    let without_certificate =
        HersysVerifier::new(config(port, None, read("ca.pem"))).expect("client");
    assert!(matches!(
        without_certificate.verify(&number).await,
        Err(VerificationError::Unavailable { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Starts a plain-HTTP stand-in with `env`, waits until it listens; returns it and its port.
async fn plain_stand_in(env: &[(&str, &str)]) -> (StandIn, u16) {
    let port = free_port();
    let root = workspace_root();
    let mut command = Command::new(root.join(".local/venv/bin/python"));
    command
        .arg(root.join("scripts/hersys_standin.py"))
        .env("HERSYS_PORT", port.to_string());
    for (name, value) in env {
        command.env(name, value);
    }
    let stand_in = StandIn(command.spawn().expect("the stand-in starts"));
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (stand_in, port)
}

async fn requests_seen(port: u16) -> u64 {
    let stats: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{port}/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("JSON");
    stats["requests"].as_u64().expect("count")
}

fn plain_config(port: u16, api_key: Option<&str>, timeout: Duration) -> HersysConfig {
    HersysConfig {
        url: format!("http://127.0.0.1:{port}/verify"),
        parameter_name: "processingNumber".into(),
        api_key: api_key.map(str::to_owned),
        result_status: vec![("VALID".into(), 200), ("INVALID_OR_EXPIRED".into(), 406)],
        timeout,
        client_identity_pem: None,
        ca_pem: None,
    }
}

#[tokio::test]
async fn the_api_key_header_is_sent_when_configured() {
    let (_stand_in, port) =
        plain_stand_in(&[("HERSYS_API_KEY", "subscription-key-for-test")]).await;
    let number = ProcessingNumber::parse(VALID_NUMBER).expect("valid");
    let keyed = HersysVerifier::new(plain_config(
        port,
        Some("subscription-key-for-test"),
        Duration::from_secs(3),
    ))
    .expect("client");
    assert_eq!(keyed.verify(&number).await, Ok(()));
    let wrong = HersysVerifier::new(plain_config(
        port,
        Some("another key"),
        Duration::from_secs(3),
    ))
    .expect("client");
    assert!(matches!(
        wrong.verify(&number).await,
        Err(VerificationError::Unavailable { .. })
    ));
    let none =
        HersysVerifier::new(plain_config(port, None, Duration::from_secs(3))).expect("client");
    assert!(matches!(
        none.verify(&number).await,
        Err(VerificationError::Unavailable { .. })
    ));
}

#[tokio::test]
async fn a_timed_out_request_is_not_retried_and_a_refused_connection_fails_cleanly() {
    let (_stand_in, port) = plain_stand_in(&[("HERSYS_SLOW_SECONDS", "2")]).await;
    let slow = ProcessingNumber::parse("99999940").expect("valid");
    let client =
        HersysVerifier::new(plain_config(port, None, Duration::from_millis(500))).expect("client");
    let before = requests_seen(port).await;
    assert_eq!(
        client.verify(&slow).await,
        Err(VerificationError::Unavailable { reason: "timeout" })
    );
    assert_eq!(
        requests_seen(port).await,
        before + 1,
        "HER-SYS received it once: no retry after a timeout"
    );

    let closed = free_port();
    let nowhere =
        HersysVerifier::new(plain_config(closed, None, Duration::from_secs(1))).expect("client");
    let valid = ProcessingNumber::parse(VALID_NUMBER).expect("valid");
    assert_eq!(
        nowhere.verify(&valid).await,
        Err(VerificationError::Unavailable {
            reason: "connection failed"
        })
    );
}
