//! Tables that run over as many pages as they need.
//!
//! Invoices with hundreds of usage lines and evidence reports with thousands of events are
//! both tables, so the table is the one block that knows about pages: it repeats its header
//! at the top of every page it continues on, keeps the header with at least one row, and
//! splits a row whose wrapped text is taller than a page between its lines rather than
//! dropping any of it.

use crate::layout::{Align, Layout, Op, Placed, Style, palette};
use crate::text::{Fonts, Weight};

/// Cell padding, in points. Public so that blocks can line up with a table's text edges.
pub const PAD_X: f32 = 6.0;
const PAD_Y: f32 = 5.0;
const HEADER: Style = Style::new(Weight::Bold, 8.0, palette::MUTED);
const CELL: Style = Style::new(Weight::Regular, 9.5, palette::INK);

/// How wide a column is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnWidth {
    /// Shares what the fitted columns leave (descriptions).
    Fill,
    /// As wide as its widest cell or header on one line, but at most this fraction of the
    /// table; longer cells wrap (quantities, prices, amounts).
    Fit { max_fraction: f32 },
}

/// A column: its header text, alignment and width rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub header: String,
    pub align: Align,
    pub width: ColumnWidth,
}

impl Column {
    /// A left-aligned column that takes the remaining width.
    pub fn text(header: impl Into<String>) -> Column {
        Column {
            header: header.into(),
            align: Align::Left,
            width: ColumnWidth::Fill,
        }
    }

    /// A right-aligned column sized to its content, for numbers.
    pub fn numeric(header: impl Into<String>) -> Column {
        Column {
            header: header.into(),
            align: Align::Right,
            width: ColumnWidth::Fit { max_fraction: 0.22 },
        }
    }
}

/// A table: columns and rows of preformatted cell text (a missing cell is empty).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
}

/// A row wrapped into lines, one list of lines per column.
struct Wrapped {
    cells: Vec<Vec<String>>,
    style: Style,
}

impl Wrapped {
    fn new(fonts: &Fonts, cells: &[String], widths: &[f32], style: Style) -> Wrapped {
        let cells = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let text = cells.get(i).map_or("", String::as_str);
                fonts.wrap(text, style.weight, style.size, w - 2.0 * PAD_X)
            })
            .collect();
        Wrapped { cells, style }
    }

    fn line_count(&self) -> usize {
        self.cells.iter().map(Vec::len).max().unwrap_or(1)
    }

    fn height(&self, lines: usize) -> f32 {
        2.0 * PAD_Y + lines as f32 * self.style.line_height()
    }

    /// Lays out lines `from..to` of the row, with its background or bottom hairline.
    fn slice(
        &self,
        fonts: &Fonts,
        table: &Table,
        widths: &[f32],
        from: usize,
        to: usize,
        header: bool,
    ) -> Placed {
        let height = self.height(to - from);
        let total: f32 = widths.iter().sum();
        let mut block = Placed::gap(height);
        if header {
            block.ops.push(Op::Rect {
                x: 0.0,
                y: 0.0,
                w: total,
                h: height,
                radius: 2.0,
                color: palette::BAND,
            });
        } else {
            block.ops.push(Op::HLine {
                x1: 0.0,
                x2: total,
                y: height,
                thickness: 0.5,
                color: palette::RULE,
            });
        }
        let mut x = 0.0;
        for ((lines, width), column) in self.cells.iter().zip(widths).zip(&table.columns) {
            for (i, line) in lines.iter().enumerate().take(to).skip(from) {
                let top = PAD_Y + (i - from) as f32 * self.style.line_height();
                block.text_at(
                    fonts,
                    line,
                    self.style,
                    x + PAD_X,
                    top,
                    width - 2.0 * PAD_X,
                    column.align,
                );
            }
            x += width;
        }
        block
    }
}

impl Table {
    /// Column widths for a table `width` points wide.
    fn widths(&self, fonts: &Fonts, width: f32) -> Vec<f32> {
        let natural = |i: usize, column: &Column| {
            let header = fonts.width(&column.header, HEADER.weight, HEADER.size);
            self.rows
                .iter()
                .filter_map(|row| row.get(i))
                .flat_map(|cell| cell.lines())
                .map(|line| fonts.width(line, CELL.weight, CELL.size))
                .fold(header, f32::max)
                + 2.0 * PAD_X
                + 0.5 // rounding slack, so that a cell measured to fit is not wrapped
        };
        let mut widths: Vec<Option<f32>> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| match c.width {
                ColumnWidth::Fit { max_fraction } => Some(natural(i, c).min(width * max_fraction)),
                ColumnWidth::Fill => None,
            })
            .collect();
        let fills = widths.iter().filter(|w| w.is_none()).count();
        let fitted: f32 = widths.iter().flatten().sum();
        if fills == 0 {
            // No column takes the slack: give it to the first column so the table spans
            // the full width and its right edge lines up with the totals.
            if let Some(Some(first)) = widths.first_mut() {
                *first += (width - fitted).max(0.0);
            }
        }
        let share = ((width - fitted) / fills.max(1) as f32).max(0.0);
        widths.iter_mut().map(|w| w.unwrap_or(share)).collect()
    }
}

