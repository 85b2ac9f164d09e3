//! Reports as the office receives them (SERVICE-POLICY section 6): when each is due (shift handover at every shift
//! end, daily at closing time, weekly, monthly, quarterly), building one from the store, and the scheduler task
//! that makes them by themselves. The KPI arithmetic is in `report.rs`.

use std::sync::Arc;

use chrono::{Datelike, Duration as ChronoDuration, NaiveDate, TimeZone, Weekday};
use tokio::sync::watch;
use tracing::{error, info};

use crate::calendar::BusinessCalendar;
use crate::clock::Clock;
use crate::config::Config;
use crate::model::{id_floor, LineStatus, SignIn, Time};
use crate::report::{self, Report, ReportKind, ReportParams};
use crate::runtime::engine::{EngineHandle, Snapshot};
use crate::store::{Store, StoreError};

pub fn params(cfg: &Config) -> ReportParams {
    ReportParams {
        answer_target: cfg.policy.answer_target.0,
        short_abandon: cfg.policy.short_abandon.0,
        tz: cfg.timezone(),
    }
}

/// The store key of a report.
pub fn key(kind: ReportKind, label: &str) -> String {
    format!("report/{}/{label}", kind.as_str())
}

/// Builds a report over `[from, to)` from the store.
pub fn generate_span(
    store: &Store,
    cfg: &Config,
    kind: ReportKind,
    label: String,
    from: Time,
    to: Time,
    now: Time,
) -> Result<Report, StoreError> {
    let calls = calls_in_parallel(store, from, to)?;
    // Task ids are ULIDs of their creation time: the period is a key range.
    let tasks: Vec<_> = store
        .tasks_between(&id_floor(from), &id_floor(to))?
        .into_iter()
        .filter(|t| t.created_at >= from && t.created_at < to)
        .collect();
    let mut r = report::build(
        kind,
        &cfg.site.id,
        label,
        from,
        to,
        &calls,
        &tasks,
        &params(cfg),
        now,
    );
    // Sign-in records are keyed `signin/{RFC 3339 UTC}/{agent}`, so the period is a key range.
    let lo = format!(
        "signin/{}",
        from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    let hi = format!(
        "signin/{}",
        to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    );
    for (k, s) in store.records_with_prefix::<SignIn>("signin/")? {
        if k.as_str() >= lo.as_str() && k.as_str() < hi.as_str() && s.late {
            r.site_kpis.late_signins += 1;
            r.per_agent.entry(s.agent).or_default().late_signins += 1;
        }
    }
    Ok(r)
}

/// The calls started in `[from, to)`, oldest first. A month holds ~100,000 calls and decoding them is most of a
/// report's cost, so the period is cut into one time slice per core, each read and decoded on its own thread.
fn calls_in_parallel(
    store: &Store,
    from: Time,
    to: Time,
) -> Result<Vec<crate::model::Call>, StoreError> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8) as i32;
    if cores == 1 || to - from < ChronoDuration::days(2) {
        return store.calls_between(&id_floor(from), &id_floor(to));
    }
    let step = (to - from) / cores;
    let bounds: Vec<(String, String)> = (0..cores)
        .map(|i| {
            let lo = from + step * i;
            let hi = if i + 1 == cores {
                to
            } else {
                from + step * (i + 1)
            };
            (id_floor(lo), id_floor(hi))
        })
        .collect();
    std::thread::scope(|s| {
        let parts: Vec<_> = bounds
            .iter()
            .map(|(lo, hi)| s.spawn(move || store.calls_between(lo, hi)))
            .collect();
        let mut out = Vec::new();
        for p in parts {
            out.extend(
                p.join()
                    .map_err(|_| StoreError::Write("a report thread panicked".into()))??,
            );
        }
        Ok(out)
    })
}

/// Builds the report of `kind` for the local `date` (the day, its week, month or quarter).
pub fn generate(
    store: &Store,
    cfg: &Config,
    kind: ReportKind,
    date: NaiveDate,
    now: Time,
) -> Result<Report, StoreError> {
    let (from, to) = report::period(kind, date, cfg.timezone());
    generate_span(store, cfg, kind, report::label(kind, date), from, to, now)
}

