//! The live progress bar: elapsed time over the measured period, requests/s,
//! the last window's p95 and the errors so far, redrawn four times a second
//! from the engine's [`Progress`].

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use perf_runtime::bench::{Phase, Progress, ProgressSnapshot};
use tokio::task::JoinHandle;

use crate::format::{count, latency};

/// How often the bar is redrawn.
const REFRESH: Duration = Duration::from_millis(250);

/// A bar following a run until [`finish`](Self::finish).
pub(crate) struct LiveBar {
    bar: ProgressBar,
    task: JoinHandle<()>,
}

impl LiveBar {
    /// Starts following `progress` on stderr; `shown: false` (or stderr not
    /// a terminal) draws nothing.
    pub(crate) fn start(progress: &Progress, shown: bool) -> LiveBar {
        let target = if shown {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        let bar = ProgressBar::with_draw_target(Some(1), target);
        bar.set_style(
            ProgressStyle::with_template("{prefix:.bold} [{bar:20.cyan/blue}] {msg}")
                .expect("the template is valid")
                .progress_chars("=> "),
        );
        let task = tokio::spawn({
            let bar = bar.clone();
            let progress = progress.clone();
            async move {
                let mut tick = tokio::time::interval(REFRESH);
                loop {
                    tick.tick().await;
                    draw(&bar, &progress.snapshot());
                }
            }
        });
        LiveBar { bar, task }
    }

    /// Stops redrawing and clears the bar (the summary follows).
    pub(crate) fn finish(self) {
        self.task.abort();
        self.bar.finish_and_clear();
    }
}

fn draw(bar: &ProgressBar, snapshot: &ProgressSnapshot) {
    let measured = u64::try_from(snapshot.measured.as_millis()).unwrap_or(u64::MAX);
    bar.set_length(measured.max(1));
    bar.set_position(u64::try_from(snapshot.elapsed.as_millis()).unwrap_or(u64::MAX));
    bar.set_prefix(snapshot.stage.clone().unwrap_or_default());
    let phase = match snapshot.phase {
        Phase::Waiting => "connecting",
        Phase::RampUp => "ramping up",
        Phase::Measuring => "measuring",
        Phase::Draining => "last answers",
        _ => "done",
    };
    // Short enough for an 80-column terminal next to the bar.
    bar.set_message(format!(
        "{:.0}s/{:.0}s {phase} | {} req | {}/s | p95 {} | {} err",
        snapshot.elapsed.as_secs_f64(),
        snapshot.measured.as_secs_f64(),
        count(snapshot.requests),
        count(snapshot.requests_per_second.round() as u64),
        snapshot.p95.map_or_else(|| "-".to_owned(), latency),
        count(snapshot.errors),
    ));
}
