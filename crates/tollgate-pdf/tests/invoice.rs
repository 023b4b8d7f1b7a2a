//! Renders invoices and reads them back with an independent reader, `pdf-extract` (pure Rust,
//! no system tools): the only trustworthy check that a PDF shows every piece of text it was
//! given is to extract it again.
//!
//! The assertions compare whole lines or whole tokens of the extracted text, never substrings,
//! so a quantity `1` cannot be "found" inside `INV-000012`.
//!
//! Set `TOLLGATE_PDF_OUT=/some/dir` to keep the rendered files for a look.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly

use std::path::Path;

use tollgate_pdf::{DocumentLine, InvoiceDocument, render_invoice};

const LONG_DESCRIPTION: &str = "Inference tokens, premium tier (model family gpt-large, region \
    eu-west), billed per thousand tokens including cached prompt tokens at the discounted rate \
    and batch requests at half price, for all projects of the workspace during the period";

const LONG_ID: &str =
    "ref:7f3a9c2e-51b4-4d8e-9a6f-0c1d2e3f4a5b/7f3a9c2e-51b4-4d8e-9a6f-0c1d2e3f4a5b";

fn line(description: &str, quantity: &str, unit_price: Option<&str>, amount: &str) -> DocumentLine {
    DocumentLine {
        description: description.to_owned(),
        quantity: quantity.to_owned(),
        unit_price: unit_price.map(str::to_owned),
        amount: amount.to_owned(),
    }
}

fn invoice(lines: Vec<DocumentLine>) -> InvoiceDocument {
    InvoiceDocument {
        issuer: "Acme Analytics GmbH".to_owned(),
        title: "Invoice".to_owned(),
        number: "INV-000012".to_owned(),
        status: "open".to_owned(),
        customer: "cus_01J9Z3 · Zoë Müller Design Studio".to_owned(),
        issued_at: "2026-12-01".to_owned(),
        period: Some("2026-11-01 to 2026-11-30".to_owned()),
        currency: "USD".to_owned(),
        lines,
        totals: vec![
            ("Subtotal".to_owned(), "465.00".to_owned()),
            ("Credit applied".to_owned(), "-12.00".to_owned()),
            ("Tax (19%)".to_owned(), "86.07".to_owned()),
            ("Amount due".to_owned(), "539.07".to_owned()),
        ],
        notes: vec![
            "Pay by bank transfer to IBAN DE89 3704 0044 0532 0130 00 within 14 days, quoting INV-000012.".to_owned(),
            "Questions? billing@acme.example".to_owned(),
        ],
        ..Default::default()
    }
}

fn eight_lines() -> Vec<DocumentLine> {
    vec![
        line("Pro plan (monthly)", "1", Some("199.00"), "199.00"),
        line(LONG_DESCRIPTION, "1,250,000", Some("0.0800"), "100.00"),
        line(
            "API calls above the included 1,000,000",
            "412,345",
            Some("0.0001"),
            "41.23",
        ),
        line("Seats (Pro)", "12", Some("9.00"), "108.00"),
        line("Storage GB-months", "35.5", Some("0.50"), "17.75"),
        line("Priority support add-on", "1", None, "29.00"),
        line(&format!("Migration fee {LONG_ID}"), "1", None, "-18.98"),
        line(
            "Proration: upgrade from Starter on 2026-11-14",
            "17/30",
            Some("-22.00"),
            "-12.47",
        ),
    ]
}

/// The text of each page, as `pdf-extract` reads it back.
fn pages(pdf: &[u8]) -> Vec<String> {
    pdf_extract::extract_text_from_mem_by_pages(pdf)
        .unwrap_or_else(|e| panic!("pdf-extract cannot read the PDF: {e}"))
}

/// The text of the whole document, pages one after the other.
fn text(pdf: &[u8]) -> String {
    pages(pdf).join("\n")
}

/// The number of pages in the PDF's page tree (read with lopdf, independently of the text).
fn page_count(pdf: &[u8]) -> usize {
    pdf_extract::Document::load_mem(pdf)
        .unwrap_or_else(|e| panic!("lopdf cannot read the PDF: {e}"))
        .get_pages()
        .len()
}

