//! DynamoDB numbers: up to 38 significant digits, exponent in [-130, 125]. DynamoDB compares them
//! by value ("1.50" == "15E-1"), so ferry does too, by reducing them to one canonical spelling.

/// Canonical spelling of a DynamoDB number: `[-]digits[E exp]` with no leading or trailing zeros
/// in `digits` ("0" for zero). Returns `None` when `s` is not a number.
pub fn normalize(s: &str) -> Option<String> {
    let s = s.trim();
    let (neg, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(i) => (&rest[..i], rest[i + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    if (int.is_empty() && frac.is_empty()) || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // value = 0.DIGITS * 10^(point): collect all digits, track the decimal point.
    let mut digits: String = int.chars().chain(frac.chars()).collect();
    let mut point = int.len() as i64 + exp;
    let lead = digits.len() - digits.trim_start_matches('0').len();
    digits.drain(..lead);
    point -= lead as i64;
    let trimmed = digits.trim_end_matches('0').len();
    digits.truncate(trimmed);
    if digits.is_empty() {
        return Some("0".to_string());
    }
    // Scientific form with the point after the first digit: d.ddd E (point-1).
    let e = point - 1;
    let mut out = String::with_capacity(digits.len() + 8);
    if neg {
        out.push('-');
    }
    out.push_str(&digits[..1]);
    if digits.len() > 1 {
        out.push('.');
        out.push_str(&digits[1..]);
    }
    if e != 0 {
        out.push('E');
        out.push_str(&e.to_string());
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn spellings_of_one_value_agree() {
        for (a, b) in [
            ("1.50", "1.5"),
            ("15E-1", "1.5"),
            ("0.015e2", "1.5"),
            ("100", "1E2"),
            ("-0", "0"),
            ("000.000", "0"),
            ("+7", "7"),
            (
                "12345678901234567890123456789012345678",
                "1.2345678901234567890123456789012345678E37",
            ),
        ] {
            assert_eq!(normalize(a), normalize(b), "{a} vs {b}");
        }
        assert_ne!(normalize("1.5"), normalize("-1.5"));
        assert_ne!(normalize("1.5"), normalize("15"));
    }

    #[test]
    fn rejects_non_numbers() {
        for s in ["", "-", "abc", "1.2.3", "1e", "1e+x", ".", "1,0"] {
            assert_eq!(normalize(s), None, "{s:?}");
        }
    }
}
