//! The processor's time limits for DynamoDB calls and invocations. The processor's SDK
//! configuration (`processor::aws`) applies them; stack validation (`infra`) derives the
//! shortest Lambda timeout a stack may set from them.

use std::time::Duration;

/// Per-attempt and whole-operation limits, and the retries between them: a DynamoDB call makes
/// at most `MAX_ATTEMPTS` attempts of at most `ATTEMPT_TIMEOUT` each, backing off from
/// `INITIAL_BACKOFF` (with jitter, doubling, at most `MAX_BACKOFF`), and gives up after
/// `OPERATION_TIMEOUT` whatever happens. The SDK's default backoff (1 s doubling to 20 s) would
/// spend the operation's time waiting, so a third attempt would rarely run.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);
pub const OPERATION_TIMEOUT: Duration = Duration::from_secs(6);
pub const MAX_ATTEMPTS: u32 = 3;
pub const INITIAL_BACKOFF: Duration = Duration::from_millis(100);
pub const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// The writes of one event in the slowest path that still stores it: guard, record, audit.
pub const WRITES_PER_EVENT: u32 = 3;

/// The shortest Lambda timeout a stack may configure: room for every write of an event to run
/// to its `OPERATION_TIMEOUT`, and for the deadline margin. Stack validation enforces it.
pub const MIN_LAMBDA_TIMEOUT_SECONDS: u32 =
    OPERATION_TIMEOUT.as_secs() as u32 * WRITES_PER_EVENT + DEADLINE_MARGIN.as_secs() as u32 + 1;

/// How long before the Lambda deadline an invocation gives up on its own: time to report the
/// error (and so have the event retried) instead of being killed mid-write.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(1);

/// The time an invocation may spend on its event when `time_left` remains before its deadline.
pub fn invocation_budget(time_left: Duration) -> Duration {
    time_left.saturating_sub(DEADLINE_MARGIN)
}
