//! Reads back the Prometheus text format that the exporter renders, so the
//! typed [`MetricsReport`](super::MetricsReport) shows exactly what `/metrics`
//! shows. Only what our own renderer emits needs to be understood: one
//! sample per line, `name{label="value",...} number`, `#` comments.

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) name: String,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) value: f64,
}

impl Sample {
    pub(crate) fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Every sample of `text`; lines that do not parse are skipped.
pub(crate) fn parse(text: &str) -> Vec<Sample> {
    text.lines().filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Sample> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let name = line[..name_end].to_owned();
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(after_brace) = rest.strip_prefix('{') {
        let (parsed, remainder) = parse_labels(after_brace)?;
        labels = parsed;
        rest = remainder;
    }
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        other => other.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

/// Parses `key="value",...}` (escapes `\\`, `\"`, `\n`), returning the
/// labels and the text after the closing brace.
fn parse_labels(mut text: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        text = text.trim_start_matches([',', ' ']);
        if let Some(rest) = text.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = text.find('=')?;
        let key = text[..eq].trim().to_owned();
        let mut chars = text[eq + 1..].char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let mut escaped = false;
        let mut end = None;
        for (index, c) in chars {
            match (escaped, c) {
                (true, 'n') => {
                    value.push('\n');
                    escaped = false;
                }
                (true, other) => {
                    value.push(other);
                    escaped = false;
                }
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = Some(index);
                    break;
                }
                (false, other) => value.push(other),
            }
        }
        text = &text[eq + 1 + end? + 1..];
        labels.push((key, value));
    }
}

/// The `q` quantile (0..=1) of a histogram given as cumulative
/// `(upper_bound, count)` buckets, interpolated linearly inside the bucket
/// as Prometheus' `histogram_quantile` does. `None` without observations.
pub(crate) fn quantile(buckets: &[(f64, f64)], q: f64) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                // Above the largest finite bucket: the best known answer is that bucket's bound.
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            let fraction = if in_bucket > 0.0 {
                (rank - lower_count) / in_bucket
            } else {
                1.0
            };
            return Some(lower_bound + (bound - lower_bound) * fraction);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_values_and_escapes() {
        let text = "# TYPE x counter\n\
                    x_total{function=\"a,b\",module=\"m::n\"} 3\n\
                    y 1.5\n\
                    z_bucket{le=\"+Inf\",q=\"say \\\"hi\\\"\\n\"} 7\n\
                    garbage line\n";
        let samples = parse(text);
        assert_eq!(samples.len(), 3);
        assert_eq!(samples[0].name, "x_total");
        assert_eq!(samples[0].label("function"), Some("a,b"));
        assert_eq!(samples[0].label("module"), Some("m::n"));
        assert_eq!(samples[0].value, 3.0);
        assert_eq!(samples[1].labels, vec![]);
        assert_eq!(samples[1].value, 1.5);
        assert_eq!(samples[2].label("le"), Some("+Inf"));
        assert_eq!(samples[2].label("q"), Some("say \"hi\"\n"));
    }

    #[test]
    fn quantiles_interpolate_inside_buckets() {
        let buckets = [(0.1, 50.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert_eq!(quantile(&buckets, 0.5), Some(0.1));
        let p75 = quantile(&buckets, 0.75).unwrap();
        assert!((p75 - 0.15).abs() < 1e-9, "{p75}");
        assert_eq!(quantile(&[(1.0, 0.0), (f64::INFINITY, 0.0)], 0.5), None);
        assert_eq!(
            quantile(&[(1.0, 0.0), (f64::INFINITY, 4.0)], 0.5),
            Some(1.0)
        );
    }
}
