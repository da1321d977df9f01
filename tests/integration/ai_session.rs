//! Conversation sessions against a real Redis (`REDIS_URL`; under CI a
//! missing Redis fails the tests): the compressed form in Redis and its
//! ratio, trimming to a token budget, restore in a new process, TTL expiry,
//! concurrent appends (one process, and two stores standing for two
//! processes), and a Redis that dies and comes back empty.
//!
//! Each test has a key prefix of its own; no wall-clock assertion beyond
//! "eventually, within 10 s".

mod support;

use std::time::Duration;

use fred::prelude::{Builder, Client, ClientLike, Config, KeysInterface};
use perf_runtime::ai::session::{SessionConfig, SessionStore, codec};
use perf_runtime::ai::{ChatMessage, ChatRequest, Role};
use perf_runtime::{Perf, PerfConfig};
use support::redis_server::RedisServer;

/// Set (to the key prefix) in the child process of
/// `a_new_process_restores_the_session_from_redis`.
const CHILD_PREFIX: &str = "PERF_AI_SESSION_CHILD_PREFIX";
/// The session id the child reads.
const CHILD_SESSION: &str = "PERF_AI_SESSION_CHILD_SESSION";
/// What the child prints when it has read the whole session.
const CHILD_MARK: &str = "CHILD restored";

fn prefix(test: &str) -> String {
    format!(
        "perf:test:ai_session:{test}:{}:{}:",
        std::process::id(),
        support::run_id()
    )
}

fn config(
    prefix: &str,
    settings: impl FnOnce(SessionConfigBuilder) -> SessionConfigBuilder,
) -> SessionConfig {
    settings(SessionConfig::builder().key_prefix(prefix))
        .build()
        .expect("session config")
}

type SessionConfigBuilder = perf_runtime::ai::session::SessionConfigBuilder;

/// A runtime of this test's own on `redis_url` (no recorder, no monitor).
async fn start(redis_url: &str) -> Perf {
    let config = PerfConfig::builder()
        .redis_url(redis_url)
        .enable_prometheus(false)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    Perf::start(config).await.expect("perf starts")
}

async fn client(redis_url: &str) -> Client {
    let config = Config::from_url(redis_url).expect("redis url parses");
    let client = Builder::from_config(config).build().expect("redis client");
    client.init().await.expect("redis connects");
    client
}

const TOPICS: [&str; 7] = [
    "connection pooling for PostgreSQL behind PgBouncer",
    "caching model answers in Redis with a TTL",
    "streaming tokens to the browser with server-sent events",
    "retrying a provider call after a 429 with Retry-After",
    "keeping p99 latency under 200 ms during a traffic spike",
    "sizing the Tokio runtime on a two-core container",
    "measuring the hit rate of a semantic cache",
];

/// A system prompt and then `turns` questions and answers: ordinary chat
/// text, each message different, deterministic.
fn conversation(turns: usize) -> Vec<ChatMessage> {
    let mut messages = vec![ChatMessage::system(
        "You are a senior backend engineer helping a team run an AI chat service in production. \
         Answer precisely, name the setting or command to change, and say when a measurement is \
         needed before deciding.",
    )];
    for turn in 0..turns {
        let topic = TOPICS[turn % TOPICS.len()];
        messages.push(ChatMessage::user(format!(
            "Question {turn}: we are looking at {topic}. Our service handles about {} requests \
             per second at peak and we saw {} errors in the last hour. What should we check first?",
            120 + turn * 17,
            turn * 3 % 11
        )));
        messages.push(ChatMessage::assistant(format!(
            "For {topic}, start with what the metrics already say: the error rate by outcome, \
             the latency histogram around the peak, and whether the {} errors cluster in time. \
             If they do, look at the pool and timeout settings first (turn {turn}); if they are \
             spread out, compare them with the provider's status page before changing anything. \
             Then change one setting at a time and measure again for at least {} minutes.",
            turn * 3 % 11,
            5 + turn % 4
        )));
    }
    messages
}

/// Fifty messages of text that does not repeat itself: 25 distinct
/// questions from the labelled prompt pairs, answered by paragraphs of the
/// repository's guides. Compresses far less than [`conversation`].
fn prose_conversation() -> Vec<ChatMessage> {
    let questions = include_str!("../data/prompt_pairs.tsv")
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.split('\t').nth(2))
        .step_by(5);
    let answers = [
        include_str!("../../docs/http.md"),
        include_str!("../../docs/jobs.md"),
        include_str!("../../docs/postgres.md"),
    ]
    .into_iter()
    .flat_map(|guide| guide.split("\n\n"))
    .map(str::trim)
    .filter(|p| p.len() >= 200 && !p.starts_with(['|', '`', '#']));
    let mut messages = vec![ChatMessage::system(
        "You are a helpful assistant for the engineers of a chat service. Quote the guides when they answer the question.",
    )];
    for (question, answer) in questions.zip(answers).take(25) {
        messages.push(ChatMessage::user(question));
        messages.push(ChatMessage::assistant(answer));
    }
    messages.truncate(50);
    assert_eq!(messages.len(), 50, "enough questions and paragraphs");
    messages
}

