//! The fuzz harness: seed corpora, case budgets, the per-case time bound and the runner
//! that turns a proptest failure into a report that can be replayed.
//!
//! Budget: `KT_FUZZ_CASES` sets the number of generated cases of every target (default: a
//! per-target number that keeps the whole binary within about a minute of CPU on two
//! cores). Seed: `KT_FUZZ_SEED=<u64>` or `random`; by default each target has a fixed seed
//! (derived from its name), so CI runs are reproducible.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant, SystemTime};

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestError, TestRunner};

/// A case using more CPU than this fails (it is a performance bug on inputs this small).
/// CPU time of the case's thread, so a loaded machine does not make a case slow.
const SLOW: Duration = if cfg!(debug_assertions) {
    Duration::from_secs(30)
} else {
    Duration::from_secs(5)
};

/// A case still running after this (wall time) is taken for a hang: its input is saved
/// and the run aborts (a thread cannot be stopped, and a hung test would never report).
const HUNG: Duration = Duration::from_secs(120);

/// Bytes shown as an escaped byte string, ready to paste into a corpus file.
#[derive(Clone, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl fmt::Debug for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "b\"{}\" ({} bytes)", self.0.escape_ascii(), self.0.len())
    }
}

/// The seed corpus of `target`: every file of `testdata/fuzz/<target>/`, sorted by name.
pub fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read the corpus `{}`: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(&path)
                .unwrap_or_else(|e| panic!("cannot read `{}`: {e}", path.display()));
            (name, bytes)
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the corpus `{}` is empty", dir.display());
    files
}

pub fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz")
        .join(target)
}

/// Runs `check` on every corpus file of `target`; fails naming each file that fails.
pub fn replay(target: &'static str, check: impl Fn(&str, &[u8]) -> Result<(), TestCaseError>) {
    let mut failures = Vec::new();
    for (name, bytes) in corpus(target) {
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            bounded(target, &bytes, || check(&name, &bytes))
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("{name}: {e}")),
            Err(panic) => failures.push(format!("{name}: panicked: {}", panic_text(&*panic))),
        }
    }
    assert!(
        failures.is_empty(),
        "corpus `{target}` failures:\n{}",
        failures.join("\n")
    );
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "<non-string panic>".to_string())
}

/// Generated cases for a target whose default is `default`.
pub fn cases(default: u32) -> u32 {
    match std::env::var("KT_FUZZ_CASES") {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("KT_FUZZ_CASES must be a number, got `{v}`")),
        Err(_) => default,
    }
}

fn seed(target: &str) -> u64 {
    match std::env::var("KT_FUZZ_SEED") {
        Ok(v) if v == "random" => {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            fnv(target.as_bytes()) ^ (nanos as u64)
        }
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("KT_FUZZ_SEED must be a number or `random`, got `{v}`")),
        Err(_) => fnv(target.as_bytes()),
    }
}

/// FNV-1a: a stable per-target default seed.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Runs `check` on `cases(default_cases)` values of `strategy`. A failure is shrunk to a
/// minimal input and reported with the seed that found it.
pub fn fuzz<S>(
    target: &'static str,
    default_cases: u32,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<(), TestCaseError>,
) where
    S: Strategy,
    S::Value: fmt::Debug + AsInput,
{
    let seed = seed(target);
    let config = Config {
        cases: cases(default_cases),
        failure_persistence: None,
        rng_seed: RngSeed::Fixed(seed),
        max_shrink_time: 60_000,
        ..Config::default()
    };
    let mut runner = TestRunner::new(config);
    let result = runner.run(&strategy, |value| {
        bounded(target, value.as_input(), || check(&value))
    });
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, value)) => panic!(
            "fuzz target `{target}` failed (KT_FUZZ_SEED={seed}): {why}\nminimal input: {value:#?}"
        ),
        Err(TestError::Abort(why)) => {
            panic!("fuzz target `{target}` aborted (KT_FUZZ_SEED={seed}): {why}")
        }
    }
}

/// The bytes a generated value stands for (what the watchdog saves on a hang).
pub trait AsInput {
    fn as_input(&self) -> &[u8];
}

impl AsInput for Bytes {
    fn as_input(&self) -> &[u8] {
        &self.0
    }
}

impl<T> AsInput for (Bytes, T) {
    fn as_input(&self) -> &[u8] {
        &self.0 .0
    }
}

/// Runs one case under the time bound: slower than [`SLOW`] fails the case; the watchdog
/// aborts the run past [`HUNG`].
pub fn bounded(
    target: &'static str,
    input: &[u8],
    f: impl FnOnce() -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let id = thread::current().id();
    let started = Instant::now();
    let cpu = thread_cpu();
    running()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(
            id,
            Running {
                target,
                started,
                input: input.to_vec(),
            },
        );
    let result = catch_unwind(AssertUnwindSafe(f));
    running()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&id);
    let result = match result {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    let used = thread_cpu().saturating_sub(cpu);
    if used > SLOW {
        return Err(TestCaseError::fail(format!(
            "one case of `{target}` used {used:?} of CPU (limit {SLOW:?})"
        )));
    }
    result
}

/// CPU time this thread has used.
fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

struct Running {
    target: &'static str,
    started: Instant,
    input: Vec<u8>,
}

fn running() -> &'static Mutex<HashMap<ThreadId, Running>> {
    static RUNNING: OnceLock<Mutex<HashMap<ThreadId, Running>>> = OnceLock::new();
    RUNNING.get_or_init(|| {
        thread::Builder::new()
            .name("fuzz-watchdog".into())
            .spawn(watchdog)
            .expect("spawn the fuzz watchdog");
        Mutex::new(HashMap::new())
    })
}

fn watchdog() {
    loop {
        thread::sleep(Duration::from_millis(250));
        let map = running().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(hung) = map.values().find(|r| r.started.elapsed() > HUNG) {
            let path = std::env::temp_dir().join(format!("kt-fuzz-hang-{}.bin", hung.target));
            let saved = std::fs::write(&path, &hung.input).is_ok();
            let mut err = std::io::stderr().lock();
            // Best effort: the process aborts next whatever stderr does.
            let _ = writeln!(
                err,
                "fuzz target `{}` hung: one case has run for more than {HUNG:?}; input{}: {:?}",
                hung.target,
                if saved {
                    format!(" saved to `{}`", path.display())
                } else {
                    String::new()
                },
                Bytes(hung.input.iter().copied().take(4096).collect()),
            );
            std::process::abort();
        }
    }
}
