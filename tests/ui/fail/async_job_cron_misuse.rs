use perf_runtime::prelude::*;

#[async_job(cron = "every five minutes")]
async fn not_cron() {}

#[async_job(cron = "0 61 * * * *")]
async fn minute_out_of_range() {}

#[async_job(cron = "0 */5 * * * *")]
async fn with_argument(user_id: u64) {
    let _ = user_id;
}

#[async_job(cron = "0 */5 * * * *", delay = "1m", unique = "nightly")]
async fn with_delay_and_unique() {}

fn main() {}
