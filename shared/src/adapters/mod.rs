//! Adapters of the ports: DynamoDB, HER-SYS over HTTP, and device attestation.

pub mod attestation;
pub mod devicecheck;
pub(crate) mod dynamo;
pub mod dynamo_exports;
pub mod dynamo_keys;
pub mod dynamo_logs;
pub mod dynamo_tokens;
pub mod hersys;
pub mod kms_mac;
pub mod kms_signer;
pub mod lambda_verifier;
pub mod local_mac;
pub mod local_signer;
pub mod retention;
pub mod s3_bucket;
pub mod safetynet;

use std::time::Duration;

pub use aws_config::SdkConfig;
pub use aws_config::timeout::TimeoutConfig;
pub use aws_sdk_dynamodb::Client as DynamoDbClient;

/// How long a function waits on AWS (DynamoDB, S3, KMS, Lambda) before it gives up. Without a
/// limit the SDK waits on a hung connection until the Lambda itself times out, and the phone gets
/// API Gateway's bare 503 after the whole function budget; with one, a stalled call fails, is
/// retried once within the budget, and the handler answers its own 503 ("retry") in time.
/// A call that timed out may still take effect later; every write is conditional (or a
/// transaction), so the client's retry finds it done and adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsTimeouts {
    /// Establishing the TCP (and TLS) connection.
    pub connect: Duration,
    /// One attempt, from sending the request to reading the whole response.
    pub attempt: Duration,
    /// The whole call, retries included.
    pub operation: Duration,
}

impl AwsTimeouts {
    /// Functions a phone waits on (`submit-keys` 15 s, `verify-processing-number`, `issue-log-id`
    /// 10 s, `accept-event-logs` 15 s in infra): single-item reads and writes that take
    /// milliseconds; a call still unanswered after 2 s is retried once, after 5 s abandoned.
    pub const REQUEST: Self = Self {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(2),
        operation: Duration::from_secs(5),
    };
    /// `accept-logs` (30 s): a transaction of up to a few MiB of deflated log chunks.
    pub const UPLOAD: Self = Self {
        connect: Duration::from_secs(1),
        attempt: Duration::from_secs(8),
        operation: Duration::from_secs(20),
    };
    /// The scheduled jobs (`publish-exports` 10 min, `enforce-retention` 15 min): export zips of
    /// tens of MiB to S3, and a failed run is simply resumed by the next.
    pub const BATCH: Self = Self {
        connect: Duration::from_secs(2),
        attempt: Duration::from_secs(60),
        operation: Duration::from_secs(150),
    };

    pub fn config(&self) -> TimeoutConfig {
        TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }
}

/// Loads the AWS configuration from the environment (Lambda's, or the local stack's
/// `AWS_ENDPOINT_URL_*` variables), once, at cold start, with `timeouts` on every call.
pub async fn aws_config(timeouts: AwsTimeouts) -> aws_config::SdkConfig {
    aws_defaults(timeouts).load().await
}

/// What [`aws_config`] loads, before it is loaded (tests add their endpoints and credentials).
pub fn aws_defaults(timeouts: AwsTimeouts) -> aws_config::ConfigLoader {
    aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(timeouts.config())
}
