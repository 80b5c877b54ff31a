//! Times on the command line and on screen: all in UTC, nanoseconds since the epoch.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

const NS: i64 = 1_000_000_000;

/// The current time, ns since the epoch.
pub fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-26T10:22:33.123Z`; `-` for 0 (unset).
pub fn fmt_ns(ns: i64) -> String {
    if ns == 0 {
        return "-".to_string();
    }
    let secs = ns.div_euclid(NS);
    let millis = ns.rem_euclid(NS) / 1_000_000;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// A span: `450ms`, `12s`, `3m12s`, `2h05m`, `3d04h`.
pub fn fmt_span(ns: i64) -> String {
    let ns = ns.max(0);
    if ns < NS {
        return format!("{}ms", ns / 1_000_000);
    }
    let s = ns / NS;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// Parses a duration: `30s`, `10m`, `2h`, `7d`, `1w`, `500ms`, or combinations such as
/// `1h30m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration '{s}' (examples: 30s, 10m, 1h30m, 7d)");
    let s = s.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total: u128 = 0;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad());
        }
        let n: u128 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_ns: u128 = match &rest[..unit_len] {
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3600 * 1_000_000_000,
            "d" => 86_400 * 1_000_000_000,
            "w" => 7 * 86_400 * 1_000_000_000,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total = total
            .checked_add(n.checked_mul(unit_ns).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    let total = u64::try_from(total).map_err(|_| bad())?;
    Ok(Duration::from_nanos(total))
}

/// Parses a point in time relative to `now_ns`: a duration ago (`10m`, `2h`, `7d`),
/// `now`, an RFC 3339 time (`2026-11-26T10:00:00Z`, `2026-11-26T10:00:00.5+01:00`) or a
/// date (`2026-11-26`, midnight UTC).
pub fn parse_time(s: &str, now_ns: i64) -> Result<i64, String> {
    let t = s.trim();
    if t == "now" {
        return Ok(now_ns);
    }
    if let Ok(d) = parse_duration(t) {
        let ago = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        return Ok(now_ns.saturating_sub(ago).max(1));
    }
    parse_rfc3339(t).ok_or_else(|| {
        format!(
            "invalid time '{s}' (a duration ago such as 10m or 2h, an RFC 3339 time such as \
             2026-11-26T10:00:00Z, or a date such as 2026-11-26)"
        )
    })
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    fn num(s: &str) -> Option<i64> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    }
    let (date, time) = match s.find(['T', 't', ' ']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mut dp = date.split('-');
    let (y, mo, d) = (num(dp.next()?)?, num(dp.next()?)?, num(dp.next()?)?);
    if dp.next().is_some() || !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    let Some(time) = time else {
        return days.checked_mul(86_400 * NS);
    };
    // Split off the zone: Z, +hh:mm or -hh:mm.
    let (clock, offset_s) = if let Some(c) = time.strip_suffix(['Z', 'z']) {
        (c, 0)
    } else {
        let i = time.rfind(['+', '-'])?;
        let (h, m) = time[i + 1..].split_once(':')?;
        let off = num(h)? * 3600 + num(m)? * 60;
        (&time[..i], if &time[i..i + 1] == "-" { -off } else { off })
    };
    let (hms, frac) = match clock.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (clock, None),
    };
    let mut tp = hms.split(':');
    let (h, mi, sec) = (num(tp.next()?)?, num(tp.next()?)?, num(tp.next()?)?);
    if tp.next().is_some() || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut frac_ns = 0i64;
    if let Some(f) = frac {
        num(f)?;
        let digits: String = f.chars().chain(std::iter::repeat('0')).take(9).collect();
        frac_ns = digits.parse().ok()?;
    }
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    secs.checked_mul(NS)?.checked_add(frac_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_utc() {
        assert_eq!(fmt_ns(1), "1970-01-01T00:00:00.000Z");
        assert_eq!(fmt_ns(0), "-");
        assert_eq!(
            fmt_ns(1_764_152_553_123_456_789),
            "2025-11-26T10:22:33.123Z"
        );
        // Leap day.
        assert_eq!(fmt_ns(951_782_400 * NS), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn parses_and_round_trips() {
        let t = parse_time("2025-11-26T10:22:33.123Z", 0).unwrap();
        assert_eq!(t, 1_764_152_553_123_000_000);
        assert_eq!(fmt_ns(t), "2025-11-26T10:22:33.123Z");
        assert_eq!(parse_time("2025-11-26T11:22:33.123+01:00", 0).unwrap(), t);
        assert_eq!(parse_time("2025-11-26", 0).unwrap(), 1_764_115_200 * NS);
        assert_eq!(
            parse_time("2000-02-29T00:00:00Z", 0).unwrap(),
            951_782_400 * NS
        );
        assert!(parse_time("2025-13-01", 0).is_err());
        assert!(parse_time("yesterday", 0).is_err());
        assert!(parse_time("2025-11-26T10:22", 0).is_err());
    }

    #[test]
    fn parses_relative_times() {
        let now = 1_000_000 * NS;
        assert_eq!(parse_time("10m", now).unwrap(), now - 600 * NS);
        assert_eq!(parse_time("1h30m", now).unwrap(), now - 5400 * NS);
        assert_eq!(parse_time("now", now).unwrap(), now);
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("99999999999999999999w").is_err());
    }

    #[test]
    fn spans() {
        assert_eq!(fmt_span(450_000_000), "450ms");
        assert_eq!(fmt_span(192 * NS), "3m12s");
        assert_eq!(fmt_span(7500 * NS), "2h05m");
        assert_eq!(fmt_span(-5), "0ms");
    }
}
