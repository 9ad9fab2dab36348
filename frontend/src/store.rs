//! What the app knows: the joined rooms (with their unread counts and last messages), each opened room's
//! timeline, who is typing and who is online, and the outbox of messages not yet acknowledged.
//!
//! Every message is keyed by `(room, seq)`, so a message that arrives twice (a replay overlapping the live
//! stream, an ack and its broadcast, a REST page overlapping the socket) is stored once.

use std::collections::{BTreeMap, HashMap};

use chat_api::{Member, Message, Notification, Role, Room, User};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::util::{local_storage, now_ms};

/// How long a typing indicator lasts unless repeated (the contract's 5 seconds).
pub const TYPING_MS: f64 = 5_000.0;

/// An opened room's history, as far as it has been loaded.
#[derive(Clone, Debug, Default)]
pub struct Timeline {
    pub messages: BTreeMap<i64, Message>,
    /// Older messages exist on the server (scrolling up loads them).
    pub has_older: bool,
    /// The latest page has come over REST. Until then the timeline holds only what the socket
    /// delivered while that page was on its way, and the page is still to be fetched and merged.
    pub loaded: bool,
}

impl Timeline {
    pub fn last_seq(&self) -> Option<i64> {
        self.messages.keys().next_back().copied()
    }

    pub fn first_seq(&self) -> Option<i64> {
        self.messages.keys().next().copied()
    }
}

/// A message typed here and not yet acknowledged by the server. Kept in `localStorage` until acked, and
/// resent with the same `client_id` after a reconnect or a reload: the server stores it once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pending {
    pub client_id: String,
    pub room_id: i64,
    pub body: String,
    pub created_ms: f64,
    /// When it was last written to an open socket (not persisted: after a reload it is resent).
    #[serde(skip)]
    pub sent_ms: Option<f64>,
    /// Sends that got no ack in time or an error back.
    pub failures: u32,
    /// Given up until the user presses "retry".
    pub failed: bool,
    /// The server refused it for now (over the send budget, or busy): it is sent again by `tick`, and the
    /// messages typed after it wait until it is, so that they are stored in the order they were typed.
    #[serde(skip)]
    pub refused: bool,
    pub error: Option<String>,
    /// The seq of the message it answers.
    #[serde(default)]
    pub reply_to: Option<i64>,
}

/// The message the composer is answering.
#[derive(Clone, Debug, PartialEq)]
pub struct Replying {
    pub room_id: i64,
    pub seq: i64,
    pub author: String,
    pub excerpt: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Typist {
    pub user: User,
    pub until_ms: f64,
}

/// The app's state; `Copy`, provided as context. Coarse signals (a chat screen holds hundreds of
/// messages, not millions, and one signal per collection keeps the update rules in one place), except the
/// timelines: one signal per room, so that a message in a room in the background does not rebuild the
/// rows of the room on screen.
#[derive(Clone, Copy)]
pub struct Store {
    pub me: RwSignal<Option<User>>,
    /// The rooms the user is in.
    pub rooms: RwSignal<HashMap<i64, Room>>,
    pub rooms_loaded: RwSignal<bool>,
    /// Rooms added here one by one (joined, created, accepted): a room list fetched before one of them was
    /// added does not hold it, and must not drop it.
    rooms_added: StoredValue<u64>,
    /// Each room's timeline in a signal of its own; [`Store::timeline`] reads one.
    timelines: StoredValue<HashMap<i64, ArcRwSignal<Timeline>>>,
    pub typing: RwSignal<HashMap<i64, Vec<Typist>>>,
    pub online: RwSignal<HashMap<i64, Vec<User>>>,
    pub outbox: RwSignal<Vec<Pending>>,
    /// The room on screen, if any.
    pub open_room: RwSignal<Option<i64>>,
    /// Something the server did to the user that they must be told: removed, banned, a room deleted.
    pub notice: RwSignal<Option<String>>,
    /// The last room taken from the user (removed, banned, deleted): its page, if open, closes.
    pub dropped: RwSignal<Option<i64>>,
    /// The members of rooms opened since login, kept current by the socket's `member_*` frames.
    pub members: RwSignal<HashMap<i64, Vec<Member>>>,
    /// Bumped when this client bans someone: the ban list fetches again.
    pub bans_changed: RwSignal<u32>,
    /// The message the composer answers, until sent or cancelled.
    pub replying: RwSignal<Option<Replying>>,
    /// Notifications that arrived since the page loaded, newest first (the notifications page fetches the
    /// rest).
    pub notifications: RwSignal<Vec<Notification>>,
}

impl Store {
    pub fn new() -> Self {
        Store {
            me: RwSignal::new(None),
            rooms: RwSignal::new(HashMap::new()),
            rooms_loaded: RwSignal::new(false),
            rooms_added: StoredValue::new(0),
            timelines: StoredValue::new(HashMap::new()),
            typing: RwSignal::new(HashMap::new()),
            online: RwSignal::new(HashMap::new()),
            outbox: RwSignal::new(Vec::new()),
            open_room: RwSignal::new(None),
            notice: RwSignal::new(None),
            dropped: RwSignal::new(None),
            members: RwSignal::new(HashMap::new()),
            bans_changed: RwSignal::new(0),
            replying: RwSignal::new(None),
            notifications: RwSignal::new(Vec::new()),
        }
    }

