//! `/rooms/{id}/messages` (send, history, edit, delete) and `/rooms/{id}/read`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_message, assert_time, expect_json, expect_problem, expect_status, expect_validation_error, id_of,
    items, seqs,
};

db_tests!(
    post_message_returns_the_message,
    fifty_concurrent_sends_get_seqs_1_to_50,
    retry_with_same_client_id_returns_the_first_message,
    retry_with_same_idempotency_key_returns_the_first_message,
    history_pages_backwards_with_before,
    history_pages_forwards_with_after,
    default_history_page_is_the_latest,
    edit_by_author_only,
    delete_by_author_or_room_owner,
    read_marker_and_unread_count,
    room_shows_its_last_message,
);

async fn post_message_returns_the_message(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;

    let m = expect_json(
        app.post_message(&user.token, room_id, &json!({"body": "hello, world", "client_id": "c-1"})).await,
        StatusCode::CREATED,
    )
    .await;
    assert_message(&m);
    assert_eq!(m["room_id"], room_id);
    assert_eq!(m["seq"], 1);
    assert_eq!(m["author"], user.user);
    assert_eq!(m["body"], "hello, world");
    assert_eq!(m["client_id"], "c-1");
    assert_eq!(m["edited_at"], Value::Null);
    assert_eq!(m["deleted"], false);

    let second = app.send(&user, room_id, "second").await;
    assert_eq!(second["seq"], 2);
    assert_eq!(second["client_id"], Value::Null);
    assert_ne!(second["id"], m["id"]);

    // Committed before the response: history has both, identical to what the sends returned.
    let page = app.history_page(&user.token, room_id, "").await;
    assert_eq!(items(&page), &vec![m, second]);
    assert_eq!(page["has_more"], false);

    // Another room numbers its messages from 1.
    let other_room = app.room_id(&user, "public").await;
    assert_eq!(app.send(&user, other_room, "elsewhere").await["seq"], 1);
}

async fn fifty_concurrent_sends_get_seqs_1_to_50(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let bob = app.new_user().await;
    expect_json(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;

    let url = app.url(&format!("/api/v1/rooms/{room_id}/messages"));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let client = app.client.clone();
            let url = url.clone();
            let token = if i % 2 == 0 { alice.token.clone() } else { bob.token.clone() };
            tokio::spawn(async move {
                let resp =
                    client.post(url).bearer_auth(token).json(&json!({"body": format!("concurrent {i}")})).send().await;
                expect_json(resp.expect("send"), StatusCode::CREATED).await
            })
        })
        .collect();
    let mut sent = Vec::new();
    for t in tasks {
        sent.push(t.await.expect("the send task panicked"));
    }
    let mut got: Vec<i64> = sent.iter().map(|m| m["seq"].as_i64().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=50).collect::<Vec<_>>(), "seqs 1..=50, no gap, no duplicate");

    let page = app.history_page(&alice.token, room_id, "limit=100").await;
    assert_eq!(seqs(&page), (1..=50).collect::<Vec<_>>());
    for m in items(&page) {
        let returned = sent.iter().find(|s| s["id"] == m["id"]).expect("every stored message was returned to a sender");
        assert_eq!(returned["seq"], m["seq"]);
        assert_eq!(returned["body"], m["body"]);
    }
}

async fn retry_with_same_client_id_returns_the_first_message(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    let body = json!({"body": "only once", "client_id": "retry-1"});

    let first = expect_json(app.post_message(&user.token, room_id, &body).await, StatusCode::CREATED).await;
    let retry = expect_json(app.post_message(&user.token, room_id, &body).await, StatusCode::OK).await;
    assert_eq!(retry, first, "the retry returns the first message");
    // Even if the retried body differs, the key wins.
    let changed = json!({"body": "changed on retry", "client_id": "retry-1"});
    let retry = expect_json(app.post_message(&user.token, room_id, &changed).await, StatusCode::OK).await;
    assert_eq!(retry["id"], first["id"]);

    let page = app.history_page(&user.token, room_id, "").await;
    assert_eq!(seqs(&page), [1], "one message: {page}");

    // The key is per author and per room: another user, or another room, gets a new message.
    let other = app.new_user().await;
    expect_json(app.join_room(&other.token, room_id).await, StatusCode::OK).await;
    let theirs = expect_json(app.post_message(&other.token, room_id, &body).await, StatusCode::CREATED).await;
    assert_eq!(theirs["seq"], 2);
    let other_room = app.room_id(&user, "public").await;
    expect_json(app.post_message(&user.token, other_room, &body).await, StatusCode::CREATED).await;
    // And a new key is a new message.
    let next = json!({"body": "only once", "client_id": "retry-2"});
    assert_eq!(expect_json(app.post_message(&user.token, room_id, &next).await, StatusCode::CREATED).await["seq"], 3);
}

