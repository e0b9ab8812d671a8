//! The worker model: an elastic pool of threads that `recv()` requests from tiny_http, and
//! the admission slots that bound how many model requests are in flight.
//!
//! A streaming request holds its worker for the whole stream, so a fixed pool either
//! wastes memory when idle or lets open streams starve short requests. The pool starts
//! small and grows by one thread whenever the last idle worker takes a request, so there
//! is always a worker ready to `recv()`; threads above the minimum exit after
//! `IDLE_EXIT` without work. Growth is capped at `max_concurrency + queue + headroom`:
//! what is above `max_concurrency` only ever waits in the bounded admission queue or
//! answers cheap requests (health, 503s), never calls an upstream.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::openai::ApiError;

/// A worker above the minimum that waits this long for a request exits.
const IDLE_EXIT: Duration = Duration::from_secs(30);
/// Workers beyond admission (slots + queue) for requests that never take a slot.
const HEADROOM: usize = 64;
/// Stack of a worker thread: handlers keep large data on the heap.
const WORKER_STACK: usize = 256 * 1024;

/// Bounds model requests in flight: `max` run at once, up to `queue` more wait (each at
/// most `wait`), the rest are shed at once with 503 `overloaded`.
pub struct Slots {
    max: usize,
    queue: usize,
    wait: Duration,
    state: Mutex<SlotState>,
    freed: Condvar,
}

#[derive(Default)]
struct SlotState {
    in_flight: usize,
    waiting: usize,
}

/// Releases its slot on drop.
pub struct Slot<'a> {
    slots: &'a Slots,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let mut s = self.slots.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        drop(s);
        self.slots.freed.notify_one();
    }
}

impl Slots {
    pub fn new(max: usize, queue: usize, wait: Duration) -> Slots {
        Slots {
            max: max.max(1),
            queue,
            wait,
            state: Mutex::new(SlotState::default()),
            freed: Condvar::new(),
        }
    }

    /// The default queue for `max` slots: an eighth of them, at least 16.
    pub fn default_queue(max: usize) -> usize {
        (max / 8).max(16)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        // A panic while holding this lock cannot leave the counters half-updated.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Takes a slot, waiting in the queue when all are taken; 503 when the queue is full
    /// or the wait runs out.
    pub fn acquire(&self) -> Result<Slot<'_>, ApiError> {
        let mut s = self.lock();
        if s.in_flight < self.max {
            s.in_flight += 1;
            return Ok(Slot { slots: self });
        }
        if s.waiting >= self.queue {
            return Err(self.overloaded());
        }
        s.waiting += 1;
        let deadline = Instant::now() + self.wait;
        loop {
            let now = Instant::now();
            if now >= deadline {
                s.waiting -= 1;
                return Err(self.overloaded());
            }
            s = self
                .freed
                .wait_timeout(s, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|e| e.into_inner().0);
            if s.in_flight < self.max {
                s.waiting -= 1;
                s.in_flight += 1;
                return Ok(Slot { slots: self });
            }
        }
    }

    fn overloaded(&self) -> ApiError {
        ApiError::overloaded(format!(
            "The gateway is at its limit of {} requests in flight and {} waiting; retry shortly.",
            self.max, self.queue
        ))
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    pub fn waiting(&self) -> usize {
        self.lock().waiting
    }

    /// Workers the pool may need: every slot, every queue place, and headroom.
    pub fn worker_cap(&self) -> usize {
        self.max + self.queue + HEADROOM
    }
}

/// The elastic worker pool.
pub struct Pool {
    min: usize,
    max: usize,
    total: AtomicUsize,
    idle: AtomicUsize,
}

/// What a worker does with one request; runs on the worker thread.
pub type Serve = dyn Fn(tiny_http::Request) + Send + Sync;
/// Asked after a `recv` fails or times out: stop this worker?
pub type Stopping = dyn Fn() -> bool + Send + Sync;

impl Pool {
    pub fn new(min: usize, max: usize) -> Arc<Pool> {
        let min = min.max(1);
        Arc::new(Pool {
            min,
            max: max.max(min),
            total: AtomicUsize::new(0),
            idle: AtomicUsize::new(0),
        })
    }

