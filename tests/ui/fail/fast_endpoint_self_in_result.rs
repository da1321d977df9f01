use perf_runtime::prelude::*;

#[derive(Clone)]
struct Settings(u64);

impl Settings {
    // `Result<Self, _>`: a `static` cannot name `Self`, however it is spaced.
    #[fast_endpoint(cache_ttl = 60, key = "settings:{id}")]
    async fn load(id: u64) -> Result<Self, String> {
        Ok(Settings(id))
    }
}

fn main() {}
