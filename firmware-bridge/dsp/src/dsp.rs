//! Small integer building blocks shared by the detectors.

/// `c * s / 2^14` for a Q14 coefficient `|c| <= 32768` and `|s| < 2^23`, with two 32-bit multiplies
/// (no 64-bit multiply, which the Cortex-M0+ of the RP2040 lacks).
#[inline]
pub fn mul_q14(c: i32, s: i32) -> i32 {
    (s >> 14) * c + (((s & 0x3FFF) * c) >> 14)
}

/// Goertzel energy `s1^2 + s2^2 - c s1 s2` (c in Q14) at the end of a block; never negative.
pub fn goertzel_energy(c: i32, s1: i32, s2: i32) -> u64 {
    let (a, b) = (s1 as i64, s2 as i64);
    let e = a * a + b * b - ((c as i64 * a) >> 14) * b;
    e.max(0) as u64
}

/// First-order DC blocker `y = x - x1 + y1 * (1 - 2^-6)` (corner about 20 Hz at 8 kHz); output clamped to i16.
#[derive(Clone, Default)]
pub struct DcBlock {
    x1: i32,
    y1: i32,
}

impl DcBlock {
    /// A blocker at rest.
    pub fn new() -> Self {
        Self::default()
    }

    /// Filters one sample.
    #[inline]
    pub fn push(&mut self, x: i16) -> i32 {
        let x = x as i32;
        let y = x - self.x1 + self.y1 - (self.y1 >> 6);
        self.x1 = x;
        let y = y.clamp(-32767, 32767);
        self.y1 = y;
        y
    }
}

/// The integer log2 of `v` (0 for 0 and 1).
pub fn ilog2(v: u32) -> u32 {
    31u32.saturating_sub(v.max(1).leading_zeros())
}
