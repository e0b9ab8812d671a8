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

mod audit;
mod cli;
mod cors;
mod durability;
mod embeddings;
mod faults;
mod gateway;
mod hostile;
mod keys;
mod lint;
mod load;
mod policies;
mod prompt_injection;
mod providers_anthropic;
mod providers_azure;
mod providers_bedrock;
mod providers_cohere;
mod providers_gemini;
mod realtime;
mod reload;
mod responses;
mod routing;
mod sdk;
mod terminal;
mod tls;
mod transport;
