use perf_runtime::prelude::*;

struct Mailer;

impl Mailer {
    #[async_job]
    async fn send(&self, to: String) {
        let _ = to;
    }
}

fn main() {}
