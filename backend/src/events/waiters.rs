//! Long polling's wake-up: requests held on `GET /rooms/{id}/messages?after=N&wait=S` wait here for
//! the room's next message on this node (committed here, or heard from another node through Redis).
//!
//! A wake-up is only a hint to read the database again: the request always answers from the
//! database, so a wake-up lost (Redis dropping an event) costs latency, never a message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

#[derive(Default)]
pub struct RoomWaiters {
    /// One `Notify` per room with a request waiting; dropped with the last waiter.
    rooms: Mutex<HashMap<i64, Arc<Notify>>>,
    /// Requests held per user on this node (each holds a connection: bounded, see [`RoomWaiters::enter`]).
    per_user: Mutex<HashMap<i64, usize>>,
    /// Requests held on this node, so that [`RoomWaiters::wake`], called for every message on the delivery
    /// path, takes no lock while nobody long-polls (the usual case).
    held: AtomicUsize,
}

/// A held request's place: wakes on the room's next message; leaving frees the user's slot.
pub struct Waiter<'a> {
    waiters: &'a RoomWaiters,
    room_id: i64,
    user_id: i64,
    notify: Arc<Notify>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every operation leaves the maps consistent, so poison is ignored.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl RoomWaiters {
    /// A place for `user_id` waiting on `room_id`, or `None` when they already hold `max` requests here.
    pub fn enter(&self, room_id: i64, user_id: i64, max: usize) -> Option<Waiter<'_>> {
        {
            let mut per_user = lock(&self.per_user);
            let held = per_user.entry(user_id).or_default();
            if *held >= max {
                return None;
            }
            *held += 1;
        }
        // Before the request arms its wake-up and reads: a `wake` that still sees 0 came after a commit that
        // this request's read will see.
        self.held.fetch_add(1, Ordering::SeqCst);
        let notify = lock(&self.rooms).entry(room_id).or_default().clone();
        Some(Waiter { waiters: self, room_id, user_id, notify })
    }

    /// The room has a new message: every request waiting on it reads again.
    pub fn wake(&self, room_id: i64) {
        if self.held.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Some(notify) = lock(&self.rooms).get(&room_id) {
            notify.notify_waiters();
        }
    }

    /// Every held request reads again (the node is shutting down).
    pub fn wake_all(&self) {
        for notify in lock(&self.rooms).values() {
            notify.notify_waiters();
        }
    }

    /// Requests held on this node.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }
}

impl Waiter<'_> {
    /// The `Notify` to wait on; arm its `notified()` before reading, so no wake-up falls in between.
    pub fn notify(&self) -> &Notify {
        &self.notify
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        self.waiters.held.fetch_sub(1, Ordering::SeqCst);
        {
            let mut per_user = lock(&self.waiters.per_user);
            if let Some(held) = per_user.get_mut(&self.user_id) {
                *held -= 1;
                if *held == 0 {
                    per_user.remove(&self.user_id);
                }
            }
        }
        let mut rooms = lock(&self.waiters.rooms);
        // Two references left (the map's and this one): no one else waits on the room.
        if Arc::strong_count(&self.notify) == 2 {
            rooms.remove(&self.room_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_holds_at_most_max_and_leaving_frees_the_place() {
        let waiters = RoomWaiters::default();
        let first = waiters.enter(1, 7, 2).unwrap();
        let second = waiters.enter(2, 7, 2).unwrap();
        assert!(waiters.enter(1, 7, 2).is_none(), "a third is refused");
        assert!(waiters.enter(1, 8, 2).is_some(), "another user is not affected");
        drop(first);
        assert!(waiters.enter(1, 7, 2).is_some());
        drop(second);
        assert_eq!(waiters.held(), 0);
        assert!(lock(&waiters.rooms).is_empty(), "rooms without waiters are forgotten");
    }

    #[tokio::test]
    async fn a_message_wakes_the_rooms_waiters_only() {
        let waiters = RoomWaiters::default();
        let (a, b) = (waiters.enter(1, 7, 5).unwrap(), waiters.enter(2, 7, 5).unwrap());
        let (mut on_a, mut on_b) = (Box::pin(a.notify().notified()), Box::pin(b.notify().notified()));
        on_a.as_mut().enable();
        on_b.as_mut().enable();
        waiters.wake(1);
        tokio::time::timeout(std::time::Duration::from_secs(1), on_a).await.expect("room 1's waiter wakes");
        let slept = tokio::time::timeout(std::time::Duration::from_millis(50), on_b).await;
        assert!(slept.is_err(), "room 2's waiter sleeps on");
    }
}
