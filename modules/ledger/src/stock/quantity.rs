//! Exact quantities: thousandths of a unit in an `i64`.

use std::fmt;
use std::str::FromStr;

use super::StockError;

/// An exact quantity of goods, counted in thousandths of a unit (so at most three
/// decimals), with checked arithmetic. `Quantity::parse("2.5")` is 2500 thousandths and
/// displays as `2.5`.
///
/// Invariant: none beyond `i64`; every operation that could leave that range is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Quantity(i64);

impl Quantity {
    /// The most decimals a quantity has.
    pub const DECIMALS: u8 = 3;
    /// Thousandths in one unit.
    pub const SCALE: i64 = 1000;
    /// Nothing.
    pub const ZERO: Quantity = Quantity(0);

    /// `thousandths / 1000` units: `Quantity::from_thousandths(2500)` is 2.5.
    pub const fn from_thousandths(thousandths: i64) -> Quantity {
        Quantity(thousandths)
    }

    /// `units` whole units, refusing overflow.
    pub fn whole(units: i64) -> Result<Quantity, StockError> {
        units
            .checked_mul(Self::SCALE)
            .map(Quantity)
            .ok_or_else(|| StockError::Overflow {
                what: format!("{units} units"),
            })
    }

    /// The quantity in thousandths.
    pub const fn thousandths(self) -> i64 {
        self.0
    }

    /// Whether it is zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Whether it is above zero.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// Whether it is below zero.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// How many decimals it needs: 0 for `12`, 1 for `2.5`, 3 for `0.125`.
    pub const fn decimals(self) -> u8 {
        if self.0 % 1000 == 0 {
            0
        } else if self.0 % 100 == 0 {
            1
        } else if self.0 % 10 == 0 {
            2
        } else {
            3
        }
    }

    /// Parses a decimal such as `"12"`, `"2.5"` or `"-0.125"` (surrounding spaces
    /// ignored). Refused: more than three decimals, exponents, separators, anything not a
    /// plain decimal, and quantities beyond the `i64` range of thousandths.
    pub fn parse(input: &str) -> Result<Quantity, StockError> {
        let malformed = |reason| StockError::MalformedQuantity {
            input: input.to_owned(),
            reason,
        };
        let text = input.trim();
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || unsigned.ends_with('.') {
            return Err(malformed(
                "write digits with an optional minus sign and decimal point, such as 2.5",
            ));
        }
        if fraction.len() > usize::from(Self::DECIMALS) {
            return Err(malformed("a quantity has at most 3 decimals"));
        }
        let padding = std::iter::repeat_n(b'0', usize::from(Self::DECIMALS) - fraction.len());
        let mut thousandths: i64 = 0;
        for digit in whole.bytes().chain(fraction.bytes()).chain(padding) {
            thousandths = thousandths
                .checked_mul(10)
                .and_then(|t| t.checked_add(i64::from(digit - b'0')))
                .ok_or_else(|| malformed("it is too large"))?;
        }
        Ok(Quantity(if negative { -thousandths } else { thousandths }))
    }

    /// `self + other`, refusing overflow.
    pub fn checked_add(self, other: Quantity) -> Result<Quantity, StockError> {
        self.0
            .checked_add(other.0)
            .map(Quantity)
            .ok_or_else(|| StockError::Overflow {
                what: format!("{self} + {other}"),
            })
    }

    /// `self - other`, refusing overflow.
    pub fn checked_sub(self, other: Quantity) -> Result<Quantity, StockError> {
        self.0
            .checked_sub(other.0)
            .map(Quantity)
            .ok_or_else(|| StockError::Overflow {
                what: format!("{self} - {other}"),
            })
    }

    /// `-self`, refusing overflow.
    pub fn checked_neg(self) -> Result<Quantity, StockError> {
        self.0
            .checked_neg()
            .map(Quantity)
            .ok_or_else(|| StockError::Overflow {
                what: format!("-({self})"),
            })
    }

    /// `self × factor` (a unit conversion), refusing overflow.
    pub fn checked_mul(self, factor: i64) -> Result<Quantity, StockError> {
        self.0
            .checked_mul(factor)
            .map(Quantity)
            .ok_or_else(|| StockError::Overflow {
                what: format!("{self} × {factor}"),
            })
    }

    /// The absolute value, refusing overflow.
    pub fn checked_abs(self) -> Result<Quantity, StockError> {
        if self.0 < 0 {
            self.checked_neg()
        } else {
            Ok(self)
        }
    }
}

/// The shortest exact decimal: `12`, `2.5`, `-0.125`.
impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, fraction) = (abs / 1000, abs % 1000);
        if fraction == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let digits = format!("{fraction:03}");
            write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
        }
    }
}

impl FromStr for Quantity {
    type Err = StockError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        Quantity::parse(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_displays_exactly() {
        for (text, thousandths, shown) in [
            ("2.5", 2500, "2.5"),
            ("12", 12_000, "12"),
            ("-0.125", -125, "-0.125"),
            (" 0.100 ", 100, "0.1"),
            ("+3.05", 3050, "3.05"),
            ("0", 0, "0"),
        ] {
            let quantity = Quantity::parse(text).unwrap();
            assert_eq!(quantity.thousandths(), thousandths, "{text}");
            assert_eq!(quantity.to_string(), shown, "{text}");
            assert_eq!(shown.parse::<Quantity>().unwrap(), quantity);
        }
        assert_eq!(Quantity::parse("2.5").unwrap().decimals(), 1);
        assert_eq!(Quantity::parse("2.25").unwrap().decimals(), 2);
        assert_eq!(Quantity::parse("2.125").unwrap().decimals(), 3);
        assert_eq!(Quantity::parse("7").unwrap().decimals(), 0);
    }

    #[test]
    fn refuses_what_is_not_a_quantity() {
        for (text, reason) in [
            ("1.2345", "a quantity has at most 3 decimals"),
            ("", "write digits"),
            ("1e3", "write digits"),
            ("1,000", "write digits"),
            ("2.", "write digits"),
            (".5", "write digits"),
            ("99999999999999999", "it is too large"),
        ] {
            let message = Quantity::parse(text).unwrap_err().to_string();
            assert!(message.contains(reason), "{text}: {message}");
            assert!(message.contains(&format!("{text:?}")), "{message}");
        }
    }

    #[test]
    fn arithmetic_is_checked() {
        let big = Quantity::from_thousandths(i64::MAX);
        assert!(big.checked_add(Quantity::from_thousandths(1)).is_err());
        assert!(Quantity::from_thousandths(i64::MIN).checked_neg().is_err());
        assert!(big.checked_mul(2).is_err());
        assert!(Quantity::whole(i64::MAX / 10).is_err());
        let two = Quantity::whole(2).unwrap();
        assert_eq!(two.checked_mul(12).unwrap(), Quantity::whole(24).unwrap());
        assert_eq!(
            two.checked_sub(Quantity::whole(3).unwrap())
                .unwrap()
                .to_string(),
            "-1"
        );
    }
}
