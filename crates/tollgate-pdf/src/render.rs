//! Writes laid-out pages as a PDF with krilla.
//!
//! This is the only module that knows krilla's drawing API; everything above it works with
//! [`Op`]s, so the PDF library could be swapped without touching layout.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{Path, PathBuilder, Point, Rect, Size, Transform};
use krilla::metadata::Metadata;
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke};
use krilla::surface::Surface;
use krilla::text::{GlyphId, KrillaGlyph};

use crate::PdfError;
use crate::layout::{Op, PageSpec, Rgb};
use crate::text::{Fonts, Weight};

/// Document-level facts written into the PDF's metadata (shown as the window title and
/// used by search and archiving tools).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentInfo {
    pub title: String,
    pub author: String,
}

/// Serializes `pages` (from [`Layout::finish`](crate::layout::Layout::finish)) to PDF bytes.
pub fn write_pdf(
    pages: &[Vec<Op>],
    spec: PageSpec,
    fonts: &Fonts,
    info: &DocumentInfo,
) -> Result<Vec<u8>, PdfError> {
    let mut document = Document::new();
    document.set_metadata(
        Metadata::new()
            .title(info.title.clone())
            .authors(vec![info.author.clone()])
            .creator("Tollgate".to_owned()),
    );
    let settings =
        PageSettings::from_wh(spec.width, spec.height).ok_or(PdfError::Geometry("page size"))?;
    for (index, ops) in pages.iter().enumerate() {
        let mut page = document.start_page_with(settings.clone());
        let mut surface = page.surface();
        if index == 0 {
            claim_missing_glyph(&mut surface, fonts, pages);
        }
        for op in ops {
            draw(&mut surface, fonts, op)?;
        }
        surface.finish();
        page.finish();
    }
    document
        .finish()
        .map_err(|e| PdfError::Pdf(format!("{e:?}")))
}

/// Keeps characters the font lacks (CJK, emoji: drawn as the font's "missing glyph" box)
/// in the PDF's text layer.
///
/// krilla maps each glyph to the text it was first drawn for and marks later uses with
/// other text by `/ActualText`; but it never writes a mapping for the missing glyph, so the
/// *first* missing character of a document would vanish from copy-paste and search. An
/// invisible missing glyph drawn off the page first takes that unwritten mapping, so every
/// real one gets its `/ActualText`. Only done for a font that needs it, since some PDF
/// profiles (PDF/A) reject any use of the missing glyph.
fn claim_missing_glyph(surface: &mut Surface, fonts: &Fonts, pages: &[Vec<Op>]) {
    let missing = GlyphId::new(0);
    for weight in [Weight::Regular, Weight::Bold] {
        let needed = pages.iter().flatten().any(|op| match op {
            Op::Text { text, style, .. } => {
                style.weight == weight
                    && fonts
                        .shape(text, weight)
                        .iter()
                        .any(|g| g.glyph_id == missing)
            }
            _ => false,
        });
        if needed {
            let glyph = KrillaGlyph::new(missing, 0.0, 0.0, 0.0, 0.0, 0..3, None);
            let offscreen = Point::from_xy(-1000.0, -1000.0);
            surface.draw_glyphs(
                offscreen,
                &[glyph],
                fonts.pdf_font(weight),
                "\u{fffd}",
                1.0,
                false,
            );
        }
    }
}

fn fill(color: Rgb) -> Fill {
    Fill {
        paint: rgb::Color::new(color.0, color.1, color.2).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn draw(surface: &mut Surface, fonts: &Fonts, op: &Op) -> Result<(), PdfError> {
    match op {
        Op::Text {
            x,
            baseline,
            text,
            style,
        } => {
            let glyphs = fonts.shape(text, style.weight);
            surface.set_stroke(None);
            surface.set_fill(Some(fill(style.color)));
            surface.draw_glyphs(
                Point::from_xy(*x, *baseline),
                &glyphs,
                fonts.pdf_font(style.weight),
                text,
                style.size,
                false,
            );
        }
        Op::Rect {
            x,
            y,
            w,
            h,
            radius,
            color,
        } => {
            surface.set_stroke(None);
            surface.set_fill(Some(fill(*color)));
            surface.draw_path(&rounded_rect(*x, *y, *w, *h, *radius)?);
        }
        Op::Image { x, y, w, h, logo } => {
            let size = Size::from_wh(*w, *h).ok_or(PdfError::Geometry("image"))?;
            surface.push_transform(&Transform::from_translate(*x, *y));
            surface.draw_image(logo.image()?, size);
            surface.pop();
        }
        Op::HLine {
            x1,
            x2,
            y,
            thickness,
            color,
        } => {
            let mut builder = PathBuilder::new();
            builder.move_to(*x1, *y);
            builder.line_to(*x2, *y);
            let path = builder.finish().ok_or(PdfError::Geometry("line"))?;
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke {
                paint: rgb::Color::new(color.0, color.1, color.2).into(),
                width: *thickness,
                ..Stroke::default()
            }));
            surface.draw_path(&path);
        }
    }
    Ok(())
}

/// A rectangle with corners rounded by quadratic curves (close enough to circular arcs at
/// badge sizes, and simpler).
fn rounded_rect(x: f32, y: f32, w: f32, h: f32, radius: f32) -> Result<Path, PdfError> {
    let r = radius.clamp(0.0, w.min(h) / 2.0);
    let mut b = PathBuilder::new();
    if r == 0.0 {
        b.push_rect(Rect::from_xywh(x, y, w, h).ok_or(PdfError::Geometry("rectangle"))?);
    } else {
        let (right, bottom) = (x + w, y + h);
        b.move_to(x + r, y);
        b.line_to(right - r, y);
        b.quad_to(right, y, right, y + r);
        b.line_to(right, bottom - r);
        b.quad_to(right, bottom, right - r, bottom);
        b.line_to(x + r, bottom);
        b.quad_to(x, bottom, x, bottom - r);
        b.line_to(x, y + r);
        b.quad_to(x, y, x + r, y);
        b.close();
    }
    b.finish().ok_or(PdfError::Geometry("rectangle"))
}

/// Writes a one-page document showing `logo`, so that its pixels are decoded now (krilla defers
/// decoding to writing): an image that cannot be decoded fails here.
pub(crate) fn check_image(logo: &crate::logo::Logo) -> Result<(), PdfError> {
    let spec = PageSpec::A4;
    let fonts = Fonts::embedded()?;
    let (w, h) = logo.fit(100.0, 100.0);
    let page = vec![Op::Image {
        x: 0.0,
        y: 0.0,
        w,
        h,
        logo: logo.clone(),
    }];
    write_pdf(&[page], spec, fonts, &DocumentInfo::default()).map(|_| ())
}
