//! The usage survey's daily chart: a PNG bar chart of the answers notified per day (dark) over the
//! answers reporting that day (light), with axes, a y scale and UTC date labels.
//!
//! Drawn pixel by pixel and encoded with the `png` crate. Text uses a tiny embedded 5×7 bitmap font
//! (digits, `-` and the few capitals the labels need) rather than plotters: plotters' text
//! rendering needs system fonts through fontconfig/freetype, which a fresh CI machine lacks, and a
//! chart that fails to render there would fail the whole report.

// wired by main in progress

use time::Date;

/// The chart's size in pixels.
pub const WIDTH: u32 = 960;
pub const HEIGHT: u32 = 480;

/// The plot area (x in `PLOT_LEFT..PLOT_RIGHT`, y in `PLOT_TOP..PLOT_BOTTOM`, the x axis on
/// `PLOT_BOTTOM`).
const PLOT_LEFT: i64 = 90;
const PLOT_RIGHT: i64 = 940;
const PLOT_TOP: i64 = 50;
const PLOT_BOTTOM: i64 = 430;

type Rgb = [u8; 3];
const BACKGROUND: Rgb = [255, 255, 255];
const AXIS: Rgb = [51, 51, 51];
const GRID: Rgb = [225, 225, 225];
const TEXT: Rgb = [34, 34, 34];
/// Answers reporting the day: the lighter series.
const REPORTING: Rgb = [174, 199, 232];
/// Answers notified that day: the main series.
const NOTIFIED: Rgb = [31, 119, 180];

/// The font's scale (each font pixel is a `SCALE`×`SCALE` square) and the resulting sizes.
const SCALE: i64 = 2;
const GLYPH_ADVANCE: i64 = 6 * SCALE;
const GLYPH_HEIGHT: i64 = 7 * SCALE;

/// The most date labels under the x axis (a label is 10 glyphs, 120 px wide).
const MAX_DATE_LABELS: i64 = 5;
/// The most steps of the y scale.
const MAX_Y_STEPS: u64 = 5;

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(#[from] png::EncodingError),
}

/// A PNG (`WIDTH`×`HEIGHT`, RGB, white background) of per-day survey totals as given by
/// `SurveyReport::daily_totals`: (UTC date, answers reporting the day, answers notified that day).
/// Days are placed on a calendar axis from the earliest to the latest date (days missing in
/// between show no bar), so the input need not be sorted. Empty input gives the axes and
/// "NO DATA".
pub fn daily_chart_png(days: &[(Date, u64, u64)]) -> Result<Vec<u8>, ChartError> {
    let mut canvas = Canvas::new();
    canvas.text(PLOT_LEFT, 16, "SURVEY ANSWERS PER DAY", TEXT);
    legend(&mut canvas);

    let first = days.iter().map(|d| d.0).min();
    let last = days.iter().map(|d| d.0).max();
    match (first, last) {
        (Some(first), Some(last)) => plot(&mut canvas, days, first, last),
        _ => {
            let text = "NO DATA";
            let x = (PLOT_LEFT + PLOT_RIGHT - text_width(text)) / 2;
            let y = (PLOT_TOP + PLOT_BOTTOM - GLYPH_HEIGHT) / 2;
            canvas.text(x, y, text, TEXT);
        }
    }
    // The axes last, over the bars' feet.
    canvas.fill(
        PLOT_LEFT - 1,
        PLOT_TOP,
        PLOT_LEFT + 1,
        PLOT_BOTTOM + 1,
        AXIS,
    );
    canvas.fill(
        PLOT_LEFT - 1,
        PLOT_BOTTOM,
        PLOT_RIGHT,
        PLOT_BOTTOM + 2,
        AXIS,
    );
    canvas.encode()
}

fn legend(canvas: &mut Canvas) {
    let entries = [("REPORTING", REPORTING), ("NOTIFIED", NOTIFIED)];
    let swatch = GLYPH_HEIGHT;
    let entry_width = |label: &str| swatch + 6 + text_width(label);
    let total: i64 = entries.iter().map(|(l, _)| entry_width(l)).sum::<i64>() + 20;
    let mut x = PLOT_RIGHT - total;
    for (label, color) in entries {
        canvas.fill(x, 16, x + swatch, 16 + swatch, color);
        canvas.text(x + swatch + 6, 16, label, TEXT);
        x += entry_width(label) + 20;
    }
}

