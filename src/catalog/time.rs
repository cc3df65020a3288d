//! Reading timestamps: the ones barman writes into `backup.info`, and the
//! targets people type. A time without an offset is resolved in an explicit
//! zone (`--tz`, UTC by default) and always shown back with its offset.

use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc,
};

/// The zone used for times written without an offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Zone {
    /// Coordinated universal time (the default).
    #[default]
    Utc,
    /// A fixed offset such as `+02:00`.
    Fixed(FixedOffset),
    /// An IANA zone such as `Europe/Berlin`.
    Named(chrono_tz::Tz),
}

impl FromStr for Zone {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("etc/utc") {
            return Ok(Zone::Utc);
        }
        if t.starts_with(['+', '-']) {
            return parse_offset(t).map(Zone::Fixed).ok_or_else(|| {
                format!("`{s}` is not an offset; expected +HH:MM, -HH:MM, +HHMM or +HH")
            });
        }
        t.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("`{s}` is not a time zone; expected UTC, an offset such as +02:00, or an IANA name such as Europe/Berlin")
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Utc => f.write_str("UTC"),
            Zone::Fixed(o) => write!(f, "{o}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// Not in any accepted format.
    #[error(
        "`{0}` is not a time; expected RFC 3339 (2024-05-01T10:00:00Z) or YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]] with an optional offset"
    )]
    Format(String),
    /// Falls in a gap of the zone (a daylight-saving jump).
    #[error(
        "`{text}` does not exist in {zone} (the clocks skip it); hint: give an explicit offset"
    )]
    Nonexistent {
        /// The input.
        text: String,
        /// The zone.
        zone: String,
    },
    /// Occurs twice in the zone (clocks set back).
    #[error(
        "`{text}` is ambiguous in {zone}: it is both {first} and {second}; hint: give an explicit offset"
    )]
    Ambiguous {
        /// The input.
        text: String,
        /// The zone.
        zone: String,
        /// Earlier instant.
        first: String,
        /// Later instant.
        second: String,
    },
}

/// A parsed target time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedTime {
    /// The instant, with the offset it was given in or resolved to.
    pub at: DateTime<FixedOffset>,
    /// Whether the text carried its own offset.
    pub explicit_offset: bool,
}

impl ResolvedTime {
    /// The instant in UTC.
    #[must_use]
    pub fn utc(&self) -> DateTime<Utc> {
        self.at.with_timezone(&Utc)
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || rest.starts_with(':') || rest.ends_with(':') {
        return None;
    }
    let (h, m, sec) = match digits.len() {
        2 => (&digits[0..2], "0", "0"),
        4 => (&digits[0..2], &digits[2..4], "0"),
        6 => (&digits[0..2], &digits[2..4], &digits[4..6]),
        _ => return None,
    };
    let (h, m, sec): (i32, i32, i32) = (h.parse().ok()?, m.parse().ok()?, sec.parse().ok()?);
    if h > 23 || m > 59 || sec > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60 + sec))
}

/// Splits `text` into a naive date-time and an optional offset.
fn split(text: &str) -> Option<(NaiveDateTime, Option<FixedOffset>)> {
    let t = text.trim();
    if t.len() < 16 {
        return None;
    }
    let date = NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()?;
    let sep = t.as_bytes()[10];
    if sep != b' ' && sep != b'T' && sep != b't' {
        return None;
    }
    let rest = &t[11..];
    // The time runs until an offset marker.
    let end = rest.find(['Z', 'z', '+', '-', ' ']).unwrap_or(rest.len());
    let (time_text, zone_text) = rest.split_at(end);
    let time = parse_clock(time_text)?;
    let zone_text = zone_text.trim_start();
    let offset = match zone_text {
        "" => None,
        "Z" | "z" | "UTC" | "utc" | "GMT" => Some(FixedOffset::east_opt(0)?),
        z => Some(parse_offset(z)?),
    };
    Some((date.and_time(time), offset))
}

fn parse_clock(s: &str) -> Option<NaiveTime> {
    let (hms, frac) = match s.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (s, None),
    };
    let parts: Vec<&str> = hms.split(':').collect();
    let num = |p: &str| {
        (p.len() == 2 && p.bytes().all(|b| b.is_ascii_digit()))
            .then(|| p.parse::<u32>().ok())
            .flatten()
    };
    let (h, m, sec) = match parts.as_slice() {
        [h, m] if frac.is_none() => (num(h)?, num(m)?, 0),
        [h, m, s] => (num(h)?, num(m)?, num(s)?),
        _ => return None,
    };
    let nanos = match frac {
        None => 0,
        Some(f) if (1..=9).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<9}");
            padded.parse::<u32>().ok()?
        }
        Some(_) => return None,
    };
    NaiveTime::from_hms_nano_opt(h, m, sec, nanos)
}

