//! Reusable blocks: the pieces every Tollgate document is made of (title block, key/value
//! block, labelled paragraph, totals, badge, rule). Each is a function from content and a
//! width to a [`Placed`], so documents compose them with [`Placed::stack`] and
//! [`Placed::beside`] and place them with [`Layout::place`](crate::layout::Layout::place).
//!
//! Every text is wrapped, never truncated: a document must show exactly what it was given.

use crate::layout::{Align, Op, Placed, Rgb, Style, palette};
use crate::text::{Fonts, Weight};

/// Small capitals-style label above a group ("BILLED TO", "NOTES").
pub const LABEL: Style = Style::new(Weight::Bold, 7.5, palette::MUTED);
/// Body text.
pub const BODY: Style = Style::new(Weight::Regular, 9.5, palette::INK);
/// The key column of a key/value block.
pub const KEY: Style = Style::new(Weight::Regular, 9.0, palette::MUTED);

/// A paragraph: `text` wrapped to `width`, breakable between lines.
pub fn paragraph(fonts: &Fonts, text: &str, style: Style, width: f32, align: Align) -> Placed {
    let mut block = Placed::default();
    for line in fonts.wrap(text, style.weight, style.size, width) {
        block.push_line(fonts, &line, style, 0.0, width, align);
    }
    block
}

/// A label over paragraphs ("Notes" and its lines). The label stays with the first line.
pub fn labelled(fonts: &Fonts, label: &str, paragraphs: &[String], width: f32) -> Placed {
    let mut block = paragraph(fonts, label, LABEL, width, Align::Left);
    block.height += 3.0;
    block.breaks.clear();
    paragraphs.iter().fold(block, |block, text| {
        block.stack(0.0, paragraph(fonts, text, BODY, width, Align::Left))
    })
}

/// The top of a document: the issuer's name on the left; the document's title (large),
/// its reference and an optional badge on the right. Kept on one page.
pub fn title_block(
    fonts: &Fonts,
    issuer: &str,
    title: &str,
    reference: &str,
    badge: Option<Placed>,
    width: f32,
) -> Placed {
    let issuer_style = Style::new(Weight::Bold, 13.0, palette::INK);
    let title_style = Style::new(Weight::Bold, 22.0, palette::INK);
    let reference_style = Style::new(Weight::Regular, 10.5, palette::MUTED);
    let half = width / 2.0 - 8.0;
    let left = paragraph(fonts, issuer, issuer_style, half, Align::Left);
    let mut right = paragraph(fonts, title, title_style, half, Align::Right).stack(
        0.0,
        paragraph(fonts, reference, reference_style, half, Align::Right),
    );
    if let Some(badge) = badge {
        right = right.stack(
            6.0,
            Placed::gap(0.0).beside(half - badge_width(&badge), badge),
        );
    }
    Placed::gap(0.0)
        .beside(0.0, left)
        .beside(width - half, right)
}

/// A rounded label in a tinted box, e.g. an invoice's status.
pub fn badge(fonts: &Fonts, text: &str, foreground: Rgb, background: Rgb) -> Placed {
    let style = Style::new(Weight::Bold, 8.0, foreground);
    let (pad_x, pad_y) = (7.0, 2.5);
    let w = fonts.width(text, style.weight, style.size) + 2.0 * pad_x;
    let h = style.line_height() + 2.0 * pad_y;
    let mut block = Placed::gap(h);
    block.ops.push(Op::Rect {
        x: 0.0,
        y: 0.0,
        w,
        h,
        radius: h / 2.0,
        color: background,
    });
    block.text_at(fonts, text, style, pad_x, pad_y, w, Align::Left);
    block
}

/// A pass/fail badge: `good` in green when `ok`, "FAILED" in red otherwise (the evidence report,
/// the deployment check).
pub fn verdict(fonts: &Fonts, ok: bool, good: &str) -> Placed {
    if ok {
        badge(fonts, good, Rgb(0x16, 0x65, 0x34), Rgb(0xdc, 0xfc, 0xe7))
    } else {
        badge(
            fonts,
            "FAILED",
            Rgb(0x99, 0x1b, 0x1b),
            Rgb(0xfe, 0xe2, 0xe2),
        )
    }
}

