//! `TestApp`: the real server on a random port with a fresh database, one helper per endpoint, and the
//! assertions on the contract's shapes (User, TokenResponse, Room, Message, problem+json).

use std::io::Write;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use backend::Application;
use backend::config::Config;
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::{Method, Response, StatusCode};
use serde_json::{Value, json};

/// The HS256 key the test servers sign access tokens with, so tests can forge tokens.
pub const JWT_SECRET: &str = "integration-test-secret-0123456789abcdef";

/// Where the PostgreSQL half of the tests finds a server, unless `TEST_DATABASE_URL` says otherwise.
const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Prefix of the per-test PostgreSQL databases; the rest is `<pid>_<counter>`.
const PG_DB_PREFIX: &str = "chat_test_";

/// Which database a test's server runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestDb {
    /// A SQLite file in the test's temporary data directory (`database_url: None`).
    Sqlite,
    /// A fresh database on the PostgreSQL server of `TEST_DATABASE_URL`.
    Postgres,
}

impl TestDb {
    /// Whether tests can run on this database. For PostgreSQL: checks once per run that the server
    /// answers (dropping databases left by dead test processes on the way); when it does not, panics
    /// under `CI` and otherwise warns once and returns `false`.
    pub fn is_available(self) -> bool {
        match self {
            TestDb::Sqlite => true,
            TestDb::Postgres => {
                static AVAILABLE: OnceLock<bool> = OnceLock::new();
                *AVAILABLE.get_or_init(check_postgres)
            }
        }
    }
}

fn pg_admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.trim().is_empty()).unwrap_or_else(|| DEFAULT_PG_URL.into())
}

/// `url` with its database name replaced by `db_name` (keeping any `?query`).
fn pg_url_with_db(url: &str, db_name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map_or(0, |i| i + 3);
    let without_db = match base[after_scheme..].find('/') {
        Some(slash) => &base[..after_scheme + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{without_db}/{db_name}?{q}"),
        None => format!("{without_db}/{db_name}"),
    }
}

/// `url` without its user and password, for messages.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => format!("{}{}", &url[..scheme_end + 3], &url[at + 1..]),
        _ => url.to_owned(),
    }
}

fn check_postgres() -> bool {
    let full_url = pg_admin_url();
    let url = redacted(&full_url);
    match PgConnection::establish(&full_url) {
        Ok(mut conn) => {
            drop_stale_databases(&mut conn);
            true
        }
        Err(e) => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "CI is set but PostgreSQL at {url} (TEST_DATABASE_URL) does not answer: {}",
                    e.to_string().trim_end()
                );
            }
            // Written to the real stderr, not with `eprintln!`: the test harness captures that (and shows
            // it only for failing tests), and a skipped half must not go unnoticed.
            let _ = writeln!(
                std::io::stderr(),
                "\n\n********************************************************************************\n\
                 WARNING: PostgreSQL at {url} does not answer ({}).\n\
                 The postgres half of the API tests is SKIPPED. Set TEST_DATABASE_URL to run it.\n\
                 ********************************************************************************\n",
                e.to_string().trim_end()
            );
            false
        }
    }
}

#[derive(diesel::QueryableByName)]
struct DatabaseName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    datname: String,
}

/// Drops the `chat_test_<pid>_<n>` databases whose process is gone (a crashed or interrupted run).
fn drop_stale_databases(conn: &mut PgConnection) {
    let names: Vec<DatabaseName> =
        match diesel::sql_query("SELECT datname FROM pg_database WHERE datname LIKE 'chat\\_test\\_%'").load(conn) {
            Ok(names) => names,
            Err(e) => {
                eprintln!("could not list old test databases: {e}");
                return;
            }
        };
    let me = std::process::id();
    for DatabaseName { datname } in names {
        let pid = datname.strip_prefix(PG_DB_PREFIX).and_then(|rest| rest.split('_').next()?.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid == me || std::path::Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Another run may be dropping the same database at the same moment; that is fine.
        let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{datname}\" WITH (FORCE)")).execute(conn);
    }
}

/// A database created for one test and dropped (with its connections) when the test ends.
pub struct PgTestDatabase {
    name: String,
    /// Its connection URL.
    pub url: String,
}

