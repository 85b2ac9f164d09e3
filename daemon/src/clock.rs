//! The clock every timer and timestamp goes through, so tests can run a day in a millisecond.

use tokio::time::Instant;

use crate::model::Time;
use crate::tracker::Now;

#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's wall clock and tokio's monotonic clock.
    System,
    /// Wall time derived from tokio's (pausable) clock: `wall + (Instant::now() - mono)`. For tests with
    /// `tokio::time::pause()`, and for the demo.
    Anchored { wall: Time, mono: Instant },
}

impl Clock {
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