async fn retry_with_same_idempotency_key_returns_the_first_message(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    let body = json!({"body": "pay once"});

    let first =
        expect_json(app.post_message_with_key(&user.token, room_id, &body, "key-1").await, StatusCode::CREATED).await;
    let retry =
        expect_json(app.post_message_with_key(&user.token, room_id, &body, "key-1").await, StatusCode::OK).await;
    assert_eq!(retry, first, "the retry returns the first message");

    let page = app.history_page(&user.token, room_id, "").await;
    assert_eq!(seqs(&page), [1], "one message: {page}");

    let second =
        expect_json(app.post_message_with_key(&user.token, room_id, &body, "key-2").await, StatusCode::CREATED).await;
    assert_eq!(second["seq"], 2);
}

/// Checks one page of the 30 `msg <seq>` messages: ascending, the expected seqs and bodies.
fn check_page(page: &Value, expected: &[i64], has_more: bool, what: &str) {
    assert_eq!(seqs(page), expected, "{what}: {page}");
    for m in items(page) {
        assert_eq!(m["body"], format!("msg {}", m["seq"]), "{what}");
    }
    assert_eq!(page["has_more"], has_more, "{what}: has_more");
}

async fn history_pages_backwards_with_before(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    app.send_many(&user, room_id, 30).await;

    // limit 7: 24..=30, 17..=23, 10..=16, 3..=9, 1..=2.
    let mut page = app.history_page(&user.token, room_id, "limit=7").await;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let s = seqs(&page);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "items ascending: {s:?}");
        assert!(s.len() <= 7);
        pages += 1;
        seen.splice(0..0, s.iter().copied());
        if page["has_more"] == false {
            break;
        }
        assert_eq!(s.len(), 7, "a page that is not the last is full");
        assert!(pages < 10, "has_more never became false");
        let before = s[0];
        page = app.history_page(&user.token, room_id, &format!("before={before}&limit=7")).await;
    }
    assert_eq!(seen, (1..=30).collect::<Vec<_>>(), "every seq exactly once");
    assert_eq!(pages, 5);

    // Exact page boundaries.
    check_page(&app.history_page(&user.token, room_id, "limit=7").await, &[24, 25, 26, 27, 28, 29, 30], true, "latest");
    check_page(&app.history_page(&user.token, room_id, "before=3&limit=7").await, &[1, 2], false, "before=3");
    // has_more is false when the page ends exactly at the start.
    check_page(
        &app.history_page(&user.token, room_id, "before=21&limit=10").await,
        &(11..=20).collect::<Vec<_>>(),
        true,
        "before=21",
    );
    check_page(
        &app.history_page(&user.token, room_id, "before=11&limit=10").await,
        &(1..=10).collect::<Vec<_>>(),
        false,
        "before=11",
    );
    check_page(&app.history_page(&user.token, room_id, "before=1&limit=7").await, &[], false, "before=1");
}

async fn history_pages_forwards_with_after(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    app.send_many(&user, room_id, 30).await;

    let mut after = 0;
    let mut seen = Vec::new();
    for pages in 1.. {
        let page = app.history_page(&user.token, room_id, &format!("after={after}&limit=7")).await;
        let s = seqs(&page);
        assert!(s.windows(2).all(|w| w[0] < w[1]), "items ascending: {s:?}");
        assert!(!s.is_empty() && s.len() <= 7, "{page}");
        assert_eq!(s[0], after + 1, "the page starts right after the cursor");
        seen.extend(s.iter().copied());
        after = *s.last().unwrap();
        if page["has_more"] == false {
            assert_eq!(pages, 5);
            break;
        }
        assert_eq!(s.len(), 7, "a page that is not the last is full");
        assert!(pages < 10, "has_more never became false");
    }
    assert_eq!(seen, (1..=30).collect::<Vec<_>>(), "every seq exactly once");

    check_page(&app.history_page(&user.token, room_id, "after=28&limit=7").await, &[29, 30], false, "after=28");
    check_page(
        &app.history_page(&user.token, room_id, "after=10&limit=10").await,
        &(11..=20).collect::<Vec<_>>(),
        true,
        "after=10",
    );
    // has_more is false when the page ends exactly at the newest message.
    check_page(
        &app.history_page(&user.token, room_id, "after=20&limit=10").await,
        &(21..=30).collect::<Vec<_>>(),
        false,
        "after=20",
    );
    check_page(&app.history_page(&user.token, room_id, "after=30&limit=7").await, &[], false, "after=30");
}

async fn default_history_page_is_the_latest(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;

    let empty = app.history_page(&user.token, room_id, "").await;
    check_page(&empty, &[], false, "an empty room");

    app.send_many(&user, room_id, 55).await;
    let page = app.history_page(&user.token, room_id, "").await;
    check_page(&page, &(6..=55).collect::<Vec<_>>(), true, "default: the latest 50");
    let rest = app.history_page(&user.token, room_id, "before=6").await;
    check_page(&rest, &[1, 2, 3, 4, 5], false, "before=6");
}

