//! Field values: parsing from people (form strings) and programs (JSON), exact money,
//! display, and order-preserving index keys.

use std::fmt;

use time::Date;
use time::macros::format_description;

/// One field's value. Money is integer minor units (cents); there is no float anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Empty,
    Text(String),
    Int(i64),
    Money(i64),
    Bool(bool),
    Date(Date),
    Ref(u64),
}

impl Value {
    pub fn is_empty(&self) -> bool {
        match self {
            Value::Empty => true,
            Value::Text(s) => s.is_empty(),
            _ => false,
        }
    }

    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_ref_id(&self) -> Option<u64> {
        match self {
            Value::Ref(id) => Some(*id),
            _ => None,
        }
    }

    /// The value as a person reads it (money with two decimals, ISO dates).
    pub fn display(&self) -> String {
        self.to_string()
    }

    /// The value in the JSON API: money as an exact decimal string.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Empty => serde_json::Value::Null,
            Value::Text(s) => serde_json::Value::String(s.clone()),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Money(m) => serde_json::Value::String(format_money(*m)),
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Date(d) => serde_json::Value::String(format_date(*d)),
            Value::Ref(id) => serde_json::Value::from(*id),
        }
    }

    /// Bytes that sort the way the values do (text case-insensitively). Text never holds
    /// NUL (validation refuses control characters), so NUL terminates it.
    pub fn index_key(&self, out: &mut Vec<u8>) {
        match self {
            Value::Empty => out.push(0),
            Value::Text(s) => {
                out.push(1);
                out.extend(s.to_lowercase().bytes());
                out.push(0);
            }
            Value::Int(i) | Value::Money(i) => {
                out.push(1);
                out.extend((*i as u64 ^ (1 << 63)).to_be_bytes());
            }
            Value::Bool(b) => {
                out.push(1);
                out.push(u8::from(*b));
            }
            Value::Date(d) => {
                out.push(1);
                out.extend(((d.to_julian_day() as i64 as u64) ^ (1 << 63)).to_be_bytes());
            }
            Value::Ref(id) => {
                out.push(1);
                out.extend(id.to_be_bytes());
            }
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Empty => Ok(()),
            Value::Text(s) => f.write_str(s),
            Value::Int(i) => write!(f, "{i}"),
            Value::Money(m) => f.write_str(&format_money(*m)),
            Value::Bool(true) => f.write_str("Yes"),
            Value::Bool(false) => f.write_str("No"),
            Value::Date(d) => f.write_str(&format_date(*d)),
            Value::Ref(id) => write!(f, "#{id}"),
        }
    }
}

/// `1234` cents → `"12.34"`, `-5` → `"-0.05"`.
pub fn format_money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Parses an exact decimal amount with at most two decimals into minor units.
/// Accepts `1234`, `1234.5`, `-12.34`, `1,234.50` and surrounding spaces.
pub fn parse_money(input: &str) -> Result<i64, String> {
    let cleaned: String = input
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != '_' && *c != ' ')
        .collect();
    let (negative, digits) = match cleaned.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, cleaned.strip_prefix('+').unwrap_or(&cleaned)),
    };
    let (whole, frac) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if (whole.is_empty() && frac.is_empty()) || !all_digits(whole) || !all_digits(frac) {
        return Err(format!(
            "\"{}\" is not an amount like 1234.56",
            input.trim()
        ));
    }
    if frac.len() > 2 {
        return Err("use at most two decimal places".into());
    }
    let too_large = || "the amount is too large".to_string();
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_large())?
    };
    let frac: i64 = match frac.len() {
        0 => 0,
        1 => frac.parse::<i64>().map_err(|_| too_large())? * 10,
        _ => frac.parse().map_err(|_| too_large())?,
    };
    let minor = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .ok_or_else(too_large)?;
    Ok(if negative { -minor } else { minor })
}

pub fn format_date(d: Date) -> String {
    let fmt = format_description!("[year]-[month]-[day]");
    d.format(&fmt).unwrap_or_default()
}

/// The years a date may fall in: a business record before year 1 or after 9999 is a
/// typing mistake (and `0000` or `-0001` would not survive other systems' parsers).
pub const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

pub fn parse_date(input: &str) -> Result<Date, String> {
    let fmt = format_description!("[year]-[month]-[day]");
    let text = input.trim();
    let date = Date::parse(text, &fmt)
        .ok()
        .filter(|_| text.len() == 10 && text.as_bytes().first().is_some_and(u8::is_ascii_digit))
        .ok_or_else(|| format!("\"{text}\" is not a date like 2026-01-31"))?;
    if YEARS.contains(&date.year()) {
        Ok(date)
    } else {
        Err(format!(
            "\"{text}\": the year must be between 0001 and 9999"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_years_0001_to_9999_written_in_full() {
        assert!(parse_date("2028-02-29").is_ok());
        assert!(parse_date("0001-01-01").is_ok());
        for bad in [
            "0000-01-01",
            "-0001-01-01",
            "+2026-01-01",
            "2027-02-29",
            "2026-1-5",
            "26-01-01",
        ] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
        assert!(
            parse_date("0000-06-30")
                .unwrap_err()
                .contains("0001 and 9999")
        );
    }

    #[test]
    fn money_parses_exactly_and_refuses_what_it_cannot_keep_exact() {
        let ok = [
            ("12.34", 1234),
            ("-0.05", -5),
            ("1,234.5", 123_450),
            (" 7 ", 700),
            (".5", 50),
            ("+3.10", 310),
        ];
        for (input, want) in ok {
            assert_eq!(parse_money(input), Ok(want), "{input}");
        }
        for bad in [
            "",
            "abc",
            "1.234",
            "1.2.3",
            "--1",
            "12e3",
            "99999999999999999999",
        ] {
            assert!(parse_money(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(format_money(-5), "-0.05");
        assert_eq!(format_money(123_450), "1234.50");
        assert_eq!(format_money(i64::MIN), "-92233720368547758.08");
    }

    #[test]
    fn index_keys_sort_like_the_values() {
        let key = |v: Value| {
            let mut out = Vec::new();
            v.index_key(&mut out);
            out
        };
        assert!(key(Value::Int(-3)) < key(Value::Int(2)));
        assert!(key(Value::Money(-100)) < key(Value::Money(0)));
        assert!(key(Value::Text("abc".into())) < key(Value::Text("ABD".into())));
        assert!(key(Value::Text("ab".into())) < key(Value::Text("abc".into())));
        assert!(key(Value::Empty) < key(Value::Text(String::new())));
        let d1 = parse_date("2025-12-31").expect("date");
        let d2 = parse_date("2026-01-01").expect("date");
        assert!(key(Value::Date(d1)) < key(Value::Date(d2)));
    }
}
