//! Long on purpose: worked examples of the calendar, each with its hand-computed result.

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
