//! `cargo xtask dlq`: what is in a stack's dead-letter queue and why, and `--redrive` to publish
//! those events to the bus again once the cause is fixed.
//!
//! - [`letter`]: one message decoded, whichever of the three producers wrote it;
//! - [`policy`]: what the stack lets a redrive publish (its rules, the processor's age limit);
//! - [`redrive`]: the bounded run that decides, publishes, deletes and watches the copies;
//! - [`stream`]: the records of a stream letter, read back from the stream.
//!
//! docs/recovery.md is the operator's side of this.

pub mod letter;
pub mod policy;
pub mod redrive;
pub mod stream;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use infra::model::Model;
use infra::outputs::Outputs;
use infra::stack::StackConfig;

use crate::aws::deployed::Source;
use crate::aws::sdk_error;
pub use letter::{Event, Letter, Origin, decode};
pub use policy::Policy;
pub use redrive::{Options, Outcome, Redriven, redrive};

/// How long a listed message stays hidden from other readers while the queue is read.
const LIST_VISIBILITY_SECONDS: i32 = 120;
/// Empty receives in a row after which the queue counts as read.
const EMPTY_RECEIVES: u32 = 2;

async fn receive(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    visibility_timeout: i32,
) -> Result<Vec<Message>> {
    let output = sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .visibility_timeout(visibility_timeout)
        // Long polling asks every SQS server, so an empty answer means an empty queue.
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .message_system_attribute_names(MessageSystemAttributeName::SentTimestamp)
        .send()
        .await
        .map_err(|e| sdk_error("ReceiveMessage", e))
        .with_context(|| format!("reading the DLQ {url}"))?;
    Ok(output.messages.unwrap_or_default())
}

/// Every message in the queue, left in place.
pub async fn list(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<Letter>> {
    let mut seen = BTreeMap::new();
    let mut empty = 0;
    // Received messages stay hidden while the queue is read, so every receive returns new ones
    // (with a zero timeout a queue may keep answering with the same first ten); then they are
    // made visible again: listing consumes nothing.
    while empty < EMPTY_RECEIVES {
        let messages = receive(sqs, url, LIST_VISIBILITY_SECONDS).await?;
        if messages.is_empty() {
            empty += 1;
        }
        for message in messages {
            let letter = letter::decode_message(&message);
            seen.entry(letter.message_id.clone()).or_insert(letter);
        }
    }
    let mut letters: Vec<Letter> = seen.into_values().collect();
    let handles: Vec<String> = letters
        .iter()
        .filter_map(|l| l.receipt_handle.clone())
        .collect();
    release(sqs, url, &handles).await;
    letters.sort_by_key(|l| l.sent_at);
    Ok(letters)
}

/// Makes messages visible again at once, so the next reader sees them.
async fn release(sqs: &aws_sdk_sqs::Client, url: &str, handles: &[String]) {
    for handle in handles {
        // Best effort: if this fails, the message reappears when its visibility timeout ends.
        let _ = sqs
            .change_message_visibility()
            .queue_url(url)
            .receipt_handle(handle)
            .visibility_timeout(0)
            .send()
            .await;
    }
}

/// What `cargo xtask dlq` was asked to do.
#[derive(Debug, Clone)]
pub struct Args {
    pub redrive: bool,
    /// How long a redrive watches its copies.
    pub settle: Duration,
    /// The stack config whose rules and age limit decide what is redriven; see [`stack_model`].
    pub config: Option<String>,
}

/// `cargo xtask dlq`: the stack's dead letters with their errors, or with `redrive`, their
/// events published again; fails while any letter stays.
pub async fn run(root: &Path, source: &Source, args: &Args) -> Result<()> {
    let (outputs, _) = crate::aws::deployed::load(root, source).await?;
    let clients = crate::scenario::Clients::for_stack(&outputs).await;
    if !args.redrive {
        let letters = list(&clients.sqs, &outputs.dlq_url).await?;
        print(&outputs.dlq_url, &letters);
        return Ok(());
    }
    let model = stack_model(root, source, &outputs, args.config.as_deref())?;
    let policy = Policy::for_stack(&model)?;
    let options = Options {
        settle: args.settle,
        ..Options::default()
    };
    let done = redrive(&clients, &outputs, &policy, &options).await?;
    print!("{}", done.report());
    if done.remaining() > 0 {
        bail!(
            "{} letters stay in the DLQ ({} kept, {} of copies that failed again, {} that \
             arrived during the run); run `cargo xtask dlq` to read them",
            done.remaining(),
            done.kept.len(),
            done.failed_letters,
            done.later
        );
    }
    Ok(())
}

/// The model of the stack the outputs belong to: `config` (a file under stacks/) if given, else
/// the stack `--stack` named, else the stack file whose bus is the outputs' bus.
pub fn stack_model(
    root: &Path,
    source: &Source,
    outputs: &Outputs,
    config: Option<&str>,
) -> Result<Model> {
    let load = |name: &str| -> Result<Model> {
        let config = StackConfig::load(root, name)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("loading the stack config {name}"))?;
        Ok(Model::from_stack(&config))
    };
    match (config, source) {
        (Some(name), _) => load(name),
        (None, Source::Stack(name)) => load(name),
        (None, Source::File(path)) => {
            let stacks = infra::stack::list_stacks(root).map_err(|e| anyhow::anyhow!("{e}"))?;
            for name in &stacks {
                if let Ok(model) = load(name)
                    && model.bus.name == outputs.event_bus_name
                {
                    return Ok(model);
                }
            }
            bail!(
                "no stack under stacks/ ({}) has the bus {} of {}: name the config the stack \
                 was deployed from with --config STACK",
                stacks.join(", "),
                outputs.event_bus_name,
                path.display()
            )
        }
    }
}

/// The listing `cargo xtask dlq` prints.
pub fn print(url: &str, letters: &[Letter]) {
    println!("{url}: {} message(s)", letters.len());
    for (n, letter) in letters.iter().enumerate() {
        println!(
            "\n[{}] message {}  sent {}  from {}",
            n + 1,
            letter.message_id,
            letter.sent_text(),
            letter.origin.describe()
        );
        println!("    error   {}", letter.error);
        match &letter.event {
            Ok(event) => {
                let copy = event
                    .redrive_of
                    .as_deref()
                    .map(|original| format!(", a redriven copy of {original}"))
                    .unwrap_or_default();
                println!(
                    "    event   {} ({} from {}, time {}{copy})",
                    event.id.as_deref().unwrap_or("?"),
                    event.detail_type,
                    event.source,
                    event.time.as_deref().unwrap_or("?")
                );
                println!("    detail  {}", shorten(&event.detail, 300));
            }
            Err(why) if letter.batch.is_some() => println!("    batch   {why}"),
            Err(why) => println!("    cannot be redriven: {why}"),
        }
    }
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}