    /// Forgets everything of the previous user and loads this user's outbox.
    pub fn reset(&self, me: Option<User>) {
        let outbox = me.as_ref().map(|u| read_outbox(u.id)).unwrap_or_default();
        self.me.set(me);
        self.rooms.set(HashMap::new());
        self.rooms_loaded.set(false);
        // Emptied rather than dropped: what is on screen keeps listening to the same signals.
        self.timelines.with_value(|t| t.values().for_each(|timeline| timeline.set(Timeline::default())));
        self.typing.set(HashMap::new());
        self.online.set(HashMap::new());
        self.members.set(HashMap::new());
        self.notifications.set(Vec::new());
        self.outbox.set(outbox);
    }

    /// The user stopped being a member of a room without leaving it: the room leaves the list, its page
    /// closes, and `notice` says why.
    pub fn drop_room(&self, room_id: i64, why: impl FnOnce(&str) -> String) {
        // Unknown here (left or deleted from this tab already): nothing to drop, nothing to tell.
        let Some(name) = self.rooms.with_untracked(|r| r.get(&room_id).map(|room| room.name.clone())) else {
            return;
        };
        self.forget_room(room_id);
        self.notice.set(Some(why(&name)));
        self.dropped.set(Some(room_id));
    }

    /// The user left or deleted a room: it leaves the list and what is held of it is let go.
    pub fn forget_room(&self, room_id: i64) {
        self.rooms.update(|rooms| {
            rooms.remove(&room_id);
        });
        if let Some(timeline) = self.existing_timeline(room_id) {
            timeline.set(Timeline::default());
        }
        self.typing.update(|t| {
            t.remove(&room_id);
        });
        self.members.update(|m| {
            m.remove(&room_id);
        });
    }

    /// A room's name, topic or visibility changed (its counts here stay this user's own).
    pub fn room_changed(&self, changed: Room) {
        self.rooms.update(|rooms| {
            if let Some(room) = rooms.get_mut(&changed.id) {
                room.name = changed.name;
                room.topic = changed.topic;
                room.visibility = changed.visibility;
            }
        });
    }

