//! Exact decimals from JSON numbers and numeric strings.
//!
//! serde_json is built with `arbitrary_precision`, so a JSON number reaches us as the digits that
//! were sent. They go straight into a `rust_decimal::Decimal`; nothing here touches f64.

use rust_decimal::Decimal;
use serde_json::Value;

/// Why a value is not an exact decimal. The text completes "detail.<field> ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NumberError {
    WrongType(&'static str),
    NotANumber,
    TooPrecise,
}

impl std::fmt::Display for NumberError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NumberError::WrongType(found) => {
                write!(f, "must be a number or a numeric string, found {found}")
            }
            NumberError::NotANumber => {
                f.write_str("is not a decimal number (expected e.g. 150.25 or \"150.25\")")
            }
            NumberError::TooPrecise => f.write_str(
                "has more than 28 significant digits or decimal places and cannot be kept exactly",
            ),
        }
    }
}

/// The JSON type name used in messages.
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Parses a JSON number or a numeric string into an exact, normalized decimal.
///
/// Normalizing (`150.250` → `150.25`) gives one spelling per value, which DynamoDB also
/// applies to numbers, and keeps content hashes stable across feeds that pad zeros.
pub fn exact_decimal(value: &Value) -> Result<Decimal, NumberError> {
    // Borrowed, not copied: with `arbitrary_precision` a JSON number is its own digit text.
    let text = match value {
        Value::Number(n) => n.as_str(),
        Value::String(s) => s.as_str(),
        other => return Err(NumberError::WrongType(json_type(other))),
    };
    parse_decimal_text(text).map(|d| d.normalize())
}

/// Accepts exactly the JSON number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
///
/// rust_decimal's own parser is more lenient (underscores, leading `+`, rounding on overflow),
/// which would let a malformed feed value through or change its digits.
pub fn parse_decimal_text(text: &str) -> Result<Decimal, NumberError> {
    let (mantissa, exponent) = split_json_number(text).ok_or(NumberError::NotANumber)?;
    let mut value = Decimal::from_str_exact(mantissa).map_err(|_| NumberError::TooPrecise)?;
    // The grammar admits any exponent length; beyond ±28 no non-zero value stays representable.
    let exponent: i64 = match exponent.parse::<i64>() {
        Ok(e) if (-28..=28).contains(&e) => e,
        _ if value.is_zero() => 0,
        _ => return Err(NumberError::TooPrecise),
    };
    match exponent {
        0 => {}
        e if e < 0 => {
            let scale = value
                .scale()
                .checked_add(u32::try_from(e.unsigned_abs()).unwrap_or(u32::MAX))
                .filter(|s| *s <= 28)
                .ok_or(NumberError::TooPrecise)?;
            value
                .set_scale(scale)
                .map_err(|_| NumberError::TooPrecise)?;
        }
        e => {
            for _ in 0..e {
                value = value
                    .checked_mul(Decimal::TEN)
                    .ok_or(NumberError::TooPrecise)?;
            }
        }
    }
    // A 96-bit mantissa holds some 29-digit values and not others; the contract is 28 digits
    // for every value, so that whether a price is kept cannot depend on which digits it has.
    if value.normalize().mantissa().unsigned_abs() >= MAX_MANTISSA {
        return Err(NumberError::TooPrecise);
    }
    Ok(value)
}

/// 10^28: the smallest mantissa with 29 significant digits.
const MAX_MANTISSA: u128 = 10_000_000_000_000_000_000_000_000_000;

/// Splits a JSON number into mantissa and exponent text (`"0"` when absent), or `None` if the
/// text is not a JSON number.
fn split_json_number(text: &str) -> Option<(&str, &str)> {
    let bytes = text.as_bytes();
    let mut i = 0;
    if bytes.first() == Some(&b'-') {
        i += 1;
    }
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_len = i - int_start;
    if int_len == 0 || (int_len > 1 && bytes[int_start] == b'0') {
        return None;
    }
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == frac_start {
            return None;
        }
    }
    let mantissa_end = i;
    let mut exponent = "0";
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        let exp_text = &text[i + 1..];
        let digits = exp_text.strip_prefix(['+', '-']).unwrap_or(exp_text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        exponent = exp_text;
        i = bytes.len();
    }
    (i == bytes.len()).then_some((&text[..mantissa_end], exponent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json_number(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn keeps_digits_of_json_numbers_and_strings() {
        for text in [
            "150.25",
            "0.000000012345",
            "12345678901234567890.123",
            "1",
            "7",
        ] {
            assert_eq!(exact_decimal(&json_number(text)).unwrap().to_string(), text);
            assert_eq!(
                exact_decimal(&Value::String(text.into()))
                    .unwrap()
                    .to_string(),
                text
            );
        }
    }

    #[test]
    fn normalizes_trailing_zeros_and_exponents() {
        assert_eq!(
            exact_decimal(&json_number("150.2500")).unwrap().to_string(),
            "150.25"
        );
        assert_eq!(
            exact_decimal(&json_number("1.5e2")).unwrap().to_string(),
            "150"
        );
        assert_eq!(
            exact_decimal(&json_number("15025E-2")).unwrap().to_string(),
            "150.25"
        );
    }

    #[test]
    fn rejects_non_numbers() {
        for text in [
            "",
            "NaN",
            "Infinity",
            "-Infinity",
            "1_000",
            "+1",
            ".5",
            "5.",
            "01",
            "1e",
            "0x10",
            " 1",
            "1 ",
            "1e+",
            "1.5e-",
        ] {
            assert_eq!(
                exact_decimal(&Value::String(text.into())),
                Err(NumberError::NotANumber),
                "{text:?}"
            );
        }
        assert_eq!(
            exact_decimal(&Value::Bool(true)),
            Err(NumberError::WrongType("a boolean"))
        );
    }

    #[test]
    fn refuses_to_round() {
        let forty_digits = "1234567890123456789012345678901234567890";
        assert_eq!(
            exact_decimal(&json_number(forty_digits)),
            Err(NumberError::TooPrecise)
        );
        assert_eq!(
            exact_decimal(&json_number("1e-40")),
            Err(NumberError::TooPrecise)
        );
        for text in ["1e40", "1e99999", "1e-99999999999999999999"] {
            assert_eq!(
                exact_decimal(&json_number(text)),
                Err(NumberError::TooPrecise),
                "{text}"
            );
        }
        assert_eq!(
            exact_decimal(&json_number("0e99999")).unwrap(),
            Decimal::ZERO
        );
    }

    proptest! {
        #[test]
        fn any_decimal_round_trips_through_json_text(
            int in 0u64..1_000_000_000_000_000,
            frac in proptest::option::of("[0-9]{1,12}"),
            negative in any::<bool>(),
            as_string in any::<bool>(),
        ) {
            let mut text = format!("{}{int}", if negative { "-" } else { "" });
            if let Some(frac) = &frac {
                text.push('.');
                text.push_str(frac);
            }
            let value = if as_string { Value::String(text.clone()) } else { json_number(&text) };
            let parsed = exact_decimal(&value).unwrap();
            let expected = Decimal::from_str_exact(&text).unwrap().normalize();
            prop_assert_eq!(parsed, expected);
            // The stored spelling parses back to the same value.
            prop_assert_eq!(parse_decimal_text(&parsed.to_string()).unwrap(), parsed);
        }
    }
}