impl PgTestDatabase {
    /// Creates a fresh, empty database (blocking: call it from `spawn_blocking`).
    pub fn create() -> PgTestDatabase {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{PG_DB_PREFIX}{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed));
        let admin = pg_admin_url();
        let mut conn =
            PgConnection::establish(&admin).unwrap_or_else(|e| panic!("connect to {}: {e}", redacted(&admin)));
        diesel::sql_query(format!("CREATE DATABASE \"{name}\""))
            .execute(&mut conn)
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
        let url = pg_url_with_db(&admin, &name);
        PgTestDatabase { name, url }
    }
}

impl Drop for PgTestDatabase {
    fn drop(&mut self) {
        // Never panic here (this may run while a failed test unwinds); a database left behind is
        // dropped by the next run, once this process is gone.
        if let Ok(mut conn) = PgConnection::establish(&pg_admin_url()) {
            let _ =
                diesel::sql_query(format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)).execute(&mut conn);
        }
    }
}

/// Installs a log subscriber once, and only when `TEST_LOG` is set: tests are silent otherwise.
fn init_test_log() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let filter = tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
            let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
        }
    });
}

/// A registered user and its credentials.
#[derive(Clone, Debug)]
pub struct TestUser {
    pub id: i64,
    pub username: String,
    pub password: String,
    /// The access token (JWT) from registration.
    pub token: String,
    pub refresh_token: String,
    /// The `User` object the server returned.
    pub user: Value,
}

/// A private room of Alice's with Bob as an admin and Carol as a member: every role of a room, for
/// permission tests.
pub struct RoomWithRoles {
    pub id: i64,
    pub alice: TestUser,
    pub bob: TestUser,
    pub carol: TestUser,
}

pub async fn private_room_with_roles(app: &TestApp) -> RoomWithRoles {
    let (alice, bob, carol) = (app.new_user().await, app.new_user().await, app.new_user().await);
    let id = app.room_id(&alice, "private").await;
    for user in [&bob, &carol] {
        expect_status(app.add_member(&alice.token, id, &user.username).await, StatusCode::CREATED).await;
    }
    let path = format!("/api/v1/rooms/{id}/members/{}", bob.id);
    let admin = app.request(Method::PATCH, &path, Some(&alice.token), Some(&json!({"role": "admin"}))).await;
    expect_status(admin, StatusCode::OK).await;
    RoomWithRoles { id, alice, bob, carol }
}

/// A running server with its own database. Dropping it removes the database (PostgreSQL) and the
/// data directory (SQLite file).
pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub client: reqwest::Client,
    _pg_database: Option<PgTestDatabase>,
    /// Kept alive for the server's SQLite file; declared last so it goes after the database.
    _data_dir: tempfile::TempDir,
}

impl TestApp {
    /// Starts the real server on `127.0.0.1:0` with a fresh database of the given kind.
    pub async fn spawn(db: TestDb) -> TestApp {
        TestApp::spawn_with(db, |_| {}).await
    }

