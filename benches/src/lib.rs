//! Helpers shared by the benches: where criterion writes, and a table of
//! each case against its baseline, read back from criterion's own estimates.

use std::path::PathBuf;

mod service;
pub use service::{runtime, service_runtime, start};

/// Where criterion keeps its results: `$CARGO_TARGET_DIR/criterion`, or the
/// workspace's `target/criterion`.
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("criterion")
}

/// The median estimate (ns) of `group/case` from criterion's last run.
pub fn median_ns(group: &str, case: &str) -> Option<f64> {
    let path = criterion_dir()
        .join(group)
        .join(case)
        .join("new")
        .join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["median"]["point_estimate"].as_f64()
}

/// Prints each case's median and its ratio to `baseline`, as a Markdown table.
pub fn print_ratios(group: &str, baseline: &str, cases: &[&str]) {
    let Some(base) = median_ns(group, baseline) else {
        eprintln!("no estimate for {group}/{baseline}: run the whole bench, unfiltered");
        return;
    };
    println!("\n{group}: median ns/call and ratio to `{baseline}`\n");
    println!("| case | ns/call | × {baseline} |");
    println!("|---|---:|---:|");
    for case in cases {
        match median_ns(group, case) {
            Some(ns) => println!("| {case} | {ns:.1} | {:.2} |", ns / base),
            None => println!("| {case} | – | – |"),
        }
    }
}

/// CPU time (user + system) this process has spent so far, from
/// `/proc/self/stat` (clock ticks of 10 ms: measure seconds, not moments).
///
/// Wall time per request on a 2-core machine swings with scheduling; the
/// CPU a fixed number of requests costs does not, so benches of a client
/// and a server in one process report both.
pub fn process_cpu() -> std::time::Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after_name = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of stat(5); the state (field 3)
    // is the first after the name.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    const TICKS_PER_SECOND: u64 = 100;
    std::time::Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

/// One case's figures over interleaved rounds.
pub struct Rounds {
    /// The case measured.
    pub case: &'static str,
    /// Wall time per call (ns), one value per round.
    pub wall_ns: Vec<f64>,
    /// Process CPU per call (ns), one value per round.
    pub cpu_ns: Vec<f64>,
}

/// Runs every case `calls` times per round (through `run(case, calls)`),
/// `rounds` times over, the cases interleaved within each round so that
/// drift in a shared machine falls on all of them alike.
///
/// Criterion measures one case after another; on this 2-core VM the same
/// client measured twice in a row differs by up to 25%, which hides a 10%
/// difference between two clients. Medians of interleaved rounds do not.
pub fn interleave(
    rounds: usize,
    cases: &[&'static str],
    calls: u64,
    mut run: impl FnMut(&'static str, u64),
) -> Vec<Rounds> {
    let mut rows: Vec<Rounds> = cases
        .iter()
        .map(|case| Rounds {
            case,
            wall_ns: Vec::new(),
            cpu_ns: Vec::new(),
        })
        .collect();
    for _ in 0..rounds {
        for row in &mut rows {
            let cpu = process_cpu();
            let wall = std::time::Instant::now();
            run(row.case, calls);
            let wall = wall.elapsed();
            let cpu = process_cpu() - cpu;
            row.wall_ns.push(wall.as_nanos() as f64 / calls as f64);
            row.cpu_ns.push(cpu.as_nanos() as f64 / calls as f64);
        }
    }
    rows
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Prints interleaved rounds as a Markdown table: the median wall time and
/// CPU per call of each case, and its ratios to `baseline`'s medians
/// (throughput ratio: baseline time / case time, so ≥ 1 is faster).
pub fn print_interleaved(title: &str, baseline: &str, rows: &[Rounds]) {
    let Some(base) = rows.iter().find(|row| row.case == baseline) else {
        eprintln!("{title}: no {baseline} row");
        return;
    };
    let (base_wall, base_cpu) = (median(&base.wall_ns), median(&base.cpu_ns));
    println!(
        "\n{title}: {} interleaved rounds, medians per call\n",
        base.wall_ns.len()
    );
    println!(
        "| case | wall µs | calls/s | × {baseline} calls/s | CPU µs | × {baseline} CPU | wall µs, each round |"
    );
    println!("|---|---:|---:|---:|---:|---:|---|");
    for row in rows {
        let (wall, cpu) = (median(&row.wall_ns), median(&row.cpu_ns));
        let each: Vec<String> = row
            .wall_ns
            .iter()
            .map(|ns| format!("{:.1}", ns / 1e3))
            .collect();
        println!(
            "| {} | {:.2} | {:.0} | {:.2} | {:.1} | {:.2} | {} |",
            row.case,
            wall / 1e3,
            1e9 / wall,
            base_wall / wall,
            cpu / 1e3,
            cpu / base_cpu,
            each.join(" / ")
        );
    }
}
