//! Time bounds people type in queries: a date (`2026-11-24`, the site's local day) or an RFC 3339 time.

use chrono::{NaiveDate, TimeZone};

use crate::model::Time;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// A date means the start of that day.
    Start,
    /// A date means the end of that day (the start of the next), so `--to 2026-11-24` includes the 24th.
    End,
}

pub fn parse_bound(s: &str, tz: chrono_tz::Tz, bound: Bound) -> Result<Time, String> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| {
        format!(
            "`{s}` is neither a date (2026-11-24) nor an RFC 3339 time (2026-11-24T09:00:00+08:00)"
        )
    })?;
    let date = match bound {
        Bound::Start => date,
        Bound::End => date
            .succ_opt()
            .ok_or_else(|| format!("`{s}` is out of range"))?,
    };
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
        .ok_or_else(|| format!("`{s}` does not exist in time zone {tz}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_local_days_and_end_is_inclusive() {
        let tz = chrono_tz::Asia::Shanghai;
        let f = parse_bound("2026-11-24", tz, Bound::Start).unwrap();
        assert_eq!(f.to_rfc3339(), "2026-11-23T16:00:00+00:00");
        let t = parse_bound("2026-11-24", tz, Bound::End).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-11-24T16:00:00+00:00");
        let r = parse_bound("2026-11-24T09:00:00+08:00", tz, Bound::Start).unwrap();
        assert_eq!(r.to_rfc3339(), "2026-11-24T01:00:00+00:00");
        assert!(parse_bound("yesterday", tz, Bound::Start)
            .unwrap_err()
            .contains("neither a date"));
    }
}
