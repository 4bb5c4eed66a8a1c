//! `export-verify <zip path | http(s) URL | s3://bucket/key> --public-key <PEM or DER file>`:
//! see the library (`src/lib.rs`) for what it checks and prints.

use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = export_verify::run(&args, &mut std::io::stdout(), &mut std::io::stderr()).await;
    ExitCode::from(status)
}