    /// Someone changed their display name: every message of theirs held here shows the new one.
    pub fn user_changed(&self, user: User) {
        let timelines: Vec<ArcRwSignal<Timeline>> = self.timelines.with_value(|t| t.values().cloned().collect());
        for timeline in timelines {
            if timeline.with_untracked(|t| t.messages.values().any(|m| m.author.id == user.id)) {
                timeline.update(|t| {
                    t.messages.values_mut().filter(|m| m.author.id == user.id).for_each(|m| m.author = user.clone());
                });
            }
        }
        self.members.update(|rooms| {
            for member in rooms.values_mut().flatten().filter(|m| m.user.id == user.id) {
                member.user = user.clone();
            }
        });
        self.rooms.update(|rooms| {
            for message in rooms.values_mut().filter_map(|r| r.last_message.as_mut()) {
                if message.author.id == user.id {
                    message.author = user.clone();
                }
            }
        });
    }

    /// A room's member list as fetched.
    pub fn set_members(&self, room_id: i64, members: Vec<Member>) {
        self.members.update(|m| {
            m.insert(room_id, members);
        });
    }

    /// Someone joined, or their role or mute changed (`member_joined`, `member_updated`). Only rooms whose
    /// list was fetched are kept: any other is fetched whole when opened.
    pub fn member_changed(&self, room_id: i64, member: Member) {
        let joined = self.members.try_update(|rooms| {
            let list = rooms.get_mut(&room_id)?;
            let known = list.iter().position(|m| m.user.id == member.user.id);
            match known {
                Some(i) => list[i] = member,
                None => list.push(member),
            }
            Some(known.is_none())
        });
        if joined.flatten() == Some(true) {
            self.count_members(room_id, 1);
        }
    }

    /// Someone stopped being a member (`member_left`).
    pub fn member_left(&self, room_id: i64, user_id: i64) {
        let removed = self.members.try_update(|rooms| {
            let list = rooms.get_mut(&room_id)?;
            let before = list.len();
            list.retain(|m| m.user.id != user_id);
            Some(list.len() < before)
        });
        if removed.flatten() == Some(true) {
            self.count_members(room_id, -1);
        }
        self.presence_changed_by_id(room_id, user_id);
    }

    fn count_members(&self, room_id: i64, change: i64) {
        self.rooms.update(|rooms| {
            if let Some(room) = rooms.get_mut(&room_id) {
                room.member_count = (room.member_count + change).max(0);
            }
        });
    }

    fn presence_changed_by_id(&self, room_id: i64, user_id: i64) {
        self.online.update(|o| {
            if let Some(list) = o.get_mut(&room_id) {
                list.retain(|u| u.id != user_id);
            }
        });
    }

    /// The user's own membership of a room, if its list is loaded.
    pub fn my_membership(&self, room_id: i64) -> Option<Member> {
        let me = self.me.with(|m| m.as_ref().map(|u| u.id))?;
        self.members.with(|rooms| rooms.get(&room_id)?.iter().find(|m| m.user.id == me).cloned())
    }

    /// The user's role in a room (`None` until its member list is loaded).
    pub fn my_role(&self, room_id: i64) -> Option<Role> {
        self.my_membership(room_id).map(|m| m.role)
    }

    /// A room's timeline, made (empty, not loaded) the first time it is asked for, so that a view can
    /// listen to it before its first page arrives.
    pub fn timeline(&self, room_id: i64) -> ArcRwSignal<Timeline> {
        if let Some(timeline) = self.existing_timeline(room_id) {
            return timeline;
        }
        let timeline = ArcRwSignal::new(Timeline::default());
        self.timelines.update_value(|t| {
            t.insert(room_id, timeline.clone());
        });
        timeline
    }

    fn existing_timeline(&self, room_id: i64) -> Option<ArcRwSignal<Timeline>> {
        self.timelines.with_value(|t| t.get(&room_id).cloned())
    }

    pub fn my_id(&self) -> Option<i64> {
        self.me.with_untracked(|m| m.as_ref().map(|u| u.id))
    }

    /// How many rooms were added one by one so far: read before fetching the room list, for `set_rooms`.
    pub fn rooms_added(&self) -> u64 {
        self.rooms_added.get_value()
    }

