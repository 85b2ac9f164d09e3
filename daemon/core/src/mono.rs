//! Monotonic time without a runtime: the time since an origin the caller chooses. The daemon maps its (pausable)
//! tokio clock onto it, tests count from zero; durations and deadlines never depend on the wall clock.

use std::ops::{Add, Sub};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(pub Duration);

impl Mono {
    pub const ZERO: Mono = Mono(Duration::ZERO);
}

impl Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, d: Duration) -> Mono {
        Mono(self.0.saturating_add(d))
    }
}

/// The time between two moments; zero when `rhs` is later.
impl Sub for Mono {
    type Output = Duration;
    fn sub(self, rhs: Mono) -> Duration {
        self.0.saturating_sub(rhs.0)
    }
}
