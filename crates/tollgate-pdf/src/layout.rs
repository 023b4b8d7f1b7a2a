//! The page layer: a flow of blocks down pages of a fixed size.
//!
//! Layout is kept apart from PDF writing: blocks become plain drawing operations ([`Op`])
//! on pages first, and only then are the pages written with krilla. That is what lets the
//! footer say "Page 2 of 5" (the page count is known before anything is written), and it
//! keeps layout testable without parsing a PDF.
//!
//! Coordinates are PDF points (1/72 in) from the page's top-left corner, y growing down.
//! A block ([`Placed`]) is laid out at a given width with its own origin at its top-left;
//! [`Layout::place`] moves it to the cursor and starts a new page when it does not fit.

use crate::text::{Fonts, Weight};

/// An sRGB colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// The palette shared by every document, so that invoices and reports look alike.
pub mod palette {
    use super::Rgb;
    /// Body text: a near-black that prints crisply but is softer than pure black on screen.
    pub const INK: Rgb = Rgb(0x1f, 0x29, 0x37);
    /// Labels, headers and footers: recedes behind the values it introduces.
    pub const MUTED: Rgb = Rgb(0x6b, 0x72, 0x80);
    /// Hairlines between table rows.
    pub const RULE: Rgb = Rgb(0xe5, 0xe7, 0xeb);
    /// Heavier rules (under the title block, above the grand total).
    pub const STRONG_RULE: Rgb = Rgb(0x9c, 0xa3, 0xaf);
    /// The table header band.
    pub const BAND: Rgb = Rgb(0xf3, 0xf4, 0xf6);
}

/// How a run of text looks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    pub weight: Weight,
    /// Font size in points.
    pub size: f32,
    pub color: Rgb,
}

impl Style {
    pub const fn new(weight: Weight, size: f32, color: Rgb) -> Style {
        Style {
            weight,
            size,
            color,
        }
    }

    /// The height of one line: 1.4 times the size reads comfortably in dense tables.
    pub fn line_height(&self) -> f32 {
        self.size * 1.4
    }

    /// Where the baseline sits below the top of a line box: the middle of the line box
    /// plus half of DejaVu's cap height (0.73 em), so that text looks vertically centred.
    pub fn baseline(&self) -> f32 {
        self.line_height() / 2.0 + 0.365 * self.size
    }
}

/// Horizontal alignment within a box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    /// For numbers and amounts: with tabular digits, the decimal points line up.
    Right,
}

/// One drawing operation on a page.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// One line of text; `x` is its left edge, `baseline` its baseline.
    Text {
        x: f32,
        baseline: f32,
        text: String,
        style: Style,
    },
    /// A filled rectangle, optionally with rounded corners.
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        radius: f32,
        color: Rgb,
    },
    /// An image scaled to `w` by `h`, its top-left corner at `x`, `y`.
    Image {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        logo: crate::logo::Logo,
    },
    /// A horizontal line.
    HLine {
        x1: f32,
        x2: f32,
        y: f32,
        thickness: f32,
        color: Rgb,
    },
}

impl Op {
    fn translate(&mut self, dx: f32, dy: f32) {
        match self {
            Op::Text { x, baseline, .. } => (*x, *baseline) = (*x + dx, *baseline + dy),
            Op::Rect { x, y, .. } | Op::Image { x, y, .. } => (*x, *y) = (*x + dx, *y + dy),
            Op::HLine { x1, x2, y, .. } => (*x1, *x2, *y) = (*x1 + dx, *x2 + dx, *y + dy),
        }
    }

    /// The y that decides on which side of a page break the operation falls.
    fn anchor(&self) -> f32 {
        match self {
            Op::Text { baseline, .. } => *baseline,
            Op::Rect { y, .. } | Op::Image { y, .. } | Op::HLine { y, .. } => *y,
        }
    }
}

/// A laid-out block: its operations relative to its own top-left corner and its height.
///
/// `breaks` lists the heights at which the block may be split across pages (between lines
/// of a paragraph); a block without breaks moves to the next page whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placed {
    pub ops: Vec<Op>,
    pub height: f32,
    pub breaks: Vec<f32>,
}

impl Placed {
    /// Empty space of the given height (also a way to align blocks side by side).
    pub fn gap(height: f32) -> Placed {
        Placed {
            height,
            ..Placed::default()
        }
    }

    /// Appends one line of text at the block's bottom, aligned within `[x, x + width]`,
    /// and records a possible page break after it.
    pub fn push_line(
        &mut self,
        fonts: &Fonts,
        text: &str,
        style: Style,
        x: f32,
        width: f32,
        align: Align,
    ) {
        self.text_at(fonts, text, style, x, self.height, width, align);
        self.height += style.line_height();
        self.breaks.push(self.height);
    }

