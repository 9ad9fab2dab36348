//! The WebSocket gateway: frames, delivery order, replay with `since`, errors and close codes.

use serde_json::json;

use crate::helpers::*;

db_tests!(send_is_acked_and_delivered_to_every_subscriber);

async fn send_is_acked_and_delivered_to_every_subscriber(app: TestApp) {
    let alice = app.new_user().await;
    let bob = app.new_user().await;
    let room_id = app.room_id(&alice, "public").await;
    expect_status(app.join_room(&bob.token, room_id).await, reqwest::StatusCode::OK).await;
    let mut a = app.ws(&alice.token).await;
    let mut b = app.ws(&bob.token).await;
    a.subscribe(room_id, None).await;
    b.subscribe(room_id, None).await;

    a.send(json!({"type": "send", "room_id": room_id, "body": "hello", "client_id": "c-1"})).await;
    let ack = a.expect("ack").await;
    assert_eq!(ack["client_id"], "c-1");
    assert_message(&ack["message"]);
    assert_eq!(ack["message"]["seq"], 1);
    for client in [&mut a, &mut b] {
        let frame = client.expect("message").await;
        assert_eq!(frame["message"], ack["message"]);
    }
}
