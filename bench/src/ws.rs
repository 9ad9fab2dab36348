//! The client side of the WebSocket benchmarks: opening sockets, reading frames cheaply, the monotonic
//! clock stamped into message bodies, and the REST calls that set up users and rooms.

use std::borrow::Cow;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::load::{expect, int_field, string_field, wait_for_http};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Upgrade plus the first frame; past this the socket counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `subscribe` to `subscribed`, during the setup.
const SUBSCRIBE_TIMEOUT: Duration = Duration::from_secs(30);
/// A setup request (register, create a room, join) that takes longer than this is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Nanoseconds since the first call, on the monotonic clock. Senders stamp it into message bodies and
/// subscribers (same process) subtract it from their own reading.
pub fn now_nanos() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    u64::try_from(START.get_or_init(Instant::now).elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Opens a socket with `Authorization: Bearer <token>` and waits for the `ready` frame.
/// `read_buffer` is the client's read buffer per socket (small for thousands of idle sockets).
pub async fn connect(ws_url: &str, token: &str, read_buffer: usize) -> Result<Socket> {
    let attempt = async {
        let mut request = ws_url.into_client_request().context("WebSocket URL")?;
        let bearer = HeaderValue::from_str(&format!("Bearer {token}")).context("token as a header")?;
        request.headers_mut().insert("authorization", bearer);
        let config = WebSocketConfig::default().read_buffer_size(read_buffer);
        let (mut socket, _) = tokio_tungstenite::connect_async_with_config(request, Some(config), true)
            .await
            .context("WebSocket upgrade")?;
        match next_text(&mut socket).await? {
            Some(text) if text.starts_with(r#"{"type":"ready""#) => Ok(socket),
            Some(text) => bail!("expected a `ready` frame first, got {}", shorten(&text)),
            None => bail!("the socket closed before `ready`"),
        }
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .map_err(|_| anyhow!("no `ready` within {}s", CONNECT_TIMEOUT.as_secs()))?
}

/// Sends `subscribe` and reads until `subscribed` for that room; returns its `last_seq`.
/// Frames before it (presence changes of others) are skipped; an `error` frame fails.
pub async fn subscribe(socket: &mut Socket, room_id: i64, since: Option<i64>) -> Result<i64> {
    tokio::time::timeout(SUBSCRIBE_TIMEOUT, subscribe_unbounded(socket, room_id, since))
        .await
        .map_err(|_| anyhow!("no `subscribed` for room {room_id} within {}s", SUBSCRIBE_TIMEOUT.as_secs()))?
}

async fn subscribe_unbounded(socket: &mut Socket, room_id: i64, since: Option<i64>) -> Result<i64> {
    use futures_util::SinkExt;
    let frame = match since {
        Some(since) => json!({"type": "subscribe", "room_id": room_id, "since": since}),
        None => json!({"type": "subscribe", "room_id": room_id}),
    };
    socket.send(Message::text(frame.to_string())).await.context("sending subscribe")?;
    loop {
        let Some(text) = next_text(socket).await? else { bail!("the socket closed before `subscribed`") };
        let frame = Frame::parse(&text)?;
        match frame.kind.as_ref() {
            "subscribed" if frame.room_id == Some(room_id) => {
                return frame.last_seq.ok_or_else(|| anyhow!("`subscribed` without last_seq"));
            }
            "error" => bail!("subscribe to room {room_id}: {}", shorten(&text)),
            _ => {}
        }
    }
}

/// The next text frame; `None` when the socket closed. Pings are answered by the library.
pub async fn next_text(socket: &mut Socket) -> Result<Option<tokio_tungstenite::tungstenite::Utf8Bytes>> {
    loop {
        match socket.next().await {
            None => return Ok(None),
            Some(Err(err)) => return Err(err).context("reading the socket"),
            Some(Ok(Message::Text(text))) => return Ok(Some(text)),
            Some(Ok(Message::Close(frame))) => {
                bail!("the server closed the socket: {}", close_text(frame.as_ref()))
            }
            Some(Ok(_)) => {}
        }
    }
}

pub fn close_text(frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(frame) => format!("{} {}", u16::from(frame.code), frame.reason),
        None => "no close code".to_string(),
    }
}

/// A `message` frame, read without building a JSON tree: only what the bench looks at, borrowed.
#[derive(Deserialize)]
pub struct MessageFrame<'a> {
    #[serde(borrow)]
    pub message: MessageRef<'a>,
}

#[derive(Deserialize)]
pub struct MessageRef<'a> {
    pub room_id: i64,
    pub seq: i64,
    #[serde(borrow)]
    pub body: Cow<'a, str>,
}

