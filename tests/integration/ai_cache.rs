//! The AI answer cache by hand (`AiSpec` + `AiSite`, what `#[ai_optimized]`
//! expands to) against the loopback OpenAI-compatible server and a real
//! Redis: exact and semantic hits, the guard's misses, scopes, a second
//! instance sharing Redis (in this process, and a second process spawned
//! from this binary), absolute TTLs, invalidation, streams replayed, tool
//! calls refused, limits, budgets shared by providers. The server counts the model calls, so every
//! "served from the cache" below is a count that did not move.
//!
//! One test drives every scenario in turn: the runtime (and its Redis
//! connections) belongs to one Tokio runtime.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use perf_runtime::ai::{
    AiError, AiRequest, AiSite, AiSiteCell, AiSpec, AiTarget, Budget, ChatMessage, ChatRequest,
    ChatResponse, ChatStream, HitKind, Provider, ProviderConfig, Semantic, invalidate,
};
use perf_runtime::cache::mode::ResultMode;
use perf_runtime::http::HttpClient;
use perf_runtime::{Perf, PerfConfig};
use support::openai_server::{CHAT, OpenAiServer};

const MODEL: &str = "gpt-test";

const fn spec(name: &'static str, namespace: &'static str) -> AiSpec {
    AiSpec {
        name,
        namespace,
        provider: "local",
        model: MODEL,
        cache_ttl: Some(Duration::from_secs(600)),
        semantic: Semantic::Default,
        max_concurrency: None,
        rpm: None,
        tpm: None,
        timeout: None,
    }
}

struct World {
    server: OpenAiServer,
    provider: Provider,
    perf: Perf,
}

impl World {
    fn calls(&self) -> usize {
        self.server.calls(CHAT, MODEL)
    }

    /// The body of an `#[ai_optimized]` function: one model call.
    async fn ask_model(&self, question: &str) -> Result<String, AiError> {
        let request = ChatRequest::new(MODEL, vec![ChatMessage::user(question)]);
        Ok(self.provider.chat(&request).await?.content)
    }

