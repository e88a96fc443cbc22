//! Any bytes as a stack config file. Nothing may panic; a file the loader rejects must say which
//! file and field; a file it accepts must render a program that passes the provider schema and
//! every policy rule, because validation is what stands between a config edit and a failed deploy.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use infra::render::render_config;
use infra::schema::Schema;
use infra::stack::{StackConfig, StackErrors};

const FILE: &str = "stacks/fuzz.yaml";

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| Schema::bundled().expect("the bundled schema parses"))
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Each name in turn: prod is held to stricter rules than the others.
    for stack in ["dev", "staging", "prod"] {
        check(stack, text);
    }
});

fn check(stack: &str, text: &str) {
    match StackConfig::parse(FILE, stack, text) {
        Ok(config) => {
            if let Err(err) = render_config(stack, &config, schema()) {
                panic!("accepted config renders a program that fails its checks: {err:#}");
            }
        }
        Err(StackErrors::Invalid { file, problems }) => {
            assert_eq!(file, FILE);
            assert!(!problems.is_empty(), "rejected with no problem named");
            for problem in &problems {
                assert!(
                    !problem.path.is_empty() && !problem.message.is_empty(),
                    "a problem that names no field or says nothing: {problem:?}"
                );
            }
        }
        Err(other) => {
            assert!(other.to_string().contains(FILE), "error names no file: {other}");
        }
    }
}
