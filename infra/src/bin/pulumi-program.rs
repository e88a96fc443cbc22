//! The compiler `Pulumi.yaml` names: prints the Pulumi program of a stack, rendered from
//! `stacks/<stack>.yaml`, for `pulumi preview` and `pulumi up`.
//!
//! ```text
//! pulumi-program [STACK]   (default: $PULUMI_STACK, as Pulumi sets it)
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let stack = std::env::args().nth(1);
    match infra::render::print_program(&infra::workspace_root(), stack.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("Error: {err:?}");
            ExitCode::FAILURE
        }
    }
}