    /// Draws one line of text whose line box starts at `top`, without growing the block.
    #[allow(clippy::too_many_arguments)] // a text box: position, extent, look, alignment
    pub fn text_at(
        &mut self,
        fonts: &Fonts,
        text: &str,
        style: Style,
        x: f32,
        top: f32,
        width: f32,
        align: Align,
    ) {
        let x = match align {
            Align::Left => x,
            Align::Right => x + width - fonts.width(text, style.weight, style.size),
        };
        self.ops.push(Op::Text {
            x,
            baseline: top + style.baseline(),
            text: text.to_owned(),
            style,
        });
    }

    /// Puts `other` below this block, `gap` points lower.
    pub fn stack(mut self, gap: f32, other: Placed) -> Placed {
        let dy = self.height + gap;
        self.breaks.extend(other.breaks.iter().map(|b| b + dy));
        self.ops.extend(other.ops.into_iter().map(|mut op| {
            op.translate(0.0, dy);
            op
        }));
        self.height = dy + other.height;
        self
    }

    /// Puts `other` to the right, its left edge at `dx`, tops aligned. Side-by-side blocks
    /// are kept together on one page (their breaks are dropped).
    pub fn beside(mut self, dx: f32, other: Placed) -> Placed {
        self.ops.extend(other.ops.into_iter().map(|mut op| {
            op.translate(dx, 0.0);
            op
        }));
        self.height = self.height.max(other.height);
        self.breaks.clear();
        self
    }

    /// Splits off the part above break `at` (a value of `breaks`); the rest moves up to 0.
    fn split(mut self, at: f32) -> (Placed, Placed) {
        let (top, rest): (Vec<Op>, Vec<Op>) = self.ops.drain(..).partition(|op| op.anchor() < at);
        let rest = rest
            .into_iter()
            .map(|mut op| {
                op.translate(0.0, -at);
                op
            })
            .collect();
        let breaks_below = self
            .breaks
            .iter()
            .filter(|b| **b > at)
            .map(|b| b - at)
            .collect();
        let head = Placed {
            ops: top,
            height: at,
            breaks: Vec::new(),
        };
        (
            head,
            Placed {
                ops: rest,
                height: self.height - at,
                breaks: breaks_below,
            },
        )
    }
}

/// Page size and margins, in points.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageSpec {
    pub width: f32,
    pub height: f32,
    pub margin_x: f32,
    pub margin_top: f32,
    /// Space below the footer line.
    pub margin_bottom: f32,
    /// Space reserved for the footer above the bottom margin.
    pub footer_height: f32,
}

impl PageSpec {
    /// ISO A4 with 20 mm side margins: the common denominator for invoices worldwide
    /// (US Letter printers scale it with no loss).
    pub const A4: PageSpec = PageSpec {
        width: 595.28,
        height: 841.89,
        margin_x: 56.7,
        margin_top: 56.7,
        margin_bottom: 36.0,
        footer_height: 28.0,
    };

    /// The width of the text column between the side margins.
    pub fn content_width(&self) -> f32 {
        self.width - 2.0 * self.margin_x
    }

    /// The lowest y that content may reach on a page.
    pub fn content_bottom(&self) -> f32 {
        self.height - self.margin_bottom - self.footer_height
    }

    /// The height available to content on a fresh page.
    pub fn content_height(&self) -> f32 {
        self.content_bottom() - self.margin_top
    }
}