impl<'a> MessageFrame<'a> {
    /// `Some` for a `message` frame (both servers write `type` first), `None` for any other frame.
    pub fn parse(text: &'a str) -> Result<Option<MessageFrame<'a>>> {
        if !text.starts_with(r#"{"type":"message","#) {
            return Ok(None);
        }
        serde_json::from_str(text).map(Some).with_context(|| format!("bad message frame {}", shorten(text)))
    }
}

/// Any other frame: the fields the bench reads of `subscribed`, `ack`, `error`.
#[derive(Deserialize)]
pub struct Frame<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Cow<'a, str>,
    pub room_id: Option<i64>,
    pub last_seq: Option<i64>,
    pub truncated: Option<bool>,
    #[serde(borrow)]
    pub client_id: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub code: Option<Cow<'a, str>>,
    /// A `Message` in `ack`, a text in `error`.
    pub message: Option<serde_json::Value>,
}

impl<'a> Frame<'a> {
    pub fn parse(text: &'a str) -> Result<Frame<'a>> {
        serde_json::from_str(text).with_context(|| format!("bad frame {}", shorten(text)))
    }

    /// `message.seq` of an `ack`.
    pub fn message_seq(&self) -> Option<i64> {
        self.message.as_ref()?.get("seq")?.as_i64()
    }
}

pub fn shorten(text: &str) -> String {
    let shown: String = text.chars().take(200).collect();
    if shown.len() < text.len() { format!("{shown}...") } else { shown }
}

/// REST calls for the setup: users, rooms, memberships, messages.
#[derive(Clone)]
pub struct Api {
    client: Client,
    base_url: String,
}

/// A registered user.
#[derive(Clone)]
pub struct Account {
    pub access_token: String,
}

impl Api {
    pub async fn new(base_url: &str) -> Result<Api> {
        let client =
            Client::builder().no_proxy().timeout(REQUEST_TIMEOUT).build().context("building the HTTP client")?;
        wait_for_http(&client, base_url).await?;
        Ok(Api { client, base_url: base_url.to_string() })
    }

    pub async fn register(&self, username: &str) -> Result<Account> {
        let registered = expect(
            self.client
                .post(format!("{}/api/v1/auth/register", self.base_url))
                .json(&json!({"username": username, "password": "bench-password-1"})),
            StatusCode::CREATED,
            "POST /auth/register",
        )
        .await?;
        Ok(Account { access_token: string_field(&registered, "access_token")? })
    }

    pub async fn create_room(&self, owner: &Account, name: &str) -> Result<i64> {
        let room = expect(
            self.client
                .post(format!("{}/api/v1/rooms", self.base_url))
                .bearer_auth(&owner.access_token)
                .json(&json!({"name": name})),
            StatusCode::CREATED,
            "POST /rooms",
        )
        .await?;
        int_field(&room, "id")
    }

    pub async fn join(&self, who: &Account, room_id: i64) -> Result<()> {
        let response = self
            .client
            .post(format!("{}/api/v1/rooms/{room_id}/join", self.base_url))
            .bearer_auth(&who.access_token)
            .send()
            .await
            .context("POST /rooms/{id}/join: request failed")?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST /rooms/{room_id}/join: {status}: {}", shorten(&text));
        }
        Ok(())
    }

    /// Gives `room_id` a webhook for new messages to `url` (which must be allowed: `WEBHOOK_ALLOW_HOSTS`).
    pub async fn create_webhook(&self, owner: &Account, room_id: i64, url: &str) -> Result<()> {
        expect(
            self.client
                .post(format!("{}/api/v1/rooms/{room_id}/webhooks", self.base_url))
                .bearer_auth(&owner.access_token)
                .json(&json!({"url": url, "events": ["message.created"]})),
            StatusCode::CREATED,
            "POST /rooms/{id}/webhooks",
        )
        .await?;
        Ok(())
    }

    /// Posts one message; returns its seq.
    pub async fn post_message(&self, who: &Account, room_id: i64, body: &str, client_id: &str) -> Result<i64> {
        let message = expect(
            self.client
                .post(format!("{}/api/v1/rooms/{room_id}/messages", self.base_url))
                .bearer_auth(&who.access_token)
                .json(&json!({"body": body, "client_id": client_id})),
            StatusCode::CREATED,
            "POST /rooms/{id}/messages",
        )
        .await?;
        int_field(&message, "seq")
    }
}

/// The sum of every series of counter `name` in the Prometheus text of each `GET {base_url}/metrics`;
/// `None` when a node does not answer or has no such counter yet counts 0.
pub async fn scrape_counter(client: &Client, base_urls: &[String], name: &str) -> Option<f64> {
    let mut total = 0.0;
    for base_url in base_urls {
        let response = client.get(format!("{base_url}/metrics")).timeout(Duration::from_secs(5)).send().await.ok()?;
        total += counter_sum(&response.text().await.ok()?, name);
    }
    Some(total)
}

