//! The Lambda entry point: wires settings, logs and the DynamoDB client once, then serves
//! invocations.

use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use names::Settings;
use processor::{Processor, handle, metrics, telemetry};
use serde_json::value::RawValue;

/// Variables the Lambda service sets; lambda_runtime panics without them, so check first.
const RUNTIME_VARS: [&str; 4] = [
    "AWS_LAMBDA_RUNTIME_API",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
];

#[tokio::main]
async fn main() -> ExitCode {
    let missing: Vec<&str> = RUNTIME_VARS
        .into_iter()
        .filter(|name| std::env::var_os(name).is_none())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "bootstrap: not running inside a Lambda runtime: {} not set. \
             Deploy it with `cargo xtask deploy <stack>`, or run the pipeline locally with `cargo xtask local`.",
            missing.join(", ")
        );
        return ExitCode::from(2);
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("bootstrap: invalid configuration: {err}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log_level);
    metrics::enable();

    let config = processor::aws::sdk_config().await;
    let processor = Processor::new(settings, processor::aws::dynamodb_client(&config));
    if let Err(err) = processor.warm_up().await {
        tracing::error!(error = %err, "init failed");
        eprintln!("bootstrap: init failed: {err}");
        return ExitCode::from(1);
    }

    let processor = &processor;
    let result = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move { handle(processor, event).await },
    ))
    .await;
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bootstrap: runtime stopped: {err}");
            ExitCode::from(1)
        }
    }
}
