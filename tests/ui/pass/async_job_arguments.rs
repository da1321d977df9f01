//! Every `#[async_job]` argument, and every accepted return type.

use perf_runtime::jobs::JobOutcome;
use perf_runtime::prelude::*;

#[derive(serde::Serialize, serde::Deserialize)]
struct Signup {
    user_id: u64,
    email: String,
}

#[async_job]
async fn defaults() {}

#[async_job(
    priority = "critical",
    queue = "emails",
    max_retries = 5,
    backoff = "exponential",
    backoff_base = "250ms",
    backoff_cap = "1m",
    timeout = "30s",
    delay = 10,
    unique = "{user_id}/{kind}",
    name = "emails.welcome",
    crate = "::perf_runtime"
)]
async fn every_argument(user_id: u64, kind: String, signup: Signup) -> Result<(), String> {
    let _ = (user_id, kind, signup.user_id, signup.email);
    Ok(())
}

#[async_job(priority = -5, backoff = "fixed", max_retries = 0)]
async fn numbered_priority(values: Vec<u32>) -> Result<(), std::io::Error> {
    let _ = values;
    Ok(())
}

#[async_job(priority = "low", backoff = "linear", backoff_base = "1s", backoff_cap = "10s")]
pub async fn snoozes() -> JobOutcome {
    JobOutcome::Snooze(std::time::Duration::from_secs(1))
}

#[async_job(cron = "0 */5 * * * *", queue = "maintenance", timeout = "5m")]
async fn every_five_minutes() -> Result<(), String> {
    Ok(())
}

#[async_job(cron = "30 2 * * 1-5")]
async fn weekday_mornings() {}

fn main() {
    let _ = every_five_minutes();
    let _ = weekday_mornings();
    let _ = defaults();
    let _ = every_argument(1, "welcome".to_owned(), Signup { user_id: 1, email: String::new() });
    let _ = numbered_priority(vec![1]).delay(std::time::Duration::from_secs(1));
    let _ = snoozes();
}
