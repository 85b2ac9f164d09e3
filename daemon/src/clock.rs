//! The clock every timer and timestamp goes through, so tests can run a day in a millisecond.

use tokio::time::Instant;

use crate::model::Time;

/// The time an input happened: the wall clock for records, tokio's monotonic clock for timers.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall: Time,
    pub mono: Instant,
}

impl Now {
    /// The same moment for the core's state machines: monotonic time since `origin`.
    pub fn core(self, origin: Instant) -> linekeeper_core::tracker::Now {
        linekeeper_core::tracker::Now {
            wall: self.wall,
            mono: linekeeper_core::mono::Mono(self.mono.saturating_duration_since(origin)),
        }
    }
}

#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's wall clock and tokio's monotonic clock.
    System,
    /// Wall time derived from tokio's (pausable) clock: `wall + (Instant::now() - mono)`. For tests with
    /// `tokio::time::pause()`, and for the demo.
    Anchored { wall: Time, mono: Instant },
}

/// Whether the kernel's clock is synchronised (NTP or systemd-timesyncd have set it). Boards without a battery clock
/// boot with a wrong date; calls recorded before the first synchronisation are marked.
pub fn system_clock_synced() -> bool {
    // adjtimex with no modes only reads; TIME_ERROR (5) means "not synchronised".
    let mut tx: libc::timex = unsafe { std::mem::zeroed() };
    // SAFETY: a zeroed timex with modes = 0 is a valid read-only request; the kernel fills the struct.
    let state = unsafe { libc::adjtimex(&mut tx) };
    state >= 0 && state != libc::TIME_ERROR
}

impl Clock {
    /// Whether this clock's wall time can be trusted (the anchored test clock always can).
    pub fn is_synced(&self) -> bool {
        match self {
            Clock::System => system_clock_synced(),
            Clock::Anchored { .. } => true,
        }
    }

    pub fn anchored(wall: Time) -> Clock {
        Clock::Anchored {
            wall,
            mono: Instant::now(),
        }
    }

    pub fn now(&self) -> Now {
        let mono = Instant::now();
        let wall = match self {
            Clock::System => chrono::Utc::now(),
            Clock::Anchored { wall, mono: m0 } => {
                *wall + chrono::Duration::from_std(mono - *m0).unwrap_or_default()
            }
        };
        Now { wall, mono }
    }
}
