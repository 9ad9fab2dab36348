//! The TypeScript client in `openapi/typescript/`: its generated `schema.d.ts` is what openapi-typescript
//! makes of the committed `openapi/openapi.json`, it type-checks with `tsc`, and its example (register,
//! create a room, send with an `Idempotency-Key`, read the history) runs with node against a live server;
//! and it is a package: packed, installed from its tarball, typed for its users, and enough for a bot.
//!
//! The tools come from the root `node_modules` (`npm ci`, or `make ensure-node-modules`); without them
//! these tests are skipped with a warning, except under `CI`, where they fail.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;
use tokio::process::Command;

use crate::helpers::{TestApp, TestDb};

/// How long one tool run (tsc, openapi-typescript, the example) may take on a busy 2-core machine.
const TOOL_TIMEOUT: Duration = Duration::from_secs(180);

/// The repository's root (the workspace).
fn repo_root() -> PathBuf {
    // Unwrap: the backend crate sits one level below the workspace root.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// `node_modules/.bin` of the repository, when node and the pinned packages are installed. Otherwise
/// panics under `CI` and warns once (to the real stderr, like a missing PostgreSQL) and returns `None`.
fn node_bin() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = repo_root().join("node_modules/.bin");
        let missing: Vec<&str> = ["openapi-typescript", "tsc"]
            .into_iter()
            .filter(|tool| !bin.join(tool).exists())
            .chain(std::process::Command::new("node").arg("--version").output().is_err().then_some("node"))
            .collect();
        if missing.is_empty() {
            return Some(bin);
        }
        let what = format!("{} not found (node on PATH, the rest in {})", missing.join(", "), bin.display());
        assert!(std::env::var_os("CI").is_none(), "CI is set but the TypeScript client's tools are missing: {what}");
        let _ = writeln!(
            std::io::stderr(),
            "\n\n********************************************************************************\n\
             WARNING: {what}.\n\
             The TypeScript client tests are SKIPPED. Run `npm ci` at the repository root\n\
             (or `make ensure-node-modules`).\n\
             ********************************************************************************\n"
        );
        None
    })
    .clone()
}

/// Runs `cmd` from the repository root with a timeout, without blocking the runtime that serves the
/// test's server; returns its output (whatever its exit status).
async fn run(mut cmd: Command) -> Output {
    let shown = format!("{:?}", cmd.as_std());
    cmd.current_dir(repo_root()).kill_on_drop(true);
    match tokio::time::timeout(TOOL_TIMEOUT, cmd.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => panic!("{shown} did not start: {e}"),
        Err(_) => panic!("{shown} took longer than {TOOL_TIMEOUT:?}"),
    }
}

/// Panics with the output unless `output` is a success.
fn assert_success(what: &str, output: &Output) {
    assert!(
        output.status.success(),
        "{what} failed ({}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn openapi_operation_ids_are_unique() {
    // openapi-typescript names an operation by its id; two alike make `schema.d.ts` invalid TypeScript.
    let path = repo_root().join("openapi/openapi.json");
    let spec: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read openapi.json")).unwrap();
    let mut seen = std::collections::BTreeMap::new();
    for (path, item) in spec["paths"].as_object().expect("paths is an object") {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            let Some(id) = operation["operationId"].as_str() else { continue };
            if let Some(other) = seen.insert(id.to_owned(), format!("{method} {path}")) {
                panic!("operationId {id:?} is used by both {other} and {method} {path}");
            }
        }
    }
}

#[tokio::test]
async fn typescript_schema_is_what_openapi_typescript_generates_from_the_committed_spec() {
    let Some(bin) = node_bin() else { return };
    let out = tempfile::tempdir().expect("create a temporary directory");
    let generated = out.path().join("schema.d.ts");
    let mut cmd = Command::new(bin.join("openapi-typescript"));
    cmd.arg("openapi/openapi.json").arg("--output").arg(&generated);
    assert_success("openapi-typescript", &run(cmd).await);

    let committed = repo_root().join("openapi/typescript/schema.d.ts");
    let committed = std::fs::read_to_string(&committed).unwrap_or_else(|e| panic!("read {}: {e}", committed.display()));
    let generated = std::fs::read_to_string(&generated).expect("read the generated schema");
    if committed != generated {
        let first_difference = committed
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| committed.lines().count().min(generated.lines().count()));
        panic!(
            "openapi/typescript/schema.d.ts is not what openapi-typescript generates from openapi/openapi.json \
             (first difference at line {}): run `make openapi` and commit the result",
            first_difference + 1
        );
    }
}

