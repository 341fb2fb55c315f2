//! Exact money: currencies, amounts in minor units, exchange rates.
//!
//! Amounts never touch floating point. An amount is an `i64` count of the currency's
//! minor units (cents for USD, yen for JPY); parsing and formatting go through decimal
//! strings such as `"1234.50"`, and every arithmetic operation is checked.

use std::fmt;
use std::str::FromStr;

use crate::LedgerError;

/// An ISO 4217 currency: three capital letters and the number of decimals its minor unit
/// has (its *exponent*: 2 for USD, 0 for JPY, 3 for KWD).
///
/// Invariant: `code` is three ASCII capital letters and `exponent <= 4`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

/// ISO 4217 currencies whose minor unit is not a hundredth; all others have two decimals.
const EXPONENTS: &[(&str, u8)] = &[
    ("BIF", 0),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("ISK", 0),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("PYG", 0),
    ("RWF", 0),
    ("UGX", 0),
    ("UYI", 0),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
    ("BHD", 3),
    ("IQD", 3),
    ("JOD", 3),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("TND", 3),
    ("CLF", 4),
    ("UYW", 4),
];

impl Currency {
    /// US dollar, two decimals.
    pub const USD: Currency = Currency::known(*b"USD", 2);
    /// Euro, two decimals.
    pub const EUR: Currency = Currency::known(*b"EUR", 2);
    /// Pound sterling, two decimals.
    pub const GBP: Currency = Currency::known(*b"GBP", 2);
    /// Swiss franc, two decimals.
    pub const CHF: Currency = Currency::known(*b"CHF", 2);
    /// Japanese yen, no decimals.
    pub const JPY: Currency = Currency::known(*b"JPY", 0);
    /// Kuwaiti dinar, three decimals.
    pub const KWD: Currency = Currency::known(*b"KWD", 3);

    /// The largest exponent accepted: ISO 4217 has none above 4.
    pub const MAX_EXPONENT: u8 = 4;

    const fn known(code: [u8; 3], exponent: u8) -> Currency {
        Currency { code, exponent }
    }

    /// The currency with this ISO code; its exponent comes from ISO 4217 (two decimals
    /// unless the code is one of the few with 0, 3 or 4).
    pub fn new(code: &str) -> Result<Currency, LedgerError> {
        let bytes = Self::parse_code(code)?;
        let exponent = EXPONENTS
            .iter()
            .find(|(known, _)| known.as_bytes() == bytes)
            .map_or(2, |&(_, exponent)| exponent);
        Ok(Currency {
            code: bytes,
            exponent,
        })
    }

    /// A currency with an explicit exponent, for codes ISO does not list (or lists
    /// differently from the company's practice).
    pub fn with_exponent(code: &str, exponent: u8) -> Result<Currency, LedgerError> {
        let code_bytes = Self::parse_code(code)?;
        if exponent > Self::MAX_EXPONENT {
            return Err(LedgerError::InvalidCurrency {
                code: code.to_owned(),
                reason: "a currency has at most 4 decimals",
            });
        }
        Ok(Currency {
            code: code_bytes,
            exponent,
        })
    }

    fn parse_code(code: &str) -> Result<[u8; 3], LedgerError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok([a, b, c]),
            _ => Err(LedgerError::InvalidCurrency {
                code: code.to_owned(),
                reason: "use the three capital letters of its ISO code, such as USD or EUR",
            }),
        }
    }

    /// The ISO code, such as `"USD"`.
    pub fn code(&self) -> &str {
        // The invariant (three ASCII capitals) makes this valid UTF-8.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// How many decimals the minor unit has: 2 for USD, 0 for JPY.
    pub const fn exponent(self) -> u8 {
        self.exponent
    }

    /// Minor units in one major unit: 100 for USD, 1 for JPY.
    pub const fn minor_per_major(self) -> i64 {
        10i64.pow(self.exponent as u32)
    }
}

/// `USD/2`: the code and the exponent.
impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.code(), self.exponent)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = LedgerError;

    fn from_str(code: &str) -> Result<Self, Self::Err> {
        Currency::new(code)
    }
}

