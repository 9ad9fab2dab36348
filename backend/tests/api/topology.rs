//! The deployment of `docker-compose.yml`, from Debian packages on loopback: nginx with the real
//! `deploy/nginx.conf` in front of two `chat-server` processes sharing PostgreSQL and Redis (the
//! cluster of `cluster.rs`). A client connected through nginx keeps every message when the backend
//! holding its socket is killed with SIGKILL, and a sender that retries with its `Idempotency-Key`
//! through nginx stores each message once.
//!
//! Needs PostgreSQL, `redis-server` and Debian's nginx (`make ensure-nginx`): skipped with a warning
//! when one is missing, failed under `CI`. PostgreSQL only, hence the `postgres` in the test's path.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;

/// Where Debian installs nginx; also looked for on PATH.
const DEBIAN_NGINX: &str = "/usr/sbin/nginx";

/// How long nginx may take to answer once started.
const NGINX_START_TIMEOUT: Duration = Duration::from_secs(10);

/// Debian's nginx, or `None` (with a warning) when it is not installed; panics under `CI`.
fn nginx_binary() -> Option<PathBuf> {
    if Path::new(DEBIAN_NGINX).exists() {
        return Some(DEBIAN_NGINX.into());
    }
    if Command::new("nginx").arg("-v").stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
        return Some("nginx".into());
    }
    assert!(std::env::var_os("CI").is_none(), "CI is set but nginx is not installed (`make ensure-nginx`)");
    let _ = writeln!(
        std::io::stderr(),
        "WARNING: nginx is not installed (`make ensure-nginx`): the nginx topology test is SKIPPED."
    );
    None
}

