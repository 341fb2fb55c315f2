//! Numbers and dates as text, exactly: integer arithmetic only, no floats.

use crate::model::{Cell, ColumnKind};

/// Formats an amount of `minor` units with `exponent` decimals, a comma every three
/// digits and a leading minus sign when negative: `format_money(-123456789, 2)` is
/// `"-1,234,567.89"`, `format_money(5, 3)` is `"0.005"`. Exact for every `i64`.
pub fn format_money(minor: i64, exponent: u8) -> String {
    let digits = minor.unsigned_abs().to_string();
    let exp = usize::from(exponent);
    let (int, frac) = if exp == 0 {
        (digits.as_str(), "")
    } else if digits.len() > exp {
        digits.split_at(digits.len() - exp)
    } else {
        ("0", digits.as_str())
    };
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + exp + 3);
    if minor < 0 {
        out.push('-');
    }
    group_thousands(int, &mut out);
    if exp > 0 {
        out.push('.');
        for _ in frac.len()..exp {
            out.push('0');
        }
        out.push_str(frac);
    }
    out
}

/// Formats a whole number with a comma every three digits: `-1,234,567`.
pub fn format_integer(n: i64) -> String {
    format_money(n, 0)
}

fn group_thousands(digits: &str, out: &mut String) {
    let n = digits.len();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
}

/// `YYYY-MM-DD` (ISO 8601), unambiguous in every country.
pub(crate) fn format_date(d: time::Date) -> String {
    let year = d.year();
    if (0..=9999).contains(&year) {
        format!("{year:04}-{:02}-{:02}", u8::from(d.month()), d.day())
    } else {
        format!("{year:+}-{:02}-{:02}", u8::from(d.month()), d.day())
    }
}

/// A cell as the text a PDF shows.
pub(crate) fn cell_text(cell: &Cell, kind: ColumnKind) -> String {
    match cell {
        Cell::Text(s) => s.clone(),
        Cell::Money(m) => match kind {
            ColumnKind::Money { exponent } => format_money(*m, exponent),
            _ => format_money(*m, 0),
        },
        Cell::Integer(n) => format_integer(*n),
        Cell::Date(d) => format_date(*d),
        Cell::Empty => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_with_separators() {
        let cases: &[(i64, u8, &str)] = &[
            (0, 2, "0.00"),
            (5, 2, "0.05"),
            (-5, 2, "-0.05"),
            (100, 2, "1.00"),
            (123_456_789, 2, "1,234,567.89"),
            (-123_456_789, 2, "-1,234,567.89"),
            (999, 0, "999"),
            (1000, 0, "1,000"),
            (-1_000_000, 0, "-1,000,000"),
            (5, 3, "0.005"),
            (1_234_567, 3, "1,234.567"),
            (i64::MAX, 2, "92,233,720,368,547,758.07"),
            (i64::MIN, 2, "-92,233,720,368,547,758.08"),
            (i64::MIN, 0, "-9,223,372,036,854,775,808"),
            (1, 9, "0.000000001"),
        ];
        for &(minor, exp, want) in cases {
            assert_eq!(format_money(minor, exp), want, "{minor} e-{exp}");
        }
        assert_eq!(format_integer(-1234), "-1,234");
    }

    #[test]
    fn dates_are_iso() {
        let d = time::Date::from_calendar_date(2026, time::Month::March, 7).unwrap();
        assert_eq!(format_date(d), "2026-03-07");
    }
}
