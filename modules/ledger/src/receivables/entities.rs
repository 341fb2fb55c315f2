//! Receivables' and payables' records: taxes, exchange rates, invoices and credit
//! notes with their lines, payments and their allocations. Taxes and exchange rates are
//! kept by people through the generic pages; documents and payments only by the
//! commands of [`super::books`], which post their journal entries.

use nexus_kernel::typed::field::{Bool, Choice, Date, Int, Money, Ref, Text};
use nexus_kernel::{Creation, Unique};

use super::{DocumentKind, PaymentKind};
use crate::entities::{AccountRecord, Customer, JournalEntryRecord, SupplierRecord};

nexus_kernel::options! {
    DocumentKind {
        SalesInvoice = "Sales invoice",
        SalesCreditNote = "Sales credit note",
        PurchaseInvoice = "Purchase invoice",
        PurchaseCreditNote = "Purchase credit note",
    }
}

nexus_kernel::options! {
    PaymentKind {
        CustomerReceipt = "Customer receipt",
        CustomerRefund = "Customer refund",
        SupplierPayment = "Supplier payment",
        SupplierRefund = "Supplier refund",
    }
}

nexus_kernel::choice! {
    /// How much of an invoice is paid.
    pub enum InvoiceStatus { Open, PartlyPaid = "Partly paid", Paid }
}

nexus_kernel::entity! {
    /// The stored form of a tax.
    pub struct TaxRecord in TAX {
        name: "tax", code: 24, module: "ledger", label: "Tax", plural: "Taxes",
        title: code, search: [code, name],
        creation: Creation::ByRole,
    }
    fields {
        code: Text<20> = "Code"
            .indexed()
            .unique(Unique::PerCompany)
            .list()
            .help("Short and unique, e.g. VAT20."),
        name: Text<80> = "Name" .list(),
        percent: Text<12> = "Percent" .list().help("The rate in percent, e.g. 20 or 7.7."),
        sales_account: Option<Ref<AccountRecord>> = "Sales account"
            .list()
            .help("Where tax charged on sales goes (output tax, a liability)."),
        purchase_account: Option<Ref<AccountRecord>> = "Purchase account"
            .list()
            .help("Where tax paid on purchases goes (input tax, an asset)."),
    }
}

nexus_kernel::entity! {
    /// The stored form of an exchange rate.
    pub struct ExchangeRateRecord in EXCHANGE_RATE {
        name: "exchange_rate", code: 29, module: "ledger",
        label: "Exchange rate", plural: "Exchange rates",
        title: currency, search: [currency],
        creation: Creation::ByRole,
    }
    fields {
        currency: Text<3> = "Currency" .indexed().list().help("The foreign currency, e.g. EUR."),
        date: Date = "Date"
            .indexed()
            .list()
            .help("Valid from this day until the next rate of the currency."),
        rate: Text<24> = "Rate"
            .list()
            .help("Company currency per unit of the foreign currency, e.g. 1.0825."),
    }
}

nexus_kernel::entity! {
    /// The stored form of an invoice.
    pub struct InvoiceRecord in INVOICE {
        name: "invoice", code: 25, module: "ledger", label: "Invoice", plural: "Invoices",
        title: number, search: [number, reference],
        creation: Creation::Module(
            "invoices and credit notes are issued from Ledger → Invoices (or the ledger API) and \
             are never edited or deleted; to correct one, issue a credit note",
        ),
    }
    fields {
        number: Text<24> = "Number" .indexed().unique(Unique::PerCompany).list(),
        kind: Choice<DocumentKind> = "Kind" .indexed().list(),
        customer: Option<Ref<Customer>> = "Customer" .indexed().list(),
        supplier: Option<Ref<SupplierRecord>> = "Supplier" .indexed().list(),
        date: Date = "Date" .indexed().list(),
        due: Option<Date> = "Due" .indexed().list(),
        currency: Text<3> = "Currency" .list(),
        rate: Option<Text<24>> = "Rate",
        terms: Option<Text<40>> = "Terms",
        prices_include_tax: Bool = "Prices include tax",
        reference: Option<Text<60>> = "Reference"
            .indexed()
            .help("The supplier's invoice number, or the customer's order."),
        net: Option<Money> = "Net",
        tax: Option<Money> = "Tax",
        total: Money = "Total" .indexed().list(),
        open: Option<Money> = "Open" .indexed().list(),
        status: Choice<InvoiceStatus> = "Status" .indexed().list(),
        journal_entry: Option<Ref<JournalEntryRecord>> = "Journal entry",
    }
}

nexus_kernel::entity! {
    /// The stored form of an invoice line.
    pub struct InvoiceLineRecord in INVOICE_LINE {
        name: "invoice_line", code: 26, module: "ledger",
        label: "Invoice line", plural: "Invoice lines",
        title: description, search: [description],
        creation: Creation::Module("invoice lines are written with their invoice"),
    }
    fields {
        invoice: Ref<InvoiceRecord> = "Invoice" .indexed().list(),
        line: Int<1, 10_000> = "Line",
        description: Text<200> = "Description" .list(),
        quantity: Text<24> = "Quantity" .list(),
        unit_price: Option<Money> = "Unit price" .list(),
        discount: Option<Text<12>> = "Discount %" .list(),
        account: Ref<AccountRecord> = "Account" .indexed().list(),
        taxes: Option<Text<80>> = "Taxes" .list(),
        net: Option<Money> = "Net" .list(),
    }
}

nexus_kernel::entity! {
    /// The stored form of a payment.
    pub struct PaymentRecord in PAYMENT {
        name: "payment", code: 27, module: "ledger", label: "Payment", plural: "Payments",
        title: number, search: [number, reference],
        creation: Creation::Module(
            "payments are registered from Ledger → Payments (or the ledger API) and are never \
             edited or deleted",
        ),
    }
    fields {
        number: Text<24> = "Number" .indexed().unique(Unique::PerCompany).list(),
        kind: Choice<PaymentKind> = "Kind" .indexed().list(),
        customer: Option<Ref<Customer>> = "Customer" .indexed().list(),
        supplier: Option<Ref<SupplierRecord>> = "Supplier" .indexed().list(),
        date: Date = "Date" .indexed().list(),
        currency: Text<3> = "Currency" .list(),
        amount: Money = "Amount" .indexed().list(),
        rate: Option<Text<24>> = "Rate",
        bank_account: Ref<AccountRecord> = "Bank account" .list(),
        reference: Option<Text<60>> = "Reference" .indexed(),
        unallocated: Option<Money> = "Unallocated"
            .list()
            .help("Left on the party's account as a credit, to allocate later."),
        fx_gain: Option<Money> = "Exchange result"
            .help("Realised exchange gain (positive) or loss (negative)."),
        journal_entry: Option<Ref<JournalEntryRecord>> = "Journal entry",
    }
}

nexus_kernel::entity! {
    /// The stored form of an allocation.
    pub struct AllocationRecord in ALLOCATION {
        name: "allocation", code: 28, module: "ledger", label: "Allocation", plural: "Allocations",
        title: date, search: [],
        creation: Creation::Module("allocations are written by payments"),
    }
    fields {
        payment: Option<Ref<PaymentRecord>> = "Payment" .indexed().list(),
        invoice: Ref<InvoiceRecord> = "Invoice" .indexed().list(),
        date: Date = "Date" .indexed().list(),
        amount: Money = "Amount" .list().help("In the invoice's currency."),
        fx_gain: Option<Money> = "Exchange result" .list(),
    }
}
