//! Charts drawn on the server as SVG: no script, no charting library, no
//! request for anything. This module lays a chart out (every coordinate is
//! computed here, in whole SVG units, so it is tested without a browser);
//! the templates `console/bar_line_chart.html` and `console/bar_list.html`
//! only write the shapes down. Colours come from CSS classes (`series-a`,
//! `series-b`) and `currentColor`, so the page's light or dark scheme
//! colours the chart too. Each chart has a `<title>` and a `<desc>` that
//! says in words what it shows, and a table of its numbers beside it.

use askama::Template;

/// A label at a position along an axis (SVG units).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tick {
    pub at: i64,
    pub label: String,
}

/// A rectangle, with the words a pointer or screen reader gets for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bar {
    pub x: i64,
    pub y: i64,
    pub width: i64,
    pub height: i64,
    pub title: String,
}

/// A point of the line series.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dot {
    pub x: i64,
    pub y: i64,
    pub title: String,
}

/// One series: its name (in the legend) and a value per slot.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: String,
    pub values: Vec<i64>,
}

/// What a bar-and-line chart shows: one slot per label, the first series as
/// bars, the second (if any) as a line over them, on one vertical scale.
#[derive(Debug, Clone)]
pub struct BarLineSpec {
    /// Unique on the page: the SVG's `<title>`/`<desc>` ids derive from it.
    pub id: &'static str,
    pub title: String,
    /// The chart in words, for people who cannot see it.
    pub description: String,
    /// One per slot, e.g. a date; shown under every `label_every`th slot.
    pub labels: Vec<String>,
    pub label_every: usize,
    pub bars: Series,
    pub line: Option<Series>,
}

const WIDTH: i64 = 640;
const HEIGHT: i64 = 240;
const LEFT: i64 = 56;
const RIGHT: i64 = 12;
const TOP: i64 = 12;
const BOTTOM: i64 = 28;

/// A laid-out bar-and-line chart.
#[derive(Template, Debug)]
#[template(path = "console/bar_line_chart.html")]
pub struct BarLineChart {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub width: i64,
    pub height: i64,
    /// The plot area: x from `left` to `right`, y from `TOP` to `bottom`.
    pub left: i64,
    pub right: i64,
    pub bottom: i64,
    /// Horizontal grid lines with their values (`at` is y).
    pub y_ticks: Vec<Tick>,
    /// Slot labels (`at` is the slot's centre).
    pub x_ticks: Vec<Tick>,
    pub bars: Vec<Bar>,
    pub bars_name: String,
    /// `points` of the line's `<polyline>`; empty without a line series.
    pub line: String,
    pub dots: Vec<Dot>,
    pub line_name: Option<String>,
}

/// Lays out `spec`. Slots share the plot's width; the scale's top is a
/// round number (1, 2 or 5 times a power of ten) at or above the largest
/// value, with a grid line at each step.
pub fn bar_line_chart(spec: BarLineSpec) -> BarLineChart {
    let (left, right, top, bottom) = (LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM);
    let slots = spec.labels.len().max(1) as i64;
    let largest = spec.bars.values.iter().chain(spec.line.iter().flat_map(|line| &line.values)).copied().max();
    let (scale_top, step) = scale(largest.unwrap_or(0));
    let y_of = |value: i64| bottom - (value.max(0) * (bottom - top)) / scale_top;
    let slot_left = |slot: i64| left + slot * (right - left) / slots;
    let centre = |slot: i64| (slot_left(slot) + slot_left(slot + 1)) / 2;
    let y_ticks = (0..=scale_top / step).map(|n| Tick { at: y_of(n * step), label: (n * step).to_string() }).collect();
    let every = spec.label_every.max(1);
    let x_ticks = spec
        .labels
        .iter()
        .enumerate()
        .filter(|(slot, _)| slot % every == 0)
        .map(|(slot, label)| Tick { at: centre(slot as i64), label: label.clone() })
        .collect();
    let bars = spec
        .bars
        .values
        .iter()
        .zip(&spec.labels)
        .enumerate()
        .map(|(slot, (&value, label))| {
            let slot = slot as i64;
            let slot_width = slot_left(slot + 1) - slot_left(slot);
            let width = (slot_width * 2 / 3).max(1);
            let y = y_of(value);
            Bar {
                x: centre(slot) - width / 2,
                y,
                width,
                height: bottom - y,
                title: format!("{label}: {value} {}", spec.bars.name),
            }
        })
        .collect();
    let dots: Vec<Dot> = spec
        .line
        .iter()
        .flat_map(|line| {
            line.values.iter().zip(&spec.labels).enumerate().map(|(slot, (&value, label))| Dot {
                x: centre(slot as i64),
                y: y_of(value),
                title: format!("{label}: {value} {}", line.name),
            })
        })
        .collect();
    let line = dots.iter().map(|dot| format!("{},{}", dot.x, dot.y)).collect::<Vec<_>>().join(" ");
    BarLineChart {
        id: spec.id,
        title: spec.title,
        description: spec.description,
        width: WIDTH,
        height: HEIGHT,
        left,
        right,
        bottom,
        y_ticks,
        x_ticks,
        bars,
        bars_name: spec.bars.name,
        line,
        dots,
        line_name: spec.line.map(|line| line.name),
    }
}