    /// Like `spawn`, with `configure` applied to the test configuration first (e.g. a short
    /// `access_token_ttl`, or `allowed_origins`).
    pub async fn spawn_with(db: TestDb, configure: impl FnOnce(&mut Config)) -> TestApp {
        init_test_log();
        let data_dir = tempfile::tempdir().expect("create a temporary data directory");
        let pg_database = match db {
            TestDb::Sqlite => None,
            TestDb::Postgres => {
                assert!(db.is_available(), "PostgreSQL is not available");
                Some(tokio::task::spawn_blocking(PgTestDatabase::create).await.expect("create the test database"))
            }
        };
        let mut config = Config {
            bind_addr: "127.0.0.1:0".parse().expect("a valid socket address"),
            data_dir: data_dir.path().to_path_buf(),
            database_url: pg_database.as_ref().map(|d| d.url.clone()),
            redis_url: None,
            jwt_secret: Some(JWT_SECRET.to_owned()),
            ..Config::default()
        };
        configure(&mut config);
        let app = Application::build(config).await.unwrap_or_else(|e| panic!("the server did not start: {e:?}"));
        let port = app.port();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            _pg_database: pg_database,
            _data_dir: data_dir,
        }
    }

    /// A client for a server that runs elsewhere (another process), at `address` (`http://host:port`).
    pub fn at(address: String) -> TestApp {
        TestApp {
            address,
            client: reqwest::Client::new(),
            _pg_database: None,
            _data_dir: tempfile::tempdir().expect("create a temporary directory"),
        }
    }

    /// The server's `DATA_DIR` (where its SQLite file is).
    pub fn data_dir(&self) -> &std::path::Path {
        self._data_dir.path()
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Any request: `path` from the root, an optional bearer token and an optional JSON body.
    pub async fn request(&self, method: Method, path: &str, token: Option<&str>, body: Option<&Value>) -> Response {
        let mut req = self.client.request(method.clone(), self.url(path));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        req.send().await.unwrap_or_else(|e| panic!("{method} {path} failed to send: {e}"))
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(Method::POST, path, token, Some(body)).await
    }

    // ---- auth ----

    pub async fn register(&self, body: &Value) -> Response {
        self.post("/api/v1/auth/register", None, body).await
    }

    pub async fn login(&self, username: &str, password: &str) -> Response {
        self.post("/api/v1/auth/login", None, &json!({"username": username, "password": password})).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> Response {
        self.post("/api/v1/auth/refresh", None, &json!({"refresh_token": refresh_token})).await
    }

    /// Sends the access token too: harmless if the server does not need it.
    pub async fn logout(&self, access_token: &str, refresh_token: &str) -> Response {
        self.post("/api/v1/auth/logout", Some(access_token), &json!({"refresh_token": refresh_token})).await
    }

    pub async fn me(&self, token: &str) -> Response {
        self.get("/api/v1/me", Some(token)).await
    }

    /// Registers a user with a random unique name and returns it.
    pub async fn new_user(&self) -> TestUser {
        let username = random_username();
        let password = format!("pw-{}", rand::random::<u64>());
        let body =
            expect_json(self.register(&json!({"username": username, "password": password})).await, StatusCode::CREATED)
                .await;
        TestUser {
            id: body["user"]["id"].as_i64().expect("user.id is an integer"),
            username,
            password,
            token: body["access_token"].as_str().expect("access_token").to_owned(),
            refresh_token: body["refresh_token"].as_str().expect("refresh_token").to_owned(),
            user: body["user"].clone(),
        }
    }

    // ---- API tokens ----

    pub async fn create_token(&self, token: &str, body: &Value) -> Response {
        self.post("/api/v1/tokens", Some(token), body).await
    }

    pub async fn list_tokens(&self, token: &str) -> Response {
        self.get("/api/v1/tokens", Some(token)).await
    }

    pub async fn delete_token(&self, token: &str, id: i64) -> Response {
        self.request(Method::DELETE, &format!("/api/v1/tokens/{id}"), Some(token), None).await
    }

    /// Creates an API token with these scopes and returns the created object (with `token`).
    pub async fn api_token(&self, user: &TestUser, scopes: &[&str]) -> Value {
        let body = json!({"name": format!("bot-{}", rand::random::<u32>()), "scopes": scopes});
        expect_json(self.create_token(&user.token, &body).await, StatusCode::CREATED).await
    }

    // ---- rooms ----

    pub async fn create_room(&self, token: &str, body: &Value) -> Response {
        self.post("/api/v1/rooms", Some(token), body).await
    }

    /// `query` without the `?`, e.g. `scope=public&limit=2`.
    pub async fn list_rooms(&self, token: &str, query: &str) -> Response {
        self.get(&format!("/api/v1/rooms?{query}"), Some(token)).await
    }

    pub async fn get_room(&self, token: &str, room_id: i64) -> Response {
        self.get(&format!("/api/v1/rooms/{room_id}"), Some(token)).await
    }

    pub async fn join_room(&self, token: &str, room_id: i64) -> Response {
        self.request(Method::POST, &format!("/api/v1/rooms/{room_id}/join"), Some(token), None).await
    }

    pub async fn leave_room(&self, token: &str, room_id: i64) -> Response {
        self.request(Method::POST, &format!("/api/v1/rooms/{room_id}/leave"), Some(token), None).await
    }

    pub async fn members(&self, token: &str, room_id: i64) -> Response {
        self.get(&format!("/api/v1/rooms/{room_id}/members"), Some(token)).await
    }

    pub async fn add_member(&self, token: &str, room_id: i64, username: &str) -> Response {
        self.post(&format!("/api/v1/rooms/{room_id}/members"), Some(token), &json!({"username": username})).await
    }

    pub async fn direct(&self, token: &str, username: &str) -> Response {
        self.post("/api/v1/direct", Some(token), &json!({"username": username})).await
    }

    /// Creates a room (`visibility` "public" or "private") and returns it.
    pub async fn room(&self, owner: &TestUser, visibility: &str) -> Value {
        let body = json!({"name": format!("room {}", rand::random::<u32>()), "visibility": visibility});
        expect_json(self.create_room(&owner.token, &body).await, StatusCode::CREATED).await
    }

    /// A new room's id.
    pub async fn room_id(&self, owner: &TestUser, visibility: &str) -> i64 {
        id_of(&self.room(owner, visibility).await)
    }

    /// The caller's view of a room (asserts 200).
    pub async fn room_view(&self, token: &str, room_id: i64) -> Value {
        expect_json(self.get_room(token, room_id).await, StatusCode::OK).await
    }

    // ---- messages ----

    pub async fn post_message(&self, token: &str, room_id: i64, body: &Value) -> Response {
        self.post(&format!("/api/v1/rooms/{room_id}/messages"), Some(token), body).await
    }

    pub async fn post_message_with_key(&self, token: &str, room_id: i64, body: &Value, key: &str) -> Response {
        self.client
            .post(self.url(&format!("/api/v1/rooms/{room_id}/messages")))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .expect("send the message")
    }

    /// Posts `text` and returns the created message (asserts 201).
    pub async fn send(&self, user: &TestUser, room_id: i64, text: &str) -> Value {
        expect_json(self.post_message(&user.token, room_id, &json!({"body": text})).await, StatusCode::CREATED).await
    }

    /// Posts `n` messages one after the other, bodies `msg 1` .. `msg n`.
    pub async fn send_many(&self, user: &TestUser, room_id: i64, n: usize) {
        for i in 1..=n {
            self.send(user, room_id, &format!("msg {i}")).await;
        }
    }

    /// `query` without the `?`, e.g. `before=10&limit=5`; empty for the default page.
    pub async fn history(&self, token: &str, room_id: i64, query: &str) -> Response {
        self.get(&format!("/api/v1/rooms/{room_id}/messages?{query}"), Some(token)).await
    }

    /// A history page (asserts 200 and the page shape).
    pub async fn history_page(&self, token: &str, room_id: i64, query: &str) -> Value {
        let page = expect_json(self.history(token, room_id, query).await, StatusCode::OK).await;
        assert!(page["has_more"].is_boolean(), "has_more is a bool: {page}");
        for m in items(&page) {
            assert_message(m);
        }
        page
    }

    pub async fn edit_message(&self, token: &str, room_id: i64, seq: i64, body: &Value) -> Response {
        self.request(Method::PATCH, &format!("/api/v1/rooms/{room_id}/messages/{seq}"), Some(token), Some(body)).await
    }

    pub async fn delete_message(&self, token: &str, room_id: i64, seq: i64) -> Response {
        self.request(Method::DELETE, &format!("/api/v1/rooms/{room_id}/messages/{seq}"), Some(token), None).await
    }

    pub async fn mark_read(&self, token: &str, room_id: i64, seq: i64) -> Response {
        self.post(&format!("/api/v1/rooms/{room_id}/read"), Some(token), &json!({"seq": seq})).await
    }

    // ---- WebSocket tickets ----

    /// `POST /api/v1/ws/ticket` with the bearer token and no body.
    pub async fn ws_ticket(&self, token: &str) -> Response {
        self.request(Method::POST, "/api/v1/ws/ticket", Some(token), None).await
    }

    /// A fresh ticket (asserts 201 and `expires_in: 30`).
    pub async fn ticket(&self, token: &str) -> String {
        let body = expect_json(self.ws_ticket(token).await, StatusCode::CREATED).await;
        assert_eq!(body["expires_in"], 30, "a ticket lives 30 seconds: {body}");
        body["ticket"].as_str().unwrap_or_else(|| panic!("ticket is a string: {body}")).to_owned()
    }
}

/// A username no other test uses: `u` and 16 hex digits.
pub fn random_username() -> String {
    format!("u{:016x}", rand::random::<u64>())
}

/// `s` made safe for a query string: everything but RFC 3986 unreserved characters percent-encoded.
pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The `id` of a JSON object, as an integer.
pub fn id_of(v: &Value) -> i64 {
    v["id"].as_i64().unwrap_or_else(|| panic!("`id` is an integer: {v}"))
}

/// The `items` array of a page.
pub fn items(page: &Value) -> &Vec<Value> {
    page["items"].as_array().unwrap_or_else(|| panic!("`items` is an array: {page}"))
}

/// The `seq` of each item of a page.
pub fn seqs(page: &Value) -> Vec<i64> {
    items(page).iter().map(|m| m["seq"].as_i64().expect("seq is an integer")).collect()
}

fn content_type(resp: &Response) -> String {
    resp.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// Asserts the status and returns the body text.
pub async fn expect_status(resp: Response, status: StatusCode) -> String {
    let got = resp.status();
    let what = format!("{} {}", resp.url().path(), resp.url().query().unwrap_or(""));
    let text = resp.text().await.expect("read the response body");
    assert_eq!(got, status, "{what}: expected {status}, got {got} with body {text}");
    text
}

/// Asserts the status and `application/json`, and returns the parsed body.
pub async fn expect_json(resp: Response, status: StatusCode) -> Value {
    let ct = content_type(&resp);
    let what = resp.url().path().to_owned();
    let text = expect_status(resp, status).await;
    assert!(ct.starts_with("application/json"), "{what}: content-type {ct:?} is not application/json; body {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {text}"))
}

/// Asserts an RFC 9457 problem: the status, `application/problem+json`, and `type`, `title`, `detail`,
/// `code` strings with `status` equal to the HTTP status. Returns the parsed body.
pub async fn expect_problem(resp: Response, status: StatusCode) -> Value {
    let ct = content_type(&resp);
    let what = resp.url().path().to_owned();
    let text = expect_status(resp, status).await;
    assert!(
        ct.starts_with("application/problem+json"),
        "{what}: content-type {ct:?} is not application/problem+json; body {text}"
    );
    let body: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: problem is not JSON ({e}): {text}"));
    for field in ["type", "title", "detail", "code"] {
        assert!(body[field].is_string(), "{what}: problem field `{field}` is a string: {body}");
    }
    assert!(!body["code"].as_str().unwrap_or("").is_empty(), "{what}: `code` is not empty: {body}");
    assert_eq!(
        body["status"].as_u64(),
        Some(u64::from(status.as_u16())),
        "{what}: `status` is the HTTP status: {body}"
    );
    body
}

/// Asserts a 422 problem whose `errors` name `field`.
pub async fn expect_validation_error(resp: Response, field: &str) -> Value {
    let body = expect_problem(resp, StatusCode::UNPROCESSABLE_ENTITY).await;
    let errors = body["errors"].as_array().unwrap_or_else(|| panic!("422 has an `errors` array: {body}"));
    for e in errors {
        assert!(e["field"].is_string() && e["message"].is_string(), "each error is {{field, message}}: {body}");
    }
    assert!(errors.iter().any(|e| e["field"] == field), "`errors` names the field {field:?}: {body}");
    body
}

/// Asserts `v` is an RFC 3339 UTC time string.
pub fn assert_time(v: &Value, what: &str) {
    let s = v.as_str().unwrap_or_else(|| panic!("{what} is a string: {v}"));
    let t = chrono::DateTime::parse_from_rfc3339(s).unwrap_or_else(|e| panic!("{what} {s:?} is not RFC 3339: {e}"));
    assert_eq!(t.offset().local_minus_utc(), 0, "{what} {s:?} is in UTC");
}

/// Asserts the `User` shape: `{id, username, display_name, created_at}`.
pub fn assert_user(u: &Value) {
    assert!(u["id"].is_i64(), "user.id is an integer: {u}");
    let name = u["username"].as_str().unwrap_or_else(|| panic!("user.username is a string: {u}"));
    assert_eq!(name, name.to_lowercase(), "usernames are stored lowercased: {u}");
    assert!(u["display_name"].is_string(), "user.display_name is a string: {u}");
    assert_time(&u["created_at"], "user.created_at");
}

/// Asserts the `TokenResponse` shape.
pub fn assert_token_response(t: &Value) {
    let access = t["access_token"].as_str().unwrap_or_else(|| panic!("access_token is a string: {t}"));
    assert_eq!(access.split('.').count(), 3, "access_token is a JWT: {t}");
    assert_eq!(t["token_type"], "Bearer", "{t}");
    assert_eq!(t["expires_in"], 900, "{t}");
    assert!(!t["refresh_token"].as_str().unwrap_or("").is_empty(), "refresh_token is a non-empty string: {t}");
    assert_user(&t["user"]);
}

/// Asserts the `Message` shape.
pub fn assert_message(m: &Value) {
    assert!(m["id"].is_i64(), "message.id is an integer: {m}");
    assert!(m["room_id"].is_i64(), "message.room_id is an integer: {m}");
    assert!(m["seq"].as_i64().is_some_and(|s| s >= 1), "message.seq is an integer >= 1: {m}");
    assert_user(&m["author"]);
    assert!(m["body"].is_string() || m["deleted"] == true, "message.body is a string: {m}");
    assert!(m["client_id"].is_string() || m["client_id"].is_null(), "message.client_id is string|null: {m}");
    assert_time(&m["created_at"], "message.created_at");
    if !m["edited_at"].is_null() {
        assert_time(&m["edited_at"], "message.edited_at");
    }
    assert!(m.get("edited_at").is_some(), "message.edited_at is present (string|null): {m}");
    assert!(m["deleted"].is_boolean(), "message.deleted is a bool: {m}");
    assert!(m.get("reply_to").is_some_and(|r| r.is_null() || r["seq"].is_i64()), "message.reply_to: {m}");
    assert!(m["reactions"].is_array(), "message.reactions is an array: {m}");
    assert!(m["mentions"].as_array().is_some_and(|ids| ids.iter().all(Value::is_i64)), "message.mentions: {m}");
}

/// Asserts the `Room` shape.
pub fn assert_room(r: &Value) {
    assert!(r["id"].is_i64(), "room.id is an integer: {r}");
    assert!(r["name"].is_string(), "room.name is a string: {r}");
    assert!(r.get("topic").is_some_and(|t| t.is_string() || t.is_null()), "room.topic is present: {r}");
    assert!(r["visibility"] == "public" || r["visibility"] == "private", "room.visibility: {r}");
    assert!(r["kind"] == "room" || r["kind"] == "direct", "room.kind: {r}");
    assert!(r["created_by"].is_i64(), "room.created_by is a user id: {r}");
    assert_time(&r["created_at"], "room.created_at");
    assert!(r["member_count"].as_i64().is_some_and(|n| n >= 0), "room.member_count is an integer: {r}");
    match r.get("last_message") {
        Some(Value::Null) => {}
        Some(m) => assert_message(m),
        None => panic!("room.last_message is present (Message|null): {r}"),
    }
    assert!(r["unread_count"].as_i64().is_some_and(|n| n >= 0), "room.unread_count is an integer: {r}");
    assert!(r["last_read_seq"].as_i64().is_some_and(|n| n >= 0), "room.last_read_seq is an integer: {r}");
}

/// Asserts a rooms page `{items: [Room], next_cursor: string|null}`.
pub fn assert_room_page(page: &Value) {
    for r in items(page) {
        assert_room(r);
    }
    assert!(
        page.get("next_cursor").is_some_and(|c| c.is_string() || c.is_null()),
        "next_cursor is string|null: {page}"
    );
}
