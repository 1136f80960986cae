//! Resource quantities (`500m`, `256M`, `1Gi`): parsing and exact comparison.

/// The message Kubernetes gives when a quantity does not parse.
pub const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// A quantity in billionths of its unit (nano-cores, nano-bytes), exact for every value a
/// Kubernetes quantity can hold in practice.
pub type Nanos = i128;

const NANO: i128 = 1_000_000_000;

/// Parses a Kubernetes quantity into nano-units.
pub fn parse(s: &str) -> Option<Nanos> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (neg, body) = match s.as_bytes()[0] {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let num_end = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, suffix) = body.split_at(num_end);
    if number.is_empty() || number == "." || number.matches('.').count() > 1 {
        return None;
    }
    let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
    // The value as digits / 10^frac_len, then scaled by the suffix.
    let digits: String = format!("{int_part}{frac_part}");
    let mantissa: i128 = digits.parse().ok()?;
    let frac_len = frac_part.len() as u32;
    let (mul, pow10): (i128, i32) = match suffix {
        "" => (1, 0),
        "n" => (1, -9),
        "u" => (1, -6),
        "m" => (1, -3),
        "k" => (1, 3),
        "M" => (1, 6),
        "G" => (1, 9),
        "T" => (1, 12),
        "P" => (1, 15),
        "E" => (1, 18),
        "Ki" => (1 << 10, 0),
        "Mi" => (1 << 20, 0),
        "Gi" => (1 << 30, 0),
        "Ti" => (1 << 40, 0),
        "Pi" => (1 << 50, 0),
        "Ei" => (1 << 60, 0),
        exp if exp.starts_with(['e', 'E']) => {
            let e: i32 = exp[1..].parse().ok()?;
            if !(-30..=30).contains(&e) {
                return None;
            }
            (1, e)
        }
        _ => return None,
    };
    // nanos = mantissa * mul * 10^(pow10 + 9 - frac_len)
    let exp10 = pow10 + 9 - frac_len as i32;
    let mut v = mantissa.checked_mul(mul)?;
    if exp10 >= 0 {
        v = v.checked_mul(10i128.checked_pow(exp10 as u32)?)?;
    } else {
        // Below a nano-unit Kubernetes rounds up.
        let div = 10i128.checked_pow((-exp10) as u32)?;
        v = v.saturating_add(div - 1) / div;
    }
    Some(if neg { -v } else { v })
}

/// Milli-units, rounded up, as the scheduler and cgroup code count CPU.
pub fn to_milli(n: Nanos) -> i64 {
    let m = n.saturating_add(999_999).div_euclid(1_000_000);
    m.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Whole units, rounded up (bytes for memory).
pub fn to_units(n: Nanos) -> i64 {
    let u = n.saturating_add(NANO - 1).div_euclid(NANO);
    u.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// A quantity written as Kubernetes writes it canonically: binary suffixes (`Ki`…`Ei`) for byte
/// counts that are whole multiples of 1024 when `binary`, else the largest exact decimal suffix
/// (`500m`, `2`, `1k`).
pub fn format(n: Nanos, binary: bool) -> String {
    if n % NANO != 0 {
        for (unit, suffix) in [(1_000_000i128, "m"), (1_000, "u"), (1, "n")] {
            if n % unit == 0 {
                return format!("{}{suffix}", n / unit);
            }
        }
    }
    let units = n / NANO;
    if units == 0 {
        return "0".into();
    }
    let suffixes: &[(i128, &str)] = if binary && units % 1024 == 0 {
        &[
            (1 << 60, "Ei"),
            (1 << 50, "Pi"),
            (1 << 40, "Ti"),
            (1 << 30, "Gi"),
            (1 << 20, "Mi"),
            (1 << 10, "Ki"),
        ]
    } else {
        &[
            (1_000_000_000_000_000_000, "E"),
            (1_000_000_000_000_000, "P"),
            (1_000_000_000_000, "T"),
            (1_000_000_000, "G"),
            (1_000_000, "M"),
            (1_000, "k"),
        ]
    };
    for (unit, suffix) in suffixes {
        if units % unit == 0 {
            return format!("{}{suffix}", units / unit);
        }
    }
    units.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_as_kubernetes_writes_them() {
        let f = |s: &str, binary| format(parse(s).expect("parses"), binary);
        assert_eq!(f("500m", false), "500m");
        assert_eq!(f("1000m", false), "1");
        assert_eq!(f("1.5", false), "1500m");
        assert_eq!(f("1Gi", true), "1Gi");
        assert_eq!(f("1536Mi", true), "1536Mi");
        assert_eq!(f("2000", false), "2k");
        assert_eq!(f("0", true), "0");
        assert_eq!(f("100M", true), "100M");
    }

    #[test]
    fn the_largest_quantities_do_not_overflow() {
        let huge = i128::MAX.to_string();
        for text in [
            huge.as_str(),
            "170141183460469231731687303715884105727n",
            "9999999999999999999Ei",
        ] {
            let n = parse(text);
            if let Some(n) = n {
                assert!(to_milli(n) > 0 && to_units(n) > 0, "{text}");
            }
        }
        let n = parse("170141183460469231731687303715884105727n").expect("fits");
        assert_eq!(to_units(n), i64::MAX);
        assert_eq!(to_milli(i128::MAX), i64::MAX);
        assert_eq!(to_units(i128::MIN + 1), i64::MIN);
    }

    #[test]
    fn parses_the_usual_forms() {
        assert_eq!(parse("500m"), Some(NANO / 2));
        assert_eq!(parse("2"), Some(2 * NANO));
        assert_eq!(parse("0.5"), Some(NANO / 2));
        assert_eq!(to_units(parse("256M").unwrap()), 256_000_000);
        assert_eq!(to_units(parse("1Gi").unwrap()), 1 << 30);
        assert_eq!(to_units(parse("1e3").unwrap()), 1000);
        assert_eq!(to_milli(parse("32").unwrap()), 32_000);
        assert_eq!(to_milli(parse("1.5").unwrap()), 1500);
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["", "abc", "1.2.3", "5q", ".", "1Gb", "m"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn compares_across_suffixes() {
        assert!(parse("1Gi").unwrap() > parse("1G").unwrap());
        assert_eq!(parse("1000m"), parse("1"));
    }
}
