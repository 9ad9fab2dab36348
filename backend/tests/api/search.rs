//! Search (CONTRACT-2 "Search"): every word (the last as a prefix), newest first, highlights as offsets,
//! edits and deletes in step, and never a room the caller is not in.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestUser, expect_json, expect_problem, expect_status, items};

db_tests!(
    search_finds_every_word_newest_first_with_highlights,
    search_follows_edits_and_deletes,
    search_follows_edits_and_deletes_of_messages_indexed_before_and_after,
    search_never_shows_a_room_the_caller_is_not_in,
    search_refuses_bad_queries,
);

async fn search(app: &TestApp, user: &TestUser, query: &str) -> Value {
    expect_json(app.get(&format!("/api/v1/search?{query}"), Some(&user.token)).await, StatusCode::OK).await
}

fn bodies(page: &Value) -> Vec<String> {
    items(page).iter().map(|h| h["message"]["body"].as_str().unwrap().to_owned()).collect()
}

async fn search_finds_every_word_newest_first_with_highlights(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    let other = app.room_id(&alice, "private").await;
    app.send(&alice, room_id, "The blue logo is ready").await;
    app.send(&alice, room_id, "blue only").await;
    app.send(&alice, other, "LOGOS in Blue, again").await;
    app.send(&alice, room_id, "logo only").await;

    let page = search(&app, &alice, "q=blue%20logo").await;
    assert_eq!(bodies(&page), ["LOGOS in Blue, again", "The blue logo is ready"], "{page}");
    assert_eq!(items(&page)[0]["highlights"], json!([[0, 5], [9, 13]]));
    assert_eq!(items(&page)[1]["highlights"], json!([[4, 8], [9, 13]]));
    assert_eq!(items(&page)[1]["message"]["room_id"], room_id);

    // One room only; paging by cursor.
    assert_eq!(
        bodies(&search(&app, &alice, &format!("q=blue&room_id={room_id}")).await),
        ["blue only", "The blue logo is ready"]
    );
    let first = search(&app, &alice, "q=blue&limit=2").await;
    assert_eq!(bodies(&first), ["LOGOS in Blue, again", "blue only"]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = search(&app, &alice, &format!("q=blue&limit=2&cursor={cursor}")).await;
    assert_eq!(bodies(&rest), ["The blue logo is ready"]);
    assert_eq!(rest["next_cursor"], Value::Null);
    // Words are words: punctuation in the query is not syntax.
    assert_eq!(bodies(&search(&app, &alice, "q=%22blue%22%20%26%20logo%3A*").await).len(), 2);
    assert!(items(&search(&app, &alice, "q=%26%7C!").await).is_empty());
}

async fn search_follows_edits_and_deletes(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    app.send(&alice, room_id, "meeting on tuesday").await;
    app.send(&alice, room_id, "secret meeting").await;
    expect_status(
        app.edit_message(&alice.token, room_id, 1, &json!({"body": "meeting on wednesday"})).await,
        StatusCode::OK,
    )
    .await;
    expect_status(app.delete_message(&alice.token, room_id, 2).await, StatusCode::NO_CONTENT).await;
    assert!(items(&search(&app, &alice, "q=tuesday").await).is_empty(), "the old text is not found");
    assert_eq!(bodies(&search(&app, &alice, "q=wednesday").await), ["meeting on wednesday"]);
    assert_eq!(bodies(&search(&app, &alice, "q=meeting").await), ["meeting on wednesday"], "never a deleted message");
    assert!(items(&search(&app, &alice, "q=secret").await).is_empty());
}

/// SQLite indexes new messages in batches, and before every search: a message searched for once is in the
/// index (its edit changes it there), the ones sent since are not yet (their edit or delete is picked up
/// when they are indexed). Either way a search sees every message as it is now.
async fn search_follows_edits_and_deletes_of_messages_indexed_before_and_after(app: TestApp) {
    let alice = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    app.send(&alice, room_id, "alpha one").await;
    assert_eq!(bodies(&search(&app, &alice, "q=alpha").await), ["alpha one"]);
    app.send(&alice, room_id, "beta two").await;
    app.send(&alice, room_id, "beta three").await;
    expect_status(app.edit_message(&alice.token, room_id, 1, &json!({"body": "gamma one"})).await, StatusCode::OK)
        .await;
    expect_status(app.edit_message(&alice.token, room_id, 3, &json!({"body": "delta three"})).await, StatusCode::OK)
        .await;
    expect_status(app.delete_message(&alice.token, room_id, 2).await, StatusCode::NO_CONTENT).await;
    assert!(items(&search(&app, &alice, "q=alpha").await).is_empty(), "an indexed message's old text");
    assert!(items(&search(&app, &alice, "q=beta").await).is_empty(), "a deleted and an edited message");
    assert_eq!(bodies(&search(&app, &alice, "q=gamma").await), ["gamma one"]);
    assert_eq!(bodies(&search(&app, &alice, "q=delta").await), ["delta three"]);
    assert_eq!(bodies(&search(&app, &alice, "q=one").await), ["gamma one"]);
    // Indexed now, and changed again: the index follows.
    expect_status(app.delete_message(&alice.token, room_id, 3).await, StatusCode::NO_CONTENT).await;
    assert!(items(&search(&app, &alice, "q=delta").await).is_empty());
    app.send(&alice, room_id, "alpha again").await;
    assert_eq!(bodies(&search(&app, &alice, "q=alpha").await), ["alpha again"]);
}

async fn search_never_shows_a_room_the_caller_is_not_in(app: TestApp) {
    let (alice, bob) = (app.new_user().await, app.new_user().await);
    let private = app.room_id(&alice, "private").await;
    let public = app.room_id(&alice, "public").await;
    app.send(&alice, private, "launch codes").await;
    app.send(&alice, public, "launch party").await;
    assert!(items(&search(&app, &bob, "q=launch").await).is_empty(), "bob is in neither room");
    for room in [private, public] {
        let resp = app.get(&format!("/api/v1/search?q=launch&room_id={room}"), Some(&bob.token)).await;
        assert_eq!(expect_problem(resp, StatusCode::NOT_FOUND).await["code"], "room_not_found");
    }
    expect_status(app.join_room(&bob.token, public).await, StatusCode::OK).await;
    assert_eq!(bodies(&search(&app, &bob, "q=launch").await), ["launch party"]);
    // Left: gone from the results again.
    expect_status(app.leave_room(&bob.token, public).await, StatusCode::NO_CONTENT).await;
    assert!(items(&search(&app, &bob, "q=launch").await).is_empty());
}

async fn search_refuses_bad_queries(app: TestApp) {
    let alice = app.new_user().await;
    for query in ["q=", "q=%20%20", &format!("q={}", "a".repeat(201))] {
        let resp = app.get(&format!("/api/v1/search?{query}"), Some(&alice.token)).await;
        let problem = expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(problem["errors"][0]["field"], "q", "{query}: {problem}");
    }
    for query in ["", "q=x&limit=0", "q=x&cursor=abc", "q=x&room_id=abc"] {
        expect_problem(app.get(&format!("/api/v1/search?{query}"), Some(&alice.token)).await, StatusCode::BAD_REQUEST)
            .await;
    }
    expect_problem(app.get("/api/v1/search?q=x", None).await, StatusCode::UNAUTHORIZED).await;
    let writer = app.api_token(&alice, &["messages:write"]).await;
    let resp = app.get("/api/v1/search?q=x", Some(writer["token"].as_str().unwrap())).await;
    assert_eq!(expect_problem(resp, StatusCode::FORBIDDEN).await["code"], "insufficient_scope");
}
