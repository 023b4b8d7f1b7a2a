//! Renders invoices and reads them back with poppler's `pdftotext` and `pdfinfo`: the only
//! trustworthy check that a PDF shows every piece of text it was given is to extract it
//! with an independent reader.
//!
//! Needs the Debian package `poppler-utils`; without it these tests fail (they do not
//! skip), so a CI machine that lacks it is noticed.
//!
//! Set `TOLLGATE_PDF_OUT=/some/dir` to keep the rendered files for a look.

use std::path::Path;
use std::process::Command;

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

/// Text of the PDF as poppler extracts it, pages ending in form feeds.
fn pdftotext(dir: &Path, pdf: &[u8]) -> String {
    let file = dir.join("doc.pdf");
    std::fs::write(&file, pdf).unwrap();
    run("pdftotext", &["-enc", "UTF-8", file.to_str().unwrap(), "-"])
}

fn page_count(dir: &Path, pdf: &[u8]) -> usize {
    let file = dir.join("count.pdf");
    std::fs::write(&file, pdf).unwrap();
    let info = run("pdfinfo", &[file.to_str().unwrap()]);
    info.lines()
        .find_map(|l| l.strip_prefix("Pages:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no page count in pdfinfo output:\n{info}"))
}

fn run(tool: &str, args: &[&str]) -> String {
    let output = Command::new(tool).args(args).output().unwrap_or_else(|e| {
        panic!(
            "could not run `{tool}` ({e}): install poppler-utils (apt-get install -y poppler-utils)"
        )
    });
    assert!(
        output.status.success(),
        "{tool} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Asserts that the words of `expected` appear in `text` in order. The comparison ignores
/// whitespace: a wrapped description is split over lines (and, in a table, interleaved
/// with the other columns' text), and a word too long for its column is itself cut.
fn assert_shows(text: &str, expected: &str) {
    let compact: String = text.split_whitespace().collect();
    let mut from = 0;
    for word in expected.split_whitespace() {
        match compact[from..].find(word) {
            Some(at) => from += at + word.len(),
            None => panic!(
                "{word:?} (of {expected:?}) missing from the PDF text, or out of order:\n{text}"
            ),
        }
    }
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

    let dir = tempfile::tempdir().unwrap();
    let text = pdftotext(dir.path(), &pdf);
    for expected in [
        &doc.issuer,
        &doc.title,
        &doc.number,
        &doc.status,
        &doc.customer,
        &doc.issued_at,
        &doc.currency,
    ] {
        assert_shows(&text, expected);
    }
    assert_shows(&text, doc.period.as_deref().unwrap());
    for l in &doc.lines {
        assert_shows(&text, &l.description);
        assert_shows(&text, &l.quantity);
        assert_shows(&text, &l.amount);
        if let Some(price) = &l.unit_price {
            assert_shows(&text, price);
        }
    }
    for (label, value) in &doc.totals {
        assert_shows(&text, label);
        assert_shows(&text, value);
    }
    for note in &doc.notes {
        assert_shows(&text, note);
    }
    assert_eq!(page_count(dir.path(), &pdf), 1);
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

    let dir = tempfile::tempdir().unwrap();
    let pages = page_count(dir.path(), &pdf);
    assert!(pages > 1, "120 lines on {pages} page");
    let text = pdftotext(dir.path(), &pdf);
    for l in &doc.lines {
        assert_shows(&text, &l.description);
        assert_shows(&text, &l.quantity);
        assert_shows(&text, &l.amount);
    }
    for (label, value) in &doc.totals {
        assert_shows(&text, label);
        assert_shows(&text, value);
    }
    // Every page with lines repeats the table header, and every page says where it is
    // (pdftotext ends each page with a form feed).
    let page_texts: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(page_texts.len(), pages);
    for (i, page) in page_texts.iter().enumerate() {
        if page.contains("Event batch") {
            assert!(
                page.contains("Description") && page.contains("Amount (USD)"),
                "page {}:\n{page}",
                i + 1
            );
        }
        assert!(
            page.contains(&format!("Page {} of {pages}", i + 1)),
            "page {}:\n{page}",
            i + 1
        );
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

    let dir = tempfile::tempdir().unwrap();
    let text = pdftotext(dir.path(), &pdf);
    for expected in [
        "Credit note",
        "CN-000003",
        "Refund: duplicate charge on INV-000011",
        "-49.00",
        "-59.00",
    ] {
        assert_shows(&text, expected);
    }
    assert!(
        !text.contains("Unit price"),
        "no line has a unit price: the column is left out"
    );
    assert!(!text.contains("Period"));
}

#[test]
fn one_enormous_line_is_split_across_pages_without_losing_words() {
    let description: String = (1..=900).map(|i| format!("word{i} ")).collect();
    let doc = invoice(vec![line(description.trim_end(), "1", None, "1.00")]);
    let pdf = render_invoice(&doc).unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(page_count(dir.path(), &pdf) > 1);
    assert_shows(&pdftotext(dir.path(), &pdf), &description);
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

    let dir = tempfile::tempdir().unwrap();
    let text = pdftotext(dir.path(), &pdf);
    for expected in [
        "cus_1 · 山田太郎",
        "株式会社テスト API 利用料",
        "Emoji 🚀 and tab here and bell end",
    ] {
        assert_shows(&text, expected);
    }
}

/// Rendering is a pure function of the document (no clock, no random ids), so a stored
/// PDF can be checked against a re-render and hashed as evidence.
#[test]
fn the_same_document_renders_to_the_same_bytes() {
    let doc = invoice(eight_lines());
    assert_eq!(render_invoice(&doc).unwrap(), render_invoice(&doc).unwrap());
}
