//! Helpers every DynamoDB adapter shares: the item type, error codes, attribute reads, paging.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::put_item::builders::PutItemFluentBuilder;
use aws_sdk_dynamodb::operation::query::QueryOutput;
use aws_sdk_dynamodb::operation::query::builders::QueryFluentBuilder;
use aws_sdk_dynamodb::types::AttributeValue;

use crate::ports::StoreError;

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The service's error code, never the message (messages can quote item values).
pub(crate) fn code<E: ProvideErrorMetadata>(error: &E) -> StoreError {
    StoreError(error.code().unwrap_or("request failed").to_owned())
}

pub(crate) fn number(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(n)) => n.parse().ok(),
        _ => None,
    }
}

pub(crate) fn string<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s),
        _ => None,
    }
}

/// Every page a query matches, in order, each handed to `on_page` before the next is read.
pub(crate) async fn query_pages(
    query: QueryFluentBuilder,
    mut on_page: impl FnMut(QueryOutput),
) -> Result<(), StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let mut page = query
            .clone()
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| code(&e.into_service_error()))?;
        let next = page.last_evaluated_key.take();
        on_page(page);
        match next {
            Some(key) if !key.is_empty() => start = Some(key),
            _ => return Ok(()),
        }
    }
}

/// Every item a query matches, page after page.
pub(crate) async fn query_all(query: QueryFluentBuilder) -> Result<Vec<Item>, StoreError> {
    let mut items = Vec::new();
    query_pages(query, |page| items.extend(page.items.unwrap_or_default())).await?;
    Ok(items)
}

/// Puts the item only if no item has its partition key: `Ok(false)` if one already had it.
pub(crate) async fn put_if_absent(put: PutItemFluentBuilder) -> Result<bool, StoreError> {
    put_if(put, "attribute_not_exists(pk)").await
}

/// Puts the item only if `condition` holds: `Ok(false)` if it did not.
pub(crate) async fn put_if(put: PutItemFluentBuilder, condition: &str) -> Result<bool, StoreError> {
    match put.condition_expression(condition).send().await {
        Ok(_) => Ok(true),
        Err(error) => {
            let error = error.into_service_error();
            if error.is_conditional_check_failed_exception() {
                Ok(false)
            } else {
                Err(code(&error))
            }
        }
    }
}
