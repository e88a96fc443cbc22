//! Everything that talks to AWS or stands in for it, and the tools around the processor.
//!
//! - Talking to AWS: [`aws`] (SDK configuration, error text, credentials, deployed outputs),
//!   [`publish`] (feed files onto a bus), [`dlq`] (dead letters, redrive), [`scenario`] and
//!   [`e2e`] (publish a session and account for every event), [`query`] (the bucketed indexes,
//!   read over every bucket and merged).
//! - Standing in for it: [`moto`] (the emulator), [`local`] (provisioning from the model, the
//!   runner that plays Lambda's event source), [`faults`] (a fault proxy), [`runtime_api`] (the
//!   Lambda Runtime API), [`http`] (the loopback server under both), [`offline`] (a processor
//!   whose client never touches the network), [`session`] (the market session).
//! - Shipping and measuring: [`ship`] (build, package, verify, pulumi, deploy), [`bench`],
//!   [`fuzz`].

pub mod aws;
pub mod bench;
pub mod dlq;
pub mod e2e;
pub mod faults;
pub mod fuzz;
pub mod http;
pub mod local;
pub mod moto;
pub mod offline;
pub mod publish;
pub mod query;
pub mod replay;
pub mod runtime_api;
pub mod scenario;
pub mod session;
pub mod ship;
pub mod stream;

pub use infra::workspace_root;
