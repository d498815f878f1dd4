//! ARI timestamps: `2026-11-21T21:13:08.568+0000` — milliseconds and an offset written without
//! a colon, so not strict RFC 3339 (fixtures README, "Ids and formats"). Parsed by hand: no
//! date crate, no allocation.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An instant as ARI writes it: milliseconds since the Unix epoch and the offset it was written
/// with (kept so that the emulator writes what Asterisk writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AriTime {
    /// Milliseconds since the Unix epoch (UTC).
    pub unix_millis: i64,
    /// The offset from UTC it was written with, in minutes.
    pub offset_minutes: i16,
}

/// A timestamp that is not of the form ARI writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TimeError {
    /// The text does not have the shape `YYYY-MM-DDTHH:MM:SS[.fff](+HHMM|+HH:MM|Z)`.
    #[error("not an ARI timestamp (YYYY-MM-DDTHH:MM:SS.mmm+HHMM): {0:?}")]
    Shape(String),
    /// A field is out of its range (month 13, hour 25, …).
    #[error("timestamp field out of range: {0:?}")]
    Range(String),
}

impl AriTime {
    /// An instant in UTC, written with `+0000` as Asterisk does on a UTC machine.
    pub fn from_unix_millis(unix_millis: i64) -> Self {
        AriTime {
            unix_millis,
            offset_minutes: 0,
        }
    }

    /// Parses ARI's form; also accepts `+HH:MM`, `Z` and a missing fraction, so that a
    /// stricter peer does not break the stream.
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let b = text.as_bytes();
        let shape = || TimeError::Shape(text.chars().take(40).collect());
        if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
            return Err(shape());
        }
        if b[13] != b':' || b[16] != b':' {
            return Err(shape());
        }
        let num = |from: usize, to: usize| -> Result<i64, TimeError> {
            let mut v: i64 = 0;
            for &c in b.get(from..to).ok_or_else(shape)? {
                if !c.is_ascii_digit() {
                    return Err(shape());
                }
                v = v * 10 + i64::from(c - b'0');
            }
            Ok(v)
        };
        let (year, month, day) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
        let (hour, minute, second) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
        let mut i = 19;
        let mut millis = 0i64;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            if i == start {
                return Err(shape());
            }
            // Milliseconds from the first three digits; finer digits are dropped.
            let digits = &b[start..i.min(start + 3)];
            for (k, &c) in digits.iter().enumerate() {
                millis += i64::from(c - b'0') * [100, 10, 1][k];
            }
        }
        let offset_minutes: i64 = match b.get(i) {
            Some(b'Z') if i + 1 == b.len() => 0,
            Some(&sign @ (b'+' | b'-')) => {
                let rest = &text[i + 1..];
                let (h, m) = match rest.len() {
                    4 => (num(i + 1, i + 3)?, num(i + 3, i + 5)?),
                    5 if rest.as_bytes()[2] == b':' => (num(i + 1, i + 3)?, num(i + 4, i + 6)?),
                    _ => return Err(shape()),
                };
                if h > 23 || m > 59 {
                    return Err(TimeError::Range(text.to_owned()));
                }
                let v = h * 60 + m;
                if sign == b'-' { -v } else { v }
            }
            _ => return Err(shape()),
        };
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(TimeError::Range(text.to_owned()));
        }
        let days = days_from_civil(year, month, day);
        let local = ((days * 24 + hour) * 60 + minute) * 60 + second;
        let utc = local - offset_minutes * 60;
        Ok(AriTime {
            unix_millis: utc * 1000 + millis,
            offset_minutes: offset_minutes as i16,
        })
    }
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01.
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl fmt::Display for AriTime {
    /// Writes ARI's form: `2026-11-21T21:13:08.568+0000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let offset = i64::from(self.offset_minutes);
        let local = self.unix_millis + offset * 60_000;
        let millis = local.rem_euclid(1000);
        let secs = local.div_euclid(1000);
        let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (y, m, d) = civil_from_days(days);
        let sign = if offset < 0 { '-' } else { '+' };
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}{sign}{:02}{:02}",
            sod / 3600,
            sod / 60 % 60,
            sod % 60,
            offset.abs() / 60,
            offset.abs() % 60
        )
    }
}

impl Serialize for AriTime {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for AriTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = AriTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an ARI timestamp like 2026-11-21T21:13:08.568+0000")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AriTime, E> {
                AriTime::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_offset_without_a_colon_and_writes_it_back() {
        let t = AriTime::parse("2026-11-21T21:13:08.568+0000").unwrap();
        assert_eq!(t.unix_millis, 1_795_295_588_568);
        assert_eq!(t.to_string(), "2026-11-21T21:13:08.568+0000");
    }

    #[test]
    fn accepts_rfc3339_forms_too() {
        let a = AriTime::parse("2026-11-21T22:13:08.568+01:00").unwrap();
        let b = AriTime::parse("2026-11-21T21:13:08.568Z").unwrap();
        assert_eq!(a.unix_millis, b.unix_millis);
        assert_eq!(a.to_string(), "2026-11-21T22:13:08.568+0100");
        let c = AriTime::parse("2026-11-21T21:13:08-0130").unwrap();
        assert_eq!(c.offset_minutes, -90);
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bad in [
            "",
            "2026",
            "2026-11-21",
            "2026-13-21T21:13:08.568+0000",
            "2026-11-21T21:13:08.+0000",
            "2026-11-21T21:13:08.568+00",
            "2026-11-21T21:13:08.568+0000x",
            "２０２６-11-21T21:13:08.568+0000",
        ] {
            assert!(AriTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn round_trips_across_dates() {
        for ms in [0i64, 951_782_400_000, 1_795_295_588_568, -86_400_001] {
            let t = AriTime::from_unix_millis(ms);
            assert_eq!(AriTime::parse(&t.to_string()).unwrap(), t);
        }
    }
}
