//! The spans `#[profile]` opens: named after the function, at the asked
//! level, with no argument value unless `fields(..)` asks for it.

use std::sync::{Arc, Mutex};

use perf_runtime::prelude::*;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;

/// Every span opened: its name, level and recorded fields.
#[derive(Clone, Default)]
struct SpanLog(Arc<Mutex<Vec<(String, tracing::Level, String)>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={:?};", field.name(), value));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for SpanLog {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: Context<'_, S>,
    ) {
        let mut fields = Fields(String::new());
        attrs.record(&mut fields);
        self.0.lock().unwrap().push((
            attrs.metadata().name().to_owned(),
            *attrs.metadata().level(),
            fields.0,
        ));
    }
}

#[profile]
fn login(user: &str, password: &str) -> bool {
    !user.is_empty() && password.len() > 3
}

#[profile(name = "chat.ask", level = "debug", fields(user_id = %user_id))]
async fn ask(user_id: u64, prompt: String) -> usize {
    prompt.len()
}

#[test]
fn spans_carry_no_argument_unless_asked() {
    let log = SpanLog::default();
    let subscriber = tracing_subscriber::registry().with(log.clone());
    tracing::subscriber::with_default(subscriber, || {
        assert!(login("ann", "sk-canary-secret"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        assert_eq!(runtime.block_on(ask(42, "my private question".into())), 19);
        let _scope = perf_runtime::profile::scope("it.block");
    });
    let spans = log.0.lock().unwrap().clone();
    let names: Vec<_> = spans
        .iter()
        .map(|(name, level, _)| (name.as_str(), *level))
        .collect();
    assert_eq!(
        names,
        [
            ("login", tracing::Level::INFO),
            ("chat.ask", tracing::Level::DEBUG),
            ("perf.scope", tracing::Level::INFO),
        ]
    );
    assert_eq!(spans[0].2, "", "no argument recorded by default");
    assert_eq!(spans[1].2, "user_id=42;", "only the asked field");
    assert_eq!(spans[2].2, "name=\"it.block\";");
    let everything = format!("{spans:?}");
    for secret in ["sk-canary-secret", "my private question", "ann"] {
        assert!(!everything.contains(secret), "{secret} leaked into a span");
    }
}
