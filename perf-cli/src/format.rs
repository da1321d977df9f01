//! How figures are written for people: latencies with a unit that fits,
//! counts with thousands separators, rates as percentages.

use std::time::Duration;

/// "850µs", "12.3ms", "1.25s".
pub(crate) fn latency(value: Duration) -> String {
    let micros = value.as_secs_f64() * 1e6;
    if micros < 1_000.0 {
        format!("{micros:.0}µs")
    } else if micros < 1_000_000.0 {
        format!("{:.1}ms", micros / 1e3)
    } else {
        format!("{:.2}s", micros / 1e6)
    }
}

/// A latency in microseconds, as [`latency`].
pub(crate) fn micros(value: u64) -> String {
    latency(Duration::from_micros(value))
}

/// "1,234,567".
pub(crate) fn count(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A fraction as "0.52%".
pub(crate) fn percent(fraction: f64) -> String {
    format!("{:.2}%", fraction * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_read_as_people_write_them() {
        assert_eq!(latency(Duration::from_micros(850)), "850µs");
        assert_eq!(latency(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(latency(Duration::from_millis(1250)), "1.25s");
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(percent(0.0052), "0.52%");
    }
}
