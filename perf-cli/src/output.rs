//! Files in and out: JSON reports (the input of `perf report` and of
//! `--baseline`) and the HTML page.

use std::path::Path;

use perf_runtime::bench::{BenchmarkReport, EnduranceReport, StressReport};
use serde::Serialize;

use crate::failure::Failure;

/// What a JSON file written by `perf … --out` holds.
pub(crate) enum SavedReport {
    Load(BenchmarkReport),
    Stress(StressReport),
    Endurance(EnduranceReport),
}

/// Writes `contents` to `path`.
pub(crate) fn write(path: &Path, contents: &str) -> Result<(), Failure> {
    std::fs::write(path, contents).map_err(|source| Failure::Write {
        path: path.to_owned(),
        source,
    })
}

/// Writes `report` as pretty JSON to `path`.
pub(crate) fn write_json(path: &Path, report: &impl Serialize) -> Result<(), Failure> {
    // Cannot fail: reports are plain values with string map keys.
    let json = serde_json::to_string_pretty(report).expect("a report always serialises");
    write(path, &json)
}

/// Reads any report `perf` writes, telling the kinds apart by their fields.
pub(crate) fn read_saved(path: &Path) -> Result<SavedReport, Failure> {
    let text = read_text(path)?;
    if let Ok(report) = BenchmarkReport::from_json(&text) {
        return Ok(SavedReport::Load(report));
    }
    if let Ok(report) = StressReport::from_json(&text) {
        return Ok(SavedReport::Stress(report));
    }
    EnduranceReport::from_json(&text)
        .map(SavedReport::Endurance)
        .map_err(|error| Failure::NotAReport {
            path: path.to_owned(),
            reason: format!("not a load, stress or endurance report ({error})"),
        })
}

/// Reads a load report (a baseline); an endurance report's run counts too.
pub(crate) fn read_report(path: &Path) -> Result<BenchmarkReport, Failure> {
    match read_saved(path)? {
        SavedReport::Load(report) => Ok(report),
        SavedReport::Endurance(report) => Ok(report.run),
        SavedReport::Stress(_) => Err(Failure::NotAReport {
            path: path.to_owned(),
            reason: "a stress report has no single run to compare with; give a load report"
                .to_owned(),
        }),
    }
}

fn read_text(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|source| Failure::Read {
        path: path.to_owned(),
        source,
    })
}