/// Parses a target time, resolving a missing offset in `zone`.
pub fn parse_target(text: &str, zone: Zone) -> Result<ResolvedTime, TimeError> {
    let (naive, offset) = split(text).ok_or_else(|| TimeError::Format(text.to_owned()))?;
    // PostgreSQL keeps microseconds, rounding finer digits: so does the target.
    let naive = chrono::DurationRound::duration_round(naive, chrono::TimeDelta::microseconds(1))
        .map_err(|_| TimeError::Format(text.to_owned()))?;
    if let Some(offset) = offset {
        let at = offset
            .from_local_datetime(&naive)
            .single()
            .ok_or_else(|| TimeError::Format(text.to_owned()))?;
        return Ok(ResolvedTime {
            at,
            explicit_offset: true,
        });
    }
    let resolved = match zone {
        Zone::Utc => Utc.from_local_datetime(&naive).map(|d| d.fixed_offset()),
        Zone::Fixed(o) => o.from_local_datetime(&naive),
        Zone::Named(tz) => tz.from_local_datetime(&naive).map(|d| d.fixed_offset()),
    };
    match resolved {
        LocalResult::Single(at) => Ok(ResolvedTime {
            at,
            explicit_offset: false,
        }),
        LocalResult::None => Err(TimeError::Nonexistent {
            text: text.to_owned(),
            zone: zone.to_string(),
        }),
        LocalResult::Ambiguous(a, b) => Err(TimeError::Ambiguous {
            text: text.to_owned(),
            zone: zone.to_string(),
            first: format_instant(a),
            second: format_instant(b),
        }),
    }
}

/// Parses a `backup.info` timestamp (`2026-03-10 02:09:51.402817+00:00`).
/// Returns the instant and whether it lacked an offset (then read as UTC).
#[must_use]
pub fn parse_backup_time(text: &str) -> Option<(DateTime<Utc>, bool)> {
    let (naive, offset) = split(text)?;
    match offset {
        Some(o) => Some((
            o.from_local_datetime(&naive).single()?.with_timezone(&Utc),
            false,
        )),
        None => Some((Utc.from_utc_datetime(&naive), true)),
    }
}

/// Renders an instant with microseconds and its offset, e.g. `2026-03-10T02:09:51.402817+00:00`.
#[must_use]
#[allow(clippy::needless_pass_by_value)] // DateTime is Copy for every zone used here
pub fn format_instant<Tz: TimeZone>(t: DateTime<Tz>) -> String
where
    Tz::Offset: fmt::Display,
{
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

/// Renders a UTC instant the way the JSON output does.
#[must_use]
pub fn format_utc(t: DateTime<Utc>) -> String {
    format_instant(t.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn target_forms() {
        let z = Zone::Utc;
        for (text, want) in [
            ("2024-05-01T10:00", "2024-05-01T10:00:00Z"),
            ("2024-05-01 10:00", "2024-05-01T10:00:00Z"),
            ("2024-05-01T10:00:05", "2024-05-01T10:00:05Z"),
            ("2024-05-01T10:00:05.123456", "2024-05-01T10:00:05.123456Z"),
            ("2024-05-01T10:00:05Z", "2024-05-01T10:00:05Z"),
            ("2024-05-01T12:00:05+02:00", "2024-05-01T10:00:05Z"),
            ("2024-05-01 12:00:05.5+0200", "2024-05-01T10:00:05.5Z"),
            ("2024-05-01 07:00:05-03", "2024-05-01T10:00:05Z"),
        ] {
            assert_eq!(parse_target(text, z).unwrap().utc(), utc(want), "{text}");
        }
        for bad in [
            "2024-05-01",
            "2024-05-01T10",
            "2024-05-01T25:00",
            "2024-13-01T10:00",
            "yesterday",
            "2024-05-01T10:00+25:00",
            "2024-05-01T10:00.5",
        ] {
            assert!(parse_target(bad, z).is_err(), "{bad}");
        }
    }

    #[test]
    fn zone_resolution_is_explicit() {
        let berlin: Zone = "Europe/Berlin".parse().unwrap();
        let r = parse_target("2024-05-01T10:00", berlin).unwrap();
        assert!(!r.explicit_offset);
        assert_eq!(format_instant(r.at), "2024-05-01T10:00:00+02:00");
        // Spring forward: 02:30 does not exist; autumn back: 02:30 happens twice.
        assert!(matches!(
            parse_target("2024-03-31T02:30", berlin),
            Err(TimeError::Nonexistent { .. })
        ));
        assert!(matches!(
            parse_target("2024-10-27T02:30", berlin),
            Err(TimeError::Ambiguous { .. })
        ));
        let fixed: Zone = "-05:00".parse().unwrap();
        assert_eq!(
            parse_target("2024-05-01T10:00", fixed).unwrap().utc(),
            utc("2024-05-01T15:00:00Z")
        );
        assert!("Mars/Base".parse::<Zone>().is_err());
    }

    #[test]
    fn backup_info_times() {
        let (t, naive) = parse_backup_time("2026-03-10 02:09:51.402817+00:00").unwrap();
        assert_eq!(t, utc("2026-03-10T02:09:51.402817Z"));
        assert!(!naive);
        let (t, naive) = parse_backup_time("2026-03-10 04:09:51+02:00").unwrap();
        assert_eq!(t, utc("2026-03-10T02:09:51Z"));
        assert!(!naive);
        let (_, naive) = parse_backup_time("2026-03-10 02:09:51").unwrap();
        assert!(naive);
        assert!(parse_backup_time("None").is_none());
    }

    #[test]
    fn formatting_keeps_offset() {
        assert_eq!(
            format_utc(utc("2026-03-10T02:09:51.402817Z")),
            "2026-03-10T02:09:51.402817+00:00"
        );
        assert_eq!(
            format_utc(utc("2026-03-10T02:09:51Z")),
            "2026-03-10T02:09:51+00:00"
        );
    }
}
