//! The customer both sides create, so they store the same data.

/// Every customer's e-mail address.
pub const EMAIL: &str = "x@y.example";
/// Every customer's city.
pub const CITY: &str = "Zurich";
/// Every customer's status.
pub const STATUS: &str = "Active";
/// Every customer's credit limit, as typed into the form…
pub const CREDIT_LIMIT: &str = "1000.00";
/// …and in cents, as PostgreSQL stores it.
pub const CREDIT_LIMIT_CENTS: i64 = 100_000;

/// A customer name unique per client and operation (customer names are unique per
/// company).
pub fn name(client: usize, seq: u64) -> String {
    format!("Bench {client} {seq}")
}

/// The create form for a customer called `name`.
pub fn form(name: &str) -> Vec<(String, String)> {
    [
        ("name", name),
        ("status", STATUS),
        ("email", EMAIL),
        ("city", CITY),
        ("credit_limit", CREDIT_LIMIT),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}
