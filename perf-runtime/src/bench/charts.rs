//! The charts of the HTML report, drawn with `plotters` into SVG strings
//! that the page inlines (no image files, no script: the page works offline
//! and from a CI artifact).
//!
//! Each function returns either one `<svg class="chart">` element or, when
//! there is nothing to draw (a run without answers, no windows), a
//! `<div class="chart no-data">` saying so: `plotters` cannot draw on an
//! empty range, so every range is checked before it is built. Charts are
//! [`CHART_WIDTH`] pixels wide; the page scales them down to fit.
//!
//! Legends sit in a strip above the plot rather than on it, so they never
//! hide a line.

use std::error::Error;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::endurance::EnduranceReport;
use super::histogram::LatencyBucket;
use super::html::escape;
use super::report::BenchmarkReport;
use super::stress::StressReport;
use super::window::WindowReport;

/// The width of every chart, in pixels: wide enough for ten axis labels
/// and a legend, narrow enough for a laptop screen.
pub const CHART_WIDTH: u32 = 900;

/// The height of a chart, header strip included.
const CHART_HEIGHT: u32 = 400;

/// The strip above the plot with the title and one row of legend.
const HEADER_HEIGHT: u32 = 62;

const FONT: &str = "sans-serif";
/// Font sizes in `plotters` units (the SVG gets them divided by 1.24):
/// about 14 px for tick labels and legends, 15 px for axis names.
const LABEL_SIZE: u32 = 17;
const DESC_SIZE: u32 = 18;
const TITLE_SIZE: u32 = 22;
const TEXT: RGBColor = RGBColor(26, 32, 44);
const GRID: RGBColor = RGBColor(226, 232, 240);
const GRID_FAINT: RGBColor = RGBColor(241, 244, 248);
const AXIS: RGBColor = RGBColor(113, 128, 150);

/// The percentile colours, the same in every chart.
const P50: RGBColor = RGBColor(43, 108, 176);
const P95: RGBColor = RGBColor(221, 107, 32);
const P99: RGBColor = RGBColor(197, 48, 48);
const THROUGHPUT: RGBColor = RGBColor(43, 108, 176);
const ERRORS: RGBColor = RGBColor(197, 48, 48);
/// Neutral bars, so the percentile lines over them stand out.
const BARS: RGBColor = RGBColor(160, 174, 192);

/// Past this many windows, markers would merge into a smear (and bloat the
/// page): the lines alone show the run.
const MAX_MARKERS: usize = 120;

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
type DrawResult = Result<(), Box<dyn Error>>;

/// A chart's legend entry: what a mark of that colour shows.
struct Legend<'a> {
    label: &'a str,
    color: RGBColor,
    mark: Mark,
}

/// How a legend entry is drawn: as the series it stands for.
#[derive(Clone, Copy)]
enum Mark {
    Line,
    Dashed,
    Cross,
}

