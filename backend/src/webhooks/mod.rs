//! Outgoing webhooks (CONTRACT-2 "Webhooks"): a room's events POSTed to URLs its owner and admins chose.
//!
//! The story of an event: the writer commits it and, in the same transaction, queues it for each webhook
//! of the room that wants it ([`outbox::enqueue`]), then rings this node's [`Wakeup`]. Every node runs one
//! [`Dispatcher`]: it claims due webhooks from the queue (one event in flight per webhook, however many
//! nodes), POSTs each head event signed ([`signing`]) to an address checked again at delivery
//! ([`addresses`]), and records the outcome: delivered events leave the queue, failed ones are retried
//! with backoff, a webhook failing for 3 days is disabled and the room's owner notified. A slow receiver
//! costs a delivery slot, never a send: the writer only inserts rows.

pub mod addresses;
pub mod outbox;
pub mod signing;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use reqwest::redirect::Policy;
use tokio::sync::{Notify, mpsc};

use crate::config::WebhookSettings;
use crate::db::Database;
use crate::db::models::NewWebhookDelivery;
use crate::domain::notifications;
use crate::events::writer::MessageWriter;
use addresses::{Destinations, NotPublic};
use outbox::{Claimed, Outcome};

/// How long a claimed webhook stays this node's: longer than a delivery can take (its timeout, twice, and
/// a margin), so that only a node that died mid-delivery lets it pass, and another node then retries it.
fn lease(settings: &WebhookSettings) -> Duration {
    settings.timeout * 2 + Duration::from_secs(5)
}
/// Other nodes' events, and retries whose backoff ends, are found by looking this often.
const POLL: Duration = Duration::from_secs(1);
/// After a wake-up, outcomes and new events arriving within this are recorded and claimed together: one
/// transaction for many deliveries.
const GATHER: Duration = Duration::from_millis(5);
/// A webhook's attempts beyond the last 100 are deleted after this many more (not on every one).
const PRUNE_EVERY: u32 = 50;
/// The most of an answer read (so that its connection can be used again); the rest is dropped.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Rung by the writer when it queued events: this node's dispatcher looks at once.
#[derive(Clone, Default)]
pub struct Wakeup(Arc<Notify>);

impl Wakeup {
    pub fn ring(&self) {
        self.0.notify_one();
    }
}

/// This node's deliveries.
pub struct Dispatcher {
    db: Database,
    settings: WebhookSettings,
    destinations: Destinations,
    client: reqwest::Client,
    writer: MessageWriter,
}