/// The stored report of `kind` for `date` if there is one; else one built now (not stored). The second value is
/// true when the period is not over yet.
pub fn find_or_build(
    store: &Store,
    cfg: &Config,
    kind: ReportKind,
    date: Option<NaiveDate>,
    now: Time,
) -> Result<(Report, bool), ReportError> {
    let tz = cfg.timezone();
    if kind == ReportKind::Shift {
        let prefix = key(kind, "");
        let date_s = date.map(|d| d.to_string());
        let found = store
            .records_with_prefix::<Report>(&prefix)?
            .into_iter()
            .rev()
            .map(|(_, r)| r)
            .find(|r| {
                date_s
                    .as_ref()
                    .is_none_or(|d| r.label.ends_with(d.as_str()))
            });
        if let Some(r) = found {
            return Ok((r, false));
        }
        // None stored yet: the shift that started last (on `date`, if given) up to its end or now.
        let cal = BusinessCalendar::new(tz, cfg.hours.as_ref(), &cfg.shifts)
            .unwrap_or_else(|_| BusinessCalendar::always_open(tz));
        let days: Vec<NaiveDate> = match date {
            Some(d) => vec![d],
            None => {
                let today = now.with_timezone(&tz).date_naive();
                vec![today, today.pred_opt().unwrap_or(today)]
            }
        };
        let latest = days
            .iter()
            .flat_map(|d| cal.shifts().iter().map(move |s| (*d, s)))
            .filter_map(|(d, s)| {
                let from = local_midnight(tz, d)? + (s.start - chrono::NaiveTime::MIN);
                let end_day = if s.crosses_midnight() {
                    d.succ_opt()?
                } else {
                    d
                };
                let to = local_midnight(tz, end_day)? + (s.end - chrono::NaiveTime::MIN);
                (from <= now).then_some((from, to, s.name.clone(), d))
            })
            .max_by_key(|(from, ..)| *from);
        let Some((from, to, name, d)) = latest else {
            return Err(ReportError::NoShift);
        };
        let r = generate_span(
            store,
            cfg,
            kind,
            format!("{name} {d}"),
            from,
            to.min(now).max(from),
            now,
        )?;
        return Ok((r, to > now));
    }
    let date = date.unwrap_or_else(|| now.with_timezone(&tz).date_naive());
    let label = report::label(kind, date);
    if let Some(r) = store.record::<Report>(&key(kind, &label))? {
        return Ok((r, false));
    }
    let r = generate(store, cfg, kind, date, now)?;
    let partial = r.to > now;
    Ok((r, partial))
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no shift report: no [[shift]] is configured, or none had started on that date")]
    NoShift,
}

/// A report that is due.
#[derive(Debug, Clone, PartialEq)]
pub enum Job {
    Period(ReportKind, NaiveDate),
    /// A shift's handover report over `[from, to)`.
    Shift {
        name: String,
        date: NaiveDate,
        from: Time,
        to: Time,
    },
}