fn counter_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| line.strip_prefix(name).is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' ')))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Runs `jobs` with at most `limit` in flight; the first error wins (the others are still awaited).
pub async fn bounded<T, F>(limit: usize, jobs: impl IntoIterator<Item = F>) -> Result<Vec<T>>
where
    F: std::future::Future<Output = Result<T>>,
{
    let results: Vec<Result<T>> = futures_util::stream::iter(jobs).buffered(limit.max(1)).collect().await;
    results.into_iter().collect()
}

/// A process's resident memory in KiB (`VmRSS` of `/proc/PID/status`).
pub fn rss_kib(pid: u32) -> Result<u64> {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).with_context(|| format!("reading pid {pid}"))?;
    parse_vm_rss(&status).ok_or_else(|| anyhow!("no VmRSS for pid {pid}"))
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time a process has used so far (user + system), in clock ticks (`/proc/PID/stat`).
pub fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("reading pid {pid}"))?;
    parse_cpu_ticks(&stat).ok_or_else(|| anyhow!("unreadable /proc/{pid}/stat"))
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are plain.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// Clock ticks per second of `/proc/PID/stat`.
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory effects.
    u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1)
}

/// CPU ticks of all `pids` together; processes that are gone count zero.
pub fn total_cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&pid| cpu_ticks(pid).ok()).sum()
}

/// Waits until the processes use less than a tenth of a core (what is left of setting up thousands of
/// sockets: presence, subscriptions), or `timeout`. Returns how long it took, `None` on the timeout.
pub async fn wait_until_quiet(pids: &[u32], timeout: Duration) -> Result<Option<Duration>> {
    const WINDOW: Duration = Duration::from_millis(500);
    let ticks_per_sec = ticks_per_sec();
    let started = Instant::now();
    let total = || pids.iter().map(|&pid| cpu_ticks(pid)).sum::<Result<u64>>();
    let mut before = total()?;
    while started.elapsed() < timeout {
        tokio::time::sleep(WINDOW).await;
        let now = total()?;
        // Less than 10 % of one core over the window.
        if (now - before) * 10 < ticks_per_sec * WINDOW.as_millis() as u64 / 1000 {
            return Ok(Some(started.elapsed()));
        }
        before = now;
    }
    Ok(None)
}

/// Raises this process's soft limit on open files to the hard limit (children inherit it); returns the
/// new soft limit. Thousands of sockets need thousands of descriptors, here and in the server.
pub fn raise_open_files() -> Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed by pointer, which lives here.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return Err(std::io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
        }
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error()).context("setrlimit(RLIMIT_NOFILE)");
            }
        }
    }
    Ok(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_message_frames_of_both_servers() {
        let real = r#"{"type":"message","message":{"id":7,"room_id":3,"seq":2,"author":{"id":1,"username":"a","display_name":"a","created_at":"2026-01-01T00:00:00Z"},"body":"bench s1 t99 x","client_id":"c","created_at":"2026-01-01T00:00:00Z","edited_at":null,"deleted":false}}"#;
        let frame = MessageFrame::parse(real).unwrap().unwrap();
        assert_eq!((frame.message.room_id, frame.message.seq), (3, 2));
        assert_eq!(frame.message.body, "bench s1 t99 x");
        assert!(MessageFrame::parse(r#"{"type":"presence","room_id":1,"online":[]}"#).unwrap().is_none());
        assert!(MessageFrame::parse(r#"{"type":"message","message":{}}"#).is_err());
    }

    #[test]
    fn reads_other_frames() {
        let ack = Frame::parse(r#"{"type":"ack","client_id":"x","message":{"seq":5,"room_id":1}}"#).unwrap();
        assert_eq!((ack.kind.as_ref(), ack.client_id.as_deref(), ack.message_seq()), ("ack", Some("x"), Some(5)));
        let error = Frame::parse(r#"{"type":"error","code":"rate_limited","message":"slow down"}"#).unwrap();
        assert_eq!((error.code.as_deref(), error.message_seq()), (Some("rate_limited"), None));
    }

    #[test]
    fn sums_prometheus_counters() {
        let text = "# TYPE ws_gaps_filled_total counter\nws_gaps_filled_total 7\n\
                    ws_gaps_filled_total_other 100\nchat_messages_sent_total{via=\"ws\"} 5\n\
                    chat_messages_sent_total{via=\"rest\"} 2\n";
        assert_eq!(counter_sum(text, "ws_gaps_filled_total"), 7.0);
        assert_eq!(counter_sum(text, "chat_messages_sent_total"), 7.0);
        assert_eq!(counter_sum(text, "nothing"), 0.0);
    }

    #[test]
    fn reads_cpu_ticks() {
        let stat =
            "42 (tokio rt) S 1 42 42 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0 100 1000 200 18446744073709551615";
        assert_eq!(parse_cpu_ticks(stat), Some(287));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn reads_vm_rss() {
        assert_eq!(parse_vm_rss("Name:\tx\nVmRSS:\t   12345 kB\nVmSwap: 0 kB\n"), Some(12345));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
    }
}
