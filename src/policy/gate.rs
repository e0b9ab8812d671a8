//! Bounds how many threads evaluate policies at once.
//!
//! Policy work is CPU-bound: on N cores, more than a few evaluations at once only adds
//! context switches. It also costs memory: every regex keeps a scratch cache per
//! concurrent user (the regex crate's pool), and each cache's lazy DFA grows as it meets
//! new text, up to a few MiB. With hundreds of request threads in the chain at once that
//! is hundreds of caches per pattern, and the gateway's RSS climbed for as long as load
//! lasted (tests/soak.rs). With the gate, caches are bounded by the permits.

use std::sync::{Condvar, LazyLock, Mutex, PoisonError};

/// Evaluations at once: twice the cores (a thread may be descheduled mid-evaluation).
static GATE: LazyLock<Gate> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    Gate::new(cores * 2)
});

pub struct Gate {
    state: Mutex<State>,
    released: Condvar,
}

struct State {
    free: usize,
    waiting: usize,
}

/// Held while evaluating; the permit returns on drop.
pub struct Permit<'a> {
    gate: &'a Gate,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let mut s = self.gate.lock();
        s.free += 1;
        let waiting = s.waiting > 0;
        drop(s);
        // Condvar::notify_one is a futex syscall even with nobody waiting: skip it then.
        if waiting {
            self.gate.released.notify_one();
        }
    }
}

impl Gate {
    pub fn new(permits: usize) -> Gate {
        Gate {
            state: Mutex::new(State {
                free: permits.max(1),
                waiting: 0,
            }),
            released: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The counters are updated whole under the lock: a panic cannot tear them.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits for a permit.
    pub fn enter(&self) -> Permit<'_> {
        let mut s = self.lock();
        if s.free == 0 {
            s.waiting += 1;
            while s.free == 0 {
                s = self
                    .released
                    .wait(s)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            s.waiting -= 1;
        }
        s.free -= 1;
        Permit { gate: self }
    }
}

/// A permit of the process-wide policy gate.
pub fn enter() -> Permit<'static> {
    GATE.enter()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn never_more_holders_than_permits() {
        let gate = Gate::new(3);
        let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..16 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let _p = gate.enter();
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::yield_now();
                        inside.fetch_sub(1, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(most.load(Ordering::SeqCst) <= 3);
        assert_eq!(gate.lock().free, 3);
        assert_eq!(gate.lock().waiting, 0);
    }
}
