//! Fuzzing on stable Rust: property-based tests (proptest) over kt's parsers and
//! translators, run by `cargo test`. Each target replays its seed corpus
//! (`testdata/fuzz/<target>/`) and then runs generated cases (mutated seeds, random bytes
//! and text) checking that nothing panics or hangs, errors come back as values, and the
//! target's own invariants hold. `KT_FUZZ_CASES=100000 cargo test --release --test fuzz`
//! runs longer; see `harness` for the knobs.

// Test code panics on purpose: a failed expectation is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr
)]

mod harness;
mod mutate;
mod tree;

mod config;
mod eventstream;
mod http;
mod injection;
mod pii;
mod providers;
mod requests;
mod responses;
mod sse;