impl<'a> Legend<'a> {
    fn line(label: &'a str, color: RGBColor) -> Legend<'a> {
        Legend {
            label,
            color,
            mark: Mark::Line,
        }
    }

    fn dashed(label: &'a str, color: RGBColor) -> Legend<'a> {
        Legend {
            label,
            color,
            mark: Mark::Dashed,
        }
    }

    fn cross(label: &'a str, color: RGBColor) -> Legend<'a> {
        Legend {
            label,
            color,
            mark: Mark::Cross,
        }
    }
}

/// Draws a chart with `draw` and returns the `<svg>`, labelled `title` for
/// screen readers; a "no data" box if drawing fails (it should not: every
/// range is checked first, but a report must never be lost to a chart).
fn render(title: &str, draw: impl FnOnce(&Area<'_>) -> DrawResult) -> String {
    let mut svg = String::new();
    let drawn = {
        let root =
            SVGBackend::with_string(&mut svg, (CHART_WIDTH, CHART_HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Box::<dyn Error>::from)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Box::<dyn Error>::from))
    };
    match drawn {
        Ok(()) => svg.replacen(
            "<svg ",
            &format!(
                "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" ",
                escape(title)
            ),
            1,
        ),
        Err(error) => no_data(title, &format!("the chart could not be drawn: {error}")),
    }
}

/// The box shown instead of a chart that has nothing to draw.
pub(crate) fn no_data(title: &str, why: &str) -> String {
    format!(
        "<div class=\"chart no-data\" role=\"img\" aria-label=\"{title}\">\
         <strong>{title}</strong><span>No data: {why}</span></div>",
        title = escape(title),
        why = escape(why),
    )
}

/// Where the legend starts: under the plot's left edge.
const LEGEND_LEFT: i32 = 90;

/// Splits `root` into the header strip (title and legend, drawn here; the
/// legend wraps onto more rows when it is wide) and the area for the plot.
fn header<'a>(
    root: &Area<'a>,
    title: &str,
    legend: &[Legend<'_>],
) -> Result<Area<'a>, Box<dyn Error>> {
    // The naive font metrics of `plotters` without a font file: about
    // 8.5 px per character at the legend's size.
    let chart_width = i32::try_from(CHART_WIDTH).unwrap_or(i32::MAX);
    let mut placed = Vec::with_capacity(legend.len());
    let (mut x, mut row) = (LEGEND_LEFT, 0);
    for entry in legend {
        let width = 36 + i32::try_from(entry.label.chars().count()).unwrap_or(40) * 17 / 2;
        if x + width > chart_width - 16 && x > LEGEND_LEFT {
            row += 1;
            x = LEGEND_LEFT;
        }
        placed.push((entry, x, 46 + row * 24));
        x += width + 28;
    }
    let rows = if placed.is_empty() { 0 } else { row + 1 };
    let height = u32::try_from(38 + rows * 24).unwrap_or(HEADER_HEIGHT);
    let (top, body) = root.split_vertically(height);
    let title_style =
        TextStyle::from((FONT, TITLE_SIZE).into_font().style(FontStyle::Bold)).color(&TEXT);
    top.draw(&Text::new(title.to_owned(), (14, 10), title_style))?;
    let label_style = TextStyle::from((FONT, LABEL_SIZE).into_font())
        .color(&TEXT)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for (entry, x, y) in placed {
        let style = ShapeStyle::from(&entry.color).stroke_width(3);
        match entry.mark {
            Mark::Line => top.draw(&PathElement::new(vec![(x, y), (x + 28, y)], style))?,
            Mark::Dashed => {
                for start in (0..28).step_by(10) {
                    top.draw(&PathElement::new(
                        vec![(x + start, y), (x + start + 6, y)],
                        style,
                    ))?;
                }
            }
            Mark::Cross => top.draw(&Cross::new((x + 14, y), 6, style))?,
        }
        top.draw(&Text::new(
            entry.label.to_owned(),
            (x + 36, y),
            label_style.clone(),
        ))?;
    }
    Ok(body)
}

/// Milliseconds from microseconds.
fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// The top of an axis showing values up to `max`: a little headroom, and
/// 1 for an all-zero series (an empty range cannot be drawn).
fn axis_top(max: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * 1.1
    } else {
        1.0
    }
}

/// An axis label for `value` on an axis ending at `top`: as many decimals
/// as the ticks of that range need.
fn tick(value: f64, top: f64) -> String {
    let decimals = if top >= 20.0 {
        0
    } else if top >= 2.0 {
        1
    } else if top >= 0.2 {
        2
    } else {
        3
    };
    format!("{value:.decimals$}")
}

/// A latency for a label: `850 µs`, `1.25 ms`, `12.5 ms`, `2.5 s`.
pub(crate) fn human_us(us: u64) -> String {
    if us < 1000 {
        format!("{us} µs")
    } else if us < 10_000 {
        format!("{} ms", trim_zeros(&format!("{:.2}", ms(us))))
    } else if us < 1_000_000 {
        format!("{} ms", trim_zeros(&format!("{:.1}", ms(us))))
    } else {
        format!("{} s", trim_zeros(&format!("{:.2}", us as f64 / 1e6)))
    }
}

/// `1.50` -> `1.5`, `2.00` -> `2`.
fn trim_zeros(number: &str) -> String {
    if number.contains('.') {
        number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    } else {
        number.to_owned()
    }
}

/// The seconds the windows cover (1 if they cover none, to keep the axis
/// drawable).
fn period_seconds(windows: &[WindowReport]) -> f64 {
    let end_ms = windows
        .iter()
        .map(|w| w.start_ms + w.duration_ms)
        .max()
        .unwrap_or(0);
    if end_ms == 0 {
        1.0
    } else {
        end_ms as f64 / 1000.0
    }
}

/// The middle of a window, seconds into the measured period: where its
/// figures are plotted.
fn middle(window: &WindowReport) -> f64 {
    (window.start_ms as f64 + window.duration_ms as f64 / 2.0) / 1000.0
}

/// The unbroken runs of windows that have a value: a window without
/// answers has no latency, and the line breaks there instead of diving to 0.
fn segments(
    windows: &[WindowReport],
    value: impl Fn(&WindowReport) -> Option<f64>,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    for window in windows {
        match value(window) {
            Some(y) => runs
                .last_mut()
                .expect("never empty")
                .push((middle(window), y)),
            None if runs.last().is_some_and(|run| !run.is_empty()) => runs.push(Vec::new()),
            None => {}
        }
    }
    runs.retain(|run| !run.is_empty());
    runs
}

/// p50, p95 and p99 of each window over the measured period, in ms.
///
/// Windows without answers leave a gap; "no data" if no window has one.
pub fn latency_over_time_svg(report: &BenchmarkReport) -> String {
    let title = "Latency per window (p50, p95, p99)";
    let windows = &report.windows;
    if !windows.iter().any(|w| w.latency.count > 0) {
        return no_data(
            title,
            "no request got an answer, so no latency was measured",
        );
    }
    type Percentile = fn(&WindowReport) -> u64;
    let lines: [(&str, RGBColor, Percentile); 3] = [
        ("p50", P50, |w| w.latency.p50_us),
        ("p95", P95, |w| w.latency.p95_us),
        ("p99", P99, |w| w.latency.p99_us),
    ];
    render(title, |root| {
        let legend: Vec<Legend<'_>> = lines
            .iter()
            .map(|&(label, color, _)| Legend::line(label, color))
            .collect();
        let body = header(root, title, &legend)?;
        let x_top = period_seconds(windows);
        let y_top = axis_top(
            windows
                .iter()
                .filter(|w| w.latency.count > 0)
                .map(|w| ms(w.latency.p99_us))
                .fold(0.0, f64::max),
        );
        let mut chart = framed(&body, 28).build_cartesian_2d(0.0..x_top, 0.0..y_top)?;
        time_mesh(&mut chart, x_top, y_top, "latency (ms)")?;
        for (_, color, percentile) in lines {
            let line = ShapeStyle::from(&color).stroke_width(2);
            for run in segments(windows, |w| {
                (w.latency.count > 0).then(|| ms(percentile(w)))
            }) {
                chart.draw_series(LineSeries::new(run.iter().copied(), line))?;
                // A marker per window while they stay apart; a lone point
                // (between gaps) always gets one, or it would not show.
                if windows.len() <= MAX_MARKERS || run.len() == 1 {
                    chart.draw_series(
                        run.iter()
                            .map(|&point| Circle::new(point, 3, color.filled())),
                    )?;
                }
            }
        }
        Ok(())
    })
}

/// Requests per second and errors per second of each window, as steps
/// (a window's rate holds over the whole window).
///
/// "no data" if the run has no windows.
pub fn throughput_over_time_svg(report: &BenchmarkReport) -> String {
    let title = "Throughput per window (requests/s, errors/s)";
    let windows: Vec<&WindowReport> = report
        .windows
        .iter()
        .filter(|w| w.duration_ms > 0)
        .collect();
    if windows.is_empty() {
        return no_data(title, "the run has no measured windows");
    }
    let steps = |rate: &dyn Fn(&WindowReport) -> f64| -> Vec<(f64, f64)> {
        windows
            .iter()
            .flat_map(|w| {
                let start = w.start_ms as f64 / 1000.0;
                let end = (w.start_ms + w.duration_ms) as f64 / 1000.0;
                [(start, rate(w)), (end, rate(w))]
            })
            .collect()
    };
    let requests = steps(&|w| w.requests_per_second);
    let errors = steps(&|w| w.errors as f64 * 1000.0 / w.duration_ms as f64);
    render(title, |root| {
        let legend = [
            Legend::line("requests/s", THROUGHPUT),
            Legend::line("errors/s", ERRORS),
        ];
        let body = header(root, title, &legend)?;
        let x_top = period_seconds(&report.windows);
        let y_top = axis_top(
            requests
                .iter()
                .chain(&errors)
                .map(|p| p.1)
                .fold(0.0, f64::max),
        );
        let mut chart = framed(&body, 28).build_cartesian_2d(0.0..x_top, 0.0..y_top)?;
        time_mesh(&mut chart, x_top, y_top, "per second")?;
        chart.draw_series(
            AreaSeries::new(requests.iter().copied(), 0.0, THROUGHPUT.mix(0.15))
                .border_style(THROUGHPUT.stroke_width(2)),
        )?;
        chart.draw_series(
            AreaSeries::new(errors.iter().copied(), 0.0, ERRORS.mix(0.2))
                .border_style(ERRORS.stroke_width(2)),
        )?;
        Ok(())
    })
}

/// The grid and axes of a chart over the measured period.
/// The frame every chart shares: margins and room for the axis labels;
/// `margin_right` leaves room for a right-hand axis or the last label.
fn framed<'a, 'b>(
    body: &'a DrawingArea<SVGBackend<'b>, Shift>,
    margin_right: u32,
) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(body);
    builder
        .margin_left(14)
        .margin_right(margin_right)
        .margin_bottom(8)
        .x_label_area_size(56)
        .y_label_area_size(78);
    builder
}