    /// Replaces the room list (after a fetch), keeping what the socket learnt in the meantime. The list is
    /// as fetched when `rooms_added()` was `added_before`. Rooms it lacks are dropped (left
    /// elsewhere), unless rooms were added here while it was on its way: one of those may be what it lacks
    /// (a deep link's room, joined as the page loaded), so then nothing is dropped until the next fetch.
    pub fn set_rooms(&self, rooms: Vec<Room>, added_before: u64) {
        let keep_unlisted = self.rooms_added() != added_before;
        self.rooms.update(|known| {
            let mut fresh: HashMap<i64, Room> = rooms.into_iter().map(|r| (r.id, r)).collect();
            for (id, room) in fresh.iter_mut() {
                if let Some(old) = known.get(id) {
                    keep_newer(room, old);
                }
            }
            if keep_unlisted {
                for (id, room) in known.drain() {
                    fresh.entry(id).or_insert(room);
                }
            }
            *known = fresh;
        });
        self.rooms_loaded.set(true);
    }

    /// One room fetched again: the server's counts, unless the socket has seen newer messages since.
    pub fn merge_room(&self, mut room: Room) {
        self.rooms.update(|rooms| {
            if let Some(old) = rooms.get(&room.id) {
                keep_newer(&mut room, old);
            }
            rooms.insert(room.id, room);
        });
    }

    pub fn upsert_room(&self, room: Room) {
        self.rooms_added.update_value(|added| *added += 1);
        self.rooms.update(|rooms| {
            rooms.insert(room.id, room);
        });
    }

    /// The highest seq this client has accounted for in a room: what `subscribe` sends as `since`.
    pub fn known_seq(&self, room_id: i64) -> i64 {
        let from_room = self.rooms.with_untracked(|r| r.get(&room_id).map(last_seq_of).unwrap_or(0));
        let from_timeline =
            self.existing_timeline(room_id).and_then(|t| t.with_untracked(Timeline::last_seq)).unwrap_or(0);
        from_room.max(from_timeline)
    }

    /// A new message from the socket (live or replayed) or an ack: stored once, counted unread once.
    pub fn add_message(&self, message: Message) {
        let room_id = message.room_id;
        let is_new = message.seq > self.known_seq(room_id);
        let mine = Some(message.author.id) == self.my_id();
        if mine && let Some(client_id) = &message.client_id {
            self.outbox.update(|o| o.retain(|p| &p.client_id != client_id));
        }
        self.typing.update(|t| {
            if let Some(list) = t.get_mut(&room_id) {
                list.retain(|typist| typist.user.id != message.author.id);
            }
        });
        // The open room's first page may still be on its way: keep what arrives meanwhile, or a
        // message committed after the page was read (an outbox resend's ack, say) would never show.
        let open = self.open_room.get_untracked() == Some(room_id);
        let timeline = if open { Some(self.timeline(room_id)) } else { self.existing_timeline(room_id) };
        if let Some(timeline) = timeline {
            timeline.update(|t| {
                t.messages.insert(message.seq, message.clone());
            });
        }
        if is_new {
            self.rooms.update(|rooms| {
                if let Some(room) = rooms.get_mut(&room_id) {
                    if mine {
                        room.last_read_seq = room.last_read_seq.max(message.seq);
                        room.unread_count = 0;
                    } else if message.seq > room.last_read_seq && !message.deleted {
                        room.unread_count += 1;
                    }
                    room.last_message = Some(message);
                }
            });
        }
    }