fn plot(canvas: &mut Canvas, days: &[(Date, u64, u64)], first: Date, last: Date) {
    let max = days.iter().map(|&(_, r, n)| r.max(n)).max().unwrap_or(0);
    let (top, step) = nice_scale(max);
    let plot_height = PLOT_BOTTOM - PLOT_TOP;
    let y_of = |value: u64| -> i64 {
        let scaled = u128::from(value.min(top)) * plot_height as u128 / u128::from(top);
        PLOT_BOTTOM - i64::try_from(scaled).unwrap_or(plot_height)
    };

    // The y scale: grid lines, ticks and right-aligned labels.
    let mut value = 0u64;
    loop {
        let y = y_of(value);
        if value > 0 {
            canvas.fill(PLOT_LEFT + 1, y, PLOT_RIGHT, y + 1, GRID);
        }
        canvas.fill(PLOT_LEFT - 6, y, PLOT_LEFT - 1, y + 1, AXIS);
        let label = value.to_string();
        canvas.text(
            PLOT_LEFT - 10 - text_width(&label),
            y - GLYPH_HEIGHT / 2,
            &label,
            TEXT,
        );
        match value.checked_add(step) {
            Some(next) if next <= top => value = next,
            _ => break,
        }
    }

    // The calendar x axis: `span` equal columns, one per day.
    let span = (last - first).whole_days().saturating_add(1).max(1);
    let plot_width = PLOT_RIGHT - PLOT_LEFT;
    let column = |offset: i64| -> (i64, i64) {
        let start = PLOT_LEFT + scale_i64(offset, plot_width, span);
        let end = PLOT_LEFT + scale_i64(offset.saturating_add(1), plot_width, span);
        let gap = (end - start) / 5;
        (start + gap, (end - gap).max(start + gap + 1))
    };
    let offset_of = |date: Date| (date - first).whole_days();

    // Reporting first, then notified over it, so no day's light bar hides another's dark one.
    for &(date, reporting, _) in days {
        let (x0, x1) = column(offset_of(date));
        canvas.fill(x0, y_of(reporting), x1, PLOT_BOTTOM, REPORTING);
    }
    for &(date, _, notified) in days {
        if notified > 0 {
            let (x0, x1) = column(offset_of(date));
            canvas.fill(x0, y_of(notified), x1, PLOT_BOTTOM, NOTIFIED);
        }
    }

    // Date labels: the first and last day and evenly spaced ones between.
    let labels = span.min(MAX_DATE_LABELS);
    for i in 0..labels {
        let offset = if labels > 1 {
            scale_i64(i, span - 1, labels - 1)
        } else {
            0
        };
        let (x0, x1) = column(offset);
        let centre = (x0 + x1) / 2;
        canvas.fill(centre, PLOT_BOTTOM + 2, centre + 1, PLOT_BOTTOM + 7, AXIS);
        let Some(date) = first.checked_add(time::Duration::days(offset)) else {
            continue;
        };
        let label = iso_date(date);
        let width = text_width(&label);
        let x = (centre - width / 2).clamp(0, i64::from(WIDTH) - width);
        canvas.text(x, PLOT_BOTTOM + 12, &label, TEXT);
    }
}

/// `value * numerator / denominator` without overflow (saturating), for pixel positions.
fn scale_i64(value: i64, numerator: i64, denominator: i64) -> i64 {
    if denominator == 0 {
        return 0;
    }
    let scaled = i128::from(value) * i128::from(numerator) / i128::from(denominator);
    i64::try_from(scaled).unwrap_or(if scaled < 0 { i64::MIN } else { i64::MAX })
}