fn badge_width(badge: &Placed) -> f32 {
    badge
        .ops
        .iter()
        .find_map(|op| {
            if let Op::Rect { w, .. } = op {
                Some(*w)
            } else {
                None
            }
        })
        .unwrap_or(0.0)
}

/// A full-width horizontal rule with `space` above and below it.
pub fn rule(width: f32, space: f32, thickness: f32, color: Rgb) -> Placed {
    let mut block = Placed::gap(2.0 * space);
    block.ops.push(Op::HLine {
        x1: 0.0,
        x2: width,
        y: space,
        thickness,
        color,
    });
    block
}

/// Keys in a muted column, values beside them, one row per pair; both sides wrap. The key
/// column is as wide as the widest key, up to 40% of the block.
pub fn key_values(fonts: &Fonts, rows: &[(String, String)], width: f32) -> Placed {
    let gap = 12.0;
    let widest = rows
        .iter()
        .map(|(k, _)| fonts.width(k, KEY.weight, KEY.size))
        .fold(0.0, f32::max);
    let key_width = widest.min(width * 0.4);
    let value_x = key_width + gap;
    let mut block = Placed::default();
    for (key, value) in rows {
        let keys = fonts.wrap(key, KEY.weight, KEY.size, key_width);
        let values = fonts.wrap(value, BODY.weight, BODY.size, width - value_x);
        let line = BODY.line_height();
        for (i, k) in keys.iter().enumerate() {
            // Keys share the values' line grid so that a key and its value share a baseline.
            let top = block.height + i as f32 * line + BODY.baseline() - KEY.baseline();
            block.text_at(fonts, k, KEY, 0.0, top, key_width, Align::Left);
        }
        for (i, v) in values.iter().enumerate() {
            block.text_at(
                fonts,
                v,
                BODY,
                value_x,
                block.height + i as f32 * line,
                width - value_x,
                Align::Left,
            );
        }
        block.height += keys.len().max(values.len()) as f32 * line + 2.0;
        block.breaks.push(block.height);
    }
    block
}

/// Totals under a table: labels and values right-aligned, values ending `inset` points
/// from the right edge (the table's cell padding, so they line up with its last column).
/// With `emphasize_last`, the last row (the amount due) is bold and larger, below a rule.
pub fn totals(
    fonts: &Fonts,
    rows: &[(String, String)],
    width: f32,
    inset: f32,
    emphasize_last: bool,
) -> Placed {
    let strong = Style::new(Weight::Bold, 11.0, palette::INK);
    let label_style = Style::new(Weight::Regular, 9.5, palette::MUTED);
    let style_of = |i: usize| {
        if emphasize_last && i + 1 == rows.len() {
            (strong, strong)
        } else {
            (label_style, BODY)
        }
    };
    let values_width = rows
        .iter()
        .enumerate()
        .map(|(i, (_, v))| fonts.width(v, style_of(i).1.weight, style_of(i).1.size))
        .fold(0.0, f32::max)
        .min(width * 0.45);
    let value_x = width - inset - values_width;
    let label_width = width * 0.45;
    let label_x = value_x - 24.0 - label_width;
    let mut block = Placed::default();
    for (i, (label, value)) in rows.iter().enumerate() {
        let (ls, vs) = style_of(i);
        if emphasize_last && i + 1 == rows.len() {
            block.height += 4.0;
            let x1 =
                label_x + label_width - fonts.width(label, ls.weight, ls.size).min(label_width);
            block.ops.push(Op::HLine {
                x1,
                x2: width,
                y: block.height,
                thickness: 0.8,
                color: palette::STRONG_RULE,
            });
            block.height += 4.0;
        }
        let labels = fonts.wrap(label, ls.weight, ls.size, label_width);
        let values = fonts.wrap(value, vs.weight, vs.size, values_width);
        let line = ls.line_height().max(vs.line_height());
        for (j, l) in labels.iter().enumerate() {
            block.text_at(
                fonts,
                l,
                ls,
                label_x,
                block.height + j as f32 * line,
                label_width,
                Align::Right,
            );
        }
        for (j, v) in values.iter().enumerate() {
            block.text_at(
                fonts,
                v,
                vs,
                value_x,
                block.height + j as f32 * line,
                values_width,
                Align::Right,
            );
        }
        block.height += labels.len().max(values.len()) as f32 * line;
    }
    block
}