    /// A page of history from REST, merged by seq.
    pub fn add_page(&self, room_id: i64, messages: Vec<Message>, older_page: Option<bool>) {
        let timeline = self.timeline(room_id);
        timeline.update(|timeline| {
            timeline.loaded = true;
            for m in messages {
                timeline.messages.insert(m.seq, m);
            }
            if let Some(has_older) = older_page {
                timeline.has_older = has_older;
            }
        });
        let newest = timeline.with_untracked(|tl| tl.messages.values().last().cloned());
        if let Some(newest) = newest {
            self.rooms.update(|rooms| {
                if let Some(room) = rooms.get_mut(&room_id)
                    && newest.seq > last_seq_of(room)
                {
                    room.last_message = Some(newest);
                }
            });
        }
    }

    pub fn update_message(&self, message: Message) {
        let room_id = message.room_id;
        if let Some(timeline) = self.existing_timeline(room_id) {
            timeline.update(|t| {
                t.messages.insert(message.seq, message.clone());
            });
        }
        self.rooms.update(|rooms| {
            if let Some(room) = rooms.get_mut(&room_id)
                && room.last_message.as_ref().is_some_and(|m| m.seq == message.seq)
            {
                room.last_message = Some(message);
            }
        });
    }

    /// Someone added or took back an emoji (`reaction` frame): applied once, however often it arrives.
    pub fn reaction_changed(&self, room_id: i64, seq: i64, emoji: &str, user_id: i64, added: bool) {
        let Some(timeline) = self.existing_timeline(room_id) else { return };
        timeline.update(|t| {
            if let Some(message) = t.messages.get_mut(&seq) {
                apply_reaction(&mut message.reactions, emoji, user_id, added);
            }
        });
    }

    pub fn delete_message(&self, room_id: i64, seq: i64) {
        let erase = |m: &mut Message| {
            m.deleted = true;
            m.body.clear();
        };
        if let Some(timeline) = self.existing_timeline(room_id) {
            timeline.update(|t| {
                if let Some(m) = t.messages.get_mut(&seq) {
                    erase(m);
                }
            });
        }
        self.rooms.update(|rooms| {
            if let Some(m) = rooms.get_mut(&room_id).and_then(|r| r.last_message.as_mut()).filter(|m| m.seq == seq) {
                erase(m);
            }
        });
    }

    /// Moves the read marker forward (never back); returns whether it moved.
    pub fn mark_read(&self, room_id: i64, seq: i64) -> bool {
        let mut moved = false;
        self.rooms.update(|rooms| {
            if let Some(room) = rooms.get_mut(&room_id)
                && seq > room.last_read_seq
            {
                room.last_read_seq = seq;
                room.unread_count =
                    if seq >= last_seq_of(room) { 0 } else { room.unread_count.min(last_seq_of(room) - seq) };
                // The server reads the room's notifications up to `seq` with it (a webhook's, at seq 0, too).
                let read_now = self.notifications.with_untracked(|all| {
                    all.iter()
                        .filter(|n| n.room_id == room_id && !n.read && n.message.as_ref().map_or(0, |m| m.seq) <= seq)
                        .count() as i64
                });
                room.mention_count = if seq >= last_seq_of(room) { 0 } else { (room.mention_count - read_now).max(0) };
                moved = true;
            }
        });
        moved
    }

    /// A notification arrived (`notification` frame): counted on its room until read. `false` when it was
    /// already known (the same frame again, after a resume).
    pub fn notified(&self, notification: Notification) -> bool {
        if self.notifications.with_untracked(|all| all.iter().any(|n| n.id == notification.id)) {
            return false;
        }
        let room_id = notification.room_id;
        self.notifications.update(|all| all.insert(0, notification));
        self.rooms.update(|rooms| {
            if let Some(room) = rooms.get_mut(&room_id) {
                room.mention_count += 1;
            }
        });
        true
    }

    /// Notifications read (the notifications page was seen): marked here too.
    pub fn notifications_read(&self, up_to_id: i64) {
        self.notifications.update(|all| all.iter_mut().filter(|n| n.id <= up_to_id).for_each(|n| n.read = true));
    }

