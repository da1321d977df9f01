use perf_runtime::prelude::*;

struct Service;

impl Service {
    #[fast_endpoint]
    async fn get(&self, id: u64) -> u64 {
        id
    }
}

fn main() {}