/// The text's lines as tokens (split on whitespace), empty lines kept.
fn token_lines(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

fn compact(text: &str) -> String {
    text.split_whitespace().collect()
}

/// Asserts that one line of `text` is exactly `expected`, whitespace aside.
fn assert_line(text: &str, expected: &str) {
    let want: Vec<&str> = expected.split_whitespace().collect();
    assert!(
        token_lines(text).contains(&want),
        "no line {expected:?} in the PDF text:\n{text}"
    );
}

/// Asserts that one line of `text` holds the whole tokens of `expected`, in a row.
fn assert_in_line(text: &str, expected: &str) {
    let want: Vec<&str> = expected.split_whitespace().collect();
    assert!(
        token_lines(text)
            .iter()
            .any(|line| line.windows(want.len()).any(|w| w == want.as_slice())),
        "no line holds {expected:?} as whole words in the PDF text:\n{text}"
    );
}

/// Asserts that a table row shows `description` with, at the end of its last line, exactly
/// its cells (quantity, unit price when there is one, amount) as whole tokens. A description
/// that wraps comes on the lines above its cells (the extractor may join or split words where
/// it wraps, so the description is compared without whitespace, but in full).
fn assert_row(text: &str, description: &str, cells: &[&str]) {
    let lines = token_lines(text);
    let found = lines.iter().enumerate().any(|(i, line)| {
        if line.len() < cells.len() || &line[line.len() - cells.len()..] != cells {
            return false;
        }
        let before = &line[..line.len() - cells.len()];
        let shown = if before.is_empty() {
            // The cells on a line of their own: the description is the block above them.
            let start = lines[..i]
                .iter()
                .rposition(|l| l.is_empty())
                .map_or(0, |p| p + 1);
            lines[start..i]
                .iter()
                .flatten()
                .copied()
                .collect::<String>()
        } else {
            before.concat()
        };
        shown == compact(description)
    });
    assert!(
        found,
        "no row {description:?} with cells {cells:?} in the PDF text:\n{text}"
    );
}

fn assert_line_row(text: &str, l: &DocumentLine) {
    let mut cells = vec![l.quantity.as_str()];
    cells.extend(l.unit_price.as_deref());
    cells.push(&l.amount);
    assert_row(text, &l.description, &cells);
}

/// Asserts that `page` has its footer "Page {n} of {of}" (followed by no further digit).
fn assert_footer(page: &str, n: usize, of: usize) {
    let footer = format!("Page {n} of {of}");
    assert!(
        page.lines().any(|l| l
            .trim_start()
            .strip_prefix(&footer)
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_digit()))),
        "no {footer:?} on the page:\n{page}"
    );
}

fn save(name: &str, pdf: &[u8]) {
    if let Ok(dir) = std::env::var("TOLLGATE_PDF_OUT") {
        std::fs::write(Path::new(&dir).join(name), pdf).unwrap();
    }
}

#[test]
fn an_invoice_shows_every_text_it_was_given() {
    let doc = invoice(eight_lines());
    let pdf = render_invoice(&doc).unwrap();
    save("invoice.pdf", &pdf);
    assert!(pdf.starts_with(b"%PDF"));

    let text = text(&pdf);
    assert_line(&text, &format!("{} {}", doc.issuer, doc.title));
    assert_line(&text, &doc.number);
    assert_line(&text, &doc.status);
    assert_line(&text, &doc.customer);
    assert_line(&text, &format!("Issued {}", doc.issued_at));
    assert_line(&text, &format!("Period {}", doc.period.as_deref().unwrap()));
    assert_line(&text, &format!("Currency {}", doc.currency));
    assert_line(&text, "Description Quantity Unit price Amount (USD)");
    for l in &doc.lines {
        assert_line_row(&text, l);
    }
    for (label, value) in &doc.totals {
        assert_line(&text, &format!("{label} {value}"));
    }
    for note in &doc.notes {
        assert_in_line(&text, note);
    }
    assert_eq!(page_count(&pdf), 1);
    assert_footer(&text, 1, 1);
}

