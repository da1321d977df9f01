//! Helpers shared by the benches: where criterion writes, and a table of
//! each case against its baseline, read back from criterion's own estimates.

use std::path::PathBuf;

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
