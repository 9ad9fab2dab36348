//! A session's inbox: the frames the hub queues for it, and whether anything else the session waits on
//! (a close order, the client's next frame, the heartbeat, the credential's expiry) was woken, behind one
//! lock in one allocation.
//!
//! Why: under fan-out a session wakes once per delivery, and its memory is cold by then (thousands of
//! sockets share a core's caches), so what a delivery costs is mostly the cache lines it touches. A tokio
//! channel keeps its sender's and receiver's sides on separate, padded cache lines, with the frames in
//! blocks beside them, and the wake gate kept its flag and waker in a third allocation: popping a frame and
//! checking the gate were about 6 % of a node's samples at 1,500 msg/s, and the hub's send about 4 % more
//! (`perf record` in the fan-out bench; with the inbox the sessions' share fell from 16 % to 13 %, the
//! hub's from 6.6 % to 5.9 %). Here a delivery takes one uncontended lock on one line, and the frames' ring.
//!
//! The other futures are polled only when one of them was woken since they were last polled (or one was
//! ready then): they are polled with the inbox's own waker, which records the wake, so a turn of the loop
//! that was woken for a frame alone does not poll them.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

use super::hub::Outbound;

/// Frames queued for one session before it counts as too slow (4008).
pub const CAPACITY: usize = 256;

pub struct Inbox {
    state: Mutex<State>,
}

struct State {
    /// Grows as needed (a few entries under fan-out), so an idle socket holds none.
    frames: VecDeque<Outbound>,
    /// The session's task, when it found nothing to do.
    task: Option<Waker>,
    /// One of the other futures was woken since they were last polled (true at first: never polled).
    others_woken: bool,
}

/// The inbox holds `CAPACITY` frames: the session is not keeping up.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

/// What woke the session.
pub enum Next<T> {
    Frame(Outbound),
    /// What the other futures gave.
    Other(T),
}

