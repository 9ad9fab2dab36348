//! Polls a group of futures only when one of them was woken.
//!
//! Why: a session's loop waits on its queue and on four other things (a close order, the client's next
//! frame, the heartbeat, the credential's expiry). Under fan-out it wakes once per delivery, for its
//! queue, and `select!` then polled all five, finding the four others still pending every time: about
//! 5 % of a node's CPU at 1,250 msg/s (perf, bench/results.md). Behind a gate, the four are polled with
//! the gate's own waker; the gate remembers whether that waker was woken, and a turn of the loop that
//! was woken for the queue alone costs one atomic swap for them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

pub struct WakeGate {
    flag: Arc<Flag>,
    /// The waker the gated futures register, made once.
    waker: Waker,
}

struct Flag {
    /// One of the gated futures was woken since they were last polled (true at first: never polled).
    woken: AtomicBool,
    /// The task polling the gate.
    task: AtomicWaker,
}

impl Wake for Flag {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

impl Default for WakeGate {
    fn default() -> WakeGate {
        let flag = Arc::new(Flag { woken: AtomicBool::new(true), task: AtomicWaker::new() });
        WakeGate { waker: Waker::from(Arc::clone(&flag)), flag }
    }
}

impl WakeGate {
    /// Runs `poll_gated` (which polls the gated futures with the context it is given) when one of them was
    /// woken since the last time; otherwise pending at once.
    pub fn poll<T>(&self, cx: &mut Context<'_>, poll_gated: impl FnOnce(&mut Context<'_>) -> Poll<T>) -> Poll<T> {
        // Registered before the flag is read: a wake between the two still wakes the task.
        self.flag.task.register(cx.waker());
        if !self.flag.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let polled = poll_gated(&mut Context::from_waker(&self.waker));
        if polled.is_ready() {
            // Another of them may be ready too, without a wake to come (a stream with frames buffered).
            self.flag.woken.store(true, Ordering::Release);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A task waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// What the gated "futures" of a test saw.
    #[derive(Default)]
    struct Gated {
        polls: usize,
        waker: Option<Waker>,
    }

    impl Gated {
        fn poll(&mut self, gate: &WakeGate, cx: &mut Context<'_>, ready: bool) -> Poll<()> {
            gate.poll(cx, |inner| {
                self.polls += 1;
                self.waker = Some(inner.waker().clone());
                if ready { Poll::Ready(()) } else { Poll::Pending }
            })
        }
    }

    #[test]
    fn the_gated_futures_are_polled_first_then_only_after_a_wake_or_a_result() {
        let task = Arc::new(Counter::default());
        let task_waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&task_waker);
        let gate = WakeGate::default();
        let mut gated = Gated::default();

        assert!(gated.poll(&gate, &mut cx, false).is_pending());
        assert!(gated.poll(&gate, &mut cx, false).is_pending());
        assert_eq!(gated.polls, 1, "polled once at first, then not again without a wake");

        gated.waker.take().expect("the gate's waker was handed in").wake();
        assert_eq!(task.0.load(Ordering::SeqCst), 1, "a gated future's wake wakes the task");
        assert!(gated.poll(&gate, &mut cx, true).is_ready());
        assert!(gated.poll(&gate, &mut cx, false).is_pending());
        assert_eq!(gated.polls, 3, "polled after the wake, and again after a result");
        assert!(gated.poll(&gate, &mut cx, false).is_pending());
        assert_eq!(gated.polls, 3);
    }
}
