//! Integration tests: the real `kt` binary against in-process mock upstreams.

// Test code panics on purpose: a failed expectation is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod support;

mod cli;
mod gateway;
mod prompt_injection;
mod sdk;
