//! The AWS metrics the stack's alarms and dashboard read, as CloudWatch publishes them: one
//! spelling for the model that builds them and the policy rules that check them.

pub const LAMBDA: &str = "AWS/Lambda";
pub const SQS: &str = "AWS/SQS";
pub const DYNAMODB: &str = "AWS/DynamoDB";

pub const FUNCTION_NAME: &str = "FunctionName";
pub const QUEUE_NAME: &str = "QueueName";
pub const TABLE_NAME: &str = "TableName";
pub const OPERATION: &str = "Operation";

pub const ERRORS: &str = "Errors";
pub const THROTTLES: &str = "Throttles";
pub const DURATION: &str = "Duration";
pub const MESSAGES_VISIBLE: &str = "ApproximateNumberOfMessagesVisible";
pub const OLDEST_MESSAGE_AGE: &str = "ApproximateAgeOfOldestMessage";
pub const THROTTLED_REQUESTS: &str = "ThrottledRequests";

/// What a dashboard may read of AWS's own metrics: namespace, metric and the dimensions it is
/// published under. Only what this stack's dashboard shows; another metric joins the list when
/// a widget needs it.
pub const DASHBOARD_AWS_METRICS: [(&str, &str, &[&str]); 6] = [
    (LAMBDA, ERRORS, &[FUNCTION_NAME]),
    (LAMBDA, THROTTLES, &[FUNCTION_NAME]),
    (LAMBDA, DURATION, &[FUNCTION_NAME]),
    (SQS, MESSAGES_VISIBLE, &[QUEUE_NAME]),
    (SQS, OLDEST_MESSAGE_AGE, &[QUEUE_NAME]),
    (DYNAMODB, THROTTLED_REQUESTS, &[TABLE_NAME, OPERATION]),
];
