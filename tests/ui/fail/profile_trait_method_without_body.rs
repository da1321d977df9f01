use perf_runtime::prelude::*;

trait Store {
    #[profile]
    fn get(&self) -> u8;
}

fn main() {}