/// A document being laid out: pages filled top to bottom.
pub struct Layout<'f> {
    pub(crate) fonts: &'f Fonts,
    pub(crate) spec: PageSpec,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl<'f> Layout<'f> {
    /// Starts a document with one empty page.
    pub fn new(fonts: &'f Fonts, spec: PageSpec) -> Layout<'f> {
        Layout {
            fonts,
            spec,
            pages: vec![Vec::new()],
            y: spec.margin_top,
        }
    }

    pub fn fonts(&self) -> &'f Fonts {
        self.fonts
    }

    pub fn content_width(&self) -> f32 {
        self.spec.content_width()
    }

    /// The height left on the current page.
    pub fn remaining(&self) -> f32 {
        self.spec.content_bottom() - self.y
    }

    /// Whether nothing has been placed on the current page yet.
    pub fn at_page_top(&self) -> bool {
        self.y <= self.spec.margin_top
    }

    pub fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = self.spec.margin_top;
    }

    /// Vertical space between blocks; swallowed at the top of a page so a block that was
    /// pushed to a new page starts at the margin.
    pub fn space(&mut self, height: f32) {
        if !self.at_page_top() {
            self.y = (self.y + height).min(self.spec.content_bottom());
        }
    }

    /// Places a block at the cursor. A block that does not fit goes to the next page whole
    /// if it would fit there; otherwise it is split at its breaks over as many pages as it
    /// needs (a block with no break that is taller than a page is drawn anyway and runs
    /// into the bottom margin: nothing is ever dropped).
    pub fn place(&mut self, mut block: Placed) {
        loop {
            if block.height <= self.remaining() {
                return self.emit(block);
            }
            if !self.at_page_top() && block.height <= self.spec.content_height() {
                self.new_page();
                continue;
            }
            let room = self.remaining();
            let last_break = block
                .breaks
                .iter()
                .copied()
                .rfind(|b| *b <= room && *b < block.height);
            match last_break {
                Some(at) => {
                    let (head, rest) = block.split(at);
                    self.emit(head);
                    block = rest;
                    self.new_page();
                }
                None if !self.at_page_top() => self.new_page(),
                None => return self.emit(block),
            }
        }
    }

    /// Draws a block at the cursor and moves the cursor below it.
    pub(crate) fn emit(&mut self, block: Placed) {
        let (dx, dy) = (self.spec.margin_x, self.y);
        if self.pages.is_empty() {
            self.pages.push(Vec::new());
        }
        let Some(page) = self.pages.last_mut() else {
            return;
        };
        page.extend(block.ops.into_iter().map(|mut op| {
            op.translate(dx, dy);
            op
        }));
        self.y += block.height;
    }

    /// Ends the document: draws the footer on every page (`footer(page_index, page_count)`
    /// gives its left and right text) and returns the pages.
    pub fn finish(mut self, footer: impl Fn(usize, usize) -> (String, String)) -> Vec<Vec<Op>> {
        let count = self.pages.len();
        let spec = self.spec;
        let style = Style::new(Weight::Regular, 8.0, palette::MUTED);
        // The footer sits just below the content area, its hairline in the gap between.
        let top = spec.content_bottom() + 12.0;
        for (index, page) in self.pages.iter_mut().enumerate() {
            let (left, right) = footer(index, count);
            let mut block = Placed::default();
            block.ops.push(Op::HLine {
                x1: 0.0,
                x2: spec.content_width(),
                y: -5.0,
                thickness: 0.5,
                color: palette::RULE,
            });
            let width = spec.content_width();
            let right_width = self.fonts.width(&right, style.weight, style.size);
            block.text_at(self.fonts, &right, style, 0.0, 0.0, width, Align::Right);
            for (i, line) in self
                .fonts
                .wrap(
                    &left,
                    style.weight,
                    style.size,
                    (width - right_width - 12.0).max(width / 2.0),
                )
                .iter()
                .enumerate()
            {
                block.text_at(
                    self.fonts,
                    line,
                    style,
                    0.0,
                    i as f32 * style.line_height(),
                    width,
                    Align::Left,
                );
            }
            page.extend(block.ops.into_iter().map(|mut op| {
                op.translate(spec.margin_x, top);
                op
            }));
        }
        self.pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blocks::{BODY, paragraph};

    fn texts(page: &[Op]) -> Vec<(&str, f32)> {
        page.iter()
            .filter_map(|op| match op {
                Op::Text { text, baseline, .. } if !text.is_empty() => {
                    Some((text.as_str(), *baseline))
                }
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_paragraph_taller_than_a_page_is_split_between_lines() {
        let fonts = Fonts::embedded().unwrap();
        let mut layout = Layout::new(fonts, PageSpec::A4);
        let text = (0..150)
            .map(|i| format!("line {i}"))
            .collect::<Vec<_>>()
            .join("\n");
        layout.place(paragraph(
            fonts,
            &text,
            BODY,
            layout.content_width(),
            Align::Left,
        ));
        let pages = layout.finish(|_, _| (String::new(), String::new()));
        assert!(pages.len() > 1);
        let all: Vec<&str> = pages
            .iter()
            .flat_map(|p| texts(p))
            .map(|(t, _)| t)
            .collect();
        assert_eq!(all.join("\n"), text);
        for page in &pages {
            for (_, baseline) in texts(page) {
                assert!(baseline <= PageSpec::A4.content_bottom());
            }
        }
    }

    #[test]
    fn a_block_that_does_not_fit_moves_to_the_next_page_whole() {
        let fonts = Fonts::embedded().unwrap();
        let mut layout = Layout::new(fonts, PageSpec::A4);
        layout.place(Placed::gap(PageSpec::A4.content_height() - 20.0));
        let width = layout.content_width();
        layout.place(
            paragraph(fonts, "one\ntwo\nthree", BODY, width, Align::Left)
                .beside(0.0, Placed::default()),
        );
        let pages = layout.finish(|_, _| (String::new(), String::new()));
        assert_eq!(pages.len(), 2);
        assert_eq!(texts(&pages[1]).len(), 3);
        assert_eq!(
            texts(&pages[1])[0].1,
            PageSpec::A4.margin_top + BODY.baseline()
        );
    }
}