    pub fn set_typing(&self, room_id: i64, user: User) {
        if Some(user.id) == self.my_id() {
            return;
        }
        self.typing.update(|t| {
            let list = t.entry(room_id).or_default();
            list.retain(|typist| typist.user.id != user.id);
            list.push(Typist { user, until_ms: now_ms() + TYPING_MS });
        });
    }

    /// Drops typing indicators whose 5 seconds are over.
    pub fn expire_typing(&self) {
        let now = now_ms();
        let stale = self.typing.with_untracked(|t| t.values().flatten().any(|typist| typist.until_ms <= now));
        if stale {
            self.typing.update(|t| t.values_mut().for_each(|list| list.retain(|typist| typist.until_ms > now)));
        }
    }

    pub fn set_online(&self, room_id: i64, users: Vec<User>) {
        self.online.update(|o| {
            o.insert(room_id, users);
        });
    }

    pub fn presence_changed(&self, room_id: i64, user: User, online: bool) {
        self.online.update(|o| {
            let list = o.entry(room_id).or_default();
            list.retain(|u| u.id != user.id);
            if online {
                list.push(user);
                list.sort_by(|a, b| a.name().cmp(b.name()));
            }
        });
    }

    pub fn queue(&self, pending: Pending) {
        self.outbox.update(|o| o.push(pending));
        self.save_outbox();
    }

    pub fn update_pending(&self, client_id: &str, change: impl FnOnce(&mut Pending)) {
        self.outbox.update(|o| {
            if let Some(p) = o.iter_mut().find(|p| p.client_id == client_id) {
                change(p);
            }
        });
        self.save_outbox();
    }

    pub fn discard_pending(&self, client_id: &str) {
        self.outbox.update(|o| o.retain(|p| p.client_id != client_id));
        self.save_outbox();
    }

    /// Writes the outbox to `localStorage`, so a reload resends what was not acknowledged.
    pub fn save_outbox(&self) {
        let Some(me) = self.my_id() else { return };
        let Some(storage) = local_storage() else { return };
        let json = self.outbox.with_untracked(|o| serde_json::to_string(o).unwrap_or_default());
        // Full or disabled storage: the outbox then lives as long as the tab.
        let _ = storage.set_item(&outbox_key(me), &json);
    }
}

impl Default for Store {
    fn default() -> Self {
        Self::new()
    }
}

/// A fetched room is older than what the socket already delivered when its last message is: then
/// what this client knows (last message, unread count) stands.
fn keep_newer(fetched: &mut Room, known: &Room) {
    if last_seq_of(known) > last_seq_of(fetched) {
        *fetched = known.clone();
    }
}

/// One person's emoji on or off a message's reactions (kept in order of first use; an emoji nobody has
/// left goes away).
pub fn apply_reaction(reactions: &mut Vec<chat_api::Reaction>, emoji: &str, user_id: i64, added: bool) {
    match reactions.iter_mut().position(|r| r.emoji == emoji) {
        Some(i) => {
            let reaction = &mut reactions[i];
            let had = reaction.user_ids.contains(&user_id);
            if added && !had {
                reaction.user_ids.push(user_id);
            } else if !added && had {
                reaction.user_ids.retain(|id| *id != user_id);
            }
            reaction.count = reaction.user_ids.len() as i64;
            if reaction.count == 0 {
                reactions.remove(i);
            }
        }
        None if added => {
            reactions.push(chat_api::Reaction { emoji: emoji.to_owned(), count: 1, user_ids: vec![user_id] });
        }
        None => {}
    }
}

/// The seq of a room's last message (0 for an empty room).
pub fn last_seq_of(room: &Room) -> i64 {
    room.last_message.as_ref().map_or(0, |m| m.seq)
}

fn outbox_key(user_id: i64) -> String {
    format!("chat.outbox.{user_id}")
}

fn read_outbox(user_id: i64) -> Vec<Pending> {
    local_storage()
        .and_then(|s| s.get_item(&outbox_key(user_id)).ok().flatten())
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}
