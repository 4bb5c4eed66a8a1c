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
pub mod local_signer;
pub mod retention;
pub mod s3_bucket;
pub mod safetynet;

pub use aws_config::SdkConfig;
pub use aws_sdk_dynamodb::Client as DynamoDbClient;

/// Loads the AWS configuration from the environment (Lambda's, or the local stack's
/// `AWS_ENDPOINT_URL_*` variables), once, at cold start.
pub async fn aws_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
