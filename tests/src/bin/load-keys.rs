//! `cargo run -p e2e --bin load-keys -- N [--hours H]`: writes N synthetic released keys
//! (`e2e::load`) into the running local stack's keys table (start it with `scripts/dev`), over
//! the H release hours (default 24) before now, and says what it wrote.

use e2e::Stack;
use e2e::load::{LoadPlan, load_released_keys};

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let mut keys = None;
    let mut hours = 24;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--hours" => {
                hours = args
                    .next()
                    .and_then(|h| h.parse().ok())
                    .filter(|h| *h > 0)
                    .ok_or("--hours takes a positive number")?;
            }
            n => {
                keys = Some(
                    n.parse::<usize>()
                        .map_err(|_| format!("not a key count: {n}"))?,
                )
            }
        }
    }
    let keys = keys.ok_or("usage: load-keys N [--hours H]")?;
    let stack = Stack::connect().await;
    let table = stack.keys_table();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let plan = LoadPlan::ending_before("440", keys, hours, now);
    let loaded = load_released_keys(&stack.dynamodb, &table, &plan).await?;
    let seconds = loaded.elapsed.as_secs_f64();
    println!(
        "loaded {} keys of {} users into {table}, release hours {} to {} ({} hours), in {seconds:.1} s: {:.0} keys/s, {} BatchWriteItem calls",
        loaded.keys.len(),
        loaded.users,
        shared::domain::exposure_key::release_partition("440", plan.first_release_hour),
        shared::domain::exposure_key::release_partition("440", plan.last_release_hour),
        loaded.per_hour.len(),
        loaded.keys.len() as f64 / seconds.max(1e-9),
        loaded.requests
    );
    Ok(())
}
