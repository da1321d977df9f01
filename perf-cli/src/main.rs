//! `perf`: load, stress and endurance tests of an HTTP endpoint on the
//! engine of `perf_runtime::bench`, with a live progress bar, a summary,
//! pass/fail thresholds and baseline comparison for CI, JSON and HTML
//! reports. `perf --help` lists the subcommands; docs/bench.md says what
//! is measured.
//!
//! ```text
//! perf load http://127.0.0.1:8000/api/chat -c 100 -d 30s -X POST --json '{"message":"hi"}' \
//!     --threshold 'p95<500ms' --threshold 'errors<1%' --out run.json --html run.html
//! perf stress http://127.0.0.1:8000/api/chat -c 50 --step 50 --max-users 1000 --step-duration 60s
//! perf endurance http://127.0.0.1:8000/api/chat -c 50 -d 1h --window 5m
//! perf report run.json --baseline last-week.json --html run.html
//! ```

mod args;
mod bar;
mod commands;
mod failure;
mod format;
mod output;
mod request;
mod summary;
mod verdict;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(failure::EXIT_RUN);
        }
    };
    match runtime.block_on(commands::run(cli.command)) {
        Ok(status) => status,
        Err(failure) => {
            eprintln!("error: {failure}");
            failure.exit_code()
        }
    }
}