#[test]
fn a_long_invoice_continues_on_more_pages_with_its_header() {
    let lines: Vec<DocumentLine> = (1..=120)
        .map(|i| {
            let description = if i % 17 == 0 {
                format!("Event batch {i:03}: {LONG_DESCRIPTION}")
            } else {
                format!("Event batch {i:03}, storage and egress")
            };
            line(
                &description,
                &format!("{}", i * 1000),
                Some("0.0010"),
                &format!("{}.{:02}", i, i % 100),
            )
        })
        .collect();
    let doc = invoice(lines);
    let pdf = render_invoice(&doc).unwrap();
    save("invoice-long.pdf", &pdf);
    assert!(pdf.starts_with(b"%PDF"));

    let pages_in_tree = page_count(&pdf);
    assert!(pages_in_tree > 1, "120 lines on {pages_in_tree} page");
    let page_texts = pages(&pdf);
    assert_eq!(page_texts.len(), pages_in_tree);
    let text = page_texts.join("\n");
    for l in &doc.lines {
        assert_line_row(&text, l);
    }
    for (label, value) in &doc.totals {
        assert_line(&text, &format!("{label} {value}"));
    }
    // Every page with lines repeats the table header, and every page says where it is.
    for (i, page) in page_texts.iter().enumerate() {
        if page.contains("Event batch") {
            assert_line(page, "Description Quantity Unit price Amount (USD)");
        }
        assert_footer(page, i + 1, pages_in_tree);
    }
}

#[test]
fn a_credit_note_without_unit_prices_or_period_renders() {
    let mut doc = invoice(vec![
        line(
            "Refund: duplicate charge on INV-000011",
            "1",
            None,
            "-49.00",
        ),
        line("Goodwill credit", "1", None, "-10.00"),
    ]);
    doc.title = "Credit note".to_owned();
    doc.number = "CN-000003".to_owned();
    doc.status = "issued".to_owned();
    doc.period = None;
    doc.totals = vec![("Total credited".to_owned(), "-59.00".to_owned())];
    doc.notes = vec!["Refunded to the card ending in 4242 on 2026-12-03.".to_owned()];
    let pdf = render_invoice(&doc).unwrap();
    save("credit-note.pdf", &pdf);

    let text = text(&pdf);
    assert_line(&text, "Acme Analytics GmbH Credit note");
    assert_line(&text, "CN-000003");
    assert_line(&text, "issued");
    for l in &doc.lines {
        assert_line_row(&text, l);
    }
    assert_line(&text, "Total credited -59.00");
    assert_line(&text, &doc.notes[0]);
    // No line has a unit price: the column is left out; there is no period either.
    assert_line(&text, "Description Quantity Amount (USD)");
    assert!(!text.contains("Unit price"), "{text}");
    assert!(!text.contains("Period"), "{text}");
}

#[test]
fn one_enormous_line_is_split_across_pages_without_losing_words() {
    // Words of one width, none inside another: each is found only where it is.
    let words: Vec<String> = (1..=900).map(|i| format!("word{i:03}")).collect();
    let doc = invoice(vec![line(&words.join(" "), "1", None, "1.00")]);
    let pdf = render_invoice(&doc).unwrap();
    assert!(page_count(&pdf) > 1);
    let text = compact(&text(&pdf));
    assert_eq!(text.matches("word").count(), words.len(), "{text}");
    let mut from = 0;
    for word in &words {
        let at = text[from..]
            .find(word.as_str())
            .unwrap_or_else(|| panic!("{word} missing or out of order:\n{text}"));
        from += at + word.len();
    }
}

/// The `/ActualText` of the page content's marked-content spans, in order: where krilla puts
/// the text of characters the font has no glyph for.
fn actual_text(pdf: &[u8]) -> String {
    use pdf_extract::{Object, content::Content};
    let doc = pdf_extract::Document::load_mem(pdf).unwrap();
    let mut out = String::new();
    for page in doc.get_pages().into_values() {
        let content = Content::decode(&doc.get_page_content(page).unwrap()).unwrap();
        for op in content.operations.iter().filter(|op| op.operator == "BDC") {
            let Some(Object::Dictionary(props)) = op.operands.get(1) else {
                continue;
            };
            if let Ok(Object::String(bytes, _)) = props.get(b"ActualText") {
                let units: Vec<u16> = bytes
                    .strip_prefix(&[0xfe, 0xff])
                    .expect("ActualText is UTF-16BE")
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                out.push_str(&String::from_utf16(&units).unwrap());
            }
        }
    }
    out
}