/// An exact amount of one currency, counted in its minor units.
///
/// Invariant: none beyond `i64`; every operation that could leave that range is checked
/// and returns [`LedgerError::Overflow`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// `minor` minor units of `currency`: `Money::new(123450, USD)` is 1234.50 USD.
    pub const fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Nothing, in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// The amount in minor units.
    pub const fn minor(self) -> i64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Parses a decimal such as `"1234.50"`, `"-0.5"` or `"12"` (surrounding spaces
    /// ignored). Refused: more decimals than the currency has (`"12.345"` for USD),
    /// exponents (`"1e5"`), thousands separators, anything not a plain decimal, and
    /// amounts beyond the `i64` range of minor units.
    pub fn parse(input: &str, currency: Currency) -> Result<Money, LedgerError> {
        let malformed = |reason| LedgerError::MalformedAmount {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        if text.is_empty() {
            return Err(malformed("it is empty"));
        }
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        if unsigned.contains(['e', 'E']) {
            return Err(malformed(
                "exponents such as 1e5 are not accepted; write the digits out, such as 100000",
            ));
        }
        if unsigned.contains(',') {
            return Err(malformed(
                "leave out thousands separators and use a point for decimals, such as 1234.50",
            ));
        }
        let (whole, fraction) = match unsigned.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (unsigned, None),
        };
        let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
            return Err(malformed(
                "write digits with an optional minus sign and decimal point, such as 1234.50",
            ));
        }
        let fraction = fraction.unwrap_or("");
        let decimals = usize::from(currency.exponent());
        if fraction.len() > decimals {
            return Err(LedgerError::TooManyDecimals {
                input: input.to_owned(),
                currency,
            });
        }
        // Whole digits, then the fraction padded to the currency's decimals, accumulated
        // negatively so that i64::MIN parses too.
        let padding = std::iter::repeat_n(b'0', decimals - fraction.len());
        let mut minor: i64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()).chain(padding) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_sub(i64::from(digit - b'0')))
                .ok_or_else(|| LedgerError::AmountTooLarge {
                    input: input.to_owned(),
                })?;
        }
        if !negative {
            minor = minor
                .checked_neg()
                .ok_or_else(|| LedgerError::AmountTooLarge {
                    input: input.to_owned(),
                })?;
        }
        Ok(Money::new(minor, currency))
    }

    /// The amount as a decimal with exactly the currency's decimals: `"1234.50"`,
    /// `"-0.05"`, `"100"` (JPY). [`Money::parse`] reads it back unchanged.
    pub fn decimal(self) -> String {
        format_minor(self.minor, self.currency.exponent())
    }

    /// `self + other`, refusing different currencies and overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, LedgerError> {
        self.same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money::new(minor, self.currency))
            .ok_or_else(|| LedgerError::Overflow {
                what: format!("{self} + {other}"),
            })
    }

    /// `self - other`, refusing different currencies and overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, LedgerError> {
        self.same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money::new(minor, self.currency))
            .ok_or_else(|| LedgerError::Overflow {
                what: format!("{self} - {other}"),
            })
    }

    /// `-self`, refusing overflow (only `i64::MIN` minor units has no negation).
    pub fn checked_neg(self) -> Result<Money, LedgerError> {
        self.minor
            .checked_neg()
            .map(|minor| Money::new(minor, self.currency))
            .ok_or_else(|| LedgerError::Overflow {
                what: format!("-({self})"),
            })
    }

    fn same_currency(self, other: Money) -> Result<(), LedgerError> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(LedgerError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// `"1234.50 USD"`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.decimal(), self.currency)
    }
}

/// Formats `minor` units with `exponent` decimals: `(-5, 2)` is `"-0.05"`.
pub(crate) fn format_minor(minor: i64, exponent: u8) -> String {
    let digits = minor.unsigned_abs().to_string();
    let exponent = usize::from(exponent);
    let sign = if minor < 0 { "-" } else { "" };
    if exponent == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = exponent + 1);
    let (whole, fraction) = padded.split_at(padded.len() - exponent);
    format!("{sign}{whole}.{fraction}")
}

/// An exchange rate: how many units of the company currency one unit of a transaction
/// currency is worth (`1.0825` for EUR in a USD company: 1 EUR = 1.0825 USD).
///
/// Invariant: positive, at most [`Rate::MAX_DECIMALS`] decimals, stored without
/// trailing zeros (so `1.10` and `1.1` are the same rate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rate {
    units: u64,
    decimals: u8,
}

impl Rate {
    /// The most decimals a rate may have.
    pub const MAX_DECIMALS: u8 = 12;