/// The y scale's top and step: a step of 1, 2 or 5 × 10^k giving at most `MAX_Y_STEPS` steps,
/// and the top the first multiple of the step at or above `max` (at least one step).
fn nice_scale(max: u64) -> (u64, u64) {
    let raw = max.div_ceil(MAX_Y_STEPS).max(1);
    let mut magnitude = 1u64;
    let step = 'search: loop {
        for m in [1, 2, 5] {
            match magnitude.checked_mul(m) {
                Some(step) if step >= raw => break 'search step,
                Some(_) => {}
                None => break 'search raw,
            }
        }
        match magnitude.checked_mul(10) {
            Some(next) => magnitude = next,
            None => break raw,
        }
    };
    let top = max.div_ceil(step).max(1).saturating_mul(step);
    (top, step)
}

fn iso_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

fn text_width(text: &str) -> i64 {
    i64::try_from(text.chars().count())
        .unwrap_or(0)
        .saturating_mul(GLYPH_ADVANCE)
}

/// An RGB pixel buffer that ignores drawing outside it.
struct Canvas {
    pixels: Vec<u8>,
}

impl Canvas {
    fn new() -> Self {
        let count = WIDTH as usize * HEIGHT as usize;
        Self {
            pixels: BACKGROUND.repeat(count),
        }
    }

    /// Fills x in `x0..x1`, y in `y0..y1`, clipped to the canvas.
    fn fill(&mut self, x0: i64, y0: i64, x1: i64, y1: i64, color: Rgb) {
        let (w, h) = (i64::from(WIDTH), i64::from(HEIGHT));
        let (x0, x1) = (x0.clamp(0, w), x1.clamp(0, w));
        let (y0, y1) = (y0.clamp(0, h), y1.clamp(0, h));
        for y in y0..y1 {
            for x in x0..x1 {
                // In range after clamping; `get_mut` keeps it panic-free regardless.
                let i = usize::try_from((y * w + x) * 3).unwrap_or(usize::MAX);
                if let Some(px) = self.pixels.get_mut(i..i.saturating_add(3)) {
                    px.copy_from_slice(&color);
                }
            }
        }
    }

    /// Draws `text` with its top-left corner at (x, y); characters without a glyph are blank.
    fn text(&mut self, x: i64, y: i64, text: &str, color: Rgb) {
        let mut left = x;
        for ch in text.chars() {
            if let Some(rows) = glyph(ch.to_ascii_uppercase()) {
                for (row, bits) in (0i64..).zip(rows) {
                    for col in 0..5i64 {
                        if bits & (0b10000 >> col) != 0 {
                            let px = left + col * SCALE;
                            let py = y + row * SCALE;
                            self.fill(px, py, px + SCALE, py + SCALE, color);
                        }
                    }
                }
            }
            left = left.saturating_add(GLYPH_ADVANCE);
        }
    }

    fn encode(&self) -> Result<Vec<u8>, ChartError> {
        let mut out = Vec::new();
        let mut encoder = png::Encoder::new(&mut out, WIDTH, HEIGHT);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(&self.pixels)?;
        writer.finish()?;
        Ok(out)
    }
}

