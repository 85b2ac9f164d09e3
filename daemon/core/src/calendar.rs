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
//!
//! Long because hours, holidays, make-up days and shifts share their business-time arithmetic.

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
mod tests;