    /// `units / 10^decimals`: `Rate::new(10825, 4)` is 1.0825.
    pub fn new(units: u64, decimals: u8) -> Result<Rate, LedgerError> {
        if units == 0 {
            return Err(LedgerError::InvalidRate {
                input: format_unsigned(units, decimals),
                reason: "a rate must be more than zero",
            });
        }
        if decimals > Self::MAX_DECIMALS {
            return Err(LedgerError::InvalidRate {
                input: format_unsigned(units, decimals),
                reason: "a rate has at most 12 decimals",
            });
        }
        let (mut units, mut decimals) = (units, decimals);
        while decimals > 0 && units % 10 == 0 {
            units /= 10;
            decimals -= 1;
        }
        Ok(Rate { units, decimals })
    }

    /// Parses a positive decimal such as `"1.0825"`.
    pub fn parse(input: &str) -> Result<Rate, LedgerError> {
        let invalid = |reason| LedgerError::InvalidRate {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || text.ends_with('.') {
            return Err(invalid(
                "write a positive decimal such as 1.0825 (no signs, exponents or separators)",
            ));
        }
        let decimals = u8::try_from(fraction.len())
            .ok()
            .filter(|&d| d <= Self::MAX_DECIMALS)
            .ok_or_else(|| invalid("a rate has at most 12 decimals"))?;
        let mut units: u64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()) {
            units = units
                .checked_mul(10)
                .and_then(|u| u.checked_add(u64::from(digit - b'0')))
                .ok_or_else(|| invalid("it is too large"))?;
        }
        Rate::new(units, decimals).map_err(|_| invalid("a rate must be more than zero"))
    }

    /// The amount `amount` is worth in `to` at this rate, rounded to `to`'s minor unit,
    /// halves away from zero: 100.00 EUR at 1.0825 is 108.25 USD.
    pub fn convert(self, amount: Money, to: Currency) -> Result<Money, LedgerError> {
        let overflow = || LedgerError::Overflow {
            what: format!("{amount} at {self}"),
        };
        // amount.minor / 10^from_exp * units / 10^decimals * 10^to_exp, in i128.
        let numerator = i128::from(amount.minor())
            .checked_mul(i128::from(self.units))
            .and_then(|n| n.checked_mul(10i128.pow(u32::from(to.exponent()))))
            .ok_or_else(overflow)?;
        let denominator =
            10i128.pow(u32::from(self.decimals) + u32::from(amount.currency().exponent()));
        let quotient = numerator / denominator;
        let remainder = numerator % denominator;
        let rounded = if remainder.abs() * 2 >= denominator {
            quotient + remainder.signum()
        } else {
            quotient
        };
        i64::try_from(rounded)
            .map(|minor| Money::new(minor, to))
            .map_err(|_| overflow())
    }
}

/// `"1.0825"`.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_unsigned(self.units, self.decimals))
    }
}

impl FromStr for Rate {
    type Err = LedgerError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Rate::parse(input)
    }
}