/// The 5×7 glyph of `ch` (rows top to bottom, bit 4 the leftmost pixel), for the characters the
/// chart writes: digits, `-`, space and the capitals of its labels.
fn glyph(ch: char) -> Option<[u8; 7]> {
    Some(match ch {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        '-' => [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00],
        ' ' => [0x00; 7],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'Y' => [0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04],
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;
    use time::macros::date;

    /// Decodes a chart: (width, height, RGB pixels).
    fn decode(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
        let mut reader = png::Decoder::new(Cursor::new(bytes)).read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size().unwrap()];
        let info = reader.next_frame(&mut buf).unwrap();
        assert_eq!(info.color_type, png::ColorType::Rgb);
        assert_eq!(info.bit_depth, png::BitDepth::Eight);
        buf.truncate(info.buffer_size());
        (info.width, info.height, buf)
    }

    /// Pixels of `color` inside the plot area (axes excluded).
    fn count_in_plot(pixels: &[u8], color: Rgb) -> usize {
        let w = WIDTH as usize;
        (PLOT_TOP as usize..PLOT_BOTTOM as usize)
            .flat_map(|y| (PLOT_LEFT as usize + 1..PLOT_RIGHT as usize).map(move |x| y * w + x))
            .filter(|&i| pixels[i * 3..i * 3 + 3] == color)
            .count()
    }

    fn count_all(pixels: &[u8], color: Rgb) -> usize {
        pixels.chunks_exact(3).filter(|px| *px == color).count()
    }

    #[test]
    fn decodes_to_the_chart_size() {
        let days = [
            (date!(2022 - 04 - 07), 10, 2),
            (date!(2022 - 04 - 08), 12, 0),
            (date!(2022 - 04 - 20), 7, 7),
        ];
        let (w, h, pixels) = decode(&daily_chart_png(&days).unwrap());
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert_eq!(pixels.len(), WIDTH as usize * HEIGHT as usize * 3);
        // Mostly white background, with text drawn.
        assert!(count_all(&pixels, BACKGROUND) > pixels.len() / 3 / 2);
        assert!(count_all(&pixels, TEXT) > 0);
    }

    #[test]
    fn a_notified_day_draws_the_series_colour_in_the_plot_area() {
        let days = [
            (date!(2022 - 04 - 07), 10, 0),
            (date!(2022 - 04 - 08), 10, 4),
            (date!(2022 - 04 - 09), 10, 0),
        ];
        let (_, _, pixels) = decode(&daily_chart_png(&days).unwrap());
        let notified = count_in_plot(&pixels, NOTIFIED);
        let reporting = count_in_plot(&pixels, REPORTING);
        assert!(notified > 0);
        assert!(reporting > notified);
    }

    #[test]
    fn no_notified_day_draws_no_notified_bar() {
        let days = [(date!(2022 - 04 - 07), 3, 0), (date!(2022 - 04 - 08), 5, 0)];
        let (_, _, pixels) = decode(&daily_chart_png(&days).unwrap());
        assert_eq!(count_in_plot(&pixels, NOTIFIED), 0);
        assert!(count_in_plot(&pixels, REPORTING) > 0);
    }

    #[test]
    fn empty_input_gives_empty_axes() {
        let (w, h, pixels) = decode(&daily_chart_png(&[]).unwrap());
        assert_eq!((w, h), (WIDTH, HEIGHT));
        assert_eq!(count_in_plot(&pixels, NOTIFIED), 0);
        assert_eq!(count_in_plot(&pixels, REPORTING), 0);
        // "NO DATA" is written in the plot area.
        assert!(count_in_plot(&pixels, TEXT) > 0);
    }

    #[test]
    fn extreme_input_does_not_panic() {
        let many: Vec<_> = (0..3000)
            .map(|i| {
                (
                    date!(2022 - 04 - 07) + time::Duration::days(i),
                    5,
                    (i % 2) as u64,
                )
            })
            .collect();
        let (w, h, _) = decode(&daily_chart_png(&many).unwrap());
        assert_eq!((w, h), (WIDTH, HEIGHT));
        let huge = [
            (date!(2030 - 01 - 01), u64::MAX, u64::MAX),
            (date!(2022 - 04 - 07), 0, 0),
            (Date::MIN, 1, 1),
            (Date::MAX, 1, 0),
        ];
        let (_, _, pixels) = decode(&daily_chart_png(&huge).unwrap());
        assert!(count_in_plot(&pixels, NOTIFIED) > 0);
        let single = [(date!(2022 - 04 - 07), 0, 0)];
        assert!(daily_chart_png(&single).is_ok());
    }

    #[test]
    fn nice_scales() {
        assert_eq!(nice_scale(0), (1, 1));
        assert_eq!(nice_scale(1), (1, 1));
        assert_eq!(nice_scale(5), (5, 1));
        assert_eq!(nice_scale(7), (8, 2));
        assert_eq!(nice_scale(10), (10, 2));
        assert_eq!(nice_scale(23), (25, 5));
        assert_eq!(nice_scale(101), (150, 50));
        let (top, step) = nice_scale(u64::MAX);
        assert!(top >= step && step > 0);
    }

    #[test]
    fn every_label_character_has_a_glyph() {
        for text in ["SURVEY ANSWERS PER DAY", "REPORTING", "NOTIFIED", "NO DATA"] {
            assert!(text.chars().all(|c| glyph(c).is_some()), "{text}");
        }
        assert!("0123456789-".chars().all(|c| glyph(c).is_some()));
    }
}