#[tokio::test]
async fn typescript_client_type_checks() {
    let Some(bin) = node_bin() else { return };
    let mut cmd = Command::new(bin.join("tsc"));
    cmd.args(["--noEmit", "-p", "openapi/typescript"]);
    assert_success("tsc --noEmit -p openapi/typescript", &run(cmd).await);
}

#[tokio::test]
async fn typescript_example_runs_against_a_live_server() {
    let Some(bin) = node_bin() else { return };
    let app = TestApp::spawn(TestDb::Sqlite).await;

    // Compile the example (and the client it imports) into a scratch directory. Node resolves the
    // `openapi-fetch` import by walking up from the script, so the directory gets a link to the
    // repository's node_modules, and a package.json saying its .js files are ES modules.
    let out = tempfile::tempdir().expect("create a temporary directory");
    let mut tsc = Command::new(bin.join("tsc"));
    tsc.args(["-p", "openapi/typescript", "--outDir"]).arg(out.path());
    assert_success("tsc -p openapi/typescript --outDir", &run(tsc).await);
    std::os::unix::fs::symlink(repo_root().join("node_modules"), out.path().join("node_modules"))
        .expect("link node_modules");
    std::fs::write(out.path().join("package.json"), r#"{"type": "module"}"#).expect("write package.json");

    let text = format!("hello from TypeScript {:08x}", rand::random::<u32>());
    let mut node = Command::new("node");
    node.arg(out.path().join("example.js")).env("CHAT_BASE_URL", &app.address).env("CHAT_MESSAGE", &text);
    let output = run(node).await;
    assert_success("node example.js", &output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let history =
        stdout.split_once("history of room").unwrap_or_else(|| panic!("the example printed no history:\n{stdout}")).1;
    assert!(
        history.lines().any(|line| line.trim_start().starts_with("#1 ") && line.ends_with(&format!(": {text}"))),
        "the printed history holds the message sent, as seq 1:\n{stdout}"
    );
    // And it fails loudly: a server that answers 404 to the first request stops it with exit status 1.
    let mut node = Command::new("node");
    node.arg(out.path().join("example.js")).env("CHAT_BASE_URL", app.url("/no-such-prefix"));
    let output = run(node).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "an unexpected status ends the example with 1:\n{stderr}");
    assert!(stderr.contains("register: expected HTTP 201, got 404"), "it says what failed:\n{stderr}");
}

/// The package (issue 14): `pack.mjs` builds and packs it; `npm install` of the tarball into an empty project
/// gives a module that imports, whose types (the API's and the frames') a consumer's `tsc` resolves through
/// `exports`, and with which
/// `examples/bot.mjs` (nothing but the package and an API token) answers commands in a room.
#[tokio::test]
async fn typescript_package_installs_from_its_tarball_and_its_bot_answers_in_a_room() {
    let Some(bin) = node_bin() else { return };
    let scratch = tempfile::tempdir().expect("create a temporary directory");
    let mut pack = Command::new("node");
    pack.arg("openapi/typescript/pack.mjs").arg(scratch.path());
    let packed = run(pack).await;
    assert_success("node openapi/typescript/pack.mjs", &packed);
    let tarball = String::from_utf8_lossy(&packed.stdout).trim().lines().last().unwrap_or_default().to_owned();
    assert!(tarball.ends_with(".tgz"), "pack.mjs prints the tarball: {tarball}");

    let project = scratch.path().join("consumer");
    std::fs::create_dir(&project).unwrap();
    std::fs::write(project.join("package.json"), r#"{"private": true, "type": "module"}"#).unwrap();
    let mut install = Command::new("npm");
    install.args(["install", "--prefer-offline", "--no-audit", "--no-fund", &tarball]).current_dir(&project);
    let output =
        tokio::time::timeout(TOOL_TIMEOUT, install.kill_on_drop(true).output()).await.expect("npm install in time");
    assert_success("npm install <tarball>", &output.expect("npm starts"));
    // A consumer's TypeScript sees the types (a wrong body would not compile).
    std::fs::write(
        project.join("consumer.ts"),
        "import { createChatClient, type Message } from \"chat-api-client\";\n\
         const chat = createChatClient({ baseUrl: \"http://x\" });\n\
         export const call = () => chat.POST(\"/api/v1/rooms/{room_id}/messages\", { params: { path: { room_id: 1 } }, body: { body: \"hi\" } });\n\
         export const bodies = (ms: Message[]): string[] => ms.map((m) => m.body);\n\
         import type { ServerFrame } from \"chat-api-client\";\n\
         export const seqOf = (f: ServerFrame): number | undefined => (f.type === \"message\" ? f.message.seq : undefined);\n\
         import { ChatSocket } from \"chat-api-client\";\n\
         const socket = new ChatSocket({ baseUrl: \"http://x\", token: () => undefined });\n\
         export const off = socket.on(\"message_deleted\", (f) => f.seq + f.room_id);\n\
         export const sent: Promise<Message> = socket.send(1, \"hi\", { replyTo: 2 });\n",
    )
    .unwrap();
    let mut check = Command::new(bin.join("tsc"));
    check
        .args(["--noEmit", "--strict", "--module", "NodeNext", "--moduleResolution", "NodeNext", "--lib", "ES2022,DOM"])
        .arg(project.join("consumer.ts"));
    assert_success("tsc on a consumer of the installed package", &run(check).await);

    // The bot, with an API token of its own user, in a room where someone types commands.
    let app = TestApp::spawn(TestDb::Sqlite).await;
    let (ann, bot) = (app.new_user().await, app.new_user().await);
    let room_id = app.room_id(&ann, "private").await;
    let added = app.add_member(&ann.token, room_id, &bot.username).await;
    assert_eq!(added.status(), reqwest::StatusCode::CREATED);
    let token = app.api_token(&bot, &["messages:read", "messages:write"]).await;
    // Sent before the bot starts: not answered (it follows what comes after).
    app.send(&ann, room_id, "!ping").await;
    std::fs::copy(repo_root().join("openapi/typescript/examples/bot.mjs"), project.join("bot.mjs")).unwrap();
    let mut bot_process = tokio::process::Command::new("node")
        .arg("bot.mjs")
        .current_dir(&project)
        .env("CHAT_BASE_URL", &app.address)
        .env("CHAT_TOKEN", token["token"].as_str().unwrap())
        .env("CHAT_ROOM", room_id.to_string())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node bot.mjs starts");
    // Once it says it follows the room, commands get answers.
    let mut lines = tokio::io::BufReader::new(bot_process.stdout.take().unwrap());
    let mut first = String::new();
    let read = tokio::time::timeout(TOOL_TIMEOUT, tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut first));
    read.await.expect("the bot starts in time").unwrap();
    assert!(first.starts_with(&format!("following room {room_id} after seq 1")), "{first}");
    let ping = app.send(&ann, room_id, "!ping").await["seq"].as_i64().unwrap();
    let echo = app.send(&ann, room_id, "!echo hello there").await["seq"].as_i64().unwrap();
    let mut answers = Vec::new();
    for _ in 0..100 {
        let page = app.history_page(&ann.token, room_id, "limit=50").await;
        answers = crate::helpers::items(&page)
            .iter()
            .filter(|m| m["author"]["id"] == bot.id)
            .map(|m| (m["body"].as_str().unwrap().to_owned(), m["reply_to"]["seq"].as_i64()))
            .collect();
        if answers.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answers,
        [("pong".to_owned(), Some(ping)), ("hello there".to_owned(), Some(echo))],
        "the bot answers each command once, as a reply, and nothing else"
    );
    let _ = bot_process.kill().await;
}

/// The frames' TypeScript declarations in `openapi/typescript/frames/` are what ts-rs makes of the Rust types
/// the server itself uses (`chat_api::ServerFrame`, `ClientFrame` and every type they hold), so a frame
/// changed in Rust and not regenerated fails here. `UPDATE_FRAMES=1` (what `make openapi` sets) rewrites them.
#[test]
fn typescript_frames_are_generated_from_the_servers_rust_types() {
    use ts_rs::{Config, TS};
    let out = tempfile::tempdir().expect("create a temporary directory");
    // Seqs and ids are JSON numbers (not bigint); imports end in .js, as ES modules in Node need.
    let cfg = Config::new().with_large_int("number").with_import_extension(Some("js")).with_out_dir(out.path());
    chat_api::ServerFrame::export_all(&cfg).expect("export ServerFrame");
    chat_api::ClientFrame::export_all(&cfg).expect("export ClientFrame");
    let generated = ts_files(out.path());
    let committed_dir = repo_root().join("openapi/typescript/frames");
    if std::env::var_os("UPDATE_FRAMES").is_some() {
        let _ = std::fs::remove_dir_all(&committed_dir);
        std::fs::create_dir_all(&committed_dir).unwrap();
        for (name, text) in &generated {
            std::fs::write(committed_dir.join(name), text).unwrap();
        }
        return;
    }
    let committed = ts_files(&committed_dir);
    let names = |files: &std::collections::BTreeMap<String, String>| files.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&committed), names(&generated), "openapi/typescript/frames/: run `make openapi` and commit");
    for (name, text) in &generated {
        assert_eq!(&committed[name], text, "openapi/typescript/frames/{name} is stale: run `make openapi` and commit");
    }
}

/// The `.ts` files of a directory, by name.
fn ts_files(dir: &Path) -> std::collections::BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Default::default() };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ts"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}