async fn edit_by_author_only(app: TestApp) {
    let author = app.new_user().await;
    let room_id = app.room_id(&author, "public").await;
    let other = app.new_user().await;
    expect_json(app.join_room(&other.token, room_id).await, StatusCode::OK).await;
    let original = app.send(&author, room_id, "typo hree").await;

    let edited =
        expect_json(app.edit_message(&author.token, room_id, 1, &json!({"body": "typo here"})).await, StatusCode::OK)
            .await;
    assert_message(&edited);
    assert_eq!(edited["body"], "typo here");
    assert_eq!(edited["id"], original["id"]);
    assert_eq!(edited["seq"], 1);
    assert_eq!(edited["created_at"], original["created_at"]);
    assert_eq!(edited["deleted"], false);
    assert_time(&edited["edited_at"], "edited_at");

    let problem = expect_problem(
        app.edit_message(&other.token, room_id, 1, &json!({"body": "hijacked"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert!(problem["code"].is_string());
    // The room owner is not the author of someone else's message either.
    let theirs = app.send(&other, room_id, "mine").await;
    expect_problem(
        app.edit_message(&author.token, room_id, seq_of(&theirs), &json!({"body": "owner edit"})).await,
        StatusCode::FORBIDDEN,
    )
    .await;

    // The edit is stored, the refused ones are not.
    let page = app.history_page(&other.token, room_id, "").await;
    assert_eq!(items(&page)[0], edited);
    assert_eq!(items(&page)[1]["body"], "mine");

    // An edit is validated like a new message, and an unknown seq is 404.
    expect_validation_error(app.edit_message(&author.token, room_id, 1, &json!({"body": "  "})).await, "body").await;
    expect_problem(app.edit_message(&author.token, room_id, 99, &json!({"body": "x"})).await, StatusCode::NOT_FOUND)
        .await;
}

fn seq_of(m: &Value) -> i64 {
    m["seq"].as_i64().expect("seq")
}

async fn delete_by_author_or_room_owner(app: TestApp) {
    let owner = app.new_user().await;
    let room_id = app.room_id(&owner, "public").await;
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    for u in [&alice, &bob] {
        expect_json(app.join_room(&u.token, room_id).await, StatusCode::OK).await;
    }
    app.send(&alice, room_id, "alice one").await; // 1
    app.send(&alice, room_id, "alice two").await; // 2
    app.send(&bob, room_id, "bob one").await; // 3

    // Bob may not delete Alice's message.
    expect_problem(app.delete_message(&bob.token, room_id, 1).await, StatusCode::FORBIDDEN).await;
    // The author may.
    expect_status(app.delete_message(&alice.token, room_id, 1).await, StatusCode::NO_CONTENT).await;
    // The room owner may delete anyone's.
    expect_status(app.delete_message(&owner.token, room_id, 3).await, StatusCode::NO_CONTENT).await;

    let page = app.history_page(&bob.token, room_id, "").await;
    assert_eq!(seqs(&page), [1, 2, 3], "deleted messages keep their seq: {page}");
    for (i, text) in [(0, "alice one"), (2, "bob one")] {
        let m = &items(&page)[i];
        assert_eq!(m["deleted"], true, "{m}");
        assert!(m["body"] == "" || m["body"].is_null(), "the body is erased: {m}");
        assert!(!m.to_string().contains(text), "the text is gone: {m}");
    }
    assert_eq!(items(&page)[1]["deleted"], false);
    assert_eq!(items(&page)[1]["body"], "alice two");

    // Seqs are never reused.
    assert_eq!(app.send(&bob, room_id, "after").await["seq"], 4);
    expect_problem(app.delete_message(&alice.token, room_id, 42).await, StatusCode::NOT_FOUND).await;
}

async fn read_marker_and_unread_count(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let bob = app.new_user().await;
    expect_json(app.join_room(&bob.token, room_id).await, StatusCode::OK).await;

    app.send_many(&alice, room_id, 3).await;
    let a = app.room_view(&alice.token, room_id).await;
    assert_eq!(
        (a["last_read_seq"].clone(), a["unread_count"].clone()),
        (json!(3), json!(0)),
        "sending moves the sender's marker"
    );
    let b = app.room_view(&bob.token, room_id).await;
    assert_eq!((b["last_read_seq"].clone(), b["unread_count"].clone()), (json!(0), json!(3)));

    expect_status(app.mark_read(&bob.token, room_id, 2).await, StatusCode::NO_CONTENT).await;
    let b = app.room_view(&bob.token, room_id).await;
    assert_eq!((b["last_read_seq"].clone(), b["unread_count"].clone()), (json!(2), json!(1)));

    // Never backwards.
    expect_status(app.mark_read(&bob.token, room_id, 1).await, StatusCode::NO_CONTENT).await;
    let b = app.room_view(&bob.token, room_id).await;
    assert_eq!(
        (b["last_read_seq"].clone(), b["unread_count"].clone()),
        (json!(2), json!(1)),
        "the marker did not move back"
    );

    // Bob's own message moves his marker; Alice now has one unread (Bob's), her own do not count.
    app.send(&bob, room_id, "read you").await; // 4
    let b = app.room_view(&bob.token, room_id).await;
    assert_eq!((b["last_read_seq"].clone(), b["unread_count"].clone()), (json!(4), json!(0)));
    let a = app.room_view(&alice.token, room_id).await;
    assert_eq!((a["last_read_seq"].clone(), a["unread_count"].clone()), (json!(3), json!(1)));

    // The rooms list carries the same per-caller counts.
    app.send(&alice, room_id, "two more").await; // 5
    app.send(&alice, room_id, "three more").await; // 6
    let list = expect_json(app.list_rooms(&bob.token, "").await, StatusCode::OK).await;
    let room = items(&list).iter().find(|r| id_of(r) == room_id).expect("the room is listed");
    assert_eq!((room["last_read_seq"].clone(), room["unread_count"].clone()), (json!(4), json!(2)));
    let list = expect_json(app.list_rooms(&alice.token, "").await, StatusCode::OK).await;
    let room = items(&list).iter().find(|r| id_of(r) == room_id).expect("the room is listed");
    assert_eq!((room["last_read_seq"].clone(), room["unread_count"].clone()), (json!(6), json!(0)));
}

async fn room_shows_its_last_message(app: TestApp) {
    let user = app.new_user().await;
    let room_id = app.room_id(&user, "public").await;
    assert_eq!(app.room_view(&user.token, room_id).await["last_message"], Value::Null);
    app.send(&user, room_id, "one").await;
    let two = app.send(&user, room_id, "two").await;

    let room = app.room_view(&user.token, room_id).await;
    assert_eq!(room["last_message"], two);
    let list = expect_json(app.list_rooms(&user.token, "").await, StatusCode::OK).await;
    let room = items(&list).iter().find(|r| id_of(r) == room_id).expect("the room is listed");
    assert_eq!(room["last_message"], two);
}

mod sqlite_wal {
    //! SQLite only: what its write-ahead log does under steady writes.

    use std::time::{Duration, Instant};

    use serde_json::json;

    use crate::helpers::{TestApp, TestDb};

    /// The WAL header's checkpoint sequence number, which SQLite increments each time it starts
    /// the WAL over from the beginning (https://sqlite.org/fileformat2.html#walformat).
    fn wal_restarts(app: &TestApp) -> u32 {
        let wal = std::fs::read(app.data_dir().join("chat.db-wal")).expect("the WAL file");
        u32::from_be_bytes(wal[12..16].try_into().expect("a WAL header"))
    }

    /// Messages posted without pause for 3.5 s (8 posters): the WAL still starts over, rather
    /// than growing for as long as the writes go on (it grew by 700 MB in 20 s of the fan-out
    /// benchmark before the checkpoints caught up with the writer).
    #[tokio::test]
    async fn the_wal_starts_over_under_steady_writes() {
        // Far above a user's REST rate: the limits are lifted for this test.
        let app = TestApp::spawn_with(TestDb::Sqlite, |config| {
            config.rate_limits.per_user = None;
            config.rate_limits.per_address = None;
            config.rate_limits.sends = None;
        })
        .await;
        let user = app.new_user().await;
        let room_id = app.room_id(&user, "public").await;
        let post_until = |deadline: Instant| {
            let (app, token) = (&app, user.token.clone());
            async move {
                let mut i = 0;
                while Instant::now() < deadline {
                    let r = app.post_message(&token, room_id, &json!({"body": format!("m{i}")})).await;
                    assert!(r.status().is_success(), "a send failed: {}", r.status());
                    i += 1;
                }
            }
        };
        // Writes under way first, then the count at its start and end of 3.5 s more of them.
        let warmup = Instant::now() + Duration::from_millis(500);
        futures_util::future::join_all((0..8).map(|_| post_until(warmup))).await;
        let before = wal_restarts(&app);
        let deadline = Instant::now() + Duration::from_millis(3500);
        let (_, during) = tokio::join!(futures_util::future::join_all((0..8).map(|_| post_until(deadline))), async {
            tokio::time::sleep(Duration::from_millis(3400)).await;
            wal_restarts(&app)
        });
        assert!(during > before, "the WAL did not start over during 3.5 s of writes (sequence {before} -> {during})");
    }
}
