//! Business hours in a time zone, with holidays.

use jiff::civil::{Date, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use crate::model::Timestamp;

/// Business hours as written in a flow file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursSetup {
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub timezone: String,
    /// Opening periods: `{ days = ["mon", "fri"], from = "08:00", to = "18:00" }`.
    pub open: Vec<PeriodSetup>,
    /// Dates closed all day (`2026-12-25`).
    #[serde(default)]
    pub holidays: Vec<String>,
}

/// One opening period as written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeriodSetup {
    /// Days: mon, tue, wed, thu, fri, sat, sun.
    pub days: Vec<String>,
    /// Opening time, `HH:MM`.
    pub from: String,
    /// Closing time, `HH:MM` (after `from`; `24:00` for midnight).
    pub to: String,
}

/// Validated business hours.
#[derive(Debug, Clone, PartialEq)]
pub struct BusinessHours {
    zone: TimeZone,
    periods: Vec<(Vec<Weekday>, u32, u32)>,
    holidays: Vec<Date>,
}

fn weekday(name: &str) -> Option<Weekday> {
    Some(match name.to_ascii_lowercase().as_str() {
        "mon" | "monday" => Weekday::Monday,
        "tue" | "tuesday" => Weekday::Tuesday,
        "wed" | "wednesday" => Weekday::Wednesday,
        "thu" | "thursday" => Weekday::Thursday,
        "fri" | "friday" => Weekday::Friday,
        "sat" | "saturday" => Weekday::Saturday,
        "sun" | "sunday" => Weekday::Sunday,
        _ => return None,
    })
}

/// Minutes since midnight of `HH:MM` (`24:00` allowed).
fn minutes(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
}

impl BusinessHours {
    /// Validates hours; errors are (key path, message).
    pub fn from_setup(setup: &HoursSetup) -> Result<Self, (String, String)> {
        let zone = TimeZone::get(&setup.timezone).map_err(|e| {
            (
                "timezone".to_owned(),
                format!("{:?} is not a known time zone ({e})", setup.timezone),
            )
        })?;
        let mut periods = Vec::new();
        for (i, p) in setup.open.iter().enumerate() {
            let mut days = Vec::new();
            for (j, d) in p.days.iter().enumerate() {
                days.push(weekday(d).ok_or_else(|| {
                    (
                        format!("open[{i}].days[{j}]"),
                        format!("{d:?} is not a day (mon … sun)"),
                    )
                })?);
            }
            let from = minutes(&p.from).ok_or_else(|| {
                (
                    format!("open[{i}].from"),
                    format!("{:?} is not a time HH:MM", p.from),
                )
            })?;
            let to = minutes(&p.to).ok_or_else(|| {
                (
                    format!("open[{i}].to"),
                    format!("{:?} is not a time HH:MM", p.to),
                )
            })?;
            if to <= from {
                return Err((
                    format!("open[{i}].to"),
                    format!("{} is not after {}", p.to, p.from),
                ));
            }
            periods.push((days, from, to));
        }
        let mut holidays = Vec::new();
        for (i, h) in setup.holidays.iter().enumerate() {
            holidays.push(h.parse::<Date>().map_err(|_| {
                (
                    format!("holidays[{i}]"),
                    format!("{h:?} is not a date YYYY-MM-DD"),
                )
            })?);
        }
        Ok(BusinessHours {
            zone,
            periods,
            holidays,
        })
    }

    /// Whether the business is open at `now`.
    pub fn is_open(&self, now: Timestamp) -> bool {
        let Ok(instant) = jiff::Timestamp::from_microsecond(now.as_micros()) else {
            return false;
        };
        let local = instant.to_zoned(self.zone.clone());
        let date = local.date();
        if self.holidays.contains(&date) {
            return false;
        }
        let time: Time = local.time();
        let minute = u32::from(time.hour() as u8) * 60 + u32::from(time.minute() as u8);
        self.periods.iter().any(|(days, from, to)| {
            days.contains(&date.weekday()) && (*from..*to).contains(&minute)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hours() -> BusinessHours {
        BusinessHours::from_setup(&HoursSetup {
            timezone: "Europe/Berlin".into(),
            open: vec![PeriodSetup {
                days: vec![
                    "mon".into(),
                    "tue".into(),
                    "wed".into(),
                    "thu".into(),
                    "fri".into(),
                ],
                from: "08:00".into(),
                to: "18:00".into(),
            }],
            holidays: vec!["2026-12-25".into()],
        })
        .unwrap()
    }

    fn utc(text: &str) -> Timestamp {
        let t: jiff::Timestamp = text.parse().unwrap();
        Timestamp(t.as_microsecond())
    }

    #[test]
    fn opening_hours_are_local_time() {
        let h = hours();
        // Monday 23 Nov 2026: Berlin is UTC+1 in winter.
        assert!(!h.is_open(utc("2026-11-23T06:59:00Z")), "07:59 in Berlin");
        assert!(h.is_open(utc("2026-11-23T07:00:00Z")), "08:00 in Berlin");
        assert!(h.is_open(utc("2026-11-23T16:59:00Z")));
        assert!(!h.is_open(utc("2026-11-23T17:00:00Z")), "18:00 closes");
        assert!(!h.is_open(utc("2026-11-21T10:00:00Z")), "Saturday");
        assert!(!h.is_open(utc("2026-12-25T10:00:00Z")), "a holiday");
    }

    #[test]
    fn bad_hours_name_the_key() {
        let bad = |setup: HoursSetup| BusinessHours::from_setup(&setup).unwrap_err().0;
        let base = HoursSetup {
            timezone: "Europe/Berlin".into(),
            open: vec![],
            holidays: vec![],
        };
        assert_eq!(
            bad(HoursSetup {
                timezone: "Mars/Olympus".into(),
                ..base.clone()
            }),
            "timezone"
        );
        let period = |from: &str, to: &str, day: &str| PeriodSetup {
            days: vec![day.into()],
            from: from.into(),
            to: to.into(),
        };
        assert_eq!(
            bad(HoursSetup {
                open: vec![period("08:00", "07:00", "mon")],
                ..base.clone()
            }),
            "open[0].to"
        );
        assert_eq!(
            bad(HoursSetup {
                open: vec![period("8h", "18:00", "mon")],
                ..base.clone()
            }),
            "open[0].from"
        );
        assert_eq!(
            bad(HoursSetup {
                open: vec![period("08:00", "18:00", "funday")],
                ..base.clone()
            }),
            "open[0].days[0]"
        );
        assert_eq!(
            bad(HoursSetup {
                holidays: vec!["25.12.2026".into()],
                ..base
            }),
            "holidays[0]"
        );
    }
}
