//! Business hours, holidays, make-up working days (调休) and shifts (SERVICE-POLICY.md §5), and business-time
//! arithmetic for `deadline_clock = "business"` (§2, §3).
//!
//! Pure: no I/O and no clock of its own; every question takes the instant it is about. All local times are in the
//! site's IANA zone. A local time that does not exist (the spring-forward gap) means the first instant after the
//! gap; an ambiguous one (the repeated hour when clocks fall back) means the earlier instant. Open intervals are
//! half-open, `[start, end)`.
//!
//! The work is done interval by interval and day by day, never minute by minute; searches stop after about three
//! years ([`HORIZON_DAYS`]) and answer `None` past that.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone,
    Timelike, Utc,
};
use chrono_tz::Tz;
use serde::Deserialize;

/// How far (in local days) the searches of [`BusinessCalendar`] look ahead before giving up.
pub const HORIZON_DAYS: u64 = 3 * 366;

const DAY_SECS: u32 = 86_400;
const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// The `[hours]` section: the weekly table, statutory holidays and make-up working days.
///
/// A day is `"closed"` or one or more ranges `"08:00-12:00, 13:30-17:30"` (`24:00` is allowed as an end, so
/// `"00:00-24:00"` is the whole day). A missing day is closed. `holidays` are closed all day; `workdays` (调休) are
/// open with `workday_hours` (default: the hours of Monday) whatever their weekday.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoursConfig {
    pub mon: Option<String>,
    pub tue: Option<String>,
    pub wed: Option<String>,
    pub thu: Option<String>,
    pub fri: Option<String>,
    pub sat: Option<String>,
    pub sun: Option<String>,
    /// Dates `"2026-10-01"`, closed all day.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Dates `"2026-09-28"`, open with `workday_hours` even on a weekend.
    #[serde(default)]
    pub workdays: Vec<String>,
    /// The hours of a make-up working day; default: those of `mon`.
    pub workday_hours: Option<String>,
}

impl HoursConfig {
    /// Monday to Friday with the same hours (e.g. `"09:00-18:00"`, the policy's default), weekends closed.
    pub fn mon_to_fri(hours: &str) -> HoursConfig {
        let h = Some(hours.to_string());
        HoursConfig {
            mon: h.clone(),
            tue: h.clone(),
            wed: h.clone(),
            thu: h.clone(),
            fri: h,
            ..HoursConfig::default()
        }
    }

    fn day(&self, i: usize) -> Option<&String> {
        [
            &self.mon, &self.tue, &self.wed, &self.thu, &self.fri, &self.sat, &self.sun,
        ][i]
            .as_ref()
    }
}

/// One `[[shift]]`: `start` and `end` are local `"HH:MM"`; an end at or before the start crosses midnight
/// (`"17:00"`-`"01:00"`); `end = "24:00"` is midnight; `start == end` is a 24-hour shift.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftConfig {
    pub name: String,
    pub start: String,
    pub end: String,
}

/// A validated shift. It runs every day (holidays included: the line is staffed whatever the hours), from `start`
/// on day D to `end` on D, or on D+1 when `end <= start`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shift {
    pub name: String,
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Shift {
    /// True when the shift ends on the day after it starts (`end <= start`).
    pub fn crosses_midnight(&self) -> bool {
        self.end <= self.start
    }
}

/// Every problem in `[hours]` and `[[shift]]`, each with its dotted key (`hours.mon`, `shift[1].end`, ...).
pub fn validate(hours: Option<&HoursConfig>, shifts: &[ShiftConfig]) -> Vec<(String, String)> {
    match build(hours, shifts) {
        Ok(_) => Vec::new(),
        Err(problems) => problems,
    }
}

/// Ranges of one day in seconds since local midnight, sorted, disjoint and not touching; ends up to 86400.
type Ranges = Vec<(u32, u32)>;

#[derive(Debug, Clone)]
struct Schedule {
    week: [Ranges; 7],
    holidays: BTreeSet<NaiveDate>,
    workdays: BTreeSet<NaiveDate>,
    workday_hours: Ranges,
}

impl Schedule {
    fn ranges(&self, d: NaiveDate) -> &[(u32, u32)] {
        if self.holidays.contains(&d) {
            &[]
        } else if self.workdays.contains(&d) {
            &self.workday_hours
        } else {
            &self.week[d.weekday().num_days_from_monday() as usize]
        }
    }

    /// Open around the clock every day: the same as no table at all.
    fn is_full(&self) -> bool {
        let full = |r: &Ranges| r.as_slice() == [(0, DAY_SECS)];
        self.holidays.is_empty()
            && self.week.iter().all(full)
            && (self.workdays.is_empty() || full(&self.workday_hours))
    }
}

type Problems = Vec<(String, String)>;

fn build(
    hours: Option<&HoursConfig>,
    shifts: &[ShiftConfig],
) -> Result<(Option<Schedule>, Vec<Shift>), Problems> {
    let mut problems = Problems::new();
    let schedule = hours.map(|h| build_schedule(h, &mut problems));
    let shifts = build_shifts(shifts, &mut problems);
    if problems.is_empty() {
        Ok((schedule, shifts))
    } else {
        Err(problems)
    }
}

fn build_schedule(h: &HoursConfig, problems: &mut Problems) -> Schedule {
    let mut bad_keys: Vec<String> = Vec::new();
    let mut day_ranges = |key: &str, spec: &str| match parse_day(spec) {
        Ok(r) => r,
        Err(msgs) => {
            problems.extend(msgs.into_iter().map(|m| (key.to_string(), m)));
            bad_keys.push(key.to_string());
            Vec::new()
        }
    };
    let mut week: [Ranges; 7] = Default::default();
    for (i, slot) in week.iter_mut().enumerate() {
        if let Some(spec) = h.day(i) {
            *slot = day_ranges(&format!("hours.{}", WEEKDAY_KEYS[i]), spec);
        }
    }
    let workday_hours = match &h.workday_hours {
        Some(spec) => day_ranges("hours.workday_hours", spec),
        None => week[0].clone(),
    };
    let holidays = parse_dates("hours.holidays", &h.holidays, problems);
    let workdays = parse_dates("hours.workdays", &h.workdays, problems);
    for d in holidays.intersection(&workdays) {
        problems.push((
            "hours.workdays".into(),
            format!("`{d}` is in hours.holidays as well; a date is either a holiday or a make-up workday"),
        ));
    }
    // Make-up workdays with no hours are a mistake (unless the hours were already reported as wrong).
    let source = if h.workday_hours.is_some() {
        "hours.workday_hours"
    } else {
        "hours.mon"
    };
    if !workdays.is_empty() && workday_hours.is_empty() && !bad_keys.iter().any(|k| k == source) {
        let msg = if h.workday_hours.is_some() {
            "make-up workdays cannot be closed; give their hours, e.g. \"09:00-18:00\""
        } else {
            "make-up workdays need hours: Monday (the default) is closed, so set workday_hours, e.g. \"09:00-18:00\""
        };
        problems.push(("hours.workday_hours".into(), msg.into()));
    }
    Schedule {
        week,
        holidays,
        workdays,
        workday_hours,
    }
}

fn parse_dates(key: &str, list: &[String], problems: &mut Problems) -> BTreeSet<NaiveDate> {
    let mut out = BTreeSet::new();
    for s in list {
        match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
            Ok(d) => {
                out.insert(d);
            }
            Err(_) => problems.push((
                key.to_string(),
                format!("`{s}` is not a date like \"2026-10-01\""),
            )),
        }
    }
    out
}

fn build_shifts(list: &[ShiftConfig], problems: &mut Problems) -> Vec<Shift> {
    let mut out = Vec::new();
    let mut names = HashSet::new();
    for (i, s) in list.iter().enumerate() {
        let k = |f: &str| format!("shift[{i}].{f}");
        if s.name.trim().is_empty() {
            problems.push((k("name"), "must not be empty, e.g. \"day\"".into()));
        } else if !names.insert(s.name.trim().to_string()) {
            problems.push((k("name"), format!("`{}` is used by two shifts", s.name)));
        }
        let start = match parse_clock(&s.start) {
            Some(DAY_SECS) => {
                problems.push((
                    k("start"),
                    "`24:00` is not a start time; write \"00:00\"".into(),
                ));
                None
            }
            Some(secs) => Some(secs),
            None => {
                problems.push((
                    k("start"),
                    format!("`{}` is not a time like \"08:00\"", s.start),
                ));
                None
            }
        };
        let end = parse_clock(&s.end);
        if end.is_none() {
            problems.push((
                k("end"),
                format!(
                    "`{}` is not a time like \"17:00\" (\"24:00\" is midnight)",
                    s.end
                ),
            ));
        }
        if let (Some(a), Some(b)) = (start, end) {
            out.push(Shift {
                name: s.name.trim().to_string(),
                start: secs_to_time(a),
                end: secs_to_time(b % DAY_SECS),
            });
        }
    }
    out
}

