//! The used-tokens table: `pk` = token id (hex), `binding` (hex: what the redeeming submission
//! is bound to, `verification::token_binding`), `expires_at` (TTL). Nothing else.

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::adapters::dynamo::put_if;
use crate::ports::{StoreError, UsedTokenStore};

pub struct DynamoUsedTokens {
    client: Client,
    table: String,
}

impl DynamoUsedTokens {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }

    pub fn from_config(config: &aws_config::SdkConfig, table: impl Into<String>) -> Self {
        Self::new(Client::new(config), table)
    }
}

impl UsedTokenStore for DynamoUsedTokens {
    async fn consume(
        &self,
        token_id: &str,
        binding: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        // Unused, or used by the same submission (its retry rewrites the identical item).
        put_if(
            self.client
                .put_item()
                .table_name(&self.table)
                .item("pk", AttributeValue::S(token_id.to_owned()))
                .item("binding", AttributeValue::S(binding.to_owned()))
                .item("expires_at", AttributeValue::N(expires_at.to_string()))
                .expression_attribute_values(":binding", AttributeValue::S(binding.to_owned())),
            "attribute_not_exists(pk) OR binding = :binding",
        )
        .await
    }
}
