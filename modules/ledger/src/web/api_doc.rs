//! The ledger's JSON routes as the OpenAPI document describes them (the route table
//! the web kit checks every `/api/` request against).

use nexus_web::openapi::{Access, ApiOp};
use serde_json::{Value as J, json};

fn money() -> J {
    json!({ "type": "string", "pattern": "^\\s*-?[0-9]{1,13}(\\.[0-9]{1,2})?\\s*$", "description": "an exact decimal amount, as a string" })
}

fn date() -> J {
    json!({ "type": "string", "format": "date" })
}

fn id() -> J {
    json!({ "type": "integer", "minimum": 1 })
}

fn body(schema: J) -> J {
    json!({ "required": true, "content": { "application/json": { "schema": schema } } })
}

fn ok(description: &str) -> J {
    json!({ "description": description, "content": { "application/json": { "schema": { "type": "object" } } } })
}

fn idempotency() -> J {
    json!([{ "name": "Idempotency-Key", "in": "header", "required": false,
        "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]+$" } }])
}

pub static API: &[ApiOp] = &[
    ApiOp {
        method: "post",
        route: "/api/v1/ledger/journal",
        operation: || {
            json!({ "summary": "Post a journal entry (balanced, after the lock date, into an open fiscal year)",
                "parameters": idempotency(),
                "requestBody": body(json!({ "type": "object", "required": ["date", "narration", "lines"], "properties": {
                    "date": date(), "narration": { "type": "string", "minLength": 1, "maxLength": 200 },
                    "reference": { "type": "string", "maxLength": 60 },
                    "lines": { "type": "array", "minItems": 2, "items": { "type": "object", "required": ["account"], "properties": {
                        "account": id(), "debit": money(), "credit": money(), "memo": { "type": "string", "maxLength": 200 },
                        "currency": { "type": "string", "minLength": 3, "maxLength": 3 }, "amount": money(),
                        "rate": { "type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$" } } } } } })),
                "responses": { "201": ok("the posted entry and its lines") } })
        },
        errors: &[404, 409, 422],
        access: Access::Needs("journal_entry:c"),
    },
    ApiOp {
        method: "post",
        route: "/api/v1/ledger/invoices",
        operation: || {
            json!({ "summary": "Issue an invoice or credit note (sales or purchase), posting its entry",
                "parameters": idempotency(),
                "requestBody": body(json!({ "type": "object", "required": ["kind", "date", "lines"], "properties": {
                    "kind": { "type": "string", "enum": ["sales_invoice", "sales_credit_note", "purchase_invoice", "purchase_credit_note"] },
                    "customer": id(), "supplier": id(), "date": date(), "due": date(),
                    "terms": { "type": "string", "maxLength": 40 }, "currency": { "type": "string", "minLength": 3, "maxLength": 3 },
                    "reference": { "type": "string", "maxLength": 60 }, "prices_include_tax": { "type": "boolean" },
                    "lines": { "type": "array", "minItems": 1, "items": { "type": "object", "properties": {
                        "description": { "type": "string", "maxLength": 200 }, "quantity": { "type": ["string", "number"] },
                        "unit_price": money(), "discount": { "type": "string" }, "account": id(),
                        "taxes": { "type": "array", "items": { "type": "string" } } } } } } })),
                "responses": { "201": ok("the document, its lines and its entry") } })
        },
        errors: &[404, 409, 422],
        access: Access::Needs("invoice:c"),
    },
    ApiOp {
        method: "post",
        route: "/api/v1/ledger/payments",
        operation: || {
            json!({ "summary": "Register a payment received or made, allocated to open documents",
                "parameters": idempotency(),
                "requestBody": body(json!({ "type": "object", "required": ["date", "amount"], "properties": {
                    "kind": { "type": "string" }, "customer": id(), "supplier": id(), "date": date(), "amount": money(),
                    "currency": { "type": "string", "minLength": 3, "maxLength": 3 }, "account": id(),
                    "reference": { "type": "string", "maxLength": 60 },
                    "allocations": { "type": "array", "items": { "type": "object", "required": ["invoice", "amount"],
                        "properties": { "invoice": id(), "amount": money() } } } } })),
                "responses": { "201": ok("the payment, its allocations and its entry") } })
        },
        errors: &[404, 409, 422],
        access: Access::Needs("payment:c"),
    },
    ApiOp {
        method: "get",
        route: "/api/v1/ledger/trial-balance",
        operation: || {
            json!({ "summary": "The trial balance for a range of months (from the maintained totals)",
                "parameters": [
                    { "name": "from", "in": "query", "schema": { "type": "string" }, "description": "the first month, YYYY-MM (default: this year)" },
                    { "name": "to", "in": "query", "schema": { "type": "string" }, "description": "the last month, YYYY-MM" }
                ],
                "responses": { "200": ok("rows per account and the totals") } })
        },
        errors: &[],
        access: Access::Needs("account:r"),
    },
    ApiOp {
        method: "post",
        route: "/api/v1/ledger/stock/moves",
        operation: || {
            json!({ "summary": "Record a stock move (receipt, delivery, transfer, count), posting its entry",
                "parameters": idempotency(),
                "requestBody": body(json!({ "type": "object", "required": ["kind", "item", "warehouse", "qty"], "properties": {
                    "kind": { "type": "string", "enum": ["receipt", "delivery", "transfer", "count"] },
                    "item": id(), "warehouse": id(), "to_warehouse": id(), "date": date(),
                    "qty": { "type": "string" }, "unit": { "type": "string" }, "cost": money(),
                    "reference": { "type": "string", "maxLength": 60 }, "account": id() } })),
                "responses": { "201": ok("the move and its entry") } })
        },
        errors: &[404, 409, 422],
        access: Access::Needs("stock_move:c, journal_entry:c"),
    },
    ApiOp {
        method: "post",
        route: "/api/v1/ledger/bank-accounts/{id}/statements",
        operation: || {
            json!({ "summary": "Import a bank statement: CSV (text/csv) or ISO 20022 camt.053 (application/xml), all or nothing",
                "parameters": [
                    { "name": "date_format", "in": "query", "schema": { "type": "string" } },
                    { "name": "decimal", "in": "query", "schema": { "type": "string" } },
                    { "name": "closing", "in": "query", "schema": { "type": "string" } }
                ],
                "requestBody": { "required": true, "content": { "text/csv": { "schema": { "type": "string" } }, "application/xml": { "schema": { "type": "string" } } } },
                "responses": { "201": ok("the statement: lines imported and skipped"), "200": ok("nothing new: every line was imported before") } })
        },
        errors: &[404, 422],
        access: Access::Needs("bank_line:c, bank_statement:c"),
    },
];