fn local_midnight(tz: chrono_tz::Tz, d: NaiveDate) -> Option<Time> {
    tz.from_local_datetime(&d.and_hms_opt(0, 0, 0)?)
        .earliest()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub fn weekday(s: &str) -> Option<Weekday> {
    s.trim().parse::<Weekday>().ok()
}

/// The next moment after `after` at which reports are due, and which. Daily reports come at closing time (local
/// midnight when open around the clock), weekly, monthly and quarterly ones at the local midnight that starts
/// `weekly_on`, the `monthly_on` day of the month and the first day of a quarter (each for the period just ended),
/// handover reports at every shift end.
pub fn next_jobs(after: Time, cfg: &Config, cal: &BusinessCalendar) -> Option<(Time, Vec<Job>)> {
    let tz = cfg.timezone();
    let today = after.with_timezone(&tz).date_naive();
    let mut best: Option<(Time, Vec<Job>)> = None;
    let mut offer = |at: Time, job: Job| match &mut best {
        Some((t, jobs)) if *t == at => jobs.push(job),
        Some((t, _)) if *t < at => {}
        _ => best = Some((at, vec![job])),
    };
    // Daily, at the close of each business day.
    for d in (0..14).filter_map(|i| today.checked_add_signed(ChronoDuration::days(i))) {
        let close = if cal.is_always_open() {
            d.succ_opt().and_then(|n| local_midnight(tz, n))
        } else if cal.is_business_day(d) {
            local_midnight(tz, d).and_then(|m| cal.end_of_business_day(m))
        } else {
            None
        };
        if let Some(t) = close.filter(|t| *t > after) {
            offer(t, Job::Period(ReportKind::Daily, d));
            break;
        }
    }
    // Weekly, monthly, quarterly at the midnights that start them.
    let weekly_on = weekday(&cfg.policy.weekly_on).unwrap_or(Weekday::Mon);
    for d in (1..40).filter_map(|i| today.checked_add_signed(ChronoDuration::days(i))) {
        let Some(m) = local_midnight(tz, d).filter(|t| *t > after) else {
            continue;
        };
        let prev = d.pred_opt().unwrap_or(d);
        let mut jobs = Vec::new();
        if d.weekday() == weekly_on {
            jobs.push(Job::Period(ReportKind::Weekly, prev));
        }
        if d.day() == u32::from(cfg.policy.monthly_on) {
            // The previous calendar month.
            let last_of_prev = d.with_day(1).and_then(|f| f.pred_opt()).unwrap_or(prev);
            jobs.push(Job::Period(ReportKind::Monthly, last_of_prev));
        }
        if d.day() == 1 && matches!(d.month(), 1 | 4 | 7 | 10) {
            jobs.push(Job::Period(ReportKind::Quarterly, prev));
        }
        if !jobs.is_empty() {
            for j in jobs {
                offer(m, j);
            }
            break;
        }
    }
    if let Some((shift, from, to)) = cal.next_shift_end(after) {
        let date = from.with_timezone(&tz).date_naive();
        offer(
            to,
            Job::Shift {
                name: shift.name.clone(),
                date,
                from,
                to,
            },
        );
    }
    best
}

/// Makes the due reports by themselves, then sleeps until the next; only the report times wake it. A shift's
/// handover waits until no call is up on any line (a shift does not end while a customer is served).
pub async fn scheduler(
    store: Store,
    engine: EngineHandle,
    mut cfg: watch::Receiver<Arc<Config>>,
    clock: Clock,
) {
    loop {
        let c = cfg.borrow_and_update().clone();
        let cal = BusinessCalendar::new(c.timezone(), c.hours.as_ref(), &c.shifts)
            .unwrap_or_else(|_| BusinessCalendar::always_open(c.timezone()));
        let now = clock.now();
        let Some((at, jobs)) = next_jobs(now.wall, &c, &cal) else {
            if cfg.changed().await.is_err() {
                return;
            }
            continue;
        };
        let wait = (at - now.wall).to_std().unwrap_or_default();
        tokio::select! {
            _ = tokio::time::sleep_until(now.mono + wait) => {}
            r = cfg.changed() => {
                if r.is_err() { return; }
                continue;
            }
        }
        for job in jobs {
            let job = match job {
                Job::Shift {
                    name,
                    date,
                    from,
                    to,
                } => {
                    let mut snap = engine.snapshot.clone();
                    let _ = snap.wait_for(calls_down).await;
                    let to = clock.now().wall.max(to);
                    Job::Shift {
                        name,
                        date,
                        from,
                        to,
                    }
                }
                j => j,
            };
            let (store2, c2, now) = (store.clone(), c.clone(), clock.now().wall);
            let built = tokio::task::spawn_blocking(move || match job {
                Job::Period(kind, date) => generate(&store2, &c2, kind, date, now),
                Job::Shift {
                    name,
                    date,
                    from,
                    to,
                } => generate_span(
                    &store2,
                    &c2,
                    ReportKind::Shift,
                    format!("{name} {date}"),
                    from,
                    to,
                    now,
                ),
            })
            .await;
            match built {
                Ok(Ok(r)) => {
                    info!(kind = r.kind.as_str(), label = %r.label, "report made");
                    if !engine.store_report(r).await {
                        return;
                    }
                }
                Ok(Err(e)) => error!(error = %e, "cannot make a report"),
                Err(e) => error!(error = %e, "report task failed"),
            }
        }
    }
}

fn calls_down(s: &Snapshot) -> bool {
    s.lines
        .iter()
        .all(|l| !matches!(l.state, LineStatus::Ringing | LineStatus::Offhook))
}

#[cfg(test)]
mod tests;