    /// Starts the minimum number of workers.
    pub fn start(
        self: &Arc<Self>,
        server: &Arc<tiny_http::Server>,
        serve: &Arc<Serve>,
        stopping: &Arc<Stopping>,
        on_accept_error: &Arc<dyn Fn(std::io::Error) + Send + Sync>,
    ) -> std::io::Result<()> {
        for _ in 0..self.min {
            self.total.fetch_add(1, Ordering::SeqCst);
            self.idle.fetch_add(1, Ordering::SeqCst);
            if let Err(e) = self.spawn(server, serve, stopping, on_accept_error) {
                self.total.fetch_sub(1, Ordering::SeqCst);
                self.idle.fetch_sub(1, Ordering::SeqCst);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Worker threads alive now.
    pub fn total(&self) -> usize {
        self.total.load(Ordering::SeqCst)
    }

    fn spawn(
        self: &Arc<Self>,
        server: &Arc<tiny_http::Server>,
        serve: &Arc<Serve>,
        stopping: &Arc<Stopping>,
        on_accept_error: &Arc<dyn Fn(std::io::Error) + Send + Sync>,
    ) -> std::io::Result<()> {
        let (pool, server, serve, stopping, on_err) = (
            self.clone(),
            server.clone(),
            serve.clone(),
            stopping.clone(),
            on_accept_error.clone(),
        );
        std::thread::Builder::new()
            .name("kt-worker".into())
            .stack_size(WORKER_STACK)
            .spawn(move || pool.work(&server, &serve, &stopping, &on_err))
            .map(drop)
    }

    /// Called by a worker that just took a request: if no idle worker is left, start one
    /// (counted as idle at once so that concurrent takers do not all spawn).
    fn ensure_idle(
        self: &Arc<Self>,
        server: &Arc<tiny_http::Server>,
        serve: &Arc<Serve>,
        stopping: &Arc<Stopping>,
        on_err: &Arc<dyn Fn(std::io::Error) + Send + Sync>,
    ) {
        if self.idle.load(Ordering::SeqCst) > 0 {
            return;
        }
        let grew = self
            .total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t < self.max).then_some(t + 1)
            })
            .is_ok();
        if !grew {
            return;
        }
        self.idle.fetch_add(1, Ordering::SeqCst);
        if let Err(e) = self.spawn(server, serve, stopping, on_err) {
            self.total.fetch_sub(1, Ordering::SeqCst);
            self.idle.fetch_sub(1, Ordering::SeqCst);
            crate::logging::error(&format!("failed to start a worker thread: {e}"));
        }
    }

    /// Leaves the pool if it is above its minimum (the caller is idle).
    fn try_retire(&self) -> bool {
        let retired = self
            .total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                (t > self.min).then_some(t - 1)
            })
            .is_ok();
        if retired {
            self.idle.fetch_sub(1, Ordering::SeqCst);
        }
        retired
    }

    fn work(
        self: &Arc<Self>,
        server: &Arc<tiny_http::Server>,
        serve: &Arc<Serve>,
        stopping: &Arc<Stopping>,
        on_err: &Arc<dyn Fn(std::io::Error) + Send + Sync>,
    ) {
        let retired = loop {
            // Idle here. Blocking receive: an idle worker costs nothing; shutdown wakes
            // it with `Server::unblock` (or the idle timeout does).
            match server.recv_timeout(IDLE_EXIT) {
                Ok(Some(req)) => {
                    self.idle.fetch_sub(1, Ordering::SeqCst);
                    self.ensure_idle(server, serve, stopping, on_err);
                    // The last line of defence: a bug in a handler must not take a
                    // worker down.
                    let served =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| serve(req)));
                    if served.is_err() {
                        crate::logging::error(
                            "a request handler panicked; the request was dropped",
                        );
                    }
                    self.idle.fetch_add(1, Ordering::SeqCst);
                }
                Ok(None) if stopping() => break false,
                Ok(None) => {
                    if self.try_retire() {
                        break true;
                    }
                }
                Err(e) => {
                    if !stopping() {
                        on_err(e);
                    }
                    break false;
                }
            }
        };
        if !retired {
            self.idle.fetch_sub(1, Ordering::SeqCst);
            self.total.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_admit_up_to_max_then_queue_then_shed() {
        let slots = Slots::new(2, 1, Duration::from_millis(50));
        let a = slots.acquire().unwrap();
        let _b = slots.acquire().unwrap();
        assert_eq!(slots.in_flight(), 2);
        // The queue has room for one: it waits, and gets the slot `a` frees.
        std::thread::scope(|s| {
            let waiter = s.spawn(|| slots.acquire().map(|_| ()));
            let deadline = Instant::now() + Duration::from_secs(2);
            while slots.waiting() == 0 && Instant::now() < deadline {
                std::thread::yield_now();
            }
            assert_eq!(slots.waiting(), 1);
            // The queue is full: shed at once.
            let shed = slots.acquire().err().unwrap();
            assert_eq!(shed.status, 503);
            assert_eq!(shed.code_str(), Some("overloaded"));
            drop(a);
            assert!(waiter.join().unwrap().is_ok());
        });
        assert_eq!(slots.waiting(), 0);
    }

    #[test]
    fn a_queued_request_is_shed_when_its_wait_runs_out() {
        let slots = Slots::new(1, 4, Duration::from_millis(20));
        let _a = slots.acquire().unwrap();
        let started = Instant::now();
        let e = slots.acquire().err().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert_eq!(e.status, 503);
        assert_eq!(e.retry_after, Some(1.0));
        assert_eq!(slots.waiting(), 0);
        assert_eq!(slots.in_flight(), 1);
    }

    #[test]
    fn worker_cap_covers_slots_queue_and_headroom() {
        let slots = Slots::new(100, Slots::default_queue(100), Duration::from_secs(1));
        assert_eq!(slots.worker_cap(), 100 + 16 + HEADROOM);
    }
}
