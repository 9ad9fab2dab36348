//! The parts of a message beyond its text: the quote of what it answers (clicking it scrolls to the
//! original, loading older history as needed, and highlights it), the reaction chips (click toggles your
//! own, hovering names who), and the emoji picker.

use chat_api::{Reaction, ReplyTo};
use leptos::prelude::*;

use crate::api::Api;
use crate::store::{Replying, Store, Timeline, apply_reaction};
use crate::util::shown_name;

/// The emoji offered first, with the names the picker's search matches.
const EMOJI: &[(&str, &str)] = &[
    ("👍", "thumbs up yes agree +1"),
    ("❤️", "heart love"),
    ("😂", "joy laugh tears funny"),
    ("🎉", "tada party celebrate hooray"),
    ("😮", "wow surprised open mouth"),
    ("😢", "cry sad tear"),
    ("🙏", "pray thanks please"),
    ("👀", "eyes looking"),
    ("👎", "thumbs down no disagree -1"),
    ("🔥", "fire hot lit"),
    ("✅", "check done yes ok"),
    ("❌", "cross no wrong"),
    ("🚀", "rocket ship launch"),
    ("🤔", "thinking hmm"),
    ("😄", "smile happy grin"),
    ("😅", "sweat smile phew"),
    ("👏", "clap applause bravo"),
    ("💯", "hundred perfect 100"),
    ("🙌", "raised hands celebrate"),
    ("👋", "wave hello bye"),
    ("☕", "coffee tea hot"),
    ("🐛", "bug insect"),
    ("⚠️", "warning caution"),
    ("➕", "plus add"),
];

/// How many of them show before the user searches.
const COMMON: usize = 8;

/// "Replying to ann: what she said", on a reply; click to go to the original.
#[component]
pub fn ReplyQuote(room_id: Memo<i64>, reply: ReplyTo) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let seq = reply.seq;
    let excerpt = if reply.excerpt.is_empty() { "message deleted".to_owned() } else { reply.excerpt.clone() };
    let label = format!("Replying to {}: {excerpt}", shown_name(&reply.author));
    let jump = move |_| {
        let id = room_id.get_untracked();
        leptos::task::spawn_local(jump_to(api, store, id, seq));
    };
    view! {
        <button type="button" class="reply-quote" aria-label=format!("{label} (go to the message)") on:click=jump>
            <span class="reply-author">{shown_name(&reply.author).to_owned()}</span>
            <span class="reply-excerpt">{excerpt}</span>
        </button>
    }
}

/// Scrolls to message `seq` of the open room and highlights it, paging older history in until it is held
/// (or there is nothing older). Called as the room opens, too (a search hit, a notification): the room's
/// latest page may not be in yet, and without it the timeline does not know there is older history, so
/// it is fetched here first (pages merge by seq: the room page's own fetch of it adds nothing twice).
pub async fn jump_to(api: Api, store: Store, room_id: i64, seq: i64) {
    let timeline = store.timeline(room_id);
    if !timeline.with_untracked(|t| t.loaded) {
        let Ok(page) = api.messages(room_id, None, None).await else { return };
        store.add_page(room_id, page.items, Some(page.has_more));
    }
    loop {
        let (held, first, has_older) =
            timeline.with_untracked(|t: &Timeline| (t.messages.contains_key(&seq), t.first_seq(), t.has_older));
        if held || !has_older {
            break;
        }
        let Ok(page) = api.messages(room_id, first, None).await else { return };
        store.add_page(room_id, page.items, Some(page.has_more));
    }
    // The row shows once the room's page has drawn what was loaded (it may still be mounting); a list
    // just mounted scrolls itself to the bottom at its next frame, so the jump comes after that.
    for _ in 0..ROW_WAITS {
        let drawn = message_row(seq).is_some();
        gloo_timers::future::sleep(ROW_WAIT).await;
        if drawn && let Some(row) = message_row(seq) {
            row.scroll_into_view();
            let _ = row.class_list().add_1("highlight");
            gloo_timers::future::sleep(std::time::Duration::from_secs(2)).await;
            let _ = row.class_list().remove_1("highlight");
            return;
        }
    }
}

/// How long `jump_to` waits for a loaded message's row: `ROW_WAITS` times `ROW_WAIT`.
const ROW_WAITS: u32 = 50;
const ROW_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

fn message_row(seq: i64) -> Option<web_sys::Element> {
    let document = web_sys::window()?.document()?;
    document.query_selector(&format!(".message[data-seq=\"{seq}\"]")).ok()?
}

/// The chips under a message: each emoji with its count, pressed when it is the reader's own.
#[component]
pub fn ReactionChips(room_id: Memo<i64>, seq: i64, reactions: Vec<Reaction>) -> impl IntoView {
    let store = expect_context::<Store>();
    let me = store.me.with_untracked(|m| m.as_ref().map(|u| u.id)).unwrap_or(0);
    let chips = reactions
        .into_iter()
        .map(|reaction| {
            let mine = reaction.user_ids.contains(&me);
            let who = who_reacted(store, room_id.get_untracked(), &reaction.user_ids);
            let emoji = reaction.emoji.clone();
            let label = format!("{} {} ({who})", reaction.emoji, reaction.count);
            view! {
                <button type="button" class="chip" class:mine=mine aria-pressed=mine.to_string() title=who
                    aria-label=label on:click=move |_| toggle(room_id.get_untracked(), seq, emoji.clone(), !mine)>
                    <span aria-hidden="true">{format!("{} {}", reaction.emoji, reaction.count)}</span>
                </button>
            }
        })
        .collect_view();
    view! { <div class="reactions">{chips}</div> }
}

