//! The COCOA backend's common crate: the domain (validation, keys, processing numbers), the ports
//! the functions depend on, their AWS and HTTP adapters, configuration, HTTP helpers and tracing.
//!
//! Functions wire these together in a thin `main.rs`; everything here can be called from a test.

pub mod adapters;
pub mod config;
pub mod domain;
pub mod export_run;
pub mod http;
pub mod logs;
pub mod ports;
pub mod request;
pub mod submission;
pub mod telemetry;
pub mod verification;