fn secs_to_time(secs: u32) -> NaiveTime {
    NaiveTime::from_num_seconds_from_midnight_opt(secs % DAY_SECS, 0).unwrap_or(NaiveTime::MIN)
}

fn time_to_secs(t: NaiveTime) -> u32 {
    t.num_seconds_from_midnight()
}

/// `"H:MM"` or `"HH:MM"`, 00:00 to 24:00, in seconds since midnight.
fn parse_clock(s: &str) -> Option<u32> {
    let (h, m) = s.trim().split_once(':')?;
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(h) || h.len() > 2 || !digits(m) || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 3600 + m * 60)
}

/// `"closed"` or `"08:00-12:00, 13:30-17:30"`: sorted, checked for overlaps, touching ranges merged.
fn parse_day(spec: &str) -> Result<Ranges, Vec<String>> {
    let t = spec.trim();
    if t.eq_ignore_ascii_case("closed") {
        return Ok(Vec::new());
    }
    let mut errors = Vec::new();
    let mut ranges: Vec<(u32, u32, &str)> = Vec::new();
    for part in t.split(',') {
        let p = part.trim();
        let parsed = p
            .split_once('-')
            .and_then(|(a, b)| Some((parse_clock(a)?, parse_clock(b)?)));
        match parsed {
            None => errors.push(format!(
                "`{p}` is not a range like \"09:00-18:00\"; write one or more ranges (\"08:00-12:00, 13:30-17:30\") or \"closed\""
            )),
            Some((a, b)) if a >= b => errors.push(format!(
                "`{p}`: the start must be before the end (a range cannot cross midnight: end it at 24:00 and go on at 00:00 the next day)"
            )),
            Some((a, b)) => ranges.push((a, b, p)),
        }
    }
    ranges.sort_by_key(|r| (r.0, r.1));
    let mut out: Ranges = Vec::new();
    let mut last: Option<(u32, &str)> = None; // the range reaching furthest so far
    for &(a, b, p) in &ranges {
        if let Some((end, q)) = last {
            if a < end {
                errors.push(format!("`{q}` and `{p}` overlap"));
            }
        }
        if last.is_none_or(|(end, _)| b > end) {
            last = Some((b, p));
        }
        match out.last_mut() {
            Some(prev) if a <= prev.1 => prev.1 = prev.1.max(b),
            _ => out.push((a, b)),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The instant of a local date and time: the earlier one when ambiguous, the first instant after the gap when the
/// local time does not exist.
fn resolve_local(tz: Tz, ndt: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&ndt) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: find the first valid local minute after it (gaps are at most a day long)...
            let mut probe = ndt;
            let mut found = None;
            for _ in 0..(2 * 24 * 60) {
                probe = match probe.checked_add_signed(TimeDelta::minutes(1)) {
                    Some(p) => p,
                    None => break,
                };
                match tz.from_local_datetime(&probe) {
                    LocalResult::Single(t) => {
                        found = Some(t.with_timezone(&Utc));
                        break;
                    }
                    LocalResult::Ambiguous(a, b) => {
                        found = Some(a.min(b).with_timezone(&Utc));
                        break;
                    }
                    LocalResult::None => {}
                }
            }
            let Some(mut u) = found else {
                // Not a real zone's behaviour; read the local time as UTC rather than fail.
                return ndt.and_utc();
            };
            // ...then step back to the transition itself (for offsets that are not whole minutes).
            for _ in 0..60 {
                let prev = u - TimeDelta::seconds(1);
                if prev.with_timezone(&tz).naive_local() >= ndt {
                    u = prev;
                } else {
                    break;
                }
            }
            u
        }
    }
}

/// Business hours, holidays and shifts of one site, in its time zone.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    tz: Tz,
    /// `None`: open around the clock.
    schedule: Option<Schedule>,
    shifts: Vec<Shift>,
}

type Interval = (DateTime<Utc>, DateTime<Utc>);

impl BusinessCalendar {
    /// `hours` None = open 24x7. A table that is open all day every day, with no holidays, is the same.
    pub fn new(
        tz: Tz,
        hours: Option<&HoursConfig>,
        shifts: &[ShiftConfig],
    ) -> Result<Self, Vec<(String, String)>> {
        let (schedule, shifts) = build(hours, shifts)?;
        Ok(BusinessCalendar {
            tz,
            schedule: schedule.filter(|s| !s.is_full()),
            shifts,
        })
    }

    /// Open around the clock, no shifts.
    pub fn always_open(tz: Tz) -> Self {
        BusinessCalendar {
            tz,
            schedule: None,
            shifts: Vec::new(),
        }
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn is_always_open(&self) -> bool {
        self.schedule.is_none()
    }

    /// Whether the date is a business day: it has open hours after holidays and make-up workdays are applied.
    pub fn is_business_day(&self, date: NaiveDate) -> bool {
        match &self.schedule {
            None => true,
            Some(s) => !s.ranges(date).is_empty(),
        }
    }

    /// Open at `t` (intervals are `[start, end)`).
    pub fn is_open(&self, t: DateTime<Utc>) -> bool {
        let Some(s) = &self.schedule else {
            return true;
        };
        let d = self.local_date(t);
        // Intervals are sorted and disjoint: only the first one ending after `t` can contain it.
        self.raw(s, t, d.succ_opt().unwrap_or(d))
            .next()
            .is_some_and(|(_, a, _)| a <= t)
    }

    /// `t` itself when open, else the next opening; None if it does not open within [`HORIZON_DAYS`].
    pub fn next_open(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Some(s) = &self.schedule else {
            return Some(t);
        };
        self.raw(s, t, self.horizon(t))
            .next()
            .map(|(_, a, _)| a.max(t))
    }

    /// The end of the open interval containing `t`, or of the next one (intervals that touch, e.g. 24:00 and the
    /// next day's 00:00, are one). None when always open, or when there is no close within [`HORIZON_DAYS`].
    pub fn next_close(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let s = self.schedule.as_ref()?;
        let last = self.horizon(t);
        let horizon_end = self.at(last.succ_opt()?, 0);
        let (_, e) = merge(self.raw(s, t, last).map(|(_, a, e)| (a, e))).next()?;
        (e < horizon_end).then_some(e)
    }

    /// The moment at which `d` of open time has passed since `start`: only open hours count, and the clock starts
    /// at the next opening when closed. The result lies within an open interval or exactly at its end. None when
    /// that is beyond [`HORIZON_DAYS`] of calendar time (or `d` is beyond chrono's range).
    pub fn add_business(&self, start: DateTime<Utc>, d: Duration) -> Option<DateTime<Utc>> {
        let mut rest = TimeDelta::from_std(d).ok()?;
        let Some(s) = &self.schedule else {
            return start.checked_add_signed(rest);
        };
        for (_, a, e) in self.raw(s, start, self.horizon(start)) {
            let a = a.max(start);
            let avail = e - a;
            if rest <= avail {
                return Some(a + rest);
            }
            rest -= avail;
        }
        None
    }

    /// Open time between `a` and `b` (zero if `b <= a`).
    pub fn business_between(&self, a: DateTime<Utc>, b: DateTime<Utc>) -> Duration {
        if b <= a {
            return Duration::ZERO;
        }
        let Some(s) = &self.schedule else {
            return (b - a).to_std().unwrap_or(Duration::ZERO);
        };
        let last = self.local_date(b).succ_opt().unwrap_or(NaiveDate::MAX);
        let mut total = TimeDelta::zero();
        for (_, x, y) in self.raw(s, a, last) {
            if x >= b {
                break;
            }
            total += y.min(b) - x.max(a);
        }
        total.to_std().unwrap_or(Duration::ZERO)
    }

    /// The close of the business day containing `t` (open now, or closed for a break within that day) or else of
    /// the next business day: for "never left to the next day" deadlines. Always open: the next local midnight.
    pub fn end_of_business_day(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let Some(s) = &self.schedule else {
            let mut d = self.local_date(t);
            for _ in 0..3 {
                d = d.succ_opt()?;
                let m = self.at(d, 0);
                if m > t {
                    return Some(m);
                }
            }
            return None;
        };
        let (day, _, _) = self.raw(s, t, self.horizon(t)).next()?;
        self.day_intervals(s, day).last().map(|&(_, e)| e)
    }

    /// The open intervals overlapping `[from, to)`, clipped to it, in order; touching intervals are joined, so they
    /// are disjoint and separated by closed time.
    pub fn open_intervals(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<Interval> {
        if to <= from {
            return Vec::new();
        }
        let Some(s) = &self.schedule else {
            return vec![(from, to)];
        };
        let last = self.local_date(to).succ_opt().unwrap_or(NaiveDate::MAX);
        merge(self.raw(s, from, last).map(|(_, a, e)| (a, e)))
            .take_while(|&(a, _)| a < to)
            .map(|(a, e)| (a.max(from), e.min(to)))
            .collect()
    }

    /// The configured shifts, in order.
    pub fn shifts(&self) -> &[Shift] {
        &self.shifts
    }

    /// The shift running at `t` and the instant it started. A shift crossing midnight runs from its start on day D
    /// to its end on D+1. When shifts overlap, the one that started last (then the first configured) wins.
    pub fn shift_at(&self, t: DateTime<Utc>) -> Option<(&Shift, DateTime<Utc>)> {
        let mut best: Option<(&Shift, DateTime<Utc>)> = None;
        for (sh, a, e) in self.shift_instances(t) {
            if a <= t && t < e && best.is_none_or(|(_, b)| a > b) {
                best = Some((sh, a));
            }
        }
        best
    }

    /// The next shift end strictly after `t`: the shift, its start and its end. Ties go to the first configured.
    pub fn next_shift_end(
        &self,
        t: DateTime<Utc>,
    ) -> Option<(&Shift, DateTime<Utc>, DateTime<Utc>)> {
        let mut best: Option<(&Shift, DateTime<Utc>, DateTime<Utc>)> = None;
        for (sh, a, e) in self.shift_instances(t) {
            if e > t && best.is_none_or(|(_, _, b)| e < b) {
                best = Some((sh, a, e));
            }
        }
        best
    }

    // ---- internals ----

    fn local_date(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }

    fn horizon(&self, t: DateTime<Utc>) -> NaiveDate {
        let d = self.local_date(t);
        d.checked_add_days(chrono::Days::new(HORIZON_DAYS))
            .unwrap_or(NaiveDate::MAX)
    }

    /// The instant of local date `d` at `secs` past midnight (86400 = the next midnight).
    fn at(&self, d: NaiveDate, secs: u32) -> DateTime<Utc> {
        let ndt = d
            .and_time(NaiveTime::MIN)
            .checked_add_signed(TimeDelta::seconds(i64::from(secs)))
            .unwrap_or(NaiveDateTime::MAX);
        resolve_local(self.tz, ndt)
    }

    /// The open intervals of local date `d`, in order, empty ones (inside a gap) left out.
    fn day_intervals(&self, s: &Schedule, d: NaiveDate) -> Vec<Interval> {
        s.ranges(d)
            .iter()
            .map(|&(a, b)| (self.at(d, a), self.at(d, b)))
            .filter(|(a, b)| a < b)
            .collect()
    }

    /// The open intervals (per local day, not joined) ending after `t`, from the local day before `t`'s to `last`.
    /// They come in order: resolving local times is monotonic, so the days' intervals never interleave.
    fn raw<'a>(
        &'a self,
        s: &'a Schedule,
        t: DateTime<Utc>,
        last: NaiveDate,
    ) -> impl Iterator<Item = (NaiveDate, DateTime<Utc>, DateTime<Utc>)> + 'a {
        let d = self.local_date(t);
        let first = d.pred_opt().unwrap_or(d);
        first
            .iter_days()
            .take_while(move |d| *d <= last)
            .flat_map(move |d| {
                self.day_intervals(s, d)
                    .into_iter()
                    .map(move |(a, e)| (d, a, e))
            })
            .filter(move |&(_, _, e)| e > t)
    }

