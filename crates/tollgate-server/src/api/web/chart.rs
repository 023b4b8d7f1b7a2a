//! A bar chart as inline SVG, rendered on the server (no JavaScript, no chart library): the MRR
//! at each month's close. Bars are scaled to the largest value; each has a `<title>` with its
//! exact figure, and the chart a text alternative.

use std::fmt::Write as _;

/// One bar: its label and value (minor units) and the value as shown.
pub struct Bar {
    pub label: String,
    pub value: i64,
    pub shown: String,
}

const WIDTH: i64 = 720;
const HEIGHT: i64 = 220;
const AXIS: i64 = 24;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG of `bars` titled `title`.
pub fn bars(title: &str, bars: &[Bar]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" role=\"img\" aria-labelledby=\"chart-title\" xmlns=\"http://www.w3.org/2000/svg\"><title id=\"chart-title\">{}</title>",
        escape(title)
    );
    let count = i64::try_from(bars.len()).unwrap_or(1).max(1);
    let max = bars.iter().map(|b| b.value).max().unwrap_or(0).max(1);
    let slot = WIDTH / count;
    let plot = HEIGHT - AXIS;
    for (i, bar) in bars.iter().enumerate() {
        let i = i64::try_from(i).unwrap_or(0);
        // i128: value * plot cannot overflow.
        let h =
            i64::try_from(i128::from(bar.value.max(0)) * i128::from(plot - 4) / i128::from(max))
                .unwrap_or(0);
        let x = i * slot + slot / 8;
        let w = (slot * 3 / 4).max(1);
        let y = plot - h;
        let _ = write!(
            svg,
            "<g><title>{}: {}</title><rect x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{h}\" fill=\"#1d4ed8\"/><text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"12\" fill=\"#1f2937\">{}</text></g>",
            escape(&bar.label),
            escape(&bar.shown),
            x + w / 2,
            HEIGHT - 6,
            escape(&bar.label)
        );
    }
    let _ = write!(
        svg,
        "<line x1=\"0\" y1=\"{plot}\" x2=\"{WIDTH}\" y2=\"{plot}\" stroke=\"#6b7280\"/></svg>"
    );
    svg
}