/// A bar per row, lengths to scale, the name above each bar and the value
/// after it: for "how many per app", where the names are long and the rows
/// few. Names above bars leave every bar the chart's whole width, however
/// narrow the screen.
#[derive(Template, Debug)]
#[template(path = "console/bar_list.html")]
pub struct BarList {
    pub id: &'static str,
    pub title: String,
    pub description: String,
    pub width: i64,
    pub height: i64,
    pub rows: Vec<BarRow>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BarRow {
    pub name: String,
    pub value: i64,
    /// The baseline of the row's name.
    pub name_y: i64,
    /// The baseline of the value written after the bar.
    pub value_y: i64,
    pub bar: Bar,
}

const ROW: i64 = 52;
const BAR_HEIGHT: i64 = 20;
const VALUE_WIDTH: i64 = 80;

/// Lays out one row per `(name, value)`, in the order given; the longest
/// bar is the largest value. Names longer than 40 characters are cut with
/// "…" (the full name is in the bar's title and the table).
pub fn bar_list(id: &'static str, title: String, description: String, rows: &[(String, i64)]) -> BarList {
    let largest = rows.iter().map(|(_, value)| *value).max().unwrap_or(0).max(1);
    let span = WIDTH - VALUE_WIDTH;
    let rows = rows
        .iter()
        .enumerate()
        .map(|(index, (name, value))| {
            let top = index as i64 * ROW;
            let width = ((*value).max(0) * span / largest).max(1);
            let bar_y = top + ROW - BAR_HEIGHT - 6;
            BarRow {
                name: shorten(name, 40),
                value: *value,
                name_y: bar_y - 8,
                value_y: bar_y + BAR_HEIGHT - 4,
                bar: Bar { x: 0, y: bar_y, width, height: BAR_HEIGHT, title: format!("{name}: {value}") },
            }
        })
        .collect::<Vec<_>>();
    let height = ROW * rows.len().max(1) as i64;
    BarList { id, title, description, width: WIDTH, height, rows }
}

/// `text`, cut to `max` characters with "…" when longer.
fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max - 1).collect();
    short.push('…');
    short
}

