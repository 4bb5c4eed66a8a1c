//! A bare `lambda_runtime` function (no SDK, no logging set-up): what any Rust Lambda costs to
//! start. `tools/cold-start` divides each function's cold start by this one's, measured under the
//! same qemu in the same run, so emulated arm64 figures can be compared with native ones.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

async fn hello(_event: LambdaEvent<Value>) -> Result<Value, Error> {
    Ok(Value::from("hello"))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(hello)).await
}