/// nginx running `deploy/nginx.conf` on a free loopback port, proxying to the given backend ports
/// instead of the compose services `backend-1:8080` and `backend-2:8080`. Stopped on drop.
pub struct Nginx {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    pub async fn start(binary: &Path, backend_ports: [u16; 2]) -> Nginx {
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/nginx.conf");
        let mut conf: String =
            std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("read {}: {e}", source.display()));
        let port = free_port();
        // Only these strings change, in directives (not comments): every other line is the file that
        // docker-compose.yml mounts.
        for (from, to) in [
            ("backend-1:8080", format!("127.0.0.1:{}", backend_ports[0])),
            ("backend-2:8080", format!("127.0.0.1:{}", backend_ports[1])),
            ("listen 80;", format!("listen 127.0.0.1:{port};")),
        ] {
            let mut found = 0;
            conf = conf
                .lines()
                .map(|line| {
                    if line.trim_start().starts_with('#') || !line.contains(from) {
                        return format!("{line}\n");
                    }
                    found += 1;
                    format!("{}\n", line.replace(from, &to))
                })
                .collect();
            assert_eq!(found, 1, "deploy/nginx.conf has one directive with `{from}`");
        }
        let dir = tempfile::tempdir().expect("create nginx's directory");
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        // Its error and access logs go to stderr and stdout (as in a container): into one file here.
        let log = File::create(dir.path().join("nginx.log")).expect("create nginx.log");
        let child = Command::new(binary)
            .arg("-p")
            .arg(dir.path())
            .args(["-e", "stderr", "-c"])
            .arg(&conf_path)
            .arg("-g")
            .arg(format!("daemon off; pid {};", dir.path().join("nginx.pid").display()))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone the log file"))
            .stderr(log)
            .spawn()
            .expect("start nginx");
        let mut nginx = Nginx { address: format!("http://127.0.0.1:{port}"), child, dir };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + NGINX_START_TIMEOUT;
        loop {
            if let Some(status) = nginx.child.try_wait().expect("query nginx") {
                panic!("nginx exited at start ({status}):\n{}", nginx.log());
            }
            let answer = client.get(format!("{}/healthz", nginx.address)).send().await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return nginx;
            }
            assert!(Instant::now() < deadline, "nginx does not answer on {}:\n{}", nginx.address, nginx.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What nginx logged so far (errors and the access log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nginx.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- nginx log ---\n{}", self.log());
        }
        // SIGTERM: the master stops its workers before it exits (SIGKILL would orphan them).
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

mod postgres {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use reqwest::StatusCode;
    use serde_json::{Value, json};

    use super::{Nginx, nginx_binary};
    use crate::cluster::{Cluster, NodeOptions};
    use crate::helpers::*;
    use crate::ws_client::{Event, WsClient};
    use crate::ws_delivery::{assert_exact_seqs, compact};

    /// Messages the sender posts.
    const TOTAL: usize = 150;
    /// The backend holding the listener's socket is killed after this many messages were stored.
    const KILL_AFTER: usize = 40;
    /// How long the listener may take to see every message, reconnection included.
    const DELIVERY_TIMEOUT: Duration = Duration::from_secs(90);
    /// Attempts of one send through nginx before the test gives up on it.
    const SEND_ATTEMPTS: usize = 100;

    fn port_of(app: &TestApp) -> u16 {
        app.address.rsplit_once(':').and_then(|(_, p)| p.parse().ok()).expect("http://127.0.0.1:PORT")
    }

    /// The value of the gauge `ws_connections_open` on a node (0 when it has none yet).
    async fn open_sockets(node: &TestApp) -> f64 {
        let text = expect_status(node.get("/metrics", None).await, StatusCode::OK).await;
        text.lines()
            .find_map(|line| line.strip_prefix("ws_connections_open "))
            .map_or(0.0, |v| v.trim().parse().expect("a gauge value"))
    }

    /// Posts `m1` .. `mTOTAL` through nginx, one after the other, each with its own Idempotency-Key,
    /// retrying the same key after a connection error, a 5xx from nginx or a 429 until the server
    /// answers 201 or (a retry of a message stored before its backend died) 200. Returns the messages
    /// in order; `stored` counts them as they are acknowledged.
    async fn send_all(front: TestApp, token: String, room_id: i64, stored: Arc<AtomicUsize>) -> Vec<Value> {
        let mut messages = Vec::with_capacity(TOTAL);
        let url = front.url(&format!("/api/v1/rooms/{room_id}/messages"));
        for i in 1..=TOTAL {
            let key = format!("topology-{room_id}-{i}");
            let mut attempt = 0;
            let message = loop {
                attempt += 1;
                assert!(attempt <= SEND_ATTEMPTS, "message {i} was not accepted after {SEND_ATTEMPTS} attempts");
                let sent = front
                    .client
                    .post(&url)
                    .bearer_auth(&token)
                    .header("Idempotency-Key", &key)
                    .json(&json!({"body": format!("m{i}")}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let response = match sent {
                    Ok(r) => r,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                match response.status() {
                    StatusCode::CREATED => break response.json::<Value>().await.expect("a Message"),
                    StatusCode::OK => {
                        // Only a retry may find its message stored already.
                        assert!(attempt > 1, "message {i}: 200 on the first attempt");
                        break response.json::<Value>().await.expect("a Message");
                    }
                    StatusCode::TOO_MANY_REQUESTS => {
                        let wait = response
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                            .unwrap_or(1);
                        tokio::time::sleep(Duration::from_secs(wait.min(5))).await;
                    }
                    s if s.is_server_error() => tokio::time::sleep(Duration::from_millis(100)).await,
                    s => panic!("message {i}: unexpected {s}: {}", response.text().await.unwrap_or_default()),
                }
            };
            assert_eq!(message["body"], format!("m{i}"), "message {i} is the one sent: {message}");
            messages.push(message);
            stored.fetch_add(1, Ordering::SeqCst);
        }
        messages
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn through_nginx_a_socket_keeps_every_message_when_its_backend_is_killed() {
        let Some(nginx_bin) = nginx_binary() else { return };
        let Some(cluster) = Cluster::start(2, NodeOptions::default()).await else { return };
        let nginx = Nginx::start(&nginx_bin, [port_of(cluster.app(0)), port_of(cluster.app(1))]).await;
        let front = TestApp::at(nginx.address.clone());

        // Everything through nginx, as a browser behind docker-compose.yml would.
        let alice = front.new_user().await;
        let bob = front.new_user().await;
        let room_id = front.room_id(&alice, "public").await;
        expect_status(front.join_room(&bob.token, room_id).await, StatusCode::OK).await;
        let mut ws: WsClient = front.ws(&alice.token).await;
        ws.subscribe(room_id, None).await;

        // Which backend nginx gave the socket to.
        let mut holder = None;
        for i in 0..2 {
            if open_sockets(cluster.app(i)).await >= 1.0 {
                assert!(holder.is_none(), "both backends report an open socket");
                holder = Some(i);
            }
        }
        let holder = holder.expect("one backend holds the socket opened through nginx");
        let holder_pid = cluster.nodes[holder].pid;

        let stored = Arc::new(AtomicUsize::new(0));
        let sender =
            tokio::spawn(send_all(TestApp::at(nginx.address.clone()), bob.token.clone(), room_id, Arc::clone(&stored)));

        // Read every message; SIGKILL the socket's backend once KILL_AFTER were stored; reconnect
        // through nginx with `since` whenever the socket drops.
        let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
        let mut seqs: Vec<i64> = Vec::new();
        let mut bodies: Vec<String> = Vec::new();
        let mut killed = false;
        let mut reconnects = 0;
        while seqs.len() < TOTAL {
            if !killed && stored.load(Ordering::SeqCst) >= KILL_AFTER {
                let status = std::process::Command::new("kill")
                    .args(["-KILL", &holder_pid.to_string()])
                    .status()
                    .expect("run kill");
                assert!(status.success(), "kill -KILL {holder_pid}");
                killed = true;
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            // Short waits, so that the kill above happens on time.
            match ws.next_event_within(left.min(Duration::from_millis(50))).await {
                Some(Event::Frame(f)) if f["type"] == "message" && f["message"]["room_id"] == room_id => {
                    seqs.push(f["message"]["seq"].as_i64().expect("seq"));
                    bodies.push(f["message"]["body"].as_str().expect("body").to_owned());
                }
                Some(Event::Frame(_)) => {}
                Some(Event::Closed(code)) => {
                    assert!(killed, "the socket closed ({code:?}) before its backend was killed");
                    reconnects += 1;
                    assert!(reconnects <= 3, "reconnected {reconnects} times; seqs so far {}", compact(&seqs));
                    ws = front.ws(&alice.token).await;
                    let since = seqs.last().copied().unwrap_or(0);
                    let (replayed, _) = ws.subscribe(room_id, Some(since)).await;
                    for f in replayed {
                        seqs.push(f["message"]["seq"].as_i64().expect("seq"));
                        bodies.push(f["message"]["body"].as_str().expect("body").to_owned());
                    }
                }
                None => assert!(
                    tokio::time::Instant::now() < deadline,
                    "after {DELIVERY_TIMEOUT:?}: {} of {TOTAL} messages, seqs {}\n{}",
                    seqs.len(),
                    compact(&seqs),
                    cluster.logs()
                ),
            }
        }
        let sent = sender.await.expect("the sender finished");

        assert!(killed && reconnects >= 1, "the socket's backend was killed and the client reconnected");
        assert_exact_seqs(&seqs, 1, TOTAL as i64, "the client behind nginx");
        let want: Vec<String> = (1..=TOTAL).map(|i| format!("m{i}")).collect();
        assert_eq!(bodies, want, "every message once, in the order sent");
        let sent_seqs: Vec<i64> = sent.iter().map(|m| m["seq"].as_i64().expect("seq")).collect();
        assert_exact_seqs(&sent_seqs, 1, TOTAL as i64, "the sender's acknowledgements");
        // No retry stored a second copy: nothing after the last message.
        let rest = front.history_page(&alice.token, room_id, &format!("after={TOTAL}")).await;
        assert!(items(&rest).is_empty(), "messages beyond the {TOTAL} sent: {rest}");
        // And the surviving backend serves it all through nginx.
        expect_status(front.get("/readyz", None).await, StatusCode::OK).await;
    }
}
