//! The market-data processor: validates EventBridge trade and quote events and stores them in
//! DynamoDB with an audit entry for every outcome. `src/bin/bootstrap.rs` is the Lambda entry.

pub mod aws;
pub mod batch;
pub mod event;
pub mod handler;
pub mod item;
pub mod metrics;
pub mod number;
pub mod store;
pub mod telemetry;

pub use handler::{Outcome, ProcessError, Processor, Reply, budget, handle};