fn time_mesh(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x_top: f64,
    y_top: f64,
    y_desc: &str,
) -> DrawResult {
    let x_label = |x: &f64| tick(*x, x_top.min(19.0) * 2.0);
    let y_label = |y: &f64| tick(*y, y_top);
    chart
        .configure_mesh()
        .x_desc("time into the measured period (s)")
        .y_desc(y_desc)
        .x_labels(10)
        .y_labels(8)
        .x_label_formatter(&x_label)
        .y_label_formatter(&y_label)
        .label_style((FONT, LABEL_SIZE).into_font().color(&TEXT))
        .axis_desc_style((FONT, DESC_SIZE).into_font().color(&TEXT))
        .axis_style(AXIS)
        .bold_line_style(GRID)
        .light_line_style(GRID_FAINT)
        .max_light_lines(1)
        .draw()?;
    Ok(())
}

/// Ten bounds per power of ten, as the engine's distribution uses them
/// (`histogram.rs`): to find the lower bound of the first bucket.
const R10: [f64; 10] = [1.0, 1.25, 1.6, 2.0, 2.5, 3.15, 4.0, 5.0, 6.3, 8.0];

/// The bound below `upper` in the engine's bucket series (the lower bound
/// of the bucket that `upper` closes); 80 % of `upper` below the series'
/// first bound, 10 µs.
fn bound_below(upper: u64) -> u64 {
    let mut previous = None;
    let mut decade = 10.0_f64;
    loop {
        for step in R10 {
            // Rounded as the engine rounds them.
            let bound = (step * decade).round() as u64;
            if bound >= upper {
                return previous.unwrap_or(upper * 4 / 5);
            }
            previous = Some(bound);
        }
        decade *= 10.0;
    }
}