/// Scripts DejaVu Sans lacks (CJK, emoji) show as boxes, but their text must stay in the
/// PDF's text layer (search, copy-paste, accounting tools that read PDFs); right-to-left
/// text and control characters must not break rendering.
#[test]
fn text_the_font_lacks_stays_in_the_text_layer() {
    let mut doc = invoice(vec![
        line("株式会社テスト API 利用料", "1", None, "1.00"),
        line("شركة الاختبار", "2", None, "2.00"),
        line(
            "Emoji 🚀 and tab\there and bell\u{7} end",
            "3",
            None,
            "3.00",
        ),
        line("", "", None, ""),
    ]);
    doc.customer = "cus_1 · 山田太郎".to_owned();
    let pdf = render_invoice(&doc).unwrap();
    save("unusual.pdf", &pdf);

    // What the font lacks is carried as marked-content ActualText, in reading order.
    assert_eq!(actual_text(&pdf), "山田太郎株式会社テスト利用料🚀");
    // The rest is in the glyphs' own text: the Latin parts of each row next to their cells, and
    // the Arabic in visual order (krilla marks it /ReversedChars, which pdf-extract does not undo;
    // a lam-alef ligature keeps its logical order), so its letters are compared as a multiset.
    let text = text(&pdf);
    assert_line(&text, "cus_1 ·");
    assert_row(&text, "API", &["1", "1.00"]);
    let letters = |s: &str| {
        let mut c: Vec<char> = compact(s).chars().collect();
        c.sort_unstable();
        c
    };
    let arabic_row = token_lines(&text)
        .into_iter()
        .find(|l| l.ends_with(&["2", "2.00"]))
        .unwrap_or_else(|| panic!("no row with cells 2, 2.00:\n{text}"));
    assert_eq!(
        letters(&arabic_row[..arabic_row.len() - 2].concat()),
        letters("شركة الاختبار"),
        "{text}"
    );
    assert_row(&text, "Emoji and tab here and bell end", &["3", "3.00"]);
}

/// Rendering is a pure function of the document (no clock, no random ids), so a stored
/// PDF can be checked against a re-render and hashed as evidence.
#[test]
fn the_same_document_renders_to_the_same_bytes() {
    let doc = invoice(eight_lines());
    assert_eq!(render_invoice(&doc).unwrap(), render_invoice(&doc).unwrap());
}

const LOGO: &[u8] = include_bytes!("fixtures/logo.png");

/// A PNG logo is drawn above the title as an image, its aspect ratio kept, and the text is all
/// still there; what is not a small PNG or JPEG is refused with the reason.
#[test]
fn a_logo_is_drawn_above_the_title() {
    use tollgate_pdf::{Logo, LogoError, MAX_LOGO_BYTES};
    let logo = Logo::from_bytes(LOGO.to_vec()).unwrap();
    assert_eq!(logo.pixels(), (240, 72));
    assert_eq!(logo.fit(160.0, 48.0), (160.0, 48.0));
    let plain = render_invoice(&invoice(eight_lines())).unwrap();
    let branded = render_invoice(&InvoiceDocument {
        logo: Some(logo),
        ..invoice(eight_lines())
    })
    .unwrap();
    // The image's pixels (and its transparency mask) are in the file: the PDF's object streams
    // compress the dictionaries that would name them, so their weight is what is checked.
    assert!(
        branded.len() > plain.len() + 400,
        "{} vs {}",
        branded.len(),
        plain.len()
    );
    let text = pdf_extract::extract_text_from_mem(&branded).unwrap();
    assert!(text.contains("Acme Analytics GmbH"), "{text}");
    assert!(text.contains("539.07"), "{text}");
    if let Ok(dir) = std::env::var("TOLLGATE_PDF_OUT") {
        std::fs::write(Path::new(&dir).join("invoice-logo.pdf"), &branded).unwrap();
    }

    assert_eq!(
        Logo::from_bytes(vec![0; MAX_LOGO_BYTES + 1]),
        Err(LogoError::TooLarge {
            size: MAX_LOGO_BYTES + 1,
            max: MAX_LOGO_BYTES
        })
    );
    assert_eq!(
        Logo::from_bytes(b"GIF89a....".to_vec()),
        Err(LogoError::NotPngOrJpeg)
    );
    // A PNG signature over broken data, and a truncated JPEG: unreadable, refused now.
    let mut broken = LOGO[..40].to_vec();
    broken.extend_from_slice(&[0xAB; 64]);
    assert!(matches!(
        Logo::from_bytes(broken),
        Err(LogoError::Unreadable(_))
    ));
    assert!(matches!(
        Logo::from_bytes(vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 16]),
        Err(LogoError::Unreadable(_))
    ));
}