impl Dispatcher {
    /// Starts delivering on the current runtime, until it shuts down.
    pub fn start(db: Database, settings: WebhookSettings, writer: MessageWriter, wakeup: Wakeup) {
        let destinations = Destinations::new(&settings.allow_hosts);
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .dns_resolver(destinations.resolver())
            .no_proxy()
            .user_agent(concat!("chat-server-webhooks/", env!("CARGO_PKG_VERSION")))
            .build();
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                tracing::error!("webhooks are not delivered by this node: cannot build the HTTP client: {e}");
                return;
            }
        };
        let dispatcher = Arc::new(Dispatcher { db, settings, destinations, client, writer });
        tokio::spawn(dispatcher.run(wakeup));
    }

    /// Rounds of: record what finished, claim what is due (as many as free slots), start those deliveries;
    /// then wait for a wake-up, a finished delivery, or the next poll.
    async fn run(self: Arc<Self>, wakeup: Wakeup) {
        let (finished_tx, mut finished_rx) = mpsc::unbounded_channel::<Outcome>();
        let mut in_flight = 0usize;
        let mut finished = Vec::new();
        let mut since_pruned: HashMap<i64, u32> = HashMap::new();
        loop {
            while let Ok(outcome) = finished_rx.try_recv() {
                finished.push(outcome);
            }
            in_flight -= finished.len();
            let free = self.settings.concurrency.saturating_sub(in_flight);
            let prune = due_for_pruning(&mut since_pruned, &finished);
            let claimed = self.round(std::mem::take(&mut finished), prune, free).await;
            for claim in claimed {
                in_flight += 1;
                let (me, done) = (Arc::clone(&self), finished_tx.clone());
                tokio::spawn(async move {
                    // The receiver of outcomes lives as long as this loop.
                    let _ = done.send(me.deliver(claim).await);
                });
            }
            tokio::select! {
                () = wakeup.0.notified() => {}
                Some(outcome) = finished_rx.recv() => finished.push(outcome),
                () = tokio::time::sleep(POLL) => {}
            }
            tokio::time::sleep(GATHER).await;
        }
    }

    /// One transaction's worth: records `finished`, claims up to `free` webhooks. A database error is
    /// logged and the round's outcomes dropped: their events stay queued and leased, and are sent again
    /// when the lease ends (at least once).
    async fn round(&self, finished: Vec<Outcome>, prune: Vec<i64>, free: usize) -> Vec<Claimed> {
        let settings = self.settings.clone();
        let result = self
            .db
            .write(move |conn| {
                let disabled = outbox::record(conn, &finished, &prune, &settings)?;
                Ok((disabled, outbox::claim(conn, free, lease(&settings))?))
            })
            .await;
        match result {
            Ok((disabled, claimed)) => {
                for webhook_id in disabled {
                    self.tell_owner(webhook_id).await;
                }
                claimed
            }
            Err(e) => {
                tracing::warn!("webhook deliveries: {e}");
                Vec::new()
            }
        }
    }

    /// The room's owner hears that a webhook was disabled.
    async fn tell_owner(&self, webhook_id: i64) {
        tracing::warn!(webhook_id, "webhook disabled after failing for too long");
        let result = self.writer.commit(move |conn| notifications::webhook_disabled(conn, webhook_id)).await;
        if let Err(e) = result {
            tracing::warn!(webhook_id, "cannot notify the owner of a disabled webhook: {e}");
        }
    }

    /// One attempt at a claimed event.
    async fn deliver(&self, Claimed { webhook, event }: Claimed) -> Outcome {
        let (attempted_at, started) = (crate::db::now(), Instant::now());
        let result = self.post(&webhook.url, &webhook.secret, &event.event_id, &event.body).await;
        let (status_code, error) = match result {
            Ok(status) => (Some(i32::from(status)), None),
            Err(error) => (None, Some(error)),
        };
        let outcome = Outcome {
            event_row: event.id,
            attempt: NewWebhookDelivery {
                webhook_id: webhook.id,
                event_id: event.event_id,
                event_type: event.event_type,
                attempt: webhook.failures + 1,
                status_code,
                duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                error,
                attempted_at,
            },
        };
        let result = if outcome.delivered() { "delivered" } else { "failed" };
        metrics::counter!("webhook_deliveries_total", "result" => result).increment(1);
        outcome
    }

    /// POSTs one signed event; the receiver's status, or why there is none.
    async fn post(&self, url: &str, secret: &str, event_id: &str, body: &str) -> Result<u16, String> {
        // The allow list may have changed since the webhook was made.
        let url = self.destinations.check_form(url)?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut answer = self
            .client
            .post(url)
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signing::signature(secret, event_id, timestamp, body))
            .body(body.to_owned())
            .send()
            .await
            .map_err(|e| why(&e, self.settings.timeout))?;
        let status = answer.status().as_u16();
        let mut read = 0;
        while let Ok(Some(chunk)) = answer.chunk().await {
            read += chunk.len();
            if read > MAX_ANSWER_BYTES {
                break;
            }
        }
        Ok(status)
    }
}

/// Counts each webhook's attempts; the webhooks that reached [`PRUNE_EVERY`] since their last pruning.
fn due_for_pruning(counts: &mut HashMap<i64, u32>, finished: &[Outcome]) -> Vec<i64> {
    let mut due = Vec::new();
    for outcome in finished {
        let count = counts.entry(outcome.webhook_id()).or_default();
        *count += 1;
        if *count >= PRUNE_EVERY {
            *count = 0;
            due.push(outcome.webhook_id());
        }
    }
    due
}

/// A delivery error as the deliveries list shows it: the address refusal when that was the cause, else
/// the error and its causes.
fn why(error: &reqwest::Error, timeout: Duration) -> String {
    if error.is_timeout() {
        return format!("no answer in {} s", timeout.as_secs());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<NotPublic>() {
            return format!("refused: {refused}");
        }
        text.push_str(": ");
        text.push_str(&e.to_string());
        source = e.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(webhook_id: i64) -> Outcome {
        Outcome {
            event_row: 1,
            attempt: NewWebhookDelivery {
                webhook_id,
                event_id: "msg_1".into(),
                event_type: "message.created".into(),
                attempt: 1,
                status_code: Some(200),
                duration_ms: 1,
                error: None,
                attempted_at: crate::db::now(),
            },
        }
    }

    #[test]
    fn each_webhook_is_pruned_once_per_prune_every_attempts() {
        let mut counts = HashMap::new();
        let mut pruned = Vec::new();
        for _ in 0..PRUNE_EVERY * 2 {
            pruned.extend(due_for_pruning(&mut counts, &[outcome(1), outcome(2)]));
        }
        assert_eq!(pruned, [1, 2, 1, 2]);
    }
}