impl Layout<'_> {
    /// Places a table across as many pages as needed, repeating its header on each.
    pub fn table(&mut self, table: &Table) {
        let fonts = self.fonts();
        let widths = table.widths(fonts, self.content_width());
        let headers: Vec<String> = table.columns.iter().map(|c| c.header.clone()).collect();
        let header = Wrapped::new(fonts, &headers, &widths, HEADER);
        let header_block = header.slice(fonts, table, &widths, 0, header.line_count(), true);
        let header_height = header_block.height;
        // Whether the current page has the header, and whether it has rows under it yet.
        let (mut header_on_page, mut rows_on_page) = (false, false);

        let put_header = |layout: &mut Layout, first_row_height: f32| {
            // The header needs a row under it, else it starts the next page instead.
            if header_height + first_row_height > layout.remaining() && !layout.at_page_top() {
                layout.new_page();
            }
            layout.emit(header_block.clone());
        };

        let one_line = 2.0 * PAD_Y + CELL.line_height();
        if table.rows.is_empty() {
            put_header(self, one_line);
            return;
        }
        for cells in &table.rows {
            let row = Wrapped::new(fonts, cells, &widths, CELL);
            let lines = row.line_count();
            let mut from = 0;
            while from < lines {
                if !header_on_page {
                    put_header(self, row.height(lines - from).min(one_line * 3.0));
                    (header_on_page, rows_on_page) = (true, false);
                }
                let left = lines - from;
                let fit = ((self.remaining() - 2.0 * PAD_Y) / CELL.line_height())
                    .floor()
                    .max(0.0) as usize;
                let fits_a_fresh_page =
                    row.height(left) + header_height <= self.spec.content_height();
                if fit >= left {
                    self.emit(row.slice(fonts, table, &widths, from, lines, false));
                    from = lines;
                    rows_on_page = true;
                    continue;
                }
                if !rows_on_page || (fit > 0 && !fits_a_fresh_page) {
                    // Too tall for what is left even under a fresh header: fill this page
                    // (at least one line, so that the loop always progresses) and go on.
                    let to = from + fit.max(1);
                    self.emit(row.slice(fonts, table, &widths, from, to, false));
                    from = to;
                    rows_on_page = true;
                }
                if from < lines {
                    self.new_page();
                    header_on_page = false;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::PageSpec;

    #[test]
    fn a_long_table_repeats_its_header_on_every_page() {
        let fonts = Fonts::embedded().unwrap();
        let mut layout = Layout::new(fonts, PageSpec::A4);
        let rows = (0..100)
            .map(|i| vec![format!("row {i}"), format!("{i}.00")])
            .collect();
        layout.table(&Table {
            columns: vec![Column::text("Item"), Column::numeric("Amount")],
            rows,
        });
        let pages = layout.finish(|_, _| (String::new(), String::new()));
        assert!(pages.len() > 1);
        let mut rows_seen = 0;
        for page in &pages {
            let texts: Vec<&str> = page
                .iter()
                .filter_map(|op| {
                    if let Op::Text { text, .. } = op {
                        Some(text.as_str())
                    } else {
                        None
                    }
                })
                .collect();
            assert_eq!(
                &texts[..2],
                ["Item", "Amount"],
                "each page starts with the header"
            );
            rows_seen += texts.iter().filter(|t| t.starts_with("row ")).count();
        }
        assert_eq!(rows_seen, 100);
    }

    #[test]
    fn numeric_columns_fit_their_content_and_the_text_column_takes_the_rest() {
        let fonts = Fonts::embedded().unwrap();
        let table = Table {
            columns: vec![Column::text("Description"), Column::numeric("Amount")],
            rows: vec![vec!["Pro plan".to_owned(), "1,234,567.89".to_owned()]],
        };
        let widths = table.widths(fonts, 480.0);
        assert!((widths.iter().sum::<f32>() - 480.0).abs() < 0.01);
        assert!(
            widths[1] < 100.0 && widths[1] > fonts.width("1,234,567.89", CELL.weight, CELL.size)
        );
    }
}
