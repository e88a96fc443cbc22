//! Getting the processor to AWS: build and package it for the Lambda architecture, run the
//! package for real under qemu, and drive the pulumi CLI.

pub mod build;
pub mod deploy;
pub mod package;
pub mod pulumi;
pub mod verify;
pub mod which;
