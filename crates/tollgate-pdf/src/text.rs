//! The embedded fonts, shaping and line breaking.
//!
//! Documents must render the same on a laptop, in CI and in a container with no font
//! directory, and without the network, so the fonts are compiled into the binary
//! (DejaVu Sans, regular and bold: wide Unicode coverage, tabular digits so amounts line
//! up, and a license that allows redistribution, see `fonts/LICENSE`). krilla subsets them
//! into each PDF, so a one-page invoice stays small.
//!
//! Text is shaped here with rustybuzz (the shaper krilla uses itself) rather than with
//! krilla's `draw_text`, so that the width we measure for right alignment and wrapping is
//! exactly the width of the glyphs we hand to krilla.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock, Mutex};

use krilla::text::{Font, GlyphId, KrillaGlyph};
use rustybuzz::{Direction, Script, ShapePlan, UnicodeBuffer};

use crate::PdfError;

static REGULAR_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
static BOLD_TTF: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");

/// The two faces a document uses: hierarchy comes from size, weight and colour only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weight {
    Regular,
    Bold,
}

/// One embedded face: the krilla font that goes into the PDF and the shaper's view of the
/// same bytes.
struct Face {
    pdf: Font,
    shaper: rustybuzz::Face<'static>,
    units_per_em: f32,
    /// Shape plans by direction and script. Building a plan costs far more than shaping a
    /// line with it, and wrapping measures many lines, so plans are made once per process.
    plans: Mutex<HashMap<(Direction, Script), Arc<ShapePlan>>>,
}

impl Face {
    fn load(bytes: &'static [u8]) -> Option<Face> {
        let shaper = rustybuzz::Face::from_slice(bytes, 0)?;
        let units_per_em = shaper.units_per_em() as f32;
        let pdf = Font::new(bytes.into(), 0)?;
        Some(Face {
            pdf,
            shaper,
            units_per_em,
            plans: Mutex::default(),
        })
    }

    fn plan(&self, buffer: &UnicodeBuffer) -> Arc<ShapePlan> {
        let key = (buffer.direction(), buffer.script());
        // A poisoned lock only means another thread panicked mid-insert; the map is intact.
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        plans
            .entry(key)
            .or_insert_with(|| {
                let language = buffer.language();
                Arc::new(ShapePlan::new(
                    &self.shaper,
                    key.0,
                    Some(key.1),
                    language.as_ref(),
                    &[],
                ))
            })
            .clone()
    }
}

/// The embedded fonts, parsed once per process.
pub struct Fonts {
    regular: Face,
    bold: Face,
}

static FONTS: LazyLock<Option<Fonts>> = LazyLock::new(|| {
    Some(Fonts {
        regular: Face::load(REGULAR_TTF)?,
        bold: Face::load(BOLD_TTF)?,
    })
});

