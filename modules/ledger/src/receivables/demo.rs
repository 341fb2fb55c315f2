//! Receivables and payables for the demo company: taxes, an exchange rate, a few
//! suppliers, and this year's sales and purchase invoices with their payments — some
//! paid, some partly, some overdue, one in euros paid at another rate, one credited —
//! so the aging reports, the reminder letters and the invoice pages show real cases.
//! Deterministic, and dated in the current fiscal year only (earlier years are closed).

use crate::entities::SUPPLIER;
use crate::parties::customer;
use nexus_kernel::{Input, Kernel, KernelError, ListQuery, Principal, Record, Row};
use time::{Date, Duration};

use super::books::{self as ar, DocumentInput, LineInput, PaymentInput};
use super::entities::{EXCHANGE_RATE, InvoiceRecord, TAX};
use super::{DocumentKind, PaymentKind};
use crate::{Chart, Currency};

fn form(pairs: &[(&str, &str)]) -> Input {
    Input::Form(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn account(chart: &Chart, code: &str) -> Result<u64, KernelError> {
    chart
        .by_code(code)
        .map(|a| a.id)
        .ok_or_else(|| KernelError::Internal(format!("the template lacks account {code}")))
}

async fn parties(
    kernel: &Kernel,
    who: &Principal,
    def: &'static nexus_kernel::EntityDef,
    names: &[&str],
) -> Result<Vec<Record>, KernelError> {
    let have = kernel
        .list(
            who,
            def,
            &ListQuery {
                limit: names.len(),
                ..Default::default()
            },
        )?
        .rows;
    // The company's own parties when it has any; a few demo ones otherwise.
    if !have.is_empty() {
        return Ok(have);
    }
    let mut made = Vec::with_capacity(names.len());
    for name in names {
        let pairs: Vec<(&str, &str)> = if def.name == "customer" {
            vec![("name", name), ("status", "Active")]
        } else {
            vec![("name", name), ("payment_terms", "net30")]
        };
        made.push(kernel.create(who, def, form(&pairs)).await?);
    }
    Ok(made)
}

/// Seeds the demo's receivables and payables; returns how many documents were issued.
/// Does nothing when the company already has taxes.
pub async fn seed(kernel: &Kernel, who: &Principal, today: Date) -> Result<usize, KernelError> {
    let any_tax = ListQuery {
        limit: 1,
        ..Default::default()
    };
    if kernel.list(who, &TAX, &any_tax)?.total > 0 {
        return Ok(0);
    }
    let chart = crate::books::chart(kernel, who)?;
    let (vat_out, vat_in) = (account(&chart, "2210")?, account(&chart, "1400")?);
    let mut taxes = Vec::new();
    for (code, name, percent) in [
        ("VAT20", "VAT 20%", "20"),
        ("VAT5", "VAT 5%", "5"),
        ("VAT0", "VAT 0%", "0"),
    ] {
        let (o, i) = (vat_out.to_string(), vat_in.to_string());
        let rec = kernel
            .create(
                who,
                &TAX,
                form(&[
                    ("code", code),
                    ("name", name),
                    ("percent", percent),
                    ("sales_account", &o),
                    ("purchase_account", &i),
                ]),
            )
            .await?;
        taxes.push(rec.id);
    }
    let start = Date::from_ordinal_date(today.year(), 1)
        .map_err(|e| KernelError::Internal(e.to_string()))?
        .max(today - Duration::days(150));
    let day = |n: i64| (start + Duration::days(n)).min(today);
    let foreign = Currency::EUR;
    let company = ar::posting_accounts(kernel, who)?.company;
    let euro = foreign != company;
    if euro {
        for (offset, rate) in [(0, "1.08"), (60, "1.10"), (100, "1.12")] {
            kernel
                .create(
                    who,
                    &EXCHANGE_RATE,
                    form(&[
                        ("currency", foreign.code()),
                        ("date", &day(offset).to_string()),
                        ("rate", rate),
                    ]),
                )
                .await?;
        }
    }
    let customers = parties(
        kernel,
        who,
        customer()?,
        &[
            "Alder & Co",
            "Birch Logistics",
            "Cedar Studio",
            "Dune Retail",
            "Elm Partners",
            "Fjord Foods",
        ],
    )
    .await?;
    let suppliers = parties(
        kernel,
        who,
        &SUPPLIER,
        &["Granite Wholesale", "Harbour Office Supply", "Iris Energy"],
    )
    .await?;
    let (goods, services, received, office, utilities) = (
        account(&chart, "4100")?,
        account(&chart, "4200")?,
        account(&chart, "2130")?,
        account(&chart, "6400")?,
        account(&chart, "6300")?,
    );
    let bank = account(&chart, "1120")?;
    let line =
        |description: &str, quantity: &str, unit_price: i64, account: u64, tax: u64| LineInput {
            description: description.to_owned(),
            quantity: quantity.to_owned(),
            unit_price,
            discount: String::new(),
            account,
            taxes: vec![tax],
        };
    let mut issued = 0;
    let mut sales = Vec::new();
    for (i, c) in customers.iter().enumerate().take(6) {
        for k in 0..3i64 {
            let n = i as i64 * 3 + k;
            let doc = ar::issue(
                kernel,
                who,
                DocumentInput {
                    kind: DocumentKind::SalesInvoice,
                    party: c.id,
                    date: day(n * 7),
                    currency: None,
                    rate: None,
                    terms: if n % 4 == 0 {
                        "30%:0,70%:30".into()
                    } else {
                        "net30".into()
                    },
                    prices_include_tax: false,
                    reference: format!("PO {}", 4100 + n),
                    lines: vec![
                        line(
                            "Widgets, boxed",
                            &format!("{}", 3 + n % 5),
                            4_500,
                            goods,
                            taxes[0],
                        ),
                        line("Installation", "2.5", 8_000, services, taxes[0]),
                        line("Printed manual", "1", 1_200, goods, taxes[1]),
                    ],
                },
            )
            .await?;
            issued += 1;
            sales.push((c.id, doc));
        }
    }
    // The goods of the first sale leave the warehouse against its invoice.
    if let Some((_, first)) = sales.first() {
        deliver_for(kernel, who, first).await?;
    }
    // Most invoices paid in full, some in part, the latest left open.
    for (k, (customer, doc)) in sales.iter().enumerate() {
        let (total, date) = (doc.total, doc.date);
        let paid = match k % 3 {
            0 => total,
            1 => total / 2,
            _ => continue,
        };
        ar::pay(
            kernel,
            who,
            PaymentInput {
                kind: PaymentKind::CustomerReceipt,
                party: *customer,
                date: (date + Duration::days(20)).min(today),
                currency: None,
                amount: paid,
                rate: None,
                bank_account: bank,
                reference: String::new(),
                allocations: vec![(doc.id, paid)],
            },
        )
        .await?;
    }
    // A credit note for a returned box, set against an invoice left unpaid above.
    if let Some((customer, invoice)) = sales.get(2) {
        let credit = ar::issue(
            kernel,
            who,
            DocumentInput {
                kind: DocumentKind::SalesCreditNote,
                party: *customer,
                date: today,
                currency: None,
                rate: None,
                terms: String::new(),
                prices_include_tax: false,
                reference: invoice.number.clone(),
                lines: vec![line(
                    "Widgets, boxed (returned)",
                    "1",
                    4_500,
                    goods,
                    taxes[0],
                )],
            },
        )
        .await?;
        issued += 1;
        let amount = credit.total;
        ar::allocate_credit_note(kernel, who, credit.id, invoice.id, amount, today).await?;
    }
    // An invoice in euros, paid later at a better rate: a realised exchange gain.
    if euro && let Some(c) = customers.first() {
        let doc = ar::issue(
            kernel,
            who,
            DocumentInput {
                kind: DocumentKind::SalesInvoice,
                party: c.id,
                date: day(10),
                currency: Some(foreign),
                rate: None,
                terms: "net30".into(),
                prices_include_tax: false,
                reference: "Export order".into(),
                lines: vec![line("Widgets for Lyon", "10", 5_000, goods, taxes[2])],
            },
        )
        .await?;
        issued += 1;
        ar::pay(
            kernel,
            who,
            PaymentInput {
                kind: PaymentKind::CustomerReceipt,
                party: c.id,
                date: day(100),
                currency: Some(foreign),
                amount: 50_000,
                rate: None,
                bank_account: bank,
                reference: "SEPA Lyon".into(),
                allocations: vec![(doc.id, 50_000)],
            },
        )
        .await?;
    }
    // Supplier bills: stock, office supplies, energy; the older ones paid.
    for (i, s) in suppliers.iter().enumerate() {
        let (what, account, price) = match i {
            0 => ("Widgets received (see stock receipts)", received, 180_000),
            1 => ("Paper and toner", office, 21_000),
            _ => ("Electricity", utilities, 34_000),
        };
        for k in 0..2i64 {
            let bill = ar::issue(
                kernel,
                who,
                DocumentInput {
                    kind: DocumentKind::PurchaseInvoice,
                    party: s.id,
                    date: day(i as i64 * 5 + k * 60),
                    currency: None,
                    rate: None,
                    terms: String::new(),
                    prices_include_tax: false,
                    reference: format!("S-{}{}", i + 1, k + 1),
                    lines: vec![line(what, "1", price, account, taxes[0])],
                },
            )
            .await?;
            issued += 1;
            if k == 0 {
                let (total, date) = (bill.total, bill.date);
                ar::pay(
                    kernel,
                    who,
                    PaymentInput {
                        kind: PaymentKind::SupplierPayment,
                        party: s.id,
                        date: (date + Duration::days(25)).min(today),
                        currency: None,
                        amount: total,
                        rate: None,
                        bank_account: bank,
                        reference: String::new(),
                        allocations: vec![(bill.id, total)],
                    },
                )
                .await?;
            }
        }
    }
    Ok(issued)
}

/// Delivers one widget (item W-100, when the stock demo made it and it is on hand)
/// against `invoice`, so its page shows the goods moved for it.
async fn deliver_for(
    kernel: &Kernel,
    who: &Principal,
    invoice: &Row<InvoiceRecord>,
) -> Result<(), KernelError> {
    use crate::stock::Quantity;
    use crate::stock::books::{self as stock, MoveInput, MoveType};
    let state = stock::stock(kernel, who)?;
    let one = Quantity::parse("1").map_err(|e| KernelError::Internal(e.to_string()))?;
    let Some(position) = state
        .positions
        .values()
        .find(|p| state.items.get(&p.item).is_some_and(|i| i.code == "W-100") && p.qty >= one)
    else {
        return Ok(());
    };
    let date = invoice.date;
    stock::record_move(
        kernel,
        who,
        MoveInput {
            kind: MoveType::Delivery,
            date,
            item: position.item,
            warehouse: position.warehouse,
            to_warehouse: None,
            qty: one,
            unit: String::new(),
            cost: None,
            account: None,
            reference: invoice.number.clone(),
            document: Some(invoice.id),
        },
    )
    .await?;
    Ok(())
}