fn tokens(messages: &[ChatMessage]) -> u64 {
    ChatRequest::new("m", messages.to_vec()).estimated_prompt_tokens()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_stored_compressed_and_read_back_equal() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&url).await;
    let redis = client(&url).await;
    let prefix = prefix("round_trip");
    let sessions = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let id = "user-1234:conversation-56";
    let mut messages = conversation(25);
    messages.truncate(50);
    for (corpus, id, messages) in [
        ("templated chat", "user-1234:conversation-57", &messages),
        (
            "distinct prose",
            "user-1234:conversation-58",
            &prose_conversation(),
        ),
    ] {
        for pair in messages.chunks(2) {
            sessions.append(id, pair.to_vec()).await.expect("append");
        }
        let stored: Vec<u8> = redis
            .get::<Option<Vec<u8>>, _>(sessions.redis_key(id))
            .await
            .expect("GET")
            .expect("the session is in Redis");
        let decoded = codec::decode(&stored).expect("the stored session decodes");
        assert_eq!(&decoded.messages, messages, "Redis holds the whole session");
        let raw = codec::encode(messages, 0, decoded.expires_at_ms)
            .expect("encode")
            .raw_len();
        let json = serde_json::to_vec(messages).expect("json").len();
        println!(
            "{corpus}, {} messages: {json} bytes as JSON, {raw} bytes postcard, {} bytes stored \
             (LZ4 + 13-byte header): ratio {:.2} over postcard, {:.2} over JSON",
            messages.len(),
            stored.len(),
            raw as f64 / stored.len() as f64,
            json as f64 / stored.len() as f64
        );
        assert!(
            stored.len() < raw,
            "{corpus}: compression pays: {} stored, {raw} raw",
            stored.len()
        );
        sessions.remove(id).await;
    }
    for pair in messages.chunks(2) {
        sessions.append(id, pair.to_vec()).await.expect("append");
    }

    // No key holds a session id (the removed sessions' empty versions stay
    // for the TTL).
    let mut keys: Vec<String> = redis
        .custom(
            fred::types::CustomCommand::new("KEYS", fred::types::ClusterHash::FirstKey, false),
            vec![format!("{prefix}*")],
        )
        .await
        .expect("KEYS");
    keys.sort();
    let mut expected: Vec<String> = ["56", "57", "58"]
        .map(|n| sessions.redis_key(&format!("user-1234:conversation-{n}")))
        .into();
    expected.sort();
    assert_eq!(keys, expected);
    assert!(keys.iter().all(|key| !key.contains("user-1234")));

    // A store with an empty L1 (another instance) reads it from Redis.
    let other = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    assert_eq!(other.messages(id).await, messages);
    assert_eq!(sessions.messages(id).await, messages);
    assert_eq!(other.len("another-session").await, 0);

    other.remove(id).await;
    assert_eq!(other.len(id).await, 0);
    assert_eq!(
        sessions.len(id).await,
        0,
        "a removal reaches a store holding the session in L1"
    );
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_fits_the_budget_keeping_system_and_newest() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&url).await;
    let prefix = prefix("budget");
    let sessions = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let id = "budget-session";
    let messages = conversation(20);
    sessions.append(id, messages.clone()).await.expect("append");
    let fresh = SessionStore::with_runtime(config(&prefix, |b| b), &perf);

    let all = tokens(&messages);
    for budget in [all, all - 1, 1_000, 500, 300] {
        let context = fresh.context(id, budget).await;
        assert_eq!(
            context[0], messages[0],
            "budget {budget}: the system message first"
        );
        assert_eq!(
            context.last(),
            messages.last(),
            "budget {budget}: the newest message last"
        );
        assert!(
            tokens(&context) <= budget,
            "budget {budget}: {} estimated tokens",
            tokens(&context)
        );
        let rest = &context[1..];
        assert!(
            messages.ends_with(rest),
            "budget {budget}: the newest messages, in order"
        );
        println!(
            "budget {budget}: {} of {} messages, {} estimated tokens",
            context.len(),
            messages.len(),
            tokens(&context)
        );
    }
    assert_eq!(fresh.context(id, all).await, messages, "everything fits");
    assert!(fresh.context(id, 1_000).await.len() < messages.len());

    // System alone over budget: the newest user message anyway.
    let tiny = fresh.context(id, 1).await;
    assert_eq!(tiny.len(), 2);
    assert_eq!(tiny[0].role, Role::System);
    assert_eq!(
        Some(&tiny[1]),
        messages.iter().rev().find(|m| m.role == Role::User)
    );
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_process_restores_the_session_from_redis() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&url).await;
    let prefix = prefix("restore");
    let sessions = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let id = "user-99:chat-restore";
    sessions.append(id, conversation(10)).await.expect("append");

    let output = tokio::process::Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "restore_child", "--nocapture"])
        .env(CHILD_PREFIX, &prefix)
        .env(CHILD_SESSION, id)
        .env("REDIS_URL", &url)
        .output()
        .await
        .expect("the child runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("child stdout:\n{stdout}\nchild stderr:\n{stderr}");
    assert!(
        output.status.success(),
        "the child failed: {}",
        output.status
    );
    assert!(
        stdout.contains(CHILD_MARK),
        "the child test ran and read the session"
    );

    // The child appended one answer; this store's L1 holds the older
    // version and must see the newer one.
    let messages = sessions.messages(id).await;
    assert_eq!(messages.len(), 22);
    assert_eq!(messages[..21], conversation(10)[..]);
    assert_eq!(messages[21].content, "written by the child process");
    perf.shutdown().await;
}

