//! Durations and sizes on the command line.
//!
//! Durations take a unit: `250ms`, `10s`, `1.5s`, `5m`, `1h`; a bare number
//! means milliseconds, and a decimal fraction is allowed (exact to the
//! nanosecond, no floating point). Sizes take `B`, `KiB`, `MiB`, `GiB` (and `K`/`M`/`G` or
//! `KB`/`MB`/`GB` as the same binary units); a bare number means bytes.
//! Every subcommand uses these two parsers, so the conventions hold
//! everywhere.

use std::time::Duration;

/// Digits after the point kept by [`parse_duration`]: nanoseconds of a second.
const MAX_FRACTION_DIGITS: usize = 9;

/// Parse a duration (`250ms`, `10s`, `1.5s`, `5m`, `1h`, bare = ms).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    if int.is_empty() || (num.contains('.') && frac.is_empty()) || frac.contains('.') {
        return Err(format!(
            "'{s}': expected a number (1.5 is fine) with an optional unit (ms, s, m, h)"
        ));
    }
    if frac.len() > MAX_FRACTION_DIGITS {
        return Err(format!(
            "'{s}': at most {MAX_FRACTION_DIGITS} digits after the point"
        ));
    }
    let unit_ns: u128 = match unit.trim() {
        "" | "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" | "min" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        other => return Err(format!("'{s}': unknown unit '{other}' (use ms, s, m or h)")),
    };
    let too_large = || format!("'{s}': duration too large");
    let int: u128 = int.parse().map_err(|_| too_large())?;
    // The fraction as an exact ratio: digits / 10^len.
    let (frac_n, frac_d) = if frac.is_empty() {
        (0u128, 1u128)
    } else {
        (
            frac.parse::<u128>().map_err(|_| too_large())?,
            10u128.pow(frac.len() as u32),
        )
    };
    let ns = int
        .checked_mul(unit_ns)
        .and_then(|n| n.checked_add(frac_n * unit_ns / frac_d))
        .ok_or_else(too_large)?;
    let secs = u64::try_from(ns / 1_000_000_000).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (ns % 1_000_000_000) as u32))
}

/// `n` bytes with the largest binary unit that divides it exactly (`64KiB`,
/// `8MiB`, `100B`): how `--help` shows size defaults, in the form
/// [`parse_size`] reads back.
pub fn format_size(n: usize) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        let m = 1usize << shift;
        if n >= m && n.is_multiple_of(m) {
            return format!("{}{unit}", n / m);
        }
    }
    format!("{n}B")
}

/// Parse a size in bytes (`64KiB`, `8MiB`, bare = bytes).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() {
        return Err(format!(
            "'{s}': expected a number with an optional unit (KiB, MiB, GiB)"
        ));
    }
    let n: usize = num
        .parse()
        .map_err(|_| format!("'{s}': number too large"))?;
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => {
            return Err(format!(
                "'{s}': unknown unit '{other}' (use KiB, MiB or GiB)"
            ))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}': size too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("0.25"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("2.5m"), Ok(Duration::from_secs(150)));
        assert_eq!(parse_duration("0.1h"), Ok(Duration::from_secs(360)));
        assert_eq!(
            parse_duration("1.000000001s"),
            Ok(Duration::new(1, 1)),
            "exact, no float rounding"
        );
        assert!(parse_duration("1.s").is_err());
        assert!(parse_duration(".5s").is_err());
        assert!(parse_duration("1.2.3s").is_err());
        assert!(parse_duration("1.0000000001s").is_err());
    }

    #[test]
    fn sizes_format_in_units_and_read_back() {
        assert_eq!(format_size(64 * 1024), "64KiB");
        assert_eq!(format_size(8 << 20), "8MiB");
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(1536), "1536B");
        assert_eq!(format_size(0), "0B");
        for n in [0, 1, 1024, 1536, 64 << 10, 8 << 20, 3 << 30] {
            assert_eq!(parse_size(&format_size(n)), Ok(n));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65536));
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("100"), Ok(100));
        assert_eq!(parse_size("2k"), Ok(2048));
        assert!(parse_size("1.5MiB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999999999GiB").is_err());
    }
}
