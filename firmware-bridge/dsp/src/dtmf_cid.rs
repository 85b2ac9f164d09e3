//! DTMF caller ID: turns a sequence of DTMF digits into a [`CallerId`].
//!
//! The ETSI variants (spandsp `adsi.h`):
//!
//! * variant 1: `A<number>[D<redirected number>][B<special info>]C`; special info `00` not available, `10`
//!   restricted;
//! * variant 2: `A<number>#`, or `D1#` restricted, `D2#` international (number not sent), `D3#` unavailable;
//! * variant 3: `D<number>C`;
//! * variant 4: `<number>#` with no start marker. Off by default (a user dialling `...#` would look the same);
//!   enable it with [`DtmfCidParser::new`]`(true, ..)`.
//!
//! A sequence is abandoned when the next digit does not come within the inter-digit timeout, or when it is too
//! long for the buffers.

use crate::cid::{CallerId, CidFormat, Presentation, MAX_NUMBER};
use heapless::String;

/// Default inter-digit timeout, ms.
pub const DEFAULT_TIMEOUT_MS: u32 = 800;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Idle,
    /// After `A`: number, then optional `D` redirect and `B` special-info sections.
    A(Section),
    /// After `D`: variant 3 number or variant 2 code.
    D,
    /// Variant 4: digits without a start marker.
    Bare,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Section {
    Number,
    Redirect,
    Special,
}

/// A DTMF caller-ID sequence parser. Feed it each detected digit with its time in ms.
#[derive(Clone, Debug)]
pub struct DtmfCidParser {
    allow_bare: bool,
    timeout_ms: u32,
    mode: Mode,
    number: String<MAX_NUMBER>,
    special: String<4>,
    start_ms: u64,
    last_ms: u64,
}

impl DtmfCidParser {
    /// A parser; `allow_bare` enables variant 4 (`<number>#`), `timeout_ms` is the inter-digit timeout.
    pub fn new(allow_bare: bool, timeout_ms: u32) -> Self {
        DtmfCidParser {
            allow_bare,
            timeout_ms,
            mode: Mode::Idle,
            number: String::new(),
            special: String::new(),
            start_ms: 0,
            last_ms: 0,
        }
    }

    /// Whether a sequence is in progress.
    pub fn busy(&self) -> bool {
        self.mode != Mode::Idle
    }

    /// Drops a sequence in progress.
    pub fn reset(&mut self) {
        self.mode = Mode::Idle;
        self.number.clear();
        self.special.clear();
    }

    /// Abandons a sequence whose next digit is overdue at `now_ms`.
    pub fn tick(&mut self, now_ms: u64) {
        if self.mode != Mode::Idle && now_ms.saturating_sub(self.last_ms) > self.timeout_ms as u64 {
            self.reset();
        }
    }

    fn start(&mut self, mode: Mode, at_ms: u64) {
        self.reset();
        self.mode = mode;
        self.start_ms = at_ms;
    }