impl Fonts {
    /// The process-wide embedded fonts. Fails only if the bundled files were damaged.
    pub fn embedded() -> Result<&'static Fonts, PdfError> {
        FONTS.as_ref().ok_or(PdfError::Font)
    }

    fn face(&self, weight: Weight) -> &Face {
        match weight {
            Weight::Regular => &self.regular,
            Weight::Bold => &self.bold,
        }
    }

    pub(crate) fn pdf_font(&self, weight: Weight) -> Font {
        self.face(weight).pdf.clone()
    }

    /// Shapes one line of text into glyphs whose advances are in em units, each carrying
    /// the byte range of the text it stands for (krilla writes that range as the glyph's
    /// Unicode, which is what makes the PDF's text extractable and searchable).
    pub(crate) fn shape(&self, text: &str, weight: Weight) -> Vec<KrillaGlyph> {
        let face = self.face(weight);
        let mut buffer = UnicodeBuffer::new();
        buffer.push_str(text);
        buffer.guess_segment_properties();
        let forward = matches!(
            buffer.direction(),
            Direction::LeftToRight | Direction::TopToBottom
        );
        let output = rustybuzz::shape_with_plan(&face.shaper, &face.plan(&buffer), buffer);
        let infos = output.glyph_infos();
        let em = face.units_per_em;
        output
            .glyph_positions()
            .iter()
            .zip(infos)
            .enumerate()
            .map(|(i, (pos, info))| {
                KrillaGlyph::new(
                    GlyphId::new(info.glyph_id),
                    pos.x_advance as f32 / em,
                    pos.x_offset as f32 / em,
                    pos.y_offset as f32 / em,
                    pos.y_advance as f32 / em,
                    cluster_range(infos, i, forward, text.len()),
                    None,
                )
            })
            .collect()
    }

    /// The advance width of `text` on one line, in points.
    pub fn width(&self, text: &str, weight: Weight, size: f32) -> f32 {
        self.shape(text, weight)
            .iter()
            .map(|g| g.x_advance)
            .sum::<f32>()
            * size
    }

    /// Breaks `text` into lines no wider than `max_width` points.
    ///
    /// Nothing is dropped: a newline starts a new line, lines break at spaces (the one space
    /// a break replaces is the only character not drawn), and a word wider than the whole
    /// width (an id, a URL) is cut between characters. A tab is drawn as four spaces since
    /// the font has no tab glyph; other control characters, invisible by definition, are
    /// left out rather than drawn as the font's "missing glyph" box. Always returns at
    /// least one (possibly empty) line.
    pub fn wrap(&self, text: &str, weight: Weight, size: f32, max_width: f32) -> Vec<String> {
        let text: String = text
            .replace("\r\n", "\n")
            .replace('\t', "    ")
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\r'))
            .collect();
        let mut lines = Vec::new();
        for paragraph in text.split(['\n', '\r']) {
            self.wrap_paragraph(paragraph, weight, size, max_width, &mut lines);
        }
        lines
    }

    fn wrap_paragraph(
        &self,
        paragraph: &str,
        weight: Weight,
        size: f32,
        max_width: f32,
        lines: &mut Vec<String>,
    ) {
        let fits = |s: &str| self.width(s.trim_end_matches(' '), weight, size) <= max_width;
        if fits(paragraph) {
            // Most cells and notes fit on one line: one measurement instead of one a word.
            lines.push(paragraph.trim_end_matches(' ').to_owned());
            return;
        }
        let mut line = String::new();
        for word in words(paragraph) {
            let candidate = format!("{line}{word}");
            if fits(&candidate) {
                line = candidate;
                continue;
            }
            // The word goes to a new line, unless the line holds nothing visible yet (only
            // the paragraph's indent): then it has to be cut where it stands.
            let mut rest = if line.trim().is_empty() {
                candidate
            } else {
                lines.push(line.trim_end_matches(' ').to_owned());
                word.to_owned()
            };
            while !fits(&rest) {
                let cut = self.longest_fitting_prefix(&rest, weight, size, max_width);
                lines.push(rest[..cut].to_owned());
                rest = rest[cut..].to_owned();
            }
            line = rest;
        }
        lines.push(line.trim_end_matches(' ').to_owned());
    }

    /// The byte length of the longest prefix of `s` that fits, at least one character so
    /// that breaking always progresses.
    fn longest_fitting_prefix(&self, s: &str, weight: Weight, size: f32, max_width: f32) -> usize {
        let ends: Vec<usize> = s.char_indices().map(|(i, c)| i + c.len_utf8()).collect();
        let (mut lo, mut hi) = (0, ends.len()); // ends[..lo] fit, ends[hi..] do not
        while lo < hi {
            let mid = (lo + hi) / 2;
            if self.width(&s[..ends[mid]], weight, size) <= max_width {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        ends[lo.saturating_sub(1)]
    }
}

/// Splits a paragraph into words, each keeping the spaces that follow it, so that joining
/// them gives the paragraph back exactly.
fn words(paragraph: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in paragraph.char_indices() {
        if c == ' ' {
            in_space = true;
        } else if in_space {
            out.push(&paragraph[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < paragraph.len() {
        out.push(&paragraph[start..]);
    }
    out
}

/// The bytes of `text` that glyph `i` belongs to: from its cluster to the next cluster in
/// text order (as krilla's own shaping does, so ligatures and right-to-left runs map back).
fn cluster_range(
    infos: &[rustybuzz::GlyphInfo],
    i: usize,
    forward: bool,
    len: usize,
) -> Range<usize> {
    let start = infos[i].cluster;
    let next = if forward {
        infos[i..].iter().find(|g| g.cluster != start)
    } else {
        infos[..i].iter().rev().find(|g| g.cluster != start)
    };
    start as usize..next.map_or(len, |g| g.cluster as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fonts() -> &'static Fonts {
        Fonts::embedded().unwrap()
    }

    #[test]
    fn short_text_is_one_line() {
        assert_eq!(
            fonts().wrap("API calls", Weight::Regular, 10.0, 200.0),
            ["API calls"]
        );
        assert_eq!(fonts().wrap("", Weight::Regular, 10.0, 200.0), [""]);
    }

    #[test]
    fn wrapping_keeps_every_word_and_respects_the_width() {
        let text = "Usage of the premium inference tier, billed per thousand tokens, \
                    including cached prompt tokens at the discounted rate";
        let lines = fonts().wrap(text, Weight::Regular, 10.0, 120.0);
        assert!(lines.len() > 2);
        for line in &lines {
            assert!(
                fonts().width(line, Weight::Regular, 10.0) <= 120.0,
                "{line}"
            );
        }
        assert_eq!(lines.join(" "), text);
    }

    #[test]
    fn an_unbreakable_word_is_cut_between_characters() {
        let text = "key: ".to_owned() + &"x".repeat(200);
        let lines = fonts().wrap(&text, Weight::Bold, 10.0, 100.0);
        assert!(lines.len() > 3);
        assert_eq!(lines.concat().replace(' ', ""), text.replace(' ', ""));
    }

    #[test]
    fn newlines_start_new_lines() {
        let lines = fonts().wrap("one\ntwo\r\n\nthree", Weight::Regular, 10.0, 300.0);
        assert_eq!(lines, ["one", "two", "", "three"]);
    }

    #[test]
    fn digits_are_tabular() {
        let f = fonts();
        assert_eq!(
            f.width("111.11", Weight::Regular, 10.0),
            f.width("888.88", Weight::Regular, 10.0)
        );
    }
}