/// The top of a scale for values up to `largest`, and its step: the step
/// is 1, 2 or 5 times a power of ten, the top at most 5 steps.
fn scale(largest: i64) -> (i64, i64) {
    let largest = largest.max(1);
    let mut power = 1_i64;
    loop {
        for factor in [1, 2, 5] {
            let step = factor * power;
            if largest <= step * 5 {
                let steps = (largest + step - 1) / step;
                return (steps * step, step);
            }
        }
        power = power.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_end_on_round_numbers() {
        assert_eq!(scale(0), (1, 1));
        assert_eq!(scale(3), (3, 1));
        assert_eq!(scale(5), (5, 1));
        assert_eq!(scale(6), (6, 2));
        assert_eq!(scale(11), (15, 5));
        assert_eq!(scale(99), (100, 20));
        assert_eq!(scale(1234), (1500, 500));
    }

    fn spec(bars: Vec<i64>, line: Vec<i64>) -> BarLineSpec {
        BarLineSpec {
            id: "t",
            title: "Sign-ins".into(),
            description: "Sign-ins per day".into(),
            labels: (1..=bars.len()).map(|day| format!("Dec {day}")).collect(),
            label_every: 2,
            bars: Series { name: "sign-ins".into(), values: bars },
            line: Some(Series { name: "failures".into(), values: line }),
        }
    }

    #[test]
    fn bars_stand_on_the_axis_and_reach_their_value() {
        let chart = bar_line_chart(spec(vec![0, 5, 10, 2], vec![1, 0, 0, 10]));
        // Top of the scale is 10: the 10 bar fills the plot, the 5 half of it.
        let plot = chart.bottom - TOP;
        assert_eq!(chart.bars[2].height, plot);
        assert_eq!(chart.bars[2].y, TOP);
        assert_eq!(chart.bars[1].height, plot / 2);
        assert_eq!(chart.bars[0].height, 0);
        for bar in &chart.bars {
            assert_eq!(bar.y + bar.height, chart.bottom, "{bar:?}");
            assert!(bar.x >= chart.left && bar.x + bar.width <= chart.right, "{bar:?}");
        }
        // Left to right, without overlapping.
        for pair in chart.bars.windows(2) {
            assert!(pair[0].x + pair[0].width < pair[1].x, "{pair:?}");
        }
        assert_eq!(chart.bars[1].title, "Dec 2: 5 sign-ins");
        // The line goes through each slot's centre at its value.
        assert_eq!(chart.dots[3].y, TOP);
        assert_eq!(chart.dots[1].y, chart.bottom);
        assert_eq!(chart.dots[3].x, chart.bars[3].x + chart.bars[3].width / 2);
        assert_eq!(chart.dots[0].title, "Dec 1: 1 failures");
        assert_eq!(chart.line.split(' ').count(), 4);
        // Every other slot labelled; grid lines at 0, 2, … 10.
        let labels: Vec<&str> = chart.x_ticks.iter().map(|tick| tick.label.as_str()).collect();
        assert_eq!(labels, ["Dec 1", "Dec 3"]);
        let values: Vec<&str> = chart.y_ticks.iter().map(|tick| tick.label.as_str()).collect();
        assert_eq!(values, ["0", "2", "4", "6", "8", "10"]);
        assert_eq!(chart.y_ticks[0].at, chart.bottom);
        assert_eq!(chart.y_ticks[5].at, TOP);
    }

    #[test]
    fn an_empty_month_draws_an_empty_chart() {
        let chart = bar_line_chart(spec(vec![0; 30], vec![0; 30]));
        assert!(chart.bars.iter().all(|bar| bar.height == 0));
        assert_eq!(chart.y_ticks.len(), 2);
    }

    #[test]
    fn the_svg_is_accessible_and_escapes_what_it_shows() {
        let mut spec = spec(vec![1, 2], vec![0, 1]);
        spec.labels[0] = "<b>&".into();
        let svg = bar_line_chart(spec).render().unwrap();
        assert!(svg.contains("<svg"), "{svg}");
        assert!(svg.contains("role=\"img\""), "{svg}");
        assert!(svg.contains("aria-labelledby=\"t-title t-desc\""), "{svg}");
        assert!(svg.contains("<title id=\"t-title\">Sign-ins</title>"), "{svg}");
        assert!(svg.contains("<desc id=\"t-desc\">Sign-ins per day</desc>"), "{svg}");
        assert!(svg.contains("&#60;b&#62;&#38;"), "{svg}");
        assert!(!svg.contains("<b>"), "{svg}");
        assert!(!svg.contains("<script"), "{svg}");
    }

    #[test]
    fn bar_lists_scale_to_the_largest_and_shorten_long_names() {
        let long = "a-very-long-application-name-that-goes-on-and-on".to_owned();
        let rows = vec![("grafana".to_owned(), 40), (long.clone(), 10)];
        let list = bar_list("apps", "Per app".into(), "Sign-ins per app".into(), &rows);
        assert_eq!(list.rows[0].bar.width, WIDTH - VALUE_WIDTH);
        assert_eq!(list.rows[1].bar.width * 4, list.rows[0].bar.width);
        assert_eq!(list.rows[1].name, "a-very-long-application-name-that-goes-…");
        assert_eq!(list.rows[1].bar.title, format!("{long}: 10"));
        // Each name sits above its bar, below the bar before.
        for (index, row) in list.rows.iter().enumerate() {
            assert!(row.name_y < row.bar.y, "{row:?}");
            assert!(row.value_y <= row.bar.y + row.bar.height, "{row:?}");
            if index > 0 {
                let above = &list.rows[index - 1].bar;
                assert!(row.name_y - 14 > above.y + above.height, "{row:?}");
            }
        }
        assert!(list.height >= list.rows[1].bar.y + list.rows[1].bar.height);
        let svg = list.render().unwrap();
        assert!(svg.contains("<desc id=\"apps-desc\">Sign-ins per app</desc>"), "{svg}");
    }
}
