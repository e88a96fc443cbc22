//! Structured JSON logs for CloudWatch.

use tracing_subscriber::EnvFilter;

/// Installs a JSON subscriber at `level` (already validated by [`names::Settings`]).
/// Lambda stamps every line with its own time, so the subscriber prints none.
pub fn init(level: &str) {
    let filter = EnvFilter::try_new(level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(false)
        .without_time()
        .with_env_filter(filter)
        .try_init();
}
