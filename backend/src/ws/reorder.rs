//! Puts a room's new messages back in seq order before the hub fans them out.
//!
//! With several nodes, a node hears its own messages at once and the others' through Redis a
//! little later, so a room written to from two nodes arrives out of order: 11 (from Redis) after
//! 12 (local). Every session would see 12 first, take 11 for lost, and read it from the database:
//! one query per subscriber per inversion, which under load turned into more delay, more
//! inversions and a collapse. The hub instead holds a message that comes early for up to
//! [`HOLD`], until the ones before it arrive. Past that it lets it go, and sessions fill the gap
//! from the database as before: the hold only saves work, it is never needed for correctness.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use chat_api::Message;

/// The longest a message waits for the ones before it. Redis delivers in about a millisecond on a
/// healthy network; a message that has not come by then was most likely dropped, and the
/// database has it.
pub const HOLD: Duration = Duration::from_millis(25);

/// The next seq expected in each room and the messages that came before their turn.
#[derive(Default)]
pub struct Reorder {
    rooms: HashMap<i64, RoomOrder>,
    /// The rooms holding a message, so that the periodic release looks at those only.
    waiting: HashSet<i64>,
}

struct RoomOrder {
    next: i64,
    /// By seq: when it arrived, and the message.
    held: BTreeMap<i64, (Instant, Message)>,
}

impl Reorder {
    /// Takes in a new message. Returns what may be delivered now, in order: nothing when it is
    /// held, otherwise it and whatever it released. The first message of a room sets where the
    /// order starts. One older than expected (late, or a repeat) passes straight through: the
    /// sessions deliver each seq once.
    pub fn admit(&mut self, message: &Message, now: Instant) -> Vec<Message> {
        let seq = message.seq;
        let Some(room) = self.rooms.get_mut(&message.room_id) else {
            self.rooms.insert(message.room_id, RoomOrder { next: seq + 1, held: BTreeMap::new() });
            return vec![message.clone()];
        };
        if seq > room.next {
            room.held.entry(seq).or_insert_with(|| (now, message.clone()));
            self.waiting.insert(message.room_id);
            return Vec::new();
        }
        let mut ready = vec![message.clone()];
        if seq == room.next {
            room.next += 1;
            while let Some(entry) = room.held.first_entry() {
                if *entry.key() != room.next {
                    break;
                }
                ready.push(entry.remove().1);
                room.next += 1;
            }
            if room.held.is_empty() {
                self.waiting.remove(&message.room_id);
            }
        }
        ready
    }

    /// Lets go, in order, of every room's held messages once the oldest has waited [`HOLD`]; the
    /// room's order goes on after the last of them.
    pub fn release_overdue(&mut self, now: Instant) -> Vec<Message> {
        let mut released = Vec::new();
        self.waiting.retain(|room_id| {
            let Some(room) = self.rooms.get_mut(room_id) else { return false };
            let overdue = room.held.values().any(|(since, _)| now.duration_since(*since) >= HOLD);
            if !overdue {
                return true;
            }
            let held = std::mem::take(&mut room.held);
            if let Some(last) = held.keys().next_back() {
                room.next = last + 1;
            }
            released.extend(held.into_values().map(|(_, message)| message));
            false
        });
        released
    }

    /// True when some message is waiting.
    pub fn holds_any(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Forgets a room (no socket here is subscribed to it any more).
    pub fn forget(&mut self, room_id: i64) {
        self.rooms.remove(&room_id);
        self.waiting.remove(&room_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(room_id: i64, seq: i64) -> Message {
        Message {
            id: room_id * 1000 + seq,
            room_id,
            seq,
            author: chat_api::User {
                id: 1,
                username: "ann".into(),
                display_name: Some("Ann".into()),
                created_at: chrono::Utc::now(),
                deleted: false,
            },
            body: format!("m{seq}"),
            client_id: None,
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            via: None,
        }
    }

    fn seqs(messages: &[Message]) -> Vec<i64> {
        messages.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn in_order_messages_pass_at_once() {
        let (mut order, now) = (Reorder::default(), Instant::now());
        for seq in 5..9 {
            assert_eq!(seqs(&order.admit(&message(1, seq), now)), [seq]);
        }
        assert!(!order.holds_any());
    }

    #[test]
    fn an_early_message_waits_for_the_ones_before_it() {
        let (mut order, now) = (Reorder::default(), Instant::now());
        assert_eq!(seqs(&order.admit(&message(1, 10), now)), [10]);
        assert!(order.admit(&message(1, 13), now).is_empty());
        assert!(order.admit(&message(1, 12), now).is_empty());
        assert!(order.holds_any());
        assert_eq!(seqs(&order.admit(&message(1, 11), now)), [11, 12, 13]);
        assert!(!order.holds_any());
        assert_eq!(seqs(&order.admit(&message(1, 14), now)), [14]);
    }

    #[test]
    fn a_message_that_never_comes_is_given_up_after_the_hold() {
        let (mut order, start) = (Reorder::default(), Instant::now());
        order.admit(&message(1, 1), start);
        order.admit(&message(1, 3), start);
        order.admit(&message(1, 4), start);
        assert!(order.release_overdue(start + HOLD / 2).is_empty());
        assert_eq!(seqs(&order.release_overdue(start + HOLD)), [3, 4]);
        assert!(!order.holds_any());
        // The order goes on after what was released; the late one passes straight through.
        assert_eq!(seqs(&order.admit(&message(1, 5), start + HOLD)), [5]);
        assert_eq!(seqs(&order.admit(&message(1, 2), start + HOLD)), [2]);
    }

    #[test]
    fn rooms_are_ordered_apart() {
        let (mut order, now) = (Reorder::default(), Instant::now());
        order.admit(&message(1, 1), now);
        order.admit(&message(2, 7), now);
        assert!(order.admit(&message(1, 3), now).is_empty());
        assert_eq!(seqs(&order.admit(&message(2, 8), now)), [8]);
        order.forget(1);
        // A forgotten room starts again from whatever comes next.
        assert_eq!(seqs(&order.admit(&message(1, 9), now)), [9]);
    }
}