    /// A call through `site` for `question`, scoped to `user` if given.
    async fn ask(
        &self,
        site: &'static AiSite<String>,
        question: &str,
        user: Option<&str>,
    ) -> (String, HitKind) {
        let mut request = AiRequest::new(question);
        if let Some(user) = user {
            request = request.scope(user);
        }
        let (answer, kind) = site
            .call_traced::<ResultMode, _, _>(request, None, self.ask_model(question))
            .await;
        (answer.expect("the model answers"), kind)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ai_cache_serves_exact_and_semantic_hits_and_nothing_else() {
    let Some(redis) = support::service_url("REDIS_URL") else {
        return;
    };
    let config = PerfConfig::builder()
        .redis_url(&redis)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    let perf = perf_runtime::init(config).await.expect("init");
    let server = OpenAiServer::start(8).await;
    let config = ProviderConfig::builder("local", server.base_url())
        .build()
        .expect("provider config");
    let provider = Provider::new(config, HttpClient::builder().build().expect("http"));
    let world = World {
        server,
        provider,
        perf,
    };

    // Answers a run before this one left in Redis would be hits.
    invalidate(&AiTarget::All).await.expect("a clean start");
    exact_and_semantic_hits(&world).await;
    the_guard_turns_away_other_questions(&world).await;
    scopes_never_share(&world).await;
    a_second_instance_finds_both_through_redis(&world).await;
    a_second_process_finds_both_through_redis(&world, &redis).await;
    ttls_are_absolute(&world).await;
    invalidation_by_model_and_scope(&world).await;
    streams_are_stored_once_complete_and_replayed(&world).await;
    hits_are_priced_as_the_model_that_answered(&world).await;
    tool_calls_are_not_admitted(&world).await;
    limits_refuse_past_the_budget(&world).await;
    concurrency_is_capped(&world).await;
    sampled_requests_get_no_semantic_hit(&world).await;
    providers_share_their_budgets_through_redis(&world).await;
    savings_are_counted(&world);
    perf_runtime::shutdown().await;
}

async fn exact_and_semantic_hits(world: &World) {
    static SPEC: AiSpec = spec("hits", "ai_cache::hits");
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let before = world.calls();
    let (first, kind) = world
        .ask(site, "How do I reverse a list in Python?", None)
        .await;
    assert_eq!(kind, HitKind::Miss);
    assert_eq!(site.indexed(), 1, "the prompt is in the semantic index");
    let (again, kind) = world
        .ask(site, "  how do i REVERSE a list in python? ", None)
        .await;
    assert_eq!((kind, &again), (HitKind::Exact, &first));
    let (paraphrase, kind) = world
        .ask(site, "How can I reverse a list in Python?", None)
        .await;
    assert_eq!((kind, &paraphrase), (HitKind::Semantic, &first));
    assert_eq!(
        world.calls() - before,
        1,
        "one model call for three askings"
    );
}

async fn the_guard_turns_away_other_questions(world: &World) {
    static SPEC: AiSpec = spec("guard", "ai_cache::guard");
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    for (cached, other) in [
        // Long prompts that differ in one word: their vectors are close
        // enough to reach the guard, which refuses them.
        (
            "Should I keep the API key in the git repository of our production service?",
            "Should I not keep the API key in the git repository of our production service?",
        ),
        (
            "What is the best time of year to visit France for hiking and good food?",
            "What is the best time of year to visit Spain for hiking and good food?",
        ),
        (
            "How do I convert 5 miles to kilometers in a small Python script?",
            "How do I convert 50 miles to kilometers in a small Python script?",
        ),
    ] {
        let before = world.calls();
        let (cached_answer, _) = world.ask(site, cached, None).await;
        let (other_answer, kind) = world.ask(site, other, None).await;
        assert_eq!(
            kind,
            HitKind::Miss,
            "{other:?} must not be served {cached:?}'s answer"
        );
        assert_ne!(cached_answer, other_answer);
        assert_eq!(world.calls() - before, 2);
    }
}

async fn scopes_never_share(world: &World) {
    static SPEC: AiSpec = spec("scopes", "ai_cache::scopes");
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let question = "What's a good name for a coffee shop?";
    let before = world.calls();
    let (_, kind) = world.ask(site, question, Some("user-a")).await;
    assert_eq!(kind, HitKind::Miss);
    let (_, kind) = world.ask(site, question, Some("user-b")).await;
    assert_eq!(kind, HitKind::Miss, "user B never gets user A's answer");
    let (_, kind) = world
        .ask(
            site,
            "Suggest a good name for a coffee shop",
            Some("user-c"),
        )
        .await;
    assert_eq!(kind, HitKind::Miss, "nor a paraphrase of it");
    let (_, kind) = world.ask(site, question, None).await;
    assert_eq!(
        kind,
        HitKind::Miss,
        "unscoped calls are a scope of their own"
    );
    let (_, kind) = world.ask(site, question, Some("user-a")).await;
    assert_eq!(kind, HitKind::Exact);
    assert_eq!(world.calls() - before, 4);
}

async fn a_second_instance_finds_both_through_redis(world: &World) {
    static SPEC: AiSpec = spec("shared", "ai_cache::shared");
    // Two sites of one function: two instances of a service, apart in
    // process, sharing Redis.
    let first = AiSite::<String>::leak(&SPEC);
    let second = AiSite::<String>::leak(&SPEC);
    let before = world.calls();
    let (answer, kind) = world
        .ask(first, "How do I make cold brew coffee at home?", Some("u1"))
        .await;
    assert_eq!(kind, HitKind::Miss);
    let (paraphrase, kind) = world
        .ask(
            second,
            "How can I make cold brew coffee at home?",
            Some("u1"),
        )
        .await;
    assert_eq!((kind, &paraphrase), (HitKind::Semantic, &answer));
    assert_eq!(second.indexed(), 1, "the entry came from the shared stream");
    let (again, kind) = world
        .ask(
            second,
            "How do I make cold brew coffee at home?",
            Some("u1"),
        )
        .await;
    assert_eq!((kind, &again), (HitKind::Exact, &answer), "from L2");
    assert_eq!(world.calls() - before, 1);
}

static PROCESSES_SPEC: AiSpec = spec("processes", "ai_cache::processes");
static PROCESSES_SITE: AiSiteCell<String> = AiSiteCell::new(&PROCESSES_SPEC);

/// The second process of `a_second_process_finds_both_through_redis`: asks
/// one question and prints how it was served and the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_instance() {
    let (Ok(redis), Ok(question)) = (
        std::env::var("PERF_CHILD_REDIS"),
        std::env::var("PERF_CHILD_QUESTION"),
    ) else {
        return; // Only runs when spawned by the parent test.
    };
    let config = PerfConfig::builder()
        .redis_url(&redis)
        .enable_monitoring(false)
        .build()
        .expect("valid config");
    perf_runtime::init(config).await.expect("init");
    let (answer, kind) = PROCESSES_SITE
        .get()
        .call_traced::<ResultMode, _, _>(AiRequest::new(&question).scope("u-proc"), None, async {
            Ok::<_, AiError>("computed in the child".to_owned())
        })
        .await;
    println!("CHILD {} {}", kind.as_str(), answer.expect("an answer"));
    perf_runtime::shutdown().await;
}

async fn a_second_process_finds_both_through_redis(world: &World, redis: &str) {
    let (answer, kind) = world
        .ask(
            PROCESSES_SITE.get(),
            "How do I install Rust on Ubuntu?",
            Some("u-proc"),
        )
        .await;
    assert_eq!(kind, HitKind::Miss);
    for (question, served) in [
        ("How can I install Rust on Ubuntu?", "semantic"),
        ("how do i install   rust on ubuntu?", "exact"),
    ] {
        let child = tokio::process::Command::new(std::env::current_exe().expect("this binary"))
            .args([
                "--exact",
                "child_instance",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PERF_CHILD_REDIS", redis)
            .env("PERF_CHILD_QUESTION", question)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(60), child)
            .await
            .expect("the second process ends within 60 s")
            .expect("the second process runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let line = stdout
            .lines()
            // libtest may print "test child_instance ... " on the same line.
            .find_map(|line| {
                line.find("CHILD ")
                    .map(|at| line[at + 6..].trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no answer from the second process: {stdout}"));
        assert_eq!(line, format!("{served} {answer}"), "{question:?}");
    }
}

async fn ttls_are_absolute(world: &World) {
    static SPEC: AiSpec = AiSpec {
        cache_ttl: Some(Duration::from_secs(2)),
        ..spec("ttl", "ai_cache::ttl")
    };
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let question = "How do I configure nginx as a reverse proxy?";
    let started = tokio::time::Instant::now();
    let (_, kind) = world.ask(site, question, None).await;
    assert_eq!(kind, HitKind::Miss);
    // Hits in the meantime do not extend the entry's life.
    while started.elapsed() < Duration::from_millis(1500) {
        let (_, kind) = world.ask(site, question, None).await;
        assert_eq!(kind, HitKind::Exact);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep_until(started + Duration::from_millis(2300)).await;
    let (_, kind) = world
        .ask(site, "How to configure nginx as a reverse proxy", None)
        .await;
    assert_eq!(
        kind,
        HitKind::Miss,
        "the semantic entry expired with its answer"
    );
}

async fn invalidation_by_model_and_scope(world: &World) {
    static SPEC: AiSpec = spec("invalidate", "ai_cache::invalidate");
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let question = "What is the capital of France?";
    world.ask(site, question, Some("alice")).await;
    world.ask(site, question, Some("bob")).await;
    invalidate(&AiTarget::scope("alice"))
        .await
        .expect("invalidate");
    assert_eq!(
        world.ask(site, question, Some("alice")).await.1,
        HitKind::Miss
    );
    assert_eq!(
        world.ask(site, question, Some("bob")).await.1,
        HitKind::Exact
    );
    let forgotten = invalidate(&AiTarget::Model {
        provider: "local".into(),
        model: MODEL.into(),
    })
    .await
    .expect("invalidate");
    assert!(forgotten >= 2, "indexes forgot {forgotten}");
    assert_eq!(
        world.ask(site, question, Some("bob")).await.1,
        HitKind::Miss
    );
    assert_eq!(
        world
            .ask(site, "what's the capital of france", Some("bob"))
            .await
            .1,
        HitKind::Semantic,
        "entries stored after the invalidation serve again"
    );
}

async fn streams_are_stored_once_complete_and_replayed(world: &World) {
    static SPEC: AiSpec = spec("stream", "ai_cache::stream");
    static SITE: AiSiteCell<ChatResponse> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let question = "Why is the sky blue?";
    let whole = world.ask_model(question).await.unwrap();
    let before = world.calls();
    let ask = |q: &'static str| async move {
        let request = ChatRequest::new(MODEL, vec![ChatMessage::user(q)]);
        let (stream, kind) = site
            .stream_traced(
                AiRequest::new(&request),
                None,
                async { world.provider.chat_stream(&request) },
                Ok,
                |s: ChatStream| s,
            )
            .await;
        (collect(stream).await, kind)
    };
    let (text, kind) = ask(question).await;
    assert_eq!(
        (kind, &text),
        (HitKind::Miss, &whole),
        "the same text as a whole answer"
    );
    wait_until(|| async { site.indexed() == 1 }).await;
    let (text, kind) = ask(question).await;
    assert_eq!(
        (kind, &text),
        (HitKind::Exact, &whole),
        "replayed as a stream"
    );
    let (text, kind) = ask("Why's the sky blue?").await;
    assert_eq!((kind, &text), (HitKind::Semantic, &whole));
    assert_eq!(world.calls() - before, 1);
    // The exact tier counted as a whole call's is: the first and the
    // paraphrase missed it, the repeat hit it.
    let metrics = world.perf.render_prometheus().expect("prometheus");
    let l1 = |outcome| {
        support::sample(
            &metrics,
            "perf_cache_requests_total",
            &[("function", "stream"), ("tier", "l1"), ("outcome", outcome)],
        )
    };
    assert_eq!((l1("hit"), l1("miss")), (Some(1.0), Some(2.0)), "{metrics}");
}

/// A function whose `model` is a label of the application's own, with no
/// price: its hits are priced as calls to the model that answered.
async fn hits_are_priced_as_the_model_that_answered(world: &World) {
    static SPEC: AiSpec = AiSpec {
        model: "assistant",
        ..spec("priced", "ai_cache::priced")
    };
    static SITE: AiSiteCell<ChatResponse> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let request = ChatRequest::new("gpt-4o-mini", vec![ChatMessage::user("Price me, please.")]);
    for expected in [HitKind::Miss, HitKind::Exact] {
        let (answer, kind) = site
            .call_traced::<ResultMode, _, _>(
                AiRequest::new(&request),
                None,
                world.provider.chat(&request),
            )
            .await;
        assert_eq!(answer.expect("answered").model, "gpt-4o-mini");
        assert_eq!(kind, expected);
    }
    let metrics = world.perf.render_prometheus().expect("prometheus");
    let saved = support::sample(
        &metrics,
        "perf_ai_saved_microdollars_total",
        &[
            ("provider", "local"),
            ("model", "assistant"),
            ("kind", "exact"),
        ],
    );
    assert!(
        saved.is_some_and(|microdollars| microdollars > 0.0),
        "priced as gpt-4o-mini: {saved:?}\n{metrics}"
    );
}

async fn collect(mut stream: ChatStream) -> String {
    let mut text = String::new();
    while let Some(piece) = stream.next().await {
        text.push_str(&piece.expect("no error").delta);
    }
    text
}

async fn tool_calls_are_not_admitted(world: &World) {
    static SPEC: AiSpec = spec("tools", "ai_cache::tools");
    static SITE: AiSiteCell<ChatResponse> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let runs = AtomicUsize::new(0);
    for _ in 0..2 {
        let (answer, kind) = site
            .call_traced::<ResultMode, _, _>(
                AiRequest::new("What's the weather in Paris?"),
                None,
                async {
                    runs.fetch_add(1, Ordering::SeqCst);
                    let request = ChatRequest::new(MODEL, vec![ChatMessage::user("weather")]);
                    let mut answer = world.provider.chat(&request).await?;
                    answer.tool_calls = vec![
                        serde_json::json!({"type": "function", "function": {"name": "weather"}}),
                    ];
                    Ok::<_, AiError>(answer)
                },
            )
            .await;
        assert!(answer.unwrap().has_tool_calls());
        assert_eq!(kind, HitKind::Miss);
    }
    assert_eq!(
        runs.load(Ordering::SeqCst),
        2,
        "an answer calling tools is never cached"
    );
    let _ = world;
}

async fn limits_refuse_past_the_budget(world: &World) {
    // The budget lives in Redis for a minute after use: a model of this
    // run's own starts with a full one.
    let model: &'static str = Box::leak(format!("budget-{}", std::process::id()).into_boxed_str());
    let spec: &'static AiSpec = Box::leak(Box::new(AiSpec {
        rpm: Some(3),
        timeout: Some(Duration::from_millis(200)),
        model,
        ..spec("limits", "ai_cache::limits")
    }));
    let site = AiSite::<String>::leak(spec);
    let before = world.calls();
    let mut refused = 0;
    for i in 0..5 {
        let question = format!("Question number {i}: what is {i} squared?");
        let result = site
            .call::<ResultMode, _, _>(
                AiRequest::new(&question),
                Some(Err),
                world.ask_model(&question),
            )
            .await;
        match result {
            Ok(_) => {}
            Err(AiError::RateLimited { retry_after, .. }) => {
                refused += 1;
                assert!(retry_after.is_some_and(|d| d > Duration::from_millis(200)));
            }
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(
        refused, 2,
        "3 requests a minute: the 4th and 5th are refused"
    );
    assert_eq!(world.calls() - before, 3);
}

async fn concurrency_is_capped(world: &World) {
    static SPEC: AiSpec = AiSpec {
        max_concurrency: Some(2),
        ..spec("concurrency", "ai_cache::concurrency")
    };
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let running = AtomicUsize::new(0);
    let most = AtomicUsize::new(0);
    let calls = (0..8).map(|i| {
        let (running, most) = (&running, &most);
        async move {
            let question = format!("Tell me fact number {i} about owls");
            site.call::<ResultMode, _, _>(AiRequest::new(&question), None, async {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(30)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                Ok::<_, AiError>(question.clone())
            })
            .await
        }
    });
    let answers = futures_util::future::join_all(calls).await;
    assert!(answers.iter().all(Result::is_ok));
    assert_eq!(most.load(Ordering::SeqCst), 2);
    let _ = world;
}

async fn sampled_requests_get_no_semantic_hit(world: &World) {
    static SPEC: AiSpec = spec("sampled", "ai_cache::sampled");
    static SITE: AiSiteCell<String> = AiSiteCell::new(&SPEC);
    let site = SITE.get();
    let ask = |question: &'static str| async move {
        let request = ChatRequest::new(MODEL, vec![ChatMessage::user(question)]).temperature(0.9);
        site.call_traced::<ResultMode, _, _>(AiRequest::new(&request), None, async {
            Ok::<_, AiError>(world.provider.chat(&request).await?.content)
        })
        .await
        .1
    };
    assert_eq!(
        ask("Write a haiku about autumn leaves").await,
        HitKind::Miss
    );
    assert_eq!(
        ask("Write a haiku about autumn leaves").await,
        HitKind::Exact
    );
    assert_eq!(
        ask("Write me a haiku about autumn leaves").await,
        HitKind::Miss
    );
}

/// Two providers made after `init` (as two instances would make theirs)
/// spend from one budget kept in Redis.
async fn providers_share_their_budgets_through_redis(world: &World) {
    let model = format!("shared-budget-{}", std::process::id());
    let make = || {
        let config = ProviderConfig::builder("local", world.server.base_url())
            .model_budget(&model, Budget::per_minute(Some(2), None))
            .budget_wait(Duration::ZERO)
            .build()
            .expect("provider config");
        Provider::new(config, HttpClient::builder().build().expect("http"))
    };
    let (first, second) = (make(), make());
    let request = ChatRequest::new(&model, vec![ChatMessage::user("hi")]);
    assert!(first.chat(&request).await.is_ok());
    assert!(second.chat(&request).await.is_ok());
    let third = first.chat(&request).await;
    assert!(
        matches!(third, Err(AiError::RateLimited { .. })),
        "2 requests a minute across both providers: {third:?}"
    );
}

fn savings_are_counted(world: &World) {
    let text = world.perf.render_prometheus().expect("prometheus");
    for outcome in ["exact", "semantic", "miss"] {
        let count = support::sample(
            &text,
            "perf_ai_cache_requests_total",
            &[("function", "hits"), ("outcome", outcome)],
        );
        assert_eq!(count, Some(1.0), "{outcome}: {text}");
    }
    let saved = support::sample(
        &text,
        "perf_ai_saved_tokens_total",
        &[
            ("provider", "local"),
            ("model", MODEL),
            ("kind", "semantic"),
        ],
    );
    assert!(saved.is_some_and(|n| n > 0.0), "{text}");
    for reason in ["negation", "entity", "number"] {
        let refusals = support::sample(
            &text,
            "perf_ai_cache_guard_refusals_total",
            &[("function", "guard"), ("reason", reason)],
        );
        assert_eq!(refusals, Some(1.0), "{reason}: {text}");
    }
}

/// Polls `done` every 20 ms, for up to 10 s.
async fn wait_until<F, Fut>(done: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..500 {
        if done().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("not done within 10 s");
}