/// Whether `bound` is 1, 2 or 5 times a power of ten: the bounds that get
/// a label when there are too many buckets to label them all.
fn is_round(bound: u64) -> bool {
    let mut mantissa = bound;
    while mantissa >= 10 && mantissa.is_multiple_of(10) {
        mantissa /= 10;
    }
    matches!(mantissa, 1 | 2 | 5)
}

/// Where `us` falls on the bucket axis: bucket `i` spans `i..i+1`, and
/// within it the position is logarithmic, like the buckets.
fn bucket_position(buckets: &[LatencyBucket], us: u64) -> Option<f64> {
    let index = buckets.iter().position(|b| us <= b.upper_us)?;
    let upper = buckets[index].upper_us as f64;
    let lower = if index == 0 {
        bound_below(buckets[0].upper_us) as f64
    } else {
        buckets[index - 1].upper_us as f64
    };
    let within = if upper > lower && us as f64 > lower {
        ((us as f64).ln() - lower.ln()) / (upper.ln() - lower.ln())
    } else {
        0.0
    };
    Some(index as f64 + within.clamp(0.0, 1.0))
}

/// How the answers' latencies spread: one bar per log-spaced bucket of
/// `report.latency_distribution`, labelled with the bucket bounds, and
/// dashed lines where p50, p95 and p99 fall.
///
/// "no data" for a run without answers.
pub fn latency_histogram_svg(report: &BenchmarkReport) -> String {
    let title = "Latency distribution (log-spaced buckets)";
    let buckets = &report.latency_distribution;
    let tallest = buckets.iter().map(|b| b.count).max().unwrap_or(0);
    if tallest == 0 {
        return no_data(
            title,
            "no request got an answer, so no latency was measured",
        );
    }
    // Boundary k is the lower bound of bucket k (the upper of k - 1).
    let bound_at = |k: usize| match k {
        0 => bound_below(buckets[0].upper_us),
        k => buckets[k - 1].upper_us,
    };
    let positions: Vec<usize> = if buckets.len() <= 10 {
        (0..=buckets.len()).collect()
    } else {
        (0..=buckets.len())
            .filter(|&k| is_round(bound_at(k)))
            .collect()
    };
    let markers = [
        ("p50", P50, report.latency.p50_us),
        ("p95", P95, report.latency.p95_us),
        ("p99", P99, report.latency.p99_us),
    ];
    render(title, |root| {
        let mut legend = vec![Legend::line("answers per bucket", BARS)];
        legend.extend(
            markers
                .iter()
                .map(|&(label, color, _)| Legend::dashed(label, color)),
        );
        let body = header(root, title, &legend)?;
        let columns = i32::try_from(buckets.len()).unwrap_or(i32::MAX);
        // Whole counts on the y axis: an integer range has integer ticks.
        let y_top = tallest + (tallest / 10).max(1);
        let key_points: Vec<i32> = positions
            .iter()
            .map(|&k| i32::try_from(k).unwrap_or(columns))
            .collect();
        let mut chart = framed(&body, 40)
            .build_cartesian_2d((0..columns).with_key_points(key_points), 0..y_top)?
            // The same plot in continuous coordinates, for the percentile
            // lines that fall inside a bucket.
            .set_secondary_coord(0.0..f64::from(columns), 0.0..y_top as f64);
        let x_label = |k: &i32| {
            human_us(bound_at(
                usize::try_from(*k).unwrap_or(0).min(buckets.len()),
            ))
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("latency: bucket bounds (log scale)")
            .y_desc("answers")
            .y_labels(8)
            .x_label_formatter(&x_label)
            .label_style((FONT, LABEL_SIZE).into_font().color(&TEXT))
            .axis_desc_style((FONT, DESC_SIZE).into_font().color(&TEXT))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(GRID_FAINT)
            .max_light_lines(1)
            .draw()?;
        chart.draw_series(
            buckets
                .iter()
                .zip(0..)
                .filter(|(b, _)| b.count > 0)
                .map(|(b, i)| {
                    let mut bar = Rectangle::new([(i, 0), (i + 1, b.count)], BARS.filled());
                    bar.set_margin(0, 0, 1, 1);
                    bar
                }),
        )?;
        for (_, color, us) in markers {
            if let Some(x) = bucket_position(buckets, us) {
                chart.draw_secondary_series(DashedLineSeries::new(
                    [(x, 0.0), (x, y_top as f64)],
                    7,
                    5,
                    color.stroke_width(2),
                ))?;
            }
        }
        Ok(())
    })
}

const KNEE: RGBColor = RGBColor(74, 85, 104);
const SUSTAINABLE: RGBColor = RGBColor(47, 133, 90);
const MEMORY: RGBColor = RGBColor(107, 70, 193);

/// The stress curve: throughput (successful and all requests per second,
/// left axis) and p95 latency (right axis) against users, one point per
/// step; a red cross marks a step that broke a limit, dashed lines the
/// knee and the last sustainable load, and the p95 limit when it is in
/// view.
///
/// "no data" for a stress test without steps.
pub fn stress_curve_svg(stress: &StressReport) -> String {
    let title = "Stress curve: throughput and p95 against users";
    let steps = &stress.steps;
    if steps.is_empty() {
        return no_data(title, "the stress test ran no step");
    }
    let max_users = steps.iter().map(|s| s.users).max().unwrap_or(0);
    let x_top = max_users + (max_users / 12).max(1);
    let rps_top = axis_top(
        steps
            .iter()
            .map(|s| s.requests_per_second.max(s.successes_per_second))
            .fold(0.0, f64::max),
    );
    let answered: Vec<(usize, f64)> = steps
        .iter()
        .filter(|s| s.latency.count > 0)
        .map(|s| (s.users, ms(s.latency.p95_us)))
        .collect();
    let p95_max = answered.iter().map(|p| p.1).fold(0.0, f64::max);
    let limit = ms(stress.plan.max_p95_us);
    // The limit line is worth showing when it is near the curve; far above
    // it would squash the curve flat (the table still says the limit).
    let show_limit = limit > 0.0 && (p95_max == 0.0 || limit <= 2.0 * p95_max);
    let p95_top = axis_top(if show_limit {
        p95_max.max(limit)
    } else {
        p95_max
    });
    // The knee and the last sustainable load are often the same step: one
    // line then, named for both.
    let markers: Vec<(Option<usize>, &str, RGBColor)> =
        if stress.knee_users.is_some() && stress.knee_users == stress.last_sustainable_users {
            vec![(stress.knee_users, "knee = last sustainable", SUSTAINABLE)]
        } else {
            vec![
                (stress.knee_users, "knee", KNEE),
                (
                    stress.last_sustainable_users,
                    "last sustainable",
                    SUSTAINABLE,
                ),
            ]
        };
    render(title, |root| {
        let mut legend = vec![
            Legend::line("successes/s", THROUGHPUT),
            Legend::dashed("requests/s", THROUGHPUT),
            Legend::line("p95 (right axis)", P95),
        ];
        if show_limit {
            legend.push(Legend::dashed("p95 limit", P95));
        }
        for (users, label, color) in &markers {
            if users.is_some() {
                legend.push(Legend::dashed(label, *color));
            }
        }
        if steps.iter().any(|s| !s.sustainable) {
            legend.push(Legend::cross("broke a limit", ERRORS));
        }
        let body = header(root, title, &legend)?;
        let mut chart = framed(&body, 14)
            .right_y_label_area_size(78)
            .build_cartesian_2d(0..x_top, 0.0..rps_top)?
            .set_secondary_coord(0..x_top, 0.0..p95_top);
        let rps_label = |y: &f64| tick(*y, rps_top);
        let p95_label = |y: &f64| tick(*y, p95_top);
        chart
            .configure_mesh()
            .x_desc("virtual users")
            .y_desc("requests per second")
            .x_labels(12)
            .y_labels(8)
            .y_label_formatter(&rps_label)
            .label_style((FONT, LABEL_SIZE).into_font().color(&TEXT))
            .axis_desc_style((FONT, DESC_SIZE).into_font().color(&TEXT))
            .axis_style(AXIS)
            .bold_line_style(GRID)
            .light_line_style(GRID_FAINT)
            .max_light_lines(1)
            .draw()?;
        chart
            .configure_secondary_axes()
            .y_desc("p95 latency (ms)")
            .y_labels(8)
            .y_label_formatter(&p95_label)
            .label_style((FONT, LABEL_SIZE).into_font().color(&P95))
            .axis_desc_style((FONT, DESC_SIZE).into_font().color(&P95))
            .axis_style(AXIS)
            .draw()?;
        for &(users, _, color) in &markers {
            if let Some(users) = users {
                chart.draw_series(DashedLineSeries::new(
                    [(users, 0.0), (users, rps_top)],
                    8,
                    6,
                    color.stroke_width(2),
                ))?;
            }
        }
        if show_limit {
            chart.draw_secondary_series(DashedLineSeries::new(
                [(0, limit), (x_top, limit)],
                8,
                6,
                P95.mix(0.7).stroke_width(2),
            ))?;
        }
        let requests: Vec<(usize, f64)> = steps
            .iter()
            .map(|s| (s.users, s.requests_per_second))
            .collect();
        let successes: Vec<(usize, f64)> = steps
            .iter()
            .map(|s| (s.users, s.successes_per_second))
            .collect();
        chart.draw_series(DashedLineSeries::new(
            requests,
            7,
            5,
            THROUGHPUT.mix(0.6).stroke_width(2),
        ))?;
        chart.draw_series(LineSeries::new(
            successes.iter().copied(),
            THROUGHPUT.stroke_width(2),
        ))?;
        chart.draw_secondary_series(LineSeries::new(
            answered.iter().copied(),
            P95.stroke_width(2),
        ))?;
        for (step, &point) in steps.iter().zip(&successes) {
            if step.sustainable {
                chart.draw_series([Circle::new(point, 4, THROUGHPUT.filled())])?;
            } else {
                chart.draw_series([Cross::new(point, 6, ERRORS.stroke_width(3))])?;
            }
        }
        for (step, &point) in steps.iter().filter(|s| s.latency.count > 0).zip(&answered) {
            if step.sustainable {
                chart.draw_secondary_series([Circle::new(point, 4, P95.filled())])?;
            } else {
                chart.draw_secondary_series([Cross::new(point, 6, ERRORS.stroke_width(3))])?;
            }
        }
        Ok(())
    })
}

/// The target's resident memory over an endurance run, in MiB, one point
/// per sample. The y axis spans the samples (not from 0): a slow leak of a
/// few percent must show.
///
/// "no data" without samples (no metrics URL, or every scrape failed).
pub fn memory_svg(endurance: &EnduranceReport) -> String {
    let title = "Resident memory of the target";
    let samples = &endurance.memory;
    if samples.is_empty() {
        return no_data(
            title,
            "no memory sample: no metrics URL was given, or no scrape returned the gauge",
        );
    }
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let points: Vec<(f64, f64)> = samples
        .iter()
        .map(|s| (s.at_ms as f64 / 1000.0, mib(s.resident_bytes)))
        .collect();
    let lowest = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let highest = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let pad = ((highest - lowest) * 0.15).max(highest * 0.02).max(0.5);
    let (y_low, y_top) = ((lowest - pad).max(0.0), highest + pad);
    let x_top = period_seconds(&endurance.run.windows)
        .max(points.iter().map(|p| p.0).fold(0.0, f64::max) * 1.02)
        .max(1.0);
    render(title, |root| {
        let legend = [Legend::line("resident memory (MiB)", MEMORY)];
        let body = header(root, title, &legend)?;
        let mut chart = framed(&body, 28).build_cartesian_2d(0.0..x_top, y_low..y_top)?;
        time_mesh(&mut chart, x_top, y_top - y_low, "resident memory (MiB)")?;
        chart.draw_series(LineSeries::new(
            points.iter().copied(),
            MEMORY.stroke_width(2),
        ))?;
        chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, MEMORY.filled())))?;
        Ok(())
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A report with `windows` one-second windows; with answers, window i
    /// has p50/p95/p99 of (10, 20, 30) ms times i + 1 and a latency
    /// distribution from 8 ms to 100 ms; without, every request failed.
    pub(crate) fn sample_report(windows: usize, answers: bool) -> BenchmarkReport {
        let latency = |scale: u64| {
            let count = if answers { 100 } else { 0 };
            let at = |ms: u64| if answers { ms * 1000 * scale } else { 0 };
            serde_json::json!({
                "count": count, "min_us": at(5), "mean_us": at(12) as f64, "stdev_us": 1.0,
                "p50_us": at(10), "p90_us": at(18), "p95_us": at(20), "p99_us": at(30),
                "p999_us": at(40), "max_us": at(50)
            })
        };
        let windows: Vec<_> = (0..windows as u64)
            .map(|i| {
                serde_json::json!({
                    "start_ms": i * 1000, "duration_ms": 1000, "requests": 100,
                    "errors": if answers { i } else { 100 }, "requests_per_second": 100.0,
                    "latency": latency(i + 1)
                })
            })
            .collect();
        let distribution: Vec<_> = if answers {
            [
                (8000, 5),
                (10_000, 40),
                (12_500, 30),
                (16_000, 0),
                (20_000, 20),
                (25_000, 0),
            ]
            .iter()
            .chain(&[
                (31_500, 0),
                (40_000, 0),
                (50_000, 0),
                (63_000, 0),
                (80_000, 2),
                (100_000, 3),
            ])
            .map(|&(upper_us, count)| serde_json::json!({"upper_us": upper_us, "count": count}))
            .collect()
        } else {
            Vec::new()
        };
        let json = serde_json::json!({
            "schema_version": 1, "name": "checkout <v2> & \"friends\"", "kind": "http",
            "target": "http://127.0.0.1:8080/api?", "model": "closed",
            "started_at": "2026-03-01T12:00:00.000Z",
            "settings": { "users": 8, "duration_ms": windows.len() as u64 * 1000, "ramp_up_ms": 0,
                "think_time_ms": 0, "request_timeout_ms": 30000, "rate_per_second": null,
                "method": "GET", "window_ms": 1000 },
            "wall_time_ms": 3000, "requests": 100 * windows.len() as u64,
            "successes": if answers { 97 } else { 0 }, "warmup_requests": 0, "dropped": 0, "late": 0,
            "requests_per_second": 100.0, "latency": latency(1),
            "latency_distribution": distribution,
            "status_codes": if answers { serde_json::json!({"200": 97, "503": 3}) } else { serde_json::json!({}) },
            "errors": { "connect": if answers { 0 } else { 100 * windows.len() as u64 }, "timeout": 0,
                "http_status": if answers { 3 } else { 0 }, "other": 0 },
            "windows": windows,
        });
        BenchmarkReport::from_json(&json.to_string()).expect("a valid report")
    }

    /// A stress test with one step per entry of `steps`: (users,
    /// successes/s, p95 ms, sustainable); p95 0 means no answers.
    pub(crate) fn sample_stress(
        steps: &[(usize, f64, u64, bool)],
        knee: Option<usize>,
    ) -> StressReport {
        let last_sustainable = steps.iter().rev().find(|s| s.3).map(|s| s.0);
        let steps: Vec<_> = steps
            .iter()
            .map(|&(users, rate, p95_ms, sustainable)| {
                let count = u64::from(p95_ms > 0);
                serde_json::json!({
                    "users": users, "rate_per_second": null, "requests": 100, "successes": 100,
                    "requests_per_second": rate, "successes_per_second": rate, "error_rate": 0.0,
                    "errors": {"connect": 0, "timeout": 0, "http_status": 0, "other": 0},
                    "dropped": 0,
                    "latency": {"count": count * 100, "min_us": 0, "mean_us": 0.0, "stdev_us": 0.0,
                        "p50_us": p95_ms * 500, "p90_us": p95_ms * 900, "p95_us": p95_ms * 1000,
                        "p99_us": p95_ms * 1100, "p999_us": p95_ms * 1200, "max_us": p95_ms * 1300},
                    "sustainable": sustainable,
                    "broken": if sustainable { serde_json::json!([]) } else { serde_json::json!(["p95"]) },
                    "failure": null
                })
            })
            .collect();
        let json = serde_json::json!({
            "schema_version": 1, "name": "stress <a>", "target": "http://127.0.0.1:8080/",
            "started_at": "2026-03-01T12:00:00.000Z",
            "plan": {"model": "closed", "base_users": 1, "max_users": 10, "step_size": 1,
                "step_duration_ms": 1000, "ramp_up_ms": 0, "rate_per_user": null,
                "max_p95_us": 100_000, "max_error_rate": 0.01},
            "steps": steps, "last_sustainable_users": last_sustainable, "knee_users": knee,
            "stop_reason": if steps.iter().all(|s| s["sustainable"] == true) { "max_users" } else { "broken" },
        });
        StressReport::from_json(&json.to_string()).expect("a valid stress report")
    }

    /// An endurance run of 5 windows with `samples` memory samples (MiB)
    /// half a second apart, and one flagged drift.
    pub(crate) fn sample_endurance(samples: &[u64]) -> EnduranceReport {
        let run = serde_json::to_value(sample_report(5, true)).expect("serialises");
        let memory: Vec<_> = samples
            .iter()
            .zip(0_u64..)
            .map(|(mib, i)| serde_json::json!({"at_ms": i * 500, "resident_bytes": mib * 1024 * 1024}))
            .collect();
        let json = serde_json::json!({
            "schema_version": 1, "run": run, "drift_tolerance": 0.25,
            "metrics_url": "http://127.0.0.1:8080/metrics", "memory": memory, "memory_gaps": 0,
            "last_scrape_error": null, "compared_windows": 1,
            "drift": [
                {"metric": "p95_us", "first": 20000.0, "last": 100000.0, "change": 4.0, "flagged": true,
                 "slope_per_hour": null},
                {"metric": "resident_memory_bytes", "first": 1048576.0, "last": 2097152.0, "change": 1.0,
                 "flagged": true, "slope_per_hour": 3600.0}
            ],
            "no_verdict": null,
        });
        EnduranceReport::from_json(&json.to_string()).expect("a valid endurance report")
    }

    fn is_chart(svg: &str) -> bool {
        svg.starts_with("<svg class=\"chart\"") && svg.trim_end().ends_with("</svg>")
    }

    #[test]
    fn charts_of_a_run_with_answers_are_svg_with_labelled_axes() {
        let report = sample_report(5, true);
        let over_time = latency_over_time_svg(&report);
        assert!(is_chart(&over_time), "{over_time}");
        assert!(over_time.contains("latency (ms)"));
        assert!(over_time.contains("time into the measured period (s)"));
        // Three percentile lines and a marker per window each.
        for color in ["#2B6CB0", "#DD6B20", "#C53030"] {
            let line = format!(
                "<polyline fill=\"none\" opacity=\"1\" stroke=\"{color}\" stroke-width=\"2\" points"
            );
            // One unbroken line per percentile (the legend's are thicker).
            assert_eq!(over_time.matches(&line).count(), 1, "{color}: {over_time}");
        }
        assert_eq!(over_time.matches("<circle").count(), 15);
        let throughput = throughput_over_time_svg(&report);
        assert!(is_chart(&throughput), "{throughput}");
        assert!(throughput.contains("requests/s") && throughput.contains("errors/s"));
        let histogram = latency_histogram_svg(&report);
        assert!(is_chart(&histogram), "{histogram}");
        // One bar per non-empty bucket (six), after the white background.
        assert_eq!(histogram.matches("<rect").count(), 1 + 6, "{histogram}");
        // More than 12 buckets: only 1-2-5 bounds are labelled.
        assert!(histogram.contains("\n10 ms\n") && histogram.contains("\n20 ms\n"));
        assert!(!histogram.contains("\n12.5 ms\n"), "{histogram}");
    }

    #[test]
    fn a_run_without_answers_says_no_data_instead_of_panicking() {
        let report = sample_report(3, false);
        for chart in [
            latency_over_time_svg(&report),
            latency_histogram_svg(&report),
        ] {
            assert!(
                chart.contains("no-data") && !chart.contains("<svg"),
                "{chart}"
            );
        }
        // Throughput is still there: 100 requests/s, all failed.
        assert!(is_chart(&throughput_over_time_svg(&report)));
        let no_windows = sample_report(0, false);
        assert!(throughput_over_time_svg(&no_windows).contains("no-data"));
        assert!(latency_over_time_svg(&no_windows).contains("no-data"));
    }

    #[test]
    fn one_window_draws_a_point_not_an_empty_range() {
        let report = sample_report(1, true);
        let chart = latency_over_time_svg(&report);
        assert!(is_chart(&chart), "{chart}");
        assert_eq!(chart.matches("<circle").count(), 3);
        assert!(is_chart(&throughput_over_time_svg(&report)));
    }

    #[test]
    fn a_long_run_gets_lines_without_a_marker_per_window() {
        let mut report = sample_report(MAX_MARKERS + 1, true);
        let chart = latency_over_time_svg(&report);
        assert_eq!(chart.matches("<circle").count(), 0);
        // A lone window between gaps keeps its marker.
        report.windows[9].latency = Default::default();
        report.windows[11].latency = Default::default();
        let chart = latency_over_time_svg(&report);
        assert_eq!(chart.matches("<circle").count(), 3, "{chart}");
    }

    #[test]
    fn a_window_without_answers_breaks_the_line() {
        let mut report = sample_report(4, true);
        report.windows[1].latency = Default::default();
        let chart = latency_over_time_svg(&report);
        // Each percentile: one point, then a gap, then two points.
        assert_eq!(chart.matches("<circle").count(), 9, "{chart}");
    }

    #[test]
    fn bucket_bounds_and_positions_follow_the_engines_series() {
        assert_eq!(bound_below(1000), 800);
        assert_eq!(bound_below(1250), 1000);
        assert_eq!(bound_below(10), 8);
        assert_eq!(bound_below(3150), 2500);
        assert!(is_round(1000) && is_round(20_000) && is_round(5) && !is_round(1250));
        let buckets = sample_report(1, true).latency_distribution;
        // 10 ms is the upper bound of the second bucket: the end of it.
        assert_eq!(bucket_position(&buckets, 10_000), Some(2.0));
        let inside = bucket_position(&buckets, 11_000).expect("in range");
        assert!(inside > 2.0 && inside < 3.0, "{inside}");
        assert_eq!(bucket_position(&buckets, 200_000), None);
        assert_eq!(human_us(850), "850 µs");
        assert_eq!(human_us(1250), "1.25 ms");
        assert_eq!(human_us(20_000), "20 ms");
        assert_eq!(human_us(2_500_000), "2.5 s");
    }

    #[test]
    fn text_in_a_chart_is_escaped() {
        let chart = no_data("a <b>", "c & d");
        assert!(
            chart.contains("a &lt;b&gt;") && chart.contains("c &amp; d"),
            "{chart}"
        );
    }

    #[test]
    fn the_stress_curve_marks_broken_steps_and_the_knee() {
        let stress = sample_stress(
            &[
                (1, 10.0, 20, true),
                (2, 20.0, 22, true),
                (3, 22.0, 60, true),
                (4, 22.0, 150, false),
            ],
            Some(2),
        );
        let chart = stress_curve_svg(&stress);
        assert!(is_chart(&chart), "{chart}");
        assert!(chart.contains("virtual users") && chart.contains("p95 latency (ms)"));
        // Knee (2) and last sustainable (3) differ: two legend entries.
        assert!(chart.contains("\nknee\n") && chart.contains("\nlast sustainable\n"));
        // Three sustainable steps on two curves; the broken one a cross
        // on each (a cross is two lines) plus the legend's.
        assert_eq!(chart.matches("<circle").count(), 6, "{chart}");
        assert!(chart.contains("broke a limit"));
        // The p95 limit (100 ms) is near the curve (150 ms): drawn.
        assert!(chart.contains("\np95 limit\n"));
    }

    #[test]
    fn a_stress_curve_of_one_step_or_none_draws_or_says_no_data() {
        let one = sample_stress(&[(5, 50.0, 20, true)], Some(5));
        let chart = stress_curve_svg(&one);
        assert!(is_chart(&chart), "{chart}");
        assert!(chart.contains("knee = last sustainable"));
        // The limit (100 ms) is far above the curve (20 ms): not drawn.
        assert!(!chart.contains("\np95 limit\n"));
        // A first step that never got an answer: throughput only.
        let unanswered = sample_stress(&[(1, 0.0, 0, false)], None);
        assert!(is_chart(&stress_curve_svg(&unanswered)));
        let none = sample_stress(&[], None);
        assert!(stress_curve_svg(&none).contains("no-data"));
    }

    #[test]
    fn memory_is_drawn_from_its_samples_or_says_none_was_taken() {
        let chart = memory_svg(&sample_endurance(&[100, 102, 104, 103, 108]));
        assert!(is_chart(&chart), "{chart}");
        assert!(chart.contains("resident memory (MiB)"));
        assert_eq!(chart.matches("<circle").count(), 5);
        // Flat memory: still a range to draw on.
        assert!(is_chart(&memory_svg(&sample_endurance(&[64]))));
        assert!(memory_svg(&sample_endurance(&[])).contains("no-data"));
    }
}
