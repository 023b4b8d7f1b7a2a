//! Invoices as PDF: the stored invoice turned into a preformatted document for `tollgate-pdf`.

use tollgate_pdf::{DocumentLine, InvoiceDocument};
use tollgate_store::billing::InvoiceRecord;

use super::invoices::invoice_number;

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

/// The printable form of a stored invoice, with refunds noted.
pub fn invoice_document(
    issuer: &str,
    invoice: &InvoiceRecord,
    credited_minor: i64,
) -> InvoiceDocument {
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
                    unit_price: l.get("unit_price").filter(|v| !v.is_null()).map(text),
                    amount: text(&l["amount"]),
                })
                .collect()
        })
        .unwrap_or_default();
    let cur = &invoice.currency;
    let mut totals = vec![("Total".to_owned(), amount(invoice.total_minor, cur))];
    if invoice.credit_applied_minor != 0 {
        totals.push((
            "Prepaid credit applied".to_owned(),
            amount(-invoice.credit_applied_minor, cur),
        ));
    }
    totals.push((
        "Amount due".to_owned(),
        amount(invoice.amount_due_minor, cur),
    ));
    let mut notes = Vec::new();
    if credited_minor > 0 {
        notes.push(format!(
            "Refunded by credit note: {} {cur}.",
            amount(credited_minor, cur)
        ));
    }
    if let Some(paid) = invoice.paid_at {
        notes.push(format!("Paid on {}.", paid.strftime("%Y-%m-%d")));
    }
    InvoiceDocument {
        issuer: issuer.to_owned(),
        title: "Invoice".into(),
        number: invoice_number(invoice.number),
        status: invoice.status.as_str().to_owned(),
        customer: invoice.customer.clone(),
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
    }
}