/// The second process of `a_new_process_restores_the_session_from_redis`:
/// returns at once unless spawned by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_child() {
    let (Ok(prefix), Ok(id)) = (std::env::var(CHILD_PREFIX), std::env::var(CHILD_SESSION)) else {
        return;
    };
    let url = support::service_url("REDIS_URL").expect("the parent passes REDIS_URL");
    let perf = perf_runtime::init(
        PerfConfig::builder()
            .redis_url(url)
            .enable_prometheus(true)
            .enable_monitoring(false)
            .build()
            .expect("valid config"),
    )
    .await
    .expect("init");
    // The global runtime's Redis.
    let sessions = SessionStore::new(config(&prefix, |b| b));
    let messages = sessions.messages(&id).await;
    assert_eq!(
        messages,
        conversation(10),
        "the whole conversation, in order"
    );
    let exposition = perf.render_prometheus().expect("the recorder is on");
    let l2_hits = support::sample(
        &exposition,
        "perf_ai_session_reads_total",
        &[("tier", "l2"), ("outcome", "hit")],
    );
    assert_eq!(l2_hits, Some(1.0), "restored from Redis");
    sessions
        .append(
            &id,
            [ChatMessage::assistant("written by the child process")],
        )
        .await
        .expect("append");
    println!("{CHILD_MARK} {} messages", messages.len());
    perf_runtime::shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_expire_after_their_ttl() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&url).await;
    let redis = client(&url).await;
    let prefix = prefix("ttl");
    let short = |b: SessionConfigBuilder| b.ttl(Duration::from_secs(1));
    let sessions = SessionStore::with_runtime(config(&prefix, short), &perf);
    let id = "short-lived";
    sessions
        .append(id, [ChatMessage::user("soon gone")])
        .await
        .expect("append");
    let pttl: i64 = redis.pttl(sessions.redis_key(id)).await.expect("PTTL");
    assert!(
        (1..=1000).contains(&pttl),
        "PX from the TTL, found {pttl} ms"
    );

    let mut gone = false;
    for _ in 0..100 {
        let fresh = SessionStore::with_runtime(config(&prefix, short), &perf);
        let exists: i64 = redis.exists(sessions.redis_key(id)).await.expect("EXISTS");
        if exists == 0 && sessions.len(id).await == 0 && fresh.len(id).await == 0 {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the session outlived its 1 s TTL by 10 s");
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_lose_nothing() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&url).await;
    let prefix = prefix("concurrent");
    let settings = |b: SessionConfigBuilder| b.max_messages(10_000);
    // Two stores with an L1 each: two processes as far as the session
    // is concerned; four tasks on each.
    let stores = [
        SessionStore::with_runtime(config(&prefix, settings), &perf),
        SessionStore::with_runtime(config(&prefix, settings), &perf),
    ];
    let id = "busy-session";
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let sessions = stores[task % 2].clone();
            tokio::spawn(async move {
                for i in 0..25 {
                    sessions
                        .append(id, [ChatMessage::user(format!("task {task} message {i}"))])
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    // A read that Redis does not answer within the store's 250 ms is
    // served from L1 (fail-open), and a write whose outcome was unknown is
    // sent again on the next call: on a loaded machine a store can lag
    // for a call or two. So read until both agree, bounded; a lost
    // message never comes back and fails the assertion after the loop.
    let mut counts = [0; 2];
    for round in 0..100 {
        for (count, sessions) in counts.iter_mut().zip(&stores) {
            *count = sessions.len(id).await;
        }
        if counts == [200, 200] {
            break;
        }
        eprintln!("read round {round}: the stores see {counts:?} messages");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(counts, [200, 200], "each store sees every message");
    // What Redis itself holds, read without the store's timeout.
    let stored: Vec<u8> = client(&url)
        .await
        .get::<Option<Vec<u8>>, _>(stores[0].redis_key(id))
        .await
        .expect("GET")
        .expect("the session is in Redis");
    let messages = codec::decode(&stored).expect("decodes").messages;
    let mut texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts.len(), 200, "Redis holds every message");
    for task in 0..8 {
        let own: Vec<_> = texts
            .iter()
            .filter(|t| t.starts_with(&format!("task {task} ")))
            .collect();
        let expected: Vec<String> = (0..25)
            .map(|i| format!("task {task} message {i}"))
            .collect();
        assert_eq!(
            own,
            expected.iter().collect::<Vec<_>>(),
            "task {task}'s messages, in order"
        );
    }
    texts.sort_unstable();
    texts.dedup();
    assert_eq!(texts.len(), 200, "none repeated");
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_dies_and_returns_empty_loses_nothing() {
    if support::service_url("REDIS_URL").is_none() {
        return; // the harness installs Redis; without it, skip (or fail under CI)
    }
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let perf = start(&server.url()).await;
    let prefix = prefix("down");
    let sessions = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let fresh = || SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let id = "through-the-outage";
    let messages = conversation(4);
    assert_eq!(
        sessions
            .append(id, messages[..3].to_vec())
            .await
            .expect("append"),
        3
    );
    assert_eq!(fresh().len(id).await, 3, "in Redis");

    server.kill();
    for (n, message) in messages[3..].iter().enumerate() {
        let count = sessions
            .append(id, [message.clone()])
            .await
            .expect("an append with Redis down works");
        assert_eq!(count, 4 + n);
    }
    assert_eq!(sessions.messages(id).await, messages, "served from L1");
    assert_eq!(sessions.context(id, 100_000).await, messages);
    assert_eq!(
        fresh().len(id).await,
        0,
        "a store without it in L1 finds nothing, and does not fail"
    );

    // Back, and empty (no persistence): the session is written back whole.
    server.restart();
    let mut restored = false;
    for _ in 0..100 {
        let _ = sessions.len(id).await; // a read writes back what Redis lacks
        if fresh().messages(id).await == messages {
            restored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(restored, "the session reached Redis again within 10 s");
    let count = sessions
        .append(id, [ChatMessage::user("after the outage")])
        .await
        .expect("append");
    assert_eq!(count, messages.len() + 1);
    assert_eq!(fresh().len(id).await, messages.len() + 1);
    perf.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_redis_counts_as_absent_and_is_deleted() {
    let Some(url) = support::service_url("REDIS_URL") else {
        return;
    };
    let perf = start(&url).await;
    let redis = client(&url).await;
    let prefix = prefix("garbage");
    let sessions = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let id = "corrupted";
    let key = sessions.redis_key(id);
    // A valid header declaring 4 GiB, then noise.
    let mut garbage = vec![1u8, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    garbage.extend_from_slice(b"not lz4 at all");
    let () = redis
        .set(&key, garbage.as_slice(), None, None, false)
        .await
        .expect("SET");
    assert_eq!(sessions.len(id).await, 0, "unreadable: no session");
    let exists: i64 = redis.exists(&key).await.expect("EXISTS");
    assert_eq!(exists, 0, "the unreadable value was deleted");

    // Garbage written under a session a store holds in L1: its next append
    // replaces it with the whole session.
    sessions
        .append(id, [ChatMessage::user("first")])
        .await
        .expect("append");
    let () = redis
        .set(&key, b"junk".as_slice(), None, None, false)
        .await
        .expect("SET");
    assert_eq!(
        sessions
            .append(id, [ChatMessage::user("second")])
            .await
            .expect("append"),
        2
    );
    let fresh = SessionStore::with_runtime(config(&prefix, |b| b), &perf);
    let texts: Vec<String> = fresh
        .messages(id)
        .await
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(texts, ["first", "second"]);
    perf.shutdown().await;
}