    /// Shift runs that can be under way at `t` or end soon after it: those starting from two local days before to
    /// three after `t`'s, grouped by shift in configured order.
    fn shift_instances(&self, t: DateTime<Utc>) -> Vec<(&Shift, DateTime<Utc>, DateTime<Utc>)> {
        let mut out = Vec::new();
        if self.shifts.is_empty() {
            return out;
        }
        let d = self.local_date(t);
        let first = d
            .checked_sub_days(chrono::Days::new(2))
            .unwrap_or(NaiveDate::MIN);
        // Shift by shift in configured order, so that the first configured wins ties.
        for sh in &self.shifts {
            let (a, b) = (time_to_secs(sh.start), time_to_secs(sh.end));
            for day in first.iter_days().take(6) {
                let start = self.at(day, a);
                let end = match (sh.crosses_midnight(), day.succ_opt()) {
                    (false, _) => self.at(day, b),
                    (true, Some(next)) => self.at(next, b),
                    (true, None) => continue,
                };
                if start < end {
                    out.push((sh, start, end));
                }
            }
        }
        out
    }
}

/// Joins touching or overlapping intervals of a sorted sequence.
fn merge(it: impl Iterator<Item = Interval>) -> impl Iterator<Item = Interval> {
    let mut it = it.peekable();
    std::iter::from_fn(move || {
        let (a, mut e) = it.next()?;
        while let Some(&(a2, e2)) = it.peek() {
            if a2 > e {
                break;
            }
            e = e.max(e2);
            it.next();
        }
        Some((a, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Weekday;
    use proptest::prelude::*;

    const SH: Tz = chrono_tz::Asia::Shanghai;
    const BERLIN: Tz = chrono_tz::Europe::Berlin;
    const NY: Tz = chrono_tz::America::New_York;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    /// A local time in `tz` ("2026-03-13 17:00"), which must exist and be unambiguous.
    fn local(tz: Tz, s: &str) -> DateTime<Utc> {
        let ndt = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        tz.from_local_datetime(&ndt)
            .single()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
            .unwrap()
            .and_utc()
    }

    fn hours(d: u64) -> Duration {
        Duration::from_secs(d * 3600)
    }

    fn office(tz: Tz) -> BusinessCalendar {
        BusinessCalendar::new(tz, Some(&HoursConfig::mon_to_fri("09:00-18:00")), &[]).unwrap()
    }

    fn shift(name: &str, start: &str, end: &str) -> ShiftConfig {
        ShiftConfig {
            name: name.into(),
            start: start.into(),
            end: end.into(),
        }
    }

    fn standard_shifts() -> Vec<ShiftConfig> {
        vec![
            shift("day", "08:00", "17:00"),
            shift("night", "17:00", "01:00"),
        ]
    }

    fn keys(p: &[(String, String)]) -> Vec<&str> {
        p.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[derive(Deserialize)]
    struct Doc {
        hours: Option<HoursConfig>,
        #[serde(default, rename = "shift")]
        shifts: Vec<ShiftConfig>,
    }

    const EXAMPLE: &str = r#"
[hours]
mon = "09:00-18:00"
tue = "09:00-18:00"
wed = "09:00-18:00"
thu = "09:00-18:00"
fri = "09:00-18:00"
sat = "closed"
sun = "closed"
holidays = ["2026-10-01", "2026-10-02"]
workdays = ["2026-09-27"]
workday_hours = "09:00-18:00"
[[shift]]
name = "day"
start = "08:00"
end = "17:00"
[[shift]]
name = "night"
start = "17:00"
end = "01:00"
"#;

    // ---- configuration ----

    #[test]
    fn example_config_parses_and_validates() {
        let doc: Doc = toml::from_str(EXAMPLE).unwrap();
        let h = doc.hours.unwrap();
        assert_eq!(h.sat.as_deref(), Some("closed"));
        assert_eq!(h.holidays.len(), 2);
        assert!(validate(Some(&h), &doc.shifts).is_empty());
        let cal = BusinessCalendar::new(SH, Some(&h), &doc.shifts).unwrap();
        assert!(!cal.is_always_open());
        assert_eq!(cal.shifts().len(), 2);
        assert_eq!(cal.shifts()[1].name, "night");
        assert_eq!(
            cal.shifts()[1].start,
            NaiveTime::from_hms_opt(17, 0, 0).unwrap()
        );
        assert_eq!(
            cal.shifts()[1].end,
            NaiveTime::from_hms_opt(1, 0, 0).unwrap()
        );
        assert!(cal.shifts()[1].crosses_midnight());
        assert!(!cal.shifts()[0].crosses_midnight());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e = toml::from_str::<Doc>("[hours]\nmonday = \"09:00-18:00\"\n")
            .err()
            .unwrap();
        assert!(e.to_string().contains("monday"), "{e}");
        let e = toml::from_str::<Doc>(
            "[[shift]]\nname = \"a\"\nstart = \"08:00\"\nend = \"09:00\"\nlead = 1\n",
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("lead"), "{e}");
    }

    #[test]
    fn missing_days_are_closed_and_empty_section_is_valid() {
        let doc: Doc = toml::from_str("[hours]\nmon = \"10:00-11:00\"\n").unwrap();
        let cal = BusinessCalendar::new(SH, doc.hours.as_ref(), &[]).unwrap();
        assert!(cal.is_business_day(date("2026-03-09"))); // Monday
        for d in ["2026-03-10", "2026-03-14", "2026-03-15"] {
            assert!(!cal.is_business_day(date(d)), "{d}");
        }
        let none: Doc = toml::from_str("").unwrap();
        assert!(none.hours.is_none() && none.shifts.is_empty());
        assert!(validate(None, &[]).is_empty());
        // An empty [hours] section is a valid table that is never open.
        let cal = BusinessCalendar::new(SH, Some(&HoursConfig::default()), &[]).unwrap();
        assert!(!cal.is_always_open());
        assert_eq!(cal.next_open(utc("2026-03-09 00:00")), None);
    }

    #[test]
    fn validate_reports_every_problem_with_its_key() {
        let h = HoursConfig {
            mon: Some("9-18".into()),
            tue: Some("09:00-12:00, 11:00-14:00".into()),
            wed: Some("18:00-09:00".into()),
            thu: Some("09:00-12:00,".into()),
            fri: Some("24:00-24:00".into()),
            sat: Some("09:60-10:00".into()),
            sun: Some("".into()),
            holidays: vec!["2026-10-01".into(), "2026-13-01".into()],
            workdays: vec!["2026-10-01".into(), "tomorrow".into()],
            workday_hours: Some("08:00-25:00".into()),
        };
        let shifts = vec![
            shift("day", "8am", "17:00"),
            shift("day", "24:00", "17:61"),
            shift(" ", "00:00", "24:00"),
        ];
        let p = validate(Some(&h), &shifts);
        let k = keys(&p);
        for key in [
            "hours.mon",
            "hours.tue",
            "hours.wed",
            "hours.thu",
            "hours.fri",
            "hours.sat",
            "hours.sun",
            "hours.holidays",
            "hours.workdays",
            "hours.workday_hours",
            "shift[0].start",
            "shift[1].name",
            "shift[1].start",
            "shift[1].end",
            "shift[2].name",
        ] {
            assert!(k.contains(&key), "{key} missing from {p:#?}");
        }
        assert!(
            !k.contains(&"shift[0].end") && !k.contains(&"shift[0].name"),
            "{p:#?}"
        );
        let msg = |key: &str| {
            p.iter()
                .filter(|(k, _)| k == key)
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
                .join(" | ")
        };
        assert!(
            msg("hours.mon").contains("`9-18` is not a range"),
            "{}",
            msg("hours.mon")
        );
        assert!(msg("hours.tue").contains("overlap"));
        assert!(msg("hours.wed").contains("before the end"));
        assert!(msg("hours.holidays").contains("2026-13-01"));
        assert!(!msg("hours.holidays").contains("`2026-10-01`"));
        assert!(msg("hours.workdays").contains("`2026-10-01` is in hours.holidays"));
        assert!(msg("hours.workdays").contains("tomorrow"));
        assert!(msg("shift[1].name").contains("two shifts"));
        // The constructor reports the same.
        assert_eq!(BusinessCalendar::new(SH, Some(&h), &shifts).unwrap_err(), p);
    }

    #[test]
    fn overlaps_are_found_even_when_not_adjacent() {
        let p = validate(
            Some(&HoursConfig {
                mon: Some("08:00-18:00, 09:00-10:00, 12:00-13:00".into()),
                ..Default::default()
            }),
            &[],
        );
        assert_eq!(keys(&p), ["hours.mon", "hours.mon"], "{p:#?}");
        // Touching ranges are fine (and joined).
        let h = HoursConfig {
            mon: Some("12:00-13:00, 08:00-12:00".into()),
            ..Default::default()
        };
        assert!(validate(Some(&h), &[]).is_empty());
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert_eq!(
            cal.next_close(local(SH, "2026-03-09 09:00")),
            Some(local(SH, "2026-03-09 13:00"))
        );
    }

    #[test]
    fn workdays_need_hours() {
        let mut h = HoursConfig {
            sat: Some("10:00-12:00".into()),
            workdays: vec!["2026-09-27".into()],
            ..Default::default()
        };
        assert_eq!(keys(&validate(Some(&h), &[])), ["hours.workday_hours"]);
        h.workday_hours = Some("closed".into());
        assert_eq!(keys(&validate(Some(&h), &[])), ["hours.workday_hours"]);
        h.workday_hours = Some("10:00-16:00".into());
        assert!(validate(Some(&h), &[]).is_empty());
        // A bad Monday is reported once, under its own key.
        h.workday_hours = None;
        h.mon = Some("nine to six".into());
        assert_eq!(keys(&validate(Some(&h), &[])), ["hours.mon"]);
        // Without make-up days, a closed Monday is fine.
        h.mon = Some("closed".into());
        h.workdays.clear();
        assert!(validate(Some(&h), &[]).is_empty());
    }

    #[test]
    fn clock_and_day_syntax() {
        assert_eq!(parse_clock("9:05"), Some(9 * 3600 + 300));
        assert_eq!(parse_clock(" 24:00 "), Some(DAY_SECS));
        for bad in [
            "24:01", "25:00", "9", "09:5", "-1:00", "09:00:00", "a:00", "123:00",
        ] {
            assert_eq!(parse_clock(bad), None, "{bad}");
        }
        assert_eq!(parse_day("CLOSED"), Ok(vec![]));
        assert_eq!(parse_day("00:00-24:00"), Ok(vec![(0, DAY_SECS)]));
        assert_eq!(
            parse_day(" 13:30-17:30 ,08:00-12:00"),
            Ok(vec![
                (8 * 3600, 12 * 3600),
                (13 * 3600 + 1800, 17 * 3600 + 1800)
            ])
        );
        assert_eq!(
            parse_day("00:00-12:00, 12:00-24:00"),
            Ok(vec![(0, DAY_SECS)])
        );
        assert!(parse_day("09:00-09:00").is_err());
        assert!(parse_day("closed, 09:00-10:00").is_err());
    }

    #[test]
    fn full_table_is_always_open() {
        let all = "00:00-24:00".to_string();
        let h = HoursConfig {
            mon: Some(all.clone()),
            tue: Some(all.clone()),
            wed: Some(all.clone()),
            thu: Some(all.clone()),
            fri: Some(all.clone()),
            sat: Some(all.clone()),
            sun: Some("00:00-12:00, 12:00-24:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert!(cal.is_always_open());
        // With a holiday it is a table again; the close is that holiday's midnight.
        let h = HoursConfig {
            holidays: vec!["2026-10-01".into()],
            ..h
        };
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert!(!cal.is_always_open());
        assert_eq!(
            cal.next_close(local(SH, "2026-09-20 10:00")),
            Some(local(SH, "2026-10-01 00:00"))
        );
        assert_eq!(
            cal.next_open(local(SH, "2026-10-01 10:00")),
            Some(local(SH, "2026-10-02 00:00"))
        );
    }

    // ---- hand-worked business time ----

    #[test]
    fn friday_evening_plus_two_hours_is_monday_ten() {
        let cal = office(SH);
        // 2026-03-13 is a Friday.
        assert_eq!(date("2026-03-13").weekday(), Weekday::Fri);
        let t = local(SH, "2026-03-13 17:00");
        assert_eq!(
            cal.add_business(t, hours(2)),
            Some(local(SH, "2026-03-16 10:00"))
        );
        assert_eq!(
            cal.business_between(t, local(SH, "2026-03-16 10:00")),
            hours(2)
        );
        // Exactly one hour lands on Friday's close, not on Monday's opening.
        assert_eq!(
            cal.add_business(t, hours(1)),
            Some(local(SH, "2026-03-13 18:00"))
        );
        // From a closed moment the clock starts at the next opening.
        let sat = local(SH, "2026-03-14 11:00");
        assert_eq!(
            cal.add_business(sat, Duration::ZERO),
            Some(local(SH, "2026-03-16 09:00"))
        );
        assert_eq!(
            cal.add_business(sat, hours(24)),
            Some(local(SH, "2026-03-18 15:00"))
        );
        // 24 business hours is not a day: 9h a day.
        assert_eq!(
            cal.add_business(local(SH, "2026-03-16 09:00"), hours(9 * 5)),
            Some(local(SH, "2026-03-20 18:00"))
        );
        assert_eq!(
            cal.add_business(t, Duration::from_secs(90)),
            Some(local(SH, "2026-03-13 17:01") + TimeDelta::seconds(30))
        );
    }

    #[test]
    fn a_holiday_in_between_skips_a_day() {
        let mut h = HoursConfig::mon_to_fri("09:00-18:00");
        h.holidays = vec!["2026-03-17".into()]; // Tuesday
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        let t = local(SH, "2026-03-16 17:00");
        assert_eq!(
            cal.add_business(t, hours(2)),
            Some(local(SH, "2026-03-18 10:00"))
        );
        assert!(!cal.is_open(local(SH, "2026-03-17 12:00")));
        assert!(!cal.is_business_day(date("2026-03-17")));
        assert_eq!(
            cal.business_between(t, local(SH, "2026-03-19 09:00")),
            hours(10)
        );
        assert_eq!(
            cal.next_open(local(SH, "2026-03-16 18:00")),
            Some(local(SH, "2026-03-18 09:00"))
        );
    }

    #[test]
    fn golden_week_with_make_up_days() {
        // National Day 10-01..10-08 off; Sunday 09-27 and Saturday 10-10 worked instead.
        let mut h = HoursConfig::mon_to_fri("09:00-18:00");
        h.holidays = (1..=8).map(|d| format!("2026-10-0{d}")).collect();
        h.workdays = vec!["2026-09-27".into(), "2026-10-10".into()];
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert_eq!(date("2026-10-10").weekday(), Weekday::Sat);
        assert_eq!(date("2026-09-27").weekday(), Weekday::Sun);
        assert!(cal.is_business_day(date("2026-10-10")));
        assert!(cal.is_business_day(date("2026-09-27")));
        // A Monday in the holiday, and an ordinary Sunday.
        assert!(!cal.is_business_day(date("2026-10-05")));
        assert!(!cal.is_business_day(date("2026-10-11")));
        // Wednesday 09-30 17:00 + 2h: 1h that day, the holiday week, then Friday 10-09.
        let t = local(SH, "2026-09-30 17:00");
        assert_eq!(
            cal.add_business(t, hours(2)),
            Some(local(SH, "2026-10-09 10:00"))
        );
        // Friday 10-09 17:00 + 2h: the make-up Saturday counts.
        let t = local(SH, "2026-10-09 17:00");
        assert_eq!(
            cal.add_business(t, hours(2)),
            Some(local(SH, "2026-10-10 10:00"))
        );
        // Friday 09-25 17:00 + 2h: the make-up Sunday counts.
        let t = local(SH, "2026-09-25 17:00");
        assert_eq!(
            cal.add_business(t, hours(2)),
            Some(local(SH, "2026-09-27 10:00"))
        );
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-09-30 19:00")),
            Some(local(SH, "2026-10-09 18:00"))
        );
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-10-09 19:00")),
            Some(local(SH, "2026-10-10 18:00"))
        );
    }

    #[test]
    fn make_up_day_uses_workday_hours_or_monday() {
        let mut h = HoursConfig::mon_to_fri("09:00-18:00");
        h.mon = Some("08:00-12:00".into());
        h.workdays = vec!["2026-03-14".into()];
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert_eq!(
            cal.open_intervals(local(SH, "2026-03-14 00:00"), local(SH, "2026-03-15 00:00")),
            vec![(local(SH, "2026-03-14 08:00"), local(SH, "2026-03-14 12:00"))]
        );
        h.workday_hours = Some("10:00-11:00".into());
        // A make-up day on a weekday takes workday_hours too.
        h.workdays.push("2026-03-18".into());
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert_eq!(
            cal.business_between(local(SH, "2026-03-14 00:00"), local(SH, "2026-03-15 00:00")),
            hours(1)
        );
        assert_eq!(
            cal.business_between(local(SH, "2026-03-18 00:00"), local(SH, "2026-03-19 00:00")),
            hours(1)
        );
    }

    #[test]
    fn lunch_break() {
        let cal = BusinessCalendar::new(
            SH,
            Some(&HoursConfig::mon_to_fri("08:00-12:00, 13:30-17:30")),
            &[],
        )
        .unwrap();
        let t = local(SH, "2026-03-16 11:00");
        assert_eq!(
            cal.add_business(t, hours(2)),
            Some(local(SH, "2026-03-16 14:30"))
        );
        assert_eq!(
            cal.add_business(t, hours(1)),
            Some(local(SH, "2026-03-16 12:00"))
        );
        assert!(!cal.is_open(local(SH, "2026-03-16 12:00")));
        assert!(!cal.is_open(local(SH, "2026-03-16 13:29")));
        assert!(cal.is_open(local(SH, "2026-03-16 13:30")));
        assert!(cal.is_open(local(SH, "2026-03-16 08:00")));
        assert!(!cal.is_open(local(SH, "2026-03-16 17:30")));
        assert_eq!(
            cal.next_open(local(SH, "2026-03-16 12:15")),
            Some(local(SH, "2026-03-16 13:30"))
        );
        assert_eq!(cal.next_close(t), Some(local(SH, "2026-03-16 12:00")));
        assert_eq!(
            cal.next_close(local(SH, "2026-03-16 12:15")),
            Some(local(SH, "2026-03-16 17:30"))
        );
        assert_eq!(
            cal.business_between(local(SH, "2026-03-16 00:00"), local(SH, "2026-03-17 00:00")),
            hours(8)
        );
        // During the break the business day is still today.
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-03-16 12:15")),
            Some(local(SH, "2026-03-16 17:30"))
        );
        assert_eq!(
            cal.open_intervals(local(SH, "2026-03-16 10:00"), local(SH, "2026-03-17 09:00")),
            vec![
                (local(SH, "2026-03-16 10:00"), local(SH, "2026-03-16 12:00")),
                (local(SH, "2026-03-16 13:30"), local(SH, "2026-03-16 17:30")),
                (local(SH, "2026-03-17 08:00"), local(SH, "2026-03-17 09:00")),
            ]
        );
    }

    #[test]
    fn end_of_business_day() {
        let cal = office(SH);
        // Friday evening: next Monday's close.
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-03-13 19:00")),
            Some(local(SH, "2026-03-16 18:00"))
        );
        // At the close itself the day is over.
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-03-13 18:00")),
            Some(local(SH, "2026-03-16 18:00"))
        );
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-03-13 17:59")),
            Some(local(SH, "2026-03-13 18:00"))
        );
        // Early morning of a business day: that day's close.
        assert_eq!(
            cal.end_of_business_day(local(SH, "2026-03-16 06:00")),
            Some(local(SH, "2026-03-16 18:00"))
        );
        // Always open: the next local midnight.
        let all = BusinessCalendar::always_open(SH);
        assert_eq!(
            all.end_of_business_day(local(SH, "2026-03-13 19:00")),
            Some(local(SH, "2026-03-14 00:00"))
        );
        assert_eq!(
            all.end_of_business_day(local(SH, "2026-03-14 00:00")),
            Some(local(SH, "2026-03-15 00:00"))
        );
    }

    #[test]
    fn always_open_adds_wall_time() {
        let cal = BusinessCalendar::always_open(NY);
        assert!(cal.is_always_open());
        let t = utc("2026-03-07 12:00");
        assert_eq!(
            cal.add_business(t, hours(48)),
            Some(t + TimeDelta::hours(48))
        );
        assert_eq!(cal.business_between(t, t + TimeDelta::hours(48)), hours(48));
        assert_eq!(
            cal.business_between(t, t - TimeDelta::hours(1)),
            Duration::ZERO
        );
        assert!(cal.is_open(t));
        assert_eq!(cal.next_open(t), Some(t));
        assert_eq!(cal.next_close(t), None);
        assert!(cal.is_business_day(date("2026-10-01")));
        assert_eq!(
            cal.open_intervals(t, t + TimeDelta::hours(1)),
            vec![(t, t + TimeDelta::hours(1))]
        );
        assert!(cal.open_intervals(t, t).is_empty());
        assert_eq!(cal.add_business(t, Duration::MAX), None);
        // hours = None is the same.
        let none = BusinessCalendar::new(NY, None, &[]).unwrap();
        assert!(none.is_always_open());
        assert_eq!(
            none.add_business(t, hours(5)),
            Some(t + TimeDelta::hours(5))
        );
    }

    #[test]
    fn never_open_answers_none_quickly() {
        let h = HoursConfig {
            mon: Some("closed".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        let t = utc("2026-01-01 00:00");
        let started = std::time::Instant::now();
        assert_eq!(cal.next_open(t), None);
        assert_eq!(cal.next_close(t), None);
        assert_eq!(cal.add_business(t, Duration::from_secs(1)), None);
        assert_eq!(cal.end_of_business_day(t), None);
        assert_eq!(cal.add_business(t, Duration::ZERO), None);
        assert!(!cal.is_open(t));
        assert_eq!(
            cal.business_between(t, t + TimeDelta::days(365)),
            Duration::ZERO
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn horizon_is_about_three_years() {
        // Open only on one date, four years out: beyond the horizon.
        let h = HoursConfig {
            workdays: vec!["2030-06-03".into()],
            workday_hours: Some("09:00-10:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        assert_eq!(cal.next_open(utc("2026-01-01 00:00")), None);
        assert_eq!(
            cal.next_open(utc("2028-01-01 00:00")),
            Some(local(SH, "2030-06-03 09:00"))
        );
        // business_between looks as far as asked.
        assert_eq!(
            cal.business_between(utc("2026-01-01 00:00"), utc("2031-01-01 00:00")),
            hours(1)
        );
        // A year of business hours is fine.
        let office = office(SH);
        let t = local(SH, "2026-01-05 09:00");
        let started = std::time::Instant::now();
        let r = office.add_business(t, hours(9 * 5 * 52)).unwrap();
        assert_eq!(r, local(SH, "2027-01-01 18:00"));
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn next_close_joins_intervals_across_midnight() {
        let h = HoursConfig {
            mon: Some("18:00-24:00".into()),
            tue: Some("00:00-02:00, 09:00-10:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(SH, Some(&h), &[]).unwrap();
        let t = local(SH, "2026-03-16 20:00");
        assert_eq!(cal.next_close(t), Some(local(SH, "2026-03-17 02:00")));
        assert!(cal.is_open(local(SH, "2026-03-17 00:00")));
        assert_eq!(
            cal.open_intervals(local(SH, "2026-03-16 00:00"), local(SH, "2026-03-18 00:00")),
            vec![
                (local(SH, "2026-03-16 18:00"), local(SH, "2026-03-17 02:00")),
                (local(SH, "2026-03-17 09:00"), local(SH, "2026-03-17 10:00")),
            ]
        );
        // end_of_business_day is per day: Monday's ends at midnight.
        assert_eq!(
            cal.end_of_business_day(t),
            Some(local(SH, "2026-03-17 00:00"))
        );
        // 8h from Monday 20:00: 6h to Tue 02:00, 1h on Tue morning, then next Monday 19:00.
        assert_eq!(
            cal.add_business(t, hours(6)),
            Some(local(SH, "2026-03-17 02:00"))
        );
        assert_eq!(
            cal.add_business(t, hours(8)),
            Some(local(SH, "2026-03-23 19:00"))
        );
    }

    #[test]
    fn open_intervals_clip_and_order() {
        let cal = office(SH);
        let from = local(SH, "2026-03-13 12:00");
        let to = local(SH, "2026-03-17 10:00");
        assert_eq!(
            cal.open_intervals(from, to),
            vec![
                (from, local(SH, "2026-03-13 18:00")),
                (local(SH, "2026-03-16 09:00"), local(SH, "2026-03-16 18:00")),
                (local(SH, "2026-03-17 09:00"), to),
            ]
        );
        assert!(cal.open_intervals(to, from).is_empty());
        assert!(cal
            .open_intervals(local(SH, "2026-03-14 00:00"), local(SH, "2026-03-16 09:00"))
            .is_empty());
    }

    // ---- time zones ----

    #[test]
    fn dst_days_have_nine_open_hours() {
        // Europe/Berlin: 2026-03-29 (Sunday) 02:00 -> 03:00, 2026-10-25 (Sunday) 03:00 -> 02:00.
        // America/New_York: 2026-03-08 (Sunday) 02:00 -> 03:00, 2026-11-01 (Sunday) 02:00 -> 01:00.
        let all_week = |r: &str| {
            let s = Some(r.to_string());
            HoursConfig {
                sat: s.clone(),
                sun: s.clone(),
                ..HoursConfig::mon_to_fri(r)
            }
        };
        for (tz, day) in [
            (BERLIN, "2026-03-29"),
            (BERLIN, "2026-10-25"),
            (NY, "2026-03-08"),
            (NY, "2026-11-01"),
        ] {
            let cal = BusinessCalendar::new(tz, Some(&all_week("09:00-18:00")), &[]).unwrap();
            let d = date(day);
            let a = cal.at(d, 0);
            let b = cal.at(d.succ_opt().unwrap(), 0);
            assert_ne!(b - a, TimeDelta::hours(24), "{tz} {day} is a DST day");
            assert_eq!(cal.business_between(a, b), hours(9), "{tz} {day}");
            let open = local(tz, &format!("{day} 09:00"));
            assert_eq!(cal.next_open(a), Some(open));
            assert_eq!(
                cal.add_business(open, hours(9)),
                Some(local(tz, &format!("{day} 18:00")))
            );
            // The whole day is 23 or 25 hours.
            let cal = BusinessCalendar::new(tz, Some(&all_week("00:00-24:00")), &[]).unwrap();
            assert!(cal.is_always_open());
            let h = HoursConfig {
                holidays: vec!["2020-01-01".into()],
                ..all_week("00:00-12:00, 12:00-24:00")
            };
            let cal = BusinessCalendar::new(tz, Some(&h), &[]).unwrap();
            assert_eq!(
                cal.business_between(a, b),
                (b - a).to_std().unwrap(),
                "{tz} {day}"
            );
        }
        // The US switched on 2026-03-08, Europe three weeks later: Monday 03-09 09:00 New York is 13:00 UTC.
        let cal = office(NY);
        assert_eq!(
            cal.next_open(utc("2026-03-07 00:00")),
            Some(utc("2026-03-09 13:00"))
        );
        assert_eq!(
            cal.next_close(utc("2026-03-06 15:00")),
            Some(utc("2026-03-06 23:00"))
        );
    }

    #[test]
    fn gap_maps_to_first_instant_after_it_and_ambiguity_to_the_earlier() {
        // New York 2026-03-08: 02:00-03:00 does not exist; 03:00 EDT is 07:00 UTC.
        let h = HoursConfig {
            sun: Some("02:30-05:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(NY, Some(&h), &[]).unwrap();
        assert_eq!(
            cal.next_open(utc("2026-03-08 00:00")),
            Some(utc("2026-03-08 07:00"))
        );
        assert_eq!(
            cal.business_between(utc("2026-03-08 00:00"), utc("2026-03-09 00:00")),
            hours(2)
        );
        // A range entirely in the gap is never open.
        let h = HoursConfig {
            sun: Some("02:10-02:50, 04:00-05:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(NY, Some(&h), &[]).unwrap();
        assert_eq!(
            cal.open_intervals(utc("2026-03-08 00:00"), utc("2026-03-09 00:00")),
            vec![(utc("2026-03-08 08:00"), utc("2026-03-08 09:00"))]
        );
        // New York 2026-11-01: 01:00-02:00 happens twice (EDT, then EST). 01:30 means 05:30 UTC.
        let h = HoursConfig {
            sun: Some("01:30-03:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(NY, Some(&h), &[]).unwrap();
        assert_eq!(
            cal.next_open(utc("2026-11-01 00:00")),
            Some(utc("2026-11-01 05:30"))
        );
        assert_eq!(
            cal.next_close(utc("2026-11-01 00:00")),
            Some(utc("2026-11-01 08:00"))
        );
        // The second 01:15 is open too.
        assert!(cal.is_open(utc("2026-11-01 06:15")));
        // Europe/Berlin 2026-03-29: 02:30 -> 03:00 CEST = 01:00 UTC.
        assert_eq!(
            resolve_local(BERLIN, date("2026-03-29").and_hms_opt(2, 30, 0).unwrap()),
            utc("2026-03-29 01:00")
        );
        // Europe/Berlin 2026-10-25: 02:30 happens at 00:30 UTC and at 01:30 UTC; the earlier wins.
        assert_eq!(
            resolve_local(BERLIN, date("2026-10-25").and_hms_opt(2, 30, 0).unwrap()),
            utc("2026-10-25 00:30")
        );
    }

    #[test]
    fn half_hour_dst_and_a_skipped_day() {
        // Australia/Lord_Howe moves by 30 minutes: 2026-04-05 02:00 -> 01:30; 2026-10-04 02:00 -> 02:30.
        let tz = chrono_tz::Australia::Lord_Howe;
        let h = HoursConfig {
            sun: Some("00:00-24:00".into()),
            ..Default::default()
        };
        let cal = BusinessCalendar::new(tz, Some(&h), &[]).unwrap();
        let a = cal.at(date("2026-10-04"), 0);
        assert_eq!(
            cal.business_between(a, a + TimeDelta::days(2)),
            Duration::from_secs(23 * 3600 + 1800)
        );
        let a = cal.at(date("2026-04-05"), 0);
        assert_eq!(
            cal.business_between(a, a + TimeDelta::days(2)),
            Duration::from_secs(24 * 3600 + 1800)
        );
        // Pacific/Apia skipped Friday 2011-12-30 entirely.
        let tz = chrono_tz::Pacific::Apia;
        let every_day = HoursConfig {
            sat: Some("09:00-18:00".into()),
            sun: Some("09:00-18:00".into()),
            ..HoursConfig::mon_to_fri("09:00-18:00")
        };
        let cal = BusinessCalendar::new(tz, Some(&every_day), &[]).unwrap();
        let thu = local(tz, "2011-12-29 09:00");
        assert_eq!(
            cal.add_business(thu, hours(10)),
            Some(local(tz, "2011-12-31 10:00"))
        );
        assert_eq!(
            cal.business_between(thu, local(tz, "2012-01-01 00:00")),
            hours(18)
        );
        assert_eq!(
            cal.end_of_business_day(local(tz, "2011-12-29 19:00")),
            Some(local(tz, "2011-12-31 18:00"))
        );
    }

    // ---- shifts ----

    #[test]
    fn night_shift_after_midnight_is_the_previous_days() {
        let cal = BusinessCalendar::new(SH, None, &standard_shifts()).unwrap();
        let (sh, start) = cal.shift_at(local(SH, "2026-03-11 00:30")).unwrap();
        assert_eq!(sh.name, "night");
        assert_eq!(start, local(SH, "2026-03-10 17:00"));
        assert!(cal.shift_at(local(SH, "2026-03-11 01:00")).is_none());
        assert!(cal.shift_at(local(SH, "2026-03-11 07:59")).is_none());
        let (sh, start) = cal.shift_at(local(SH, "2026-03-11 08:00")).unwrap();
        assert_eq!(
            (sh.name.as_str(), start),
            ("day", local(SH, "2026-03-11 08:00"))
        );
        let (sh, start) = cal.shift_at(local(SH, "2026-03-11 17:00")).unwrap();
        assert_eq!(
            (sh.name.as_str(), start),
            ("night", local(SH, "2026-03-11 17:00"))
        );
    }

    #[test]
    fn next_shift_end() {
        let cal = BusinessCalendar::new(SH, None, &standard_shifts()).unwrap();
        let (sh, a, e) = cal.next_shift_end(local(SH, "2026-03-11 16:00")).unwrap();
        assert_eq!(
            (sh.name.as_str(), a, e),
            (
                "day",
                local(SH, "2026-03-11 08:00"),
                local(SH, "2026-03-11 17:00")
            )
        );
        // Strictly after: at 17:00 the day shift has just ended; next is the night's.
        let (sh, a, e) = cal.next_shift_end(local(SH, "2026-03-11 17:00")).unwrap();
        assert_eq!(
            (sh.name.as_str(), a, e),
            (
                "night",
                local(SH, "2026-03-11 17:00"),
                local(SH, "2026-03-12 01:00")
            )
        );
        // Between 01:00 and 08:00 nobody is on; the next end is the day shift's.
        let (sh, _, e) = cal.next_shift_end(local(SH, "2026-03-12 03:00")).unwrap();
        assert_eq!(
            (sh.name.as_str(), e),
            ("day", local(SH, "2026-03-12 17:00"))
        );
        assert!(BusinessCalendar::always_open(SH)
            .next_shift_end(utc("2026-03-12 03:00"))
            .is_none());
        assert!(BusinessCalendar::always_open(SH)
            .shift_at(utc("2026-03-12 03:00"))
            .is_none());
    }

    #[test]
    fn overlapping_shifts_and_24_hour_shifts() {
        let mut shifts = standard_shifts();
        shifts.push(shift("regular", "09:00", "18:00"));
        let cal = BusinessCalendar::new(SH, None, &shifts).unwrap();
        // 09:30: day (08:00) and regular (09:00) both run; the later start wins.
        let (sh, _) = cal.shift_at(local(SH, "2026-03-11 09:30")).unwrap();
        assert_eq!(sh.name, "regular");
        // 17:30: night (17:00) and regular (09:00): night.
        let (sh, _) = cal.shift_at(local(SH, "2026-03-11 17:30")).unwrap();
        assert_eq!(sh.name, "night");
        let (sh, _, e) = cal.next_shift_end(local(SH, "2026-03-11 17:30")).unwrap();
        assert_eq!(
            (sh.name.as_str(), e),
            ("regular", local(SH, "2026-03-11 18:00"))
        );

        let cal = BusinessCalendar::new(SH, None, &[shift("duty", "08:00", "08:00")]).unwrap();
        let (_, a) = cal.shift_at(local(SH, "2026-03-11 07:00")).unwrap();
        assert_eq!(a, local(SH, "2026-03-10 08:00"));
        let (_, a, e) = cal.next_shift_end(local(SH, "2026-03-11 08:00")).unwrap();
        assert_eq!(
            (a, e),
            (local(SH, "2026-03-11 08:00"), local(SH, "2026-03-12 08:00"))
        );
        let cal = BusinessCalendar::new(SH, None, &[shift("late", "18:00", "24:00")]).unwrap();
        assert!(cal.shifts()[0].crosses_midnight());
        let (_, a, e) = cal.next_shift_end(local(SH, "2026-03-11 19:00")).unwrap();
        assert_eq!(
            (a, e),
            (local(SH, "2026-03-11 18:00"), local(SH, "2026-03-12 00:00"))
        );
    }

    #[test]
    fn shift_ties_go_to_the_first_configured() {
        let x = shift("x", "17:00", "17:00");
        let y = shift("y", "08:00", "17:00");
        let t = local(SH, "2026-03-11 12:00");
        let cal = BusinessCalendar::new(SH, None, &[x.clone(), y.clone()]).unwrap();
        let (sh, a, e) = cal.next_shift_end(t).unwrap();
        assert_eq!(
            (sh.name.as_str(), a, e),
            (
                "x",
                local(SH, "2026-03-10 17:00"),
                local(SH, "2026-03-11 17:00")
            )
        );
        let cal = BusinessCalendar::new(SH, None, &[y, x]).unwrap();
        let (sh, a, _) = cal.next_shift_end(t).unwrap();
        assert_eq!((sh.name.as_str(), a), ("y", local(SH, "2026-03-11 08:00")));
        // Equal starts: the first configured is the one running.
        let cal = BusinessCalendar::new(
            SH,
            None,
            &[shift("p", "08:00", "12:00"), shift("q", "08:00", "17:00")],
        )
        .unwrap();
        assert_eq!(cal.shift_at(t - TimeDelta::hours(3)).unwrap().0.name, "p");
        assert_eq!(cal.shift_at(t).unwrap().0.name, "q");
    }

    #[test]
    fn shifts_across_dst() {
        // Berlin 2026-03-29: a 22:00-06:00 night is 7 hours; 2026-10-25 it is 9.
        let cal = BusinessCalendar::new(BERLIN, None, &[shift("night", "22:00", "06:00")]).unwrap();
        let (_, a, e) = cal
            .next_shift_end(local(BERLIN, "2026-03-29 01:00"))
            .unwrap();
        assert_eq!(e - a, TimeDelta::hours(7));
        let (_, a, e) = cal
            .next_shift_end(local(BERLIN, "2026-10-25 04:00"))
            .unwrap();
        assert_eq!(e - a, TimeDelta::hours(9));
        // A shift starting in the gap starts when the gap ends.
        let cal = BusinessCalendar::new(BERLIN, None, &[shift("x", "02:30", "08:00")]).unwrap();
        let (_, a) = cal.shift_at(local(BERLIN, "2026-03-29 05:00")).unwrap();
        assert_eq!(a, utc("2026-03-29 01:00"));
    }

    // ---- properties ----

    const ZONES: [Tz; 6] = [
        chrono_tz::UTC,
        chrono_tz::Asia::Shanghai,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::America::St_Johns,
    ];

    fn hhmm(five_minutes: u32) -> String {
        let m = five_minutes * 5;
        format!("{:02}:{:02}", m / 60, m % 60)
    }

    /// A day: closed, all day, touching ranges, or up to 3 random disjoint ranges on a 5-minute grid.
    fn arb_day() -> impl Strategy<Value = String> {
        prop_oneof![
            1 => Just("closed".to_string()),
            1 => Just("00:00-24:00".to_string()),
            1 => Just("00:00-02:00, 08:00-12:00, 12:00-13:00, 22:00-24:00".to_string()),
            5 => proptest::collection::btree_set(0u32..=288, 2..=6).prop_map(|set| {
                let v: Vec<u32> = set.into_iter().collect();
                v.chunks_exact(2)
                    .map(|p| format!("{}-{}", hhmm(p[0]), hhmm(p[1])))
                    .collect::<Vec<_>>()
                    .join(", ")
            }),
        ]
    }

    const BASE: &str = "2026-01-01";
    const SPAN_DAYS: u32 = 330;

    fn arb_calendar() -> impl Strategy<Value = BusinessCalendar> {
        (
            0..ZONES.len(),
            proptest::collection::vec(arb_day(), 7),
            proptest::collection::btree_set(0..SPAN_DAYS + 30, 0..40),
            proptest::collection::btree_set(0..SPAN_DAYS + 30, 0..10),
            proptest::option::of(arb_day()),
        )
            .prop_map(|(z, days, hol, work, wh)| {
                let base = date(BASE);
                let d = |i: u32| (base + TimeDelta::days(i64::from(i))).to_string();
                let mut h = HoursConfig {
                    mon: Some(days[0].clone()),
                    tue: Some(days[1].clone()),
                    wed: Some(days[2].clone()),
                    thu: Some(days[3].clone()),
                    fri: Some(days[4].clone()),
                    sat: Some(days[5].clone()),
                    sun: Some(days[6].clone()),
                    holidays: hol.iter().map(|&i| d(i)).collect(),
                    workdays: work.difference(&hol).map(|&i| d(i)).collect(),
                    workday_hours: wh.filter(|w| w != "closed"),
                };
                if h.workday_hours.is_none() && days[0] == "closed" {
                    h.workday_hours = Some("10:00-16:00".into());
                }
                BusinessCalendar::new(ZONES[z], Some(&h), &[]).unwrap()
            })
    }

    fn arb_instant() -> impl Strategy<Value = DateTime<Utc>> {
        (0..i64::from(SPAN_DAYS) * 86_400, 0..2u32).prop_map(|(s, frac)| {
            utc(&format!("{BASE} 00:00"))
                + TimeDelta::seconds(s)
                + TimeDelta::milliseconds(i64::from(frac) * 250)
        })
    }

    fn arb_duration() -> impl Strategy<Value = Duration> {
        prop_oneof![
            3 => (0u64..40 * 3600).prop_map(Duration::from_secs),
            1 => (0u64..15 * 86_400).prop_map(Duration::from_secs),
            1 => (0u64..40 * 3600, 0u32..1_000_000_000).prop_map(|(s, n)| Duration::new(s, n)),
        ]
    }

    /// Whether `t` is open according to the table read naively on its local date and time.
    fn naive_open(cal: &BusinessCalendar, t: DateTime<Utc>) -> bool {
        let l = t.with_timezone(&cal.tz).naive_local();
        let secs = l.time().num_seconds_from_midnight();
        let s = cal.schedule.as_ref().unwrap();
        s.ranges(l.date())
            .iter()
            .any(|&(a, b)| a <= secs && secs < b)
    }

    fn ns() -> TimeDelta {
        TimeDelta::nanoseconds(1)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// (1) The result of add_business is open, or exactly at the end of an open interval.
        #[test]
        fn add_business_never_lands_in_closed_time(cal in arb_calendar(), t in arb_instant(), d in arb_duration()) {
            if let Some(r) = cal.add_business(t, d) {
                prop_assert!(r >= t);
                prop_assert!(cal.is_open(r) || cal.is_open(r - ns()), "{r} is inside closed time");
                if d.is_zero() {
                    prop_assert_eq!(Some(r), cal.next_open(t));
                }
            } else {
                // Only when there is not that much open time within the horizon.
                let end = t + TimeDelta::days(HORIZON_DAYS as i64 - 1);
                prop_assert!(cal.business_between(t, end) < d);
            }
        }

        /// (2) business_between inverts add_business exactly.
        #[test]
        fn business_between_inverts_add_business(cal in arb_calendar(), t in arb_instant(), d in arb_duration()) {
            if let Some(r) = cal.add_business(t, d) {
                prop_assert_eq!(cal.business_between(t, r), d);
            }
        }

        /// (3) add_business is monotonic in d.
        #[test]
        fn add_business_is_monotonic(cal in arb_calendar(), t in arb_instant(), d1 in arb_duration(), d2 in arb_duration()) {
            let (lo, hi) = if d1 <= d2 { (d1, d2) } else { (d2, d1) };
            match (cal.add_business(t, lo), cal.add_business(t, hi)) {
                (Some(a), Some(b)) => prop_assert!(a <= b),
                (None, Some(_)) => prop_assert!(false, "shorter duration has no answer"),
                _ => {}
            }
        }

        /// (4) Always open is wall-clock arithmetic.
        #[test]
        fn always_open_is_wall_clock(z in 0..ZONES.len(), t in arb_instant(), d in arb_duration(), back in 0u64..100_000) {
            let cal = BusinessCalendar::always_open(ZONES[z]);
            let wall = t + TimeDelta::from_std(d).unwrap();
            prop_assert_eq!(cal.add_business(t, d), Some(wall));
            prop_assert_eq!(cal.business_between(t, wall), d);
            prop_assert_eq!(cal.business_between(wall, t - TimeDelta::seconds(back as i64)), Duration::ZERO);
            prop_assert!(cal.is_open(t));
            prop_assert_eq!(cal.next_open(t), Some(t));
            let eod = cal.end_of_business_day(t).unwrap();
            prop_assert!(eod > t && eod - t <= TimeDelta::hours(25));
            prop_assert_eq!(eod.with_timezone(&ZONES[z]).time(), NaiveTime::MIN);
        }

        /// (5) open_intervals are sorted, disjoint, separated, open, and add up to business_between.
        #[test]
        fn open_intervals_are_sorted_disjoint_and_open(cal in arb_calendar(), from in arb_instant(), len in 0i64..20 * 86_400) {
            let to = from + TimeDelta::seconds(len);
            let iv = cal.open_intervals(from, to);
            let mut total = TimeDelta::zero();
            for (i, &(a, b)) in iv.iter().enumerate() {
                prop_assert!(from <= a && a < b && b <= to, "{a}..{b} outside {from}..{to}");
                prop_assert!(cal.is_open(a) && cal.is_open(b - ns()));
                prop_assert!(a == from || !cal.is_open(a - ns()), "{a} does not start an interval");
                prop_assert!(b == to || !cal.is_open(b), "{b} does not end an interval");
                if i > 0 {
                    prop_assert!(iv[i - 1].1 < a, "not disjoint and separated");
                }
                let mid = a + (b - a) / 2;
                prop_assert!(cal.is_open(mid));
                total += b - a;
            }
            prop_assert_eq!(total.to_std().unwrap(), cal.business_between(from, to));
        }

        /// is_open agrees with reading the table on the local clock (where the local time is unambiguous).
        #[test]
        fn is_open_matches_the_table(cal in arb_calendar(), t in arb_instant()) {
            let l = t.with_timezone(&cal.tz).naive_local();
            if cal.tz.from_local_datetime(&l).single().is_some() {
                prop_assert_eq!(cal.is_open(t), naive_open(&cal, t), "{} local {}", cal.tz, l);
            }
        }

        /// next_open / next_close bracket the open time around t.
        #[test]
        fn next_open_and_next_close(cal in arb_calendar(), t in arb_instant()) {
            match cal.next_open(t) {
                Some(o) => {
                    prop_assert!(o >= t && cal.is_open(o));
                    prop_assert_eq!(cal.business_between(t, o), Duration::ZERO);
                    prop_assert_eq!(o == t, cal.is_open(t));
                    if let Some(c) = cal.next_close(t) {
                        prop_assert!(c > o && !cal.is_open(c) && cal.is_open(c - ns()));
                        prop_assert_eq!(cal.business_between(o, c), (c - o).to_std().unwrap());
                        let eod = cal.end_of_business_day(t).unwrap();
                        prop_assert!(eod > o && cal.is_open(eod - ns()));
                        prop_assert!(eod - o <= TimeDelta::hours(25));
                    }
                }
                None => prop_assert!(!cal.is_open(t)),
            }
        }

        /// business_between is additive.
        #[test]
        fn business_between_is_additive(cal in arb_calendar(), a in arb_instant(), x in 0i64..10 * 86_400, y in 0i64..10 * 86_400) {
            let b = a + TimeDelta::seconds(x);
            let c = b + TimeDelta::seconds(y);
            prop_assert_eq!(cal.business_between(a, c), cal.business_between(a, b) + cal.business_between(b, c));
            prop_assert!(cal.business_between(a, b) <= (b - a).to_std().unwrap());
        }

        /// Shifts: the running shift contains t; the next end is after t and no other run ends between.
        #[test]
        fn shifts_are_consistent(z in 0..ZONES.len(), t in arb_instant(),
                                 raw in proptest::collection::vec((0u32..96, 0u32..=96), 1..4)) {
            let shifts: Vec<ShiftConfig> = raw.iter().enumerate().map(|(i, &(a, b))| {
                shift(&format!("s{i}"), &hhmm(a * 3), &hhmm(b * 3))
            }).collect();
            let cal = BusinessCalendar::new(ZONES[z], None, &shifts).unwrap();
            let (sh, a, e) = cal.next_shift_end(t).unwrap();
            prop_assert!(a < e && e > t && e - a <= TimeDelta::hours(25));
            prop_assert_eq!(e.with_timezone(&ZONES[z]).time().num_seconds_from_midnight() % 900, 0);
            let _ = sh;
            if let Some((_, start)) = cal.shift_at(t) {
                prop_assert!(start <= t && t - start < TimeDelta::hours(25));
            }
            // Just before the end, that run is under way (perhaps overlapped by a later one).
            prop_assert!(cal.shift_at(e - ns()).is_some());
        }
    }
}