fn format_unsigned(units: u64, decimals: u8) -> String {
    let digits = units.to_string();
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = decimals + 1);
    let (whole, fraction) = padded.split_at(padded.len() - decimals);
    format!("{whole}.{fraction}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usd(text: &str) -> Result<Money, LedgerError> {
        Money::parse(text, Currency::USD)
    }

    #[test]
    fn currencies_know_their_decimals() {
        assert_eq!(Currency::new("USD").unwrap(), Currency::USD);
        assert_eq!(Currency::new("JPY").unwrap().exponent(), 0);
        assert_eq!(Currency::new("KWD").unwrap().exponent(), 3);
        assert_eq!(Currency::new("SEK").unwrap().exponent(), 2);
        assert_eq!(Currency::with_exponent("XBT", 4).unwrap().exponent(), 4);
        for bad in ["usd", "US", "USDT", "U$D", ""] {
            let err = Currency::new(bad).unwrap_err();
            assert!(err.to_string().contains("three capital letters"), "{err}");
        }
        assert!(Currency::with_exponent("XBT", 8).is_err());
    }

    #[test]
    fn parses_and_formats_exact_decimals() {
        let cases = [
            ("1234.50", 123_450, "1234.50"),
            ("1234.5", 123_450, "1234.50"),
            ("-0.05", -5, "-0.05"),
            ("+7", 700, "7.00"),
            (" 12 ", 1200, "12.00"),
            ("0", 0, "0.00"),
            ("-92233720368547758.08", i64::MIN, "-92233720368547758.08"),
            ("92233720368547758.07", i64::MAX, "92233720368547758.07"),
        ];
        for (text, minor, formatted) in cases {
            let money = usd(text).unwrap();
            assert_eq!(money.minor(), minor, "{text}");
            assert_eq!(money.decimal(), formatted, "{text}");
            assert_eq!(usd(&money.decimal()).unwrap(), money);
        }
        assert_eq!(Money::new(-1234, Currency::JPY).to_string(), "-1234 JPY");
        assert_eq!(Money::new(5, Currency::KWD).to_string(), "0.005 KWD");
    }

    #[test]
    fn malformed_amounts_say_what_is_wrong() {
        let cases = [
            ("12.345", "\"12.345\" has more decimals than USD allows (2)"),
            ("abc", "\"abc\" is not an amount: write digits"),
            (
                "1e5",
                "\"1e5\" is not an amount: exponents such as 1e5 are not accepted",
            ),
            (
                "1,234.50",
                "\"1,234.50\" is not an amount: leave out thousands separators",
            ),
            ("", "\"\" is not an amount: it is empty"),
            (".5", "\".5\" is not an amount: write digits"),
            ("5.", "\"5.\" is not an amount: write digits"),
            ("--5", "\"--5\" is not an amount: write digits"),
            ("1.5.0", "\"1.5.0\" is not an amount: write digits"),
            ("NaN", "\"NaN\" is not an amount: write digits"),
            (
                "92233720368547758.08",
                "\"92233720368547758.08\" is too large for an amount",
            ),
            (
                "99999999999999999999",
                "\"99999999999999999999\" is too large for an amount",
            ),
        ];
        for (text, message) in cases {
            let err = usd(text).unwrap_err().to_string();
            assert!(err.starts_with(message), "{text}: {err}");
        }
        let err = Money::parse("100.0", Currency::JPY)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "\"100.0\" has more decimals than JPY allows (0); round it to whole JPY"
        );
    }

    #[test]
    fn arithmetic_is_checked() {
        let max = Money::new(i64::MAX, Currency::USD);
        let cent = Money::new(1, Currency::USD);
        let err = max.checked_add(cent).unwrap_err();
        assert!(matches!(err, LedgerError::Overflow { .. }));
        assert!(
            err.to_string()
                .contains("92233720368547758.07 USD + 0.01 USD")
        );
        assert!(Money::new(i64::MIN, Currency::USD).checked_neg().is_err());
        assert!(
            Money::new(i64::MIN, Currency::USD)
                .checked_sub(cent)
                .is_err()
        );
        assert_eq!(cent.checked_sub(cent).unwrap(), Money::zero(Currency::USD));
        let err = cent.checked_add(Money::new(1, Currency::EUR)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "USD and EUR amounts cannot be added together"
        );
    }

    #[test]
    fn rates_convert_with_half_away_from_zero_rounding() {
        let rate = Rate::parse("1.0825").unwrap();
        assert_eq!(rate.to_string(), "1.0825");
        assert_eq!(Rate::parse("1.10").unwrap(), Rate::parse("1.1").unwrap());
        let eur = |minor| Money::new(minor, Currency::EUR);
        assert_eq!(
            rate.convert(eur(10_000), Currency::USD).unwrap().minor(),
            10_825
        );
        // 0.02 EUR * 1.0825 = 0.02165 -> 0.02; 0.06 * 1.0825 = 0.06495 -> 0.06.
        assert_eq!(rate.convert(eur(2), Currency::USD).unwrap().minor(), 2);
        // 33.33 EUR * 1.1 = 36.663 -> 36.66; -0.05 * 1.1 = -0.055 -> -0.06.
        let r11 = Rate::parse("1.1").unwrap();
        assert_eq!(r11.convert(eur(3333), Currency::USD).unwrap().minor(), 3666);
        assert_eq!(r11.convert(eur(-5), Currency::USD).unwrap().minor(), -6);
        // 1000 JPY at 0.0067 USD = 6.70 USD; 10.00 USD at 149.5 JPY = 1495 JPY.
        let jpy = Money::new(1000, Currency::JPY);
        let r = Rate::parse("0.0067").unwrap();
        assert_eq!(r.convert(jpy, Currency::USD).unwrap().minor(), 670);
        let r = Rate::parse("149.5").unwrap();
        let ten = Money::new(1000, Currency::USD);
        assert_eq!(r.convert(ten, Currency::JPY).unwrap().minor(), 1495);
        let huge = Money::new(i64::MAX, Currency::EUR);
        assert!(
            Rate::parse("1000")
                .unwrap()
                .convert(huge, Currency::USD)
                .is_err()
        );
        for bad in ["0", "-1.2", "1e3", "abc", "", "1.", "0.0000000000001"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
    }
}
