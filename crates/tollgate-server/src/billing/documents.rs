//! Invoices as PDF: the stored invoice turned into a preformatted document for `tollgate-pdf`.

use tollgate_core::pricing::{InvoiceParties, Party, document_number};
use tollgate_pdf::{DocumentLine, InvoiceDocument};
use tollgate_store::billing::{CreditNoteMethod, CreditNoteRecord, InvoiceRecord, InvoiceStatus};

fn amount(minor: i64, currency: &str) -> String {
    super::invoices::money_text(minor, currency)
}

fn text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A unit price with at least the currency's decimals (`100.00`, not `100`), and more when the
/// catalog wrote more (`0.001`).
fn unit_price_text(v: &serde_json::Value, currency: &str) -> String {
    let written = text(v);
    let digits = currency
        .parse::<tollgate_core::money::Currency>()
        .map_or(2, |c| c.minor_digits());
    match written.parse::<rust_decimal::Decimal>() {
        Ok(mut price) if price.scale() < digits => {
            price.rescale(digits);
            price.to_string()
        }
        _ => written,
    }
}

/// The printable form of a stored invoice, with refunds noted. `issuer` is used when the invoice
/// carries no seller (`profiles::document_issuer`: the seller profile's legal name, else empty).
pub fn invoice_document(
    issuer: &str,
    invoice: &InvoiceRecord,
    credited_minor: i64,
) -> InvoiceDocument {
    let parties = parties_of(invoice);
    let lines = invoice
        .document
        .get("lines")
        .and_then(|l| l.as_array())
        .map(|lines| {
            lines
                .iter()
                .map(|l| DocumentLine {
                    description: text(&l["description"]),
                    quantity: text(&l["quantity"]),
                    unit_price: l
                        .get("unit_price")
                        .filter(|v| !v.is_null())
                        .map(|v| unit_price_text(v, &invoice.currency)),
                    amount: text(&l["amount"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let cur = &invoice.currency;
    let mut totals = tax_rows(&invoice.document);
    totals.push(("Total".to_owned(), amount(invoice.total_minor, cur)));
    let balance_applied = super::invoices::balance_applied_minor(invoice);
    if balance_applied != 0 {
        totals.push(("Balance applied".to_owned(), amount(-balance_applied, cur)));
    }
    if invoice.credit_applied_minor != 0 {
        totals.push((
            "Prepaid credit applied".to_owned(),
            amount(-invoice.credit_applied_minor, cur),
        ));
    }
    // Credit notes to the balance on the unpaid invoice lowered its amount due.
    let lowered = invoice
        .total_minor
        .checked_sub(balance_applied)
        .and_then(|t| t.checked_sub(invoice.credit_applied_minor))
        .and_then(|t| t.checked_sub(invoice.amount_due_minor))
        .unwrap_or(0);
    if lowered > 0 {
        totals.push(("Credit notes applied".to_owned(), amount(-lowered, cur)));
    }
    // What is still owed: nothing once paid (or void), whatever was due at issue.
    let settled = matches!(invoice.status, InvoiceStatus::Paid | InvoiceStatus::Void);
    if invoice.status == InvoiceStatus::Paid {
        totals.push((
            "Amount paid".to_owned(),
            amount(-invoice.amount_due_minor, cur),
        ));
    }
    totals.push((
        "Amount due".to_owned(),
        amount(if settled { 0 } else { invoice.amount_due_minor }, cur),
    ));
    let mut notes = Vec::new();
    if let Some(note) = invoice.document.get("tax_note").and_then(|n| n.as_str()) {
        notes.push(note.to_owned());
    }
    if credited_minor > 0 {
        notes.push(format!(
            "Credited by credit notes (refunds and credits to the balance): {} {cur}.",
            amount(credited_minor, cur)
        ));
    }
    if let Some(paid) = invoice.paid_at {
        notes.push(format!("Paid on {}.", paid.strftime("%Y-%m-%d")));
    }
    let (issuer, issuer_details) = seller_lines(issuer, &parties);
    InvoiceDocument {
        issuer,
        title: "Invoice".into(),
        number: invoice_number(invoice),
        status: invoice.status.as_str().to_owned(),
        customer: parties.buyer.name.clone(),
        issued_at: invoice.created_at.strftime("%Y-%m-%d").to_string(),
        period: match (invoice.period_start, invoice.period_end) {
            (Some(s), Some(e)) => Some(format!(
                "{} to {}",
                s.strftime("%Y-%m-%d"),
                (e - jiff::SignedDuration::from_secs(1)).strftime("%Y-%m-%d")
            )),
            _ => None,
        },
        currency: cur.clone(),
        lines,
        totals,
        notes,
        issuer_details,
        customer_details: party_details(&parties.buyer),
        due: Some(due_text(&parties, invoice.created_at)),
        // Payment instructions are for what is still owed.
        payment: if settled || invoice.amount_due_minor == 0 {
            Vec::new()
        } else {
            parties.payment_instructions.clone()
        },
        footer: parties.footer.clone(),
        // The caller draws the seller profile's logo (`profiles::document_logo`).
        logo: None,
    }
}

/// The printable form of a credit note of `invoice`: the seller and buyer of the invoice, the
/// amount refunded as one line, and what remains of the invoice. `to_balance_minor`: the part of
/// a credit that went to the customer's balance (the rest lowered the invoice's amount due).
pub fn credit_note_document(
    issuer: &str,
    invoice: &InvoiceRecord,
    note: &CreditNoteRecord,
    credited_minor: i64,
    to_balance_minor: i64,
) -> InvoiceDocument {
    let parties = parties_of(invoice);
    let cur = &invoice.currency;
    let refunded = amount(-note.amount_minor, cur);
    let credit = note.method == CreditNoteMethod::Credit;
    let what = if credit { "Credit" } else { "Refund" };
    let description = match &note.reason {
        Some(reason) => format!("{what} of invoice {}: {reason}", invoice_number(invoice)),
        None => format!("{what} of invoice {}", invoice_number(invoice)),
    };
    let to_due = note.amount_minor.saturating_sub(to_balance_minor);
    let destination = match (credit, to_due) {
        (false, _) => "the amount is refunded to the payment method it was paid with".to_owned(),
        (true, 0) => {
            "the amount is credited to the customer's balance, which pays the next invoices first"
                .to_owned()
        }
        (true, _) if to_balance_minor <= 0 => {
            "the amount lowers what the invoice still owes".to_owned()
        }
        (true, _) => format!(
            "{} lowers what the invoice still owes and {} is credited to the customer's balance, \
             which pays the next invoices first",
            amount(to_due, cur),
            amount(to_balance_minor, cur)
        ),
    };
    let (issuer, issuer_details) = seller_lines(issuer, &parties);
    InvoiceDocument {
        issuer,
        title: "Credit note".into(),
        number: credit_note_number(invoice, note),
        status: "issued".into(),
        customer: parties.buyer.name.clone(),
        issued_at: note.created_at.strftime("%Y-%m-%d").to_string(),
        period: None,
        currency: cur.clone(),
        lines: vec![DocumentLine {
            description,
            quantity: "1".into(),
            unit_price: None,
            amount: refunded.clone(),
        }],
        totals: vec![
            ("Invoice total".to_owned(), amount(invoice.total_minor, cur)),
            (
                "Credited by all notes".to_owned(),
                amount(-credited_minor, cur),
            ),
            ("Total of this credit note".to_owned(), refunded),
        ],
        notes: vec![format!(
            "Credits invoice {} of {}; {destination}.",
            invoice_number(invoice),
            invoice.created_at.strftime("%Y-%m-%d")
        )],
        issuer_details,
        customer_details: party_details(&parties.buyer),
        due: None,
        payment: Vec::new(),
        footer: parties.footer.clone(),
        // The caller draws the seller profile's logo (`profiles::document_logo`).
        logo: None,
    }
}

/// The parties stored with the invoice; an invoice from before billing profiles has none, and
/// its buyer is its customer id.
pub fn parties_of(invoice: &InvoiceRecord) -> InvoiceParties {
    invoice
        .document
        .get("parties")
        .and_then(|p| serde_json::from_value(p.clone()).ok())
        .unwrap_or_else(|| InvoiceParties {
            buyer: Party {
                name: invoice.customer.clone(),
                ..Default::default()
            },
            ..Default::default()
        })
}

/// The invoice's number, with the prefix it was issued under.
pub fn invoice_number(invoice: &InvoiceRecord) -> String {
    let parties = parties_of(invoice);
    document_number(
        "INV",
        parties.number_prefix.as_deref(),
        invoice.number,
        invoice.created_at,
    )
}

/// A credit note's number, with its invoice's prefix (`LEX-CN-2026-000001`).
pub fn credit_note_number(invoice: &InvoiceRecord, note: &CreditNoteRecord) -> String {
    let prefix = parties_of(invoice).number_prefix.map(|p| format!("{p}-CN"));
    document_number("CN", prefix.as_deref(), note.number, note.created_at)
}

fn seller_lines(issuer: &str, parties: &InvoiceParties) -> (String, Vec<String>) {
    match &parties.seller {
        Some(seller) => (seller.name.clone(), party_details(seller)),
        None => (issuer.to_owned(), Vec::new()),
    }
}

fn party_details(party: &Party) -> Vec<String> {
    party
        .address
        .iter()
        .cloned()
        .chain(party.tax_ids.iter().map(|id| format!("Tax id: {id}")))
        .collect()
}

fn due_text(parties: &InvoiceParties, issued: jiff::Timestamp) -> String {
    let due = parties.due(issued).strftime("%Y-%m-%d").to_string();
    match parties.net_terms_days {
        Some(days) if days > 0 => format!("{due} (net {days})"),
        _ => format!("{due} (on receipt)"),
    }
}

/// The subtotal before exclusive taxes and one row per tax rate, when the invoice has taxes:
/// `VAT 20% on 90.00` with its amount; an inclusive rate says it is included.
fn tax_rows(document: &serde_json::Value) -> Vec<(String, String)> {
    let Some(taxes) = document
        .get("taxes")
        .and_then(|t| t.as_array())
        .filter(|t| !t.is_empty())
    else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    let excluded = document
        .get("lines")
        .and_then(|l| l.as_array())
        .map(|lines| {
            lines
                .iter()
                .filter(|l| l["kind"]["type"] != "tax")
                .filter_map(|l| l["amount"].as_str()?.parse::<rust_decimal::Decimal>().ok())
                .sum::<rust_decimal::Decimal>()
        });
    if let Some(subtotal) = excluded {
        rows.push(("Subtotal".to_owned(), subtotal.to_string()));
    }
    for t in taxes {
        let name = text(&t["name"]);
        let percent = text(&t["percent"]);
        let label = if t["inclusive"] == true {
            format!("{name} {percent}% (included)")
        } else {
            format!("{name} {percent}%")
        };
        rows.push((label, text(&t["amount"])));
    }
    rows
}
