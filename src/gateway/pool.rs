//! Admission: the slots that bound how many model requests are in flight, with a bounded
//! queue in front of them. (Connection threads are pooled by `conn::Server`.)

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::openai::ApiError;

/// Connections beyond admission (slots + queue): idle keep-alive connections and cheap
/// requests (health, 503s) that never take a slot.
const HEADROOM: usize = 4096;

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
        let waiting = s.waiting > 0;
        drop(s);
        // Condvar::notify_one is a futex syscall even with nobody waiting: skip it then.
        if waiting {
            self.slots.freed.notify_one();
        }
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

    /// Connections served at once: every slot, every queue place, and headroom.
    pub fn connection_cap(&self) -> usize {
        self.max + self.queue + HEADROOM
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
    fn connection_cap_covers_slots_queue_and_headroom() {
        let slots = Slots::new(100, Slots::default_queue(100), Duration::from_secs(1));
        assert_eq!(slots.connection_cap(), 100 + 16 + HEADROOM);
    }
}