/// "ann, bob and 3 others", from the member list the app holds.
fn who_reacted(store: Store, room_id: i64, ids: &[i64]) -> String {
    let names: Vec<String> = store.members.with_untracked(|rooms| {
        let members = rooms.get(&room_id);
        ids.iter()
            .map(|id| {
                members
                    .and_then(|list| list.iter().find(|m| m.user.id == *id))
                    .map_or_else(|| "someone".to_owned(), |m| shown_name(&m.user).to_owned())
            })
            .collect()
    });
    match names.len() {
        0 => String::new(),
        1..=3 => names.join(", "),
        n => format!("{} and {} others", names[..3].join(", "), n - 3),
    }
}

/// Adds or takes back the reader's emoji: shown at once, undone if the server refuses.
pub fn toggle(room_id: i64, seq: i64, emoji: String, add: bool) {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let Some(me) = store.me.with_untracked(|m| m.as_ref().map(|u| u.id)) else { return };
    let timeline = store.timeline(room_id);
    let shown = emoji.clone();
    let apply = move |on: bool| {
        timeline.update(|t| {
            if let Some(message) = t.messages.get_mut(&seq) {
                apply_reaction(&mut message.reactions, &shown, me, on);
            }
        })
    };
    apply(add);
    leptos::task::spawn_local(async move {
        if api.react(room_id, seq, &emoji, add).await.is_err() {
            apply(!add);
        }
    });
}

/// A small picker: the common few, and a search by name over the rest.
#[component]
pub fn EmojiPicker(room_id: Memo<i64>, seq: i64, close: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let shown = move || {
        let q = query.get().trim().to_lowercase();
        if q.is_empty() {
            EMOJI[..COMMON].to_vec()
        } else {
            EMOJI.iter().copied().filter(|(_, names)| names.split(' ').any(|n| n.starts_with(&q))).collect()
        }
    };
    let pick = move |emoji: &'static str| {
        toggle(room_id.get_untracked(), seq, emoji.to_owned(), true);
        close();
    };
    view! {
        <div class="emoji-picker" role="dialog" aria-label="Add a reaction"
            on:keydown=move |ev| if ev.key() == "Escape" { close() }>
            <input class="emoji-search" aria-label="Search emoji by name" placeholder="Search…" autofocus
                prop:value=move || query.get() on:input=move |ev| query.set(event_target_value(&ev)) />
            <div class="emoji-choices">
                {move || shown().into_iter().map(|(emoji, names)| {
                    let name = names.split(' ').next().unwrap_or(emoji).to_owned();
                    view! {
                        <button type="button" class="emoji" aria-label=name title=names on:click=move |_| pick(emoji)>
                            {emoji}
                        </button>
                    }
                }).collect_view()}
            </div>
        </div>
    }
}

/// Starts a reply to a message: the composer shows what is answered.
pub fn start_reply(store: Store, room_id: i64, seq: i64) {
    let found = store.timeline(room_id).with_untracked(|t| t.messages.get(&seq).cloned());
    if let Some(message) = found {
        let excerpt: String = message.body.chars().take(200).collect();
        store.replying.set(Some(Replying { room_id, seq, author: shown_name(&message.author).to_owned(), excerpt }));
        if let Some(input) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("composer-input"))
            .and_then(|el| wasm_bindgen::JsCast::dyn_into::<web_sys::HtmlElement>(el).ok())
        {
            let _ = input.focus();
        }
    }
}

/// A message's text with its web links clickable: `http://` and `https://` only (never `javascript:`),
/// opened in a new tab without handing it this page. Everything else stays text.
pub fn linked_text(body: &str) -> impl IntoView + use<> {
    split_links(body)
        .into_iter()
        .map(|(text, link)| {
            if link {
                let href = text.clone();
                view! { <a href=href target="_blank" rel="noopener noreferrer">{text}</a> }.into_any()
            } else {
                view! { <span>{text}</span> }.into_any()
            }
        })
        .collect_view()
}

/// `body` cut into text and links (`true`). A link starts with `http://` or `https://` at a word's start
/// and ends at white space or a character URLs do not hold bare; trailing punctuation stays text.
fn split_links(body: &str) -> Vec<(String, bool)> {
    let mut parts = Vec::new();
    let mut rest = body;
    let mut text = String::new();
    while !rest.is_empty() {
        let at_word_start = text.chars().last().is_none_or(|c| !c.is_alphanumeric());
        let lower = rest.get(..8).unwrap_or(rest).to_ascii_lowercase();
        if at_word_start && (lower.starts_with("https://") || lower.starts_with("http://")) {
            let end = rest.find(|c: char| c.is_whitespace() || "<>\"'`".contains(c)).unwrap_or(rest.len());
            let url = rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', ']', '}']);
            let scheme = if lower.starts_with("https://") { 8 } else { 7 };
            if url.len() > scheme {
                if !text.is_empty() {
                    parts.push((std::mem::take(&mut text), false));
                }
                parts.push((url.to_owned(), true));
                rest = &rest[url.len()..];
                continue;
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        text.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !text.is_empty() {
        parts.push((text, false));
    }
    parts
}
