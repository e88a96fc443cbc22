//! The Lambda entry point: wires settings, logs and the DynamoDB client once, then serves
//! invocations.

use std::process::ExitCode;

use lambda_runtime::{LambdaEvent, service_fn};
use names::Settings;
use processor::{Processor, handle, metrics, telemetry};
use serde_json::value::RawValue;

// A panic must end one invocation with an error (lambda_runtime catches it and reports it, and
// Lambda retries the event, then dead-letters it), not abort the process and take the sandbox
// and every event queued for it down. That needs the unwinding panic strategy.
#[cfg(panic = "abort")]
compile_error!("the bootstrap must be built with panic = \"unwind\" (see [profile.release])");

/// In a debug build, a panic in the handler on the event whose envelope id this variable holds:
/// how the tests show what a panic does. Release builds do not read it.
#[cfg(debug_assertions)]
const PANIC_PROBE: &str = "BOOTSTRAP_PANIC_PROBE";

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
    #[cfg(debug_assertions)]
    let probe = std::env::var(PANIC_PROBE)
        .ok()
        .map(|id| format!("\"id\":\"{id}\""));
    #[cfg(debug_assertions)]
    let probe = probe.as_deref();
    let result = lambda_runtime::run(service_fn(
        move |event: LambdaEvent<Box<RawValue>>| async move {
            #[cfg(debug_assertions)]
            if probe.is_some_and(|id| event.payload.get().contains(id)) {
                panic!("{PANIC_PROBE}: panicking on purpose");
            }
            handle(processor, event).await
        },
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