    /// Feeds one digit (`0`-`9`, `*`, `#`, `A`-`D`) that began at `at_ms`. Returns `(start_ms, caller id)` when the
    /// digit completed a sequence.
    pub fn push(&mut self, at_ms: u64, digit: u8) -> Option<(u64, CallerId)> {
        self.tick(at_ms);
        self.last_ms = at_ms;
        let is_num = digit.is_ascii_digit();
        match (self.mode, digit) {
            (_, b'A') => {
                self.start(Mode::A(Section::Number), at_ms);
                None
            }
            (Mode::Idle, b'D') => {
                self.start(Mode::D, at_ms);
                None
            }
            (Mode::Idle, _) if is_num && self.allow_bare => {
                self.start(Mode::Bare, at_ms);
                self.add(digit)
            }
            (Mode::Idle, _) => None,
            (Mode::A(Section::Number), b'D') => {
                self.mode = Mode::A(Section::Redirect);
                None
            }
            (Mode::A(_), b'B') => {
                self.mode = Mode::A(Section::Special);
                None
            }
            (Mode::A(_), b'C') | (Mode::A(Section::Number), b'#') => {
                let presentation = match self.special.as_str() {
                    "00" => Presentation::Unavailable,
                    "10" => Presentation::Private,
                    _ => Presentation::Available,
                };
                self.finish(presentation)
            }
            (Mode::A(Section::Number), _) if is_num || digit == b'*' => self.add(digit),
            (Mode::A(Section::Redirect), _) if is_num || digit == b'*' => None,
            (Mode::A(Section::Special), _) if is_num => {
                if self.special.push(digit as char).is_err() {
                    self.reset();
                }
                None
            }
            (Mode::D, b'C') => self.finish(Presentation::Available),
            (Mode::D, b'#') => {
                let p = match self.number.as_str() {
                    "1" => Some(Presentation::Private),
                    "2" | "3" => Some(Presentation::Unavailable),
                    _ => None,
                };
                match p {
                    Some(p) => {
                        self.number.clear();
                        self.finish(p)
                    }
                    None => {
                        self.reset();
                        None
                    }
                }
            }
            (Mode::D, _) if is_num || digit == b'*' => self.add(digit),
            (Mode::Bare, b'#') => self.finish(Presentation::Available),
            (Mode::Bare, _) if is_num => self.add(digit),
            _ => {
                self.reset();
                None
            }
        }
    }

    fn add(&mut self, digit: u8) -> Option<(u64, CallerId)> {
        if self.number.push(digit as char).is_err() {
            self.reset();
        }
        None
    }

    fn finish(&mut self, presentation: Presentation) -> Option<(u64, CallerId)> {
        let mut c = CallerId::empty(CidFormat::Dtmf, 0);
        c.checksum_ok = true;
        if self.number.is_empty() {
            c.presentation = if presentation == Presentation::Available {
                Presentation::Unavailable
            } else {
                presentation
            };
        } else {
            c.number = Some(self.number.clone());
            c.presentation = Presentation::Available;
        }
        let start = self.start_ms;
        // A bare sequence needs at least 3 digits to count as a number.
        let bare_short = self.mode == Mode::Bare && self.number.len() < 3;
        self.reset();
        if bare_short {
            return None;
        }
        Some((start, c))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(p: &mut DtmfCidParser, s: &str) -> Option<CallerId> {
        let mut out = None;
        for (i, d) in s.bytes().enumerate() {
            if let Some((_, c)) = p.push(i as u64 * 100, d) {
                out = Some(c);
            }
        }
        out
    }

    #[test]
    fn variants() {
        let mut p = DtmfCidParser::new(false, DEFAULT_TIMEOUT_MS);
        let c = run(&mut p, "A13800138000C").unwrap();
        assert_eq!(c.number.as_deref(), Some("13800138000"));
        let c = run(&mut p, "A0123D456B10C").unwrap();
        assert_eq!(c.number.as_deref(), Some("0123"));
        let c = run(&mut p, "AB10C").unwrap();
        assert_eq!(c.presentation, Presentation::Private);
        let c = run(&mut p, "AB00C").unwrap();
        assert_eq!(c.presentation, Presentation::Unavailable);
        let c = run(&mut p, "A5551234#").unwrap();
        assert_eq!(c.number.as_deref(), Some("5551234"));
        let c = run(&mut p, "D1#").unwrap();
        assert_eq!(c.presentation, Presentation::Private);
        let c = run(&mut p, "D3#").unwrap();
        assert_eq!(c.presentation, Presentation::Unavailable);
        let c = run(&mut p, "D0287654321C").unwrap();
        assert_eq!(c.number.as_deref(), Some("0287654321"));
        assert!(run(&mut p, "5551234#").is_none());
        let mut p4 = DtmfCidParser::new(true, DEFAULT_TIMEOUT_MS);
        let c = run(&mut p4, "5551234#").unwrap();
        assert_eq!(c.number.as_deref(), Some("5551234"));
    }

    #[test]
    fn timeout_abandons() {
        let mut p = DtmfCidParser::new(false, 500);
        assert!(p.push(0, b'A').is_none());
        assert!(p.push(100, b'1').is_none());
        assert!(p.push(2000, b'C').is_none());
    }
}