impl Inbox {
    pub fn new() -> Arc<Inbox> {
        Arc::new(Inbox { state: Mutex::new(State { frames: VecDeque::new(), task: None, others_woken: true }) })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state whole, so poison is ignored.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a frame without waiting, and wakes the session if it waits.
    pub fn offer(&self, frame: &Outbound) -> Result<(), Full> {
        let task = {
            let mut state = self.state();
            if state.frames.len() >= CAPACITY {
                return Err(Full);
            }
            state.frames.push_back(Arc::clone(frame));
            state.task.take()
        };
        if let Some(task) = task {
            task.wake();
        }
        Ok(())
    }

    /// The next frame; else, when one of them was woken, what `poll_others` gives (it polls the other
    /// futures with the context it is handed, whose waker is `others`, from [`Inbox::waker`]).
    pub fn poll_next<T>(
        &self,
        cx: &mut Context<'_>,
        others: &Waker,
        poll_others: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<Next<T>> {
        {
            let mut state = self.state();
            if let Some(frame) = state.frames.pop_front() {
                return Poll::Ready(Next::Frame(frame));
            }
            if !state.task.as_ref().is_some_and(|task| task.will_wake(cx.waker())) {
                state.task = Some(cx.waker().clone());
            }
            if !std::mem::take(&mut state.others_woken) {
                return Poll::Pending;
            }
        }
        match poll_others(&mut Context::from_waker(others)) {
            Poll::Ready(value) => {
                // Another of them may be ready too, without a wake to come (a stream with frames buffered).
                self.state().others_woken = true;
                Poll::Ready(Next::Other(value))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The waker to poll the other futures with: made once per session.
    pub fn waker(self: &Arc<Self>) -> Waker {
        Waker::from(Arc::clone(self))
    }
}

impl Wake for Inbox {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let task = {
            let mut state = self.state();
            state.others_woken = true;
            state.task.take()
        };
        if let Some(task) = task {
            task.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::hub::Queued;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A task waker that counts its wakes.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    impl Counter {
        fn wakes(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    fn frame(text: &str) -> Outbound {
        Arc::new(Queued::Personal(text.into()))
    }

    fn text(next: Poll<Next<()>>) -> String {
        match next {
            Poll::Ready(Next::Frame(frame)) => match &*frame {
                Queued::Personal(text) => text.to_string(),
                other => panic!("unexpected frame {other:?}"),
            },
            Poll::Ready(Next::Other(())) => panic!("expected a frame, the others were polled"),
            Poll::Pending => panic!("expected a frame, got nothing"),
        }
    }

    #[test]
    fn frames_come_out_in_order_and_a_waiting_session_is_woken_once() {
        let task = Arc::new(Counter::default());
        let task_waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&task_waker);
        let inbox = Inbox::new();
        let others = inbox.waker();
        let never = |_: &mut Context<'_>| Poll::<()>::Pending;

        assert!(inbox.poll_next(&mut cx, &others, never).is_pending());
        inbox.offer(&frame("a")).unwrap();
        inbox.offer(&frame("b")).unwrap();
        assert_eq!(task.wakes(), 1, "the first frame wakes the waiting session, the second finds it woken");
        assert_eq!(text(inbox.poll_next(&mut cx, &others, never)), "a");
        assert_eq!(text(inbox.poll_next(&mut cx, &others, never)), "b");
        assert!(inbox.poll_next(&mut cx, &others, never).is_pending());
        inbox.offer(&frame("c")).unwrap();
        assert_eq!(task.wakes(), 2);
        assert_eq!(text(inbox.poll_next(&mut cx, &others, never)), "c");
    }

    #[test]
    fn a_full_inbox_refuses_the_next_frame_and_keeps_the_ones_it_holds() {
        let inbox = Inbox::new();
        for i in 0..CAPACITY {
            inbox.offer(&frame(&i.to_string())).unwrap();
        }
        assert_eq!(inbox.offer(&frame("over")), Err(Full));
        let task_waker = Waker::from(Arc::new(Counter::default()));
        let mut cx = Context::from_waker(&task_waker);
        let others = inbox.waker();
        for i in 0..CAPACITY {
            assert_eq!(text(inbox.poll_next(&mut cx, &others, |_| Poll::Pending)), i.to_string());
        }
        assert!(inbox.offer(&frame("again")).is_ok(), "room again once the session has caught up");
    }

    /// What the other futures of a test saw.
    #[derive(Default)]
    struct Others {
        polls: usize,
        waker: Option<Waker>,
    }

    impl Others {
        fn poll(&mut self, inbox: &Inbox, cx: &mut Context<'_>, others: &Waker, ready: bool) -> Poll<Next<()>> {
            inbox.poll_next(cx, others, |inner| {
                self.polls += 1;
                self.waker = Some(inner.waker().clone());
                if ready { Poll::Ready(()) } else { Poll::Pending }
            })
        }
    }

    #[test]
    fn the_others_are_polled_first_then_only_after_a_wake_or_a_result() {
        let task = Arc::new(Counter::default());
        let task_waker = Waker::from(Arc::clone(&task));
        let mut cx = Context::from_waker(&task_waker);
        let inbox = Inbox::new();
        let waker = inbox.waker();
        let mut others = Others::default();

        assert!(others.poll(&inbox, &mut cx, &waker, false).is_pending());
        assert!(others.poll(&inbox, &mut cx, &waker, false).is_pending());
        assert_eq!(others.polls, 1, "polled once at first, then not again without a wake");
        inbox.offer(&frame("a")).unwrap();
        assert!(matches!(others.poll(&inbox, &mut cx, &waker, false), Poll::Ready(Next::Frame(_))));
        assert!(others.poll(&inbox, &mut cx, &waker, false).is_pending());
        assert_eq!(others.polls, 1, "a frame does not poll the others");

        others.waker.take().expect("the inbox's waker was handed in").wake();
        assert_eq!(task.wakes(), 2, "a wake of the others wakes the task (the frame woke it before)");
        assert!(matches!(others.poll(&inbox, &mut cx, &waker, true), Poll::Ready(Next::Other(()))));
        assert!(others.poll(&inbox, &mut cx, &waker, false).is_pending());
        assert_eq!(others.polls, 3, "polled after the wake, and again after a result");
        assert!(others.poll(&inbox, &mut cx, &waker, false).is_pending());
        assert_eq!(others.polls, 3);
    }
}
