//! The exports bucket in S3: conditional puts (`If-None-Match: *`) so a published file is never
//! overwritten, and the headers CloudFront and phones rely on.

use aws_sdk_s3::Client;
use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::operation::put_object::builders::PutObjectFluentBuilder;
use aws_sdk_s3::primitives::ByteStream;

use crate::ports::{BucketError, ExportBucket, Object};

pub struct S3ExportBucket {
    client: Client,
    bucket: String,
}

impl S3ExportBucket {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, bucket: impl Into<String>) -> Self {
        Self::new(s3_client(config), bucket)
    }
}

/// An S3 client; path-style addressing when an endpoint is overridden (the local stack), as
/// virtual-host names like `bucket.127.0.0.1` do not resolve.
pub fn s3_client(config: &aws_config::SdkConfig) -> Client {
    let path_style = std::env::var_os("AWS_ENDPOINT_URL_S3").is_some()
        || std::env::var_os("AWS_ENDPOINT_URL").is_some();
    Client::from_conf(
        aws_sdk_s3::config::Builder::from(config)
            .force_path_style(path_style)
            .build(),
    )
}

fn code<E: ProvideErrorMetadata>(error: &E) -> String {
    error.code().unwrap_or("request failed").to_owned()
}

impl S3ExportBucket {
    fn put_request(&self, object: Object<'_>) -> PutObjectFluentBuilder {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(object.key)
            .body(ByteStream::from(object.body))
            .content_type(object.content_type)
            .cache_control(object.cache_control)
    }
}

impl ExportBucket for S3ExportBucket {
    async fn put_new(&self, object: Object<'_>) -> Result<bool, BucketError> {
        let result = self.put_request(object).if_none_match("*").send().await;
        match result {
            Ok(_) => Ok(true),
            Err(error) => {
                let status = error.raw_response().map(|r| r.status().as_u16());
                if status == Some(412) || code(&error) == "PreconditionFailed" {
                    Ok(false)
                } else {
                    Err(BucketError(code(&error)))
                }
            }
        }
    }

    async fn put(&self, object: Object<'_>) -> Result<(), BucketError> {
        self.put_request(object)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BucketError(code(&e)))
    }

    async fn delete(&self, key: &str) -> Result<(), BucketError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| BucketError(code(&e)))
    }
}
