//! `CallTracker`: the pure per-line call state machine. Line inputs and the time go in; call transitions and the
//! next deadline come out. No I/O, no clock of its own, so every path is unit-tested with explicit times.
//!
//! A line carries the modem's call (the inputs without a call reference: rings, caller-ID fields, hook changes,
//! timed out when the ringing stops) and any number of calls that a line that knows reports by its own reference
//! (`Offered`, `Answered`, `Ended`), up to [`MAX_CALLS`] at once. `docs/line-contract.md` is the contract.

use std::time::Duration;

use crate::mono::Mono;

use crate::model::{
    new_id, Call, ClearedBy, Direction, LineState, LineStatus, NumberStatus, Outcome, Time,
};

/// Calls tracked on one line at once; an offer beyond them is not tracked (memory stays bounded whatever a line
/// reports).
pub const MAX_CALLS: usize = 16;

/// The time an input happened: the wall clock for records, the monotonic clock for durations and deadlines.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub wall: Time,
    pub mono: Mono,
}

/// What a line adapter reports. Adapters translate the outside world into these and know nothing else.
#[derive(Debug, Clone, PartialEq)]
pub enum LineInput {
    Ring {
        label: Option<String>,
    },
    Number(CallerNumber),
    Name(String),
    Message(String),
    OffHook,
    OnHook,
    LinkUp {
        detail: Option<String>,
    },
    LinkDown {
        reason: String,
    },
    /// A line that knows (SIP, the bridge board): a call the source calls `call` is offered, with its caller ID.
    Offered {
        call: String,
        direction: Direction,
        number: CallerNumber,
        name: Option<String>,
    },
    /// That call was answered, by `by` (an extension, phone or agent id) when the line tells.
    Answered {
        call: String,
        by: Option<String>,
    },
    /// That call ended; `cleared_by` is who hung up first. Not answered: missed.
    Ended {
        call: String,
        cleared_by: ClearedBy,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallerNumber {
    Known(String),
    Withheld,
    Unavailable,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEventKind {
    Ringing,
    Answered,
    Ended,
}

impl CallEventKind {
    pub fn as_type(self) -> &'static str {
        match self {
            CallEventKind::Ringing => "call.ringing",
            CallEventKind::Answered => "call.answered",
            CallEventKind::Ended => "call.ended",
        }
    }
}

/// A call transition to record and publish.
#[derive(Debug, Clone, PartialEq)]
pub struct CallTransition {
    pub kind: CallEventKind,
    pub call: Call,
}

fn set_number(call: &mut Call, n: CallerNumber) {
    (call.number, call.number_status) = match n {
        CallerNumber::Known(s) => (Some(s), NumberStatus::Known),
        CallerNumber::Withheld => (None, NumberStatus::Withheld),
        CallerNumber::Unavailable => (None, NumberStatus::Unavailable),
    };
}

/// Whether the call's caller ID says the same as `n`.
fn same_caller(call: &Call, n: &CallerNumber) -> bool {
    match n {
        CallerNumber::Known(s) => call.number.as_deref() == Some(s.as_str()),
        CallerNumber::Withheld => call.number_status == NumberStatus::Withheld,
        CallerNumber::Unavailable => call.number_status == NumberStatus::Unavailable,
    }
}

/// How long after the last caller-ID field a block without a NAME line counts as complete.
pub const CID_SETTLE: Duration = Duration::from_millis(300);

#[derive(Debug)]
struct Active {
    /// The source's reference; `None` for the modem's call.
    reference: Option<String>,
    call: Call,
    started: Mono,
    /// The last RING or caller-ID line: ringing has stopped `ring_timeout` after it.
    last_activity: Mono,
    answered: Option<Mono>,
    announced: bool,
    has_name: bool,
    settle_at: Option<Mono>,
}

#[derive(Debug)]
pub struct CallTracker {
    line: String,
    answer_detect: bool,
    ring_timeout: Duration,
    link_up: bool,
    link_reason: Option<String>,
    /// The calls on the line, oldest first: at most one without a reference (the modem's), and [`MAX_CALLS`].
    calls: Vec<Active>,
    status: LineStatus,
    since: Time,
}

impl CallTracker {
    /// A tracker for a line whose link is not up yet.
    pub fn new(line: &str, answer_detect: bool, ring_timeout: Duration, now: Time) -> Self {
        CallTracker {
            line: line.to_string(),
            answer_detect,
            ring_timeout,
            link_up: false,
            link_reason: Some("not opened yet".into()),
            calls: Vec::new(),
            status: LineStatus::Down,
            since: now,
        }
    }

    /// New settings from a reloaded configuration; a call in progress goes on.
    pub fn reconfigure(&mut self, answer_detect: bool, ring_timeout: Duration) {
        self.answer_detect = answer_detect;
        self.ring_timeout = ring_timeout;
    }

    pub fn line(&self) -> &str {
        &self.line
    }

    /// The earliest moment `on_timer` has something to do; `None` when idle (no timer needed).
    pub fn deadline(&self) -> Option<Mono> {
        let a = self.modem()?;
        if a.answered.is_some() {
            return None;
        }
        let ring_end = a.last_activity + self.ring_timeout;
        Some(match a.settle_at {
            Some(s) if !a.announced => s.min(ring_end),
            _ => ring_end,
        })
    }

    pub fn state(&self) -> LineState {
        // The call the status shows: the newest one still ringing, else the newest one.
        let a = self
            .calls
            .iter()
            .rev()
            .find(|a| a.answered.is_none())
            .or(self.calls.last());
        LineState {
            line: self.line.clone(),
            state: self.status,
            since: self.since,
            call_id: a.map(|a| a.call.id.clone()),
            number: a.and_then(|a| a.call.number.clone()),
            name: a.and_then(|a| a.call.name.clone()),
            rings: a.map(|a| a.call.rings).unwrap_or(0),
            reason: if self.link_up {
                None
            } else {
                self.link_reason.clone()
            },
        }
    }

    pub fn is_link_up(&self) -> bool {
        self.link_up
    }

    pub fn on_input(&mut self, input: LineInput, now: Now) -> Vec<CallTransition> {
        let mut out = Vec::new();
        match input {
            LineInput::Ring { .. } => {
                let a = self.ensure_active(now, Direction::In);
                if a.answered.is_none() {
                    a.call.rings += 1;
                    a.last_activity = now.mono;
                    // Caller ID comes between ring 1 and ring 2, or before ring 1: by the second ring, or at the
                    // first ring when caller ID came first, everything there is to know has arrived.
                    if !a.announced
                        && (a.call.rings >= 2 || a.call.number_status != NumberStatus::None)
                    {
                        Self::announce(a, &mut out);
                    }
                }
            }
            // Caller ID during an answered call is another caller (call waiting). This tracker holds one call per
            // line, so the call in progress keeps its own caller ID and the waiting caller's is not recorded.
            LineInput::Number(_) | LineInput::Name(_)
                if self.modem().is_some_and(|a| a.answered.is_some()) => {}
            LineInput::Number(n) => {
                // Another caller's number while a call still rings: that call stopped ringing before the ring
                // timeout could tell, and this is a new call.
                if self.modem().is_some_and(|a| {
                    a.call.number_status != NumberStatus::None && !same_caller(&a.call, &n)
                }) {
                    self.stop_ringing(now, &mut out);
                }
                let a = self.ensure_active(now, Direction::In);
                set_number(&mut a.call, n);
                Self::cid_arrived(a, now, &mut out);
            }
            LineInput::Name(name) => {
                let a = self.ensure_active(now, Direction::In);
                let name = name.trim().to_string();
                // "O" (out of area) and "P" (private) are the exchange saying there is no name.
                let none =
                    name.is_empty() || matches!(name.to_ascii_uppercase().as_str(), "O" | "P");
                a.call.name = if none { None } else { Some(name) };
                a.has_name = true;
                Self::cid_arrived(a, now, &mut out);
            }
            LineInput::Message(m) => {
                if let Some(a) = self.modem_mut() {
                    a.call.message = Some(m);
                }
            }
            LineInput::OffHook => match self.modem_mut() {
                Some(a) if a.answered.is_none() => {
                    if !a.announced {
                        Self::announce(a, &mut out);
                    }
                    a.answered = Some(now.mono);
                    a.call.answered_at = Some(now.wall);
                    a.call.wait_s = Some(secs(now.mono - a.started));
                    out.push(CallTransition {
                        kind: CallEventKind::Answered,
                        call: a.call.clone(),
                    });
                }
                Some(_) => {}
                None => {
                    // Off-hook on an idle line: an outgoing call (or a pick-up to dial).
                    let a = self.ensure_active(now, Direction::Out);
                    a.announced = true;
                    a.answered = Some(now.mono);
                }
            },
            LineInput::OnHook => {
                if self.modem().is_some_and(|a| a.answered.is_some()) {
                    let outcome = match self.modem().map(|a| a.call.direction) {
                        Some(Direction::In) => Outcome::Answered,
                        _ => Outcome::Unknown,
                    };
                    self.end(outcome, now, &mut out);
                }
            }
            LineInput::LinkUp { .. } => {
                self.link_up = true;
                self.link_reason = None;
            }
            LineInput::LinkDown { reason } => {
                // Every call on the line ends: answered if it was, else unknown (the line cannot tell any more).
                for a in std::mem::take(&mut self.calls) {
                    let outcome = if a.answered.is_some() {
                        Outcome::Answered
                    } else {
                        Outcome::Unknown
                    };
                    Self::finish(a, outcome, now, &mut out);
                }
                self.link_up = false;
                self.link_reason = Some(reason);
            }
            LineInput::Offered {
                call,
                direction,
                number,
                name,
            } => {
                if self.calls.len() < MAX_CALLS
                    && !self
                        .calls
                        .iter()
                        .any(|a| a.reference.as_deref() == Some(&call))
                {
                    let mut a = Self::started(&self.line, Some(call), direction, now);
                    set_number(&mut a.call, number);
                    a.call.name = name.filter(|n| !n.trim().is_empty());
                    a.has_name = true;
                    Self::announce(&mut a, &mut out);
                    self.calls.push(a);
                }
            }
            LineInput::Answered { call, by } => {
                if let Some(a) = self
                    .calls
                    .iter_mut()
                    .find(|a| a.reference.as_deref() == Some(&call) && a.answered.is_none())
                {
                    a.answered = Some(now.mono);
                    a.call.answered_at = Some(now.wall);
                    a.call.wait_s = Some(secs(now.mono - a.started));
                    a.call.answered_by = by;
                    out.push(CallTransition {
                        kind: CallEventKind::Answered,
                        call: a.call.clone(),
                    });
                }
            }
            LineInput::Ended { call, cleared_by } => {
                if let Some(i) = self
                    .calls
                    .iter()
                    .position(|a| a.reference.as_deref() == Some(&call))
                {
                    let mut a = self.calls.remove(i);
                    a.call.cleared_by = Some(cleared_by);
                    // The line knows: not answered is missed.
                    let outcome = if a.answered.is_some() {
                        Outcome::Answered
                    } else {
                        a.last_activity = now.mono;
                        Outcome::Missed
                    };
                    Self::finish(a, outcome, now, &mut out);
                }
            }
        }
        self.update_status(now);
        out
    }

    /// Handles every deadline that has passed at `now`.
    pub fn on_timer(&mut self, now: Now) -> Vec<CallTransition> {
        let mut out = Vec::new();
        let Some(a) = self.modem_mut() else {
            return out;
        };
        if a.answered.is_some() {
            return out;
        }
        if !a.announced && a.settle_at.is_some_and(|s| now.mono >= s) {
            Self::announce(a, &mut out);
        }
        if now.mono >= a.last_activity + self.ring_timeout {
            self.stop_ringing(now, &mut out);
        }
        self.update_status(now);
        out
    }

    /// The ringing call is over without an answer: missed where the line sees pick-ups, else unknown.
    fn stop_ringing(&mut self, now: Now, out: &mut Vec<CallTransition>) {
        let Some(a) = self.modem_mut() else {
            return;
        };
        if !a.announced {
            Self::announce(a, out);
        }
        let outcome = if self.answer_detect {
            Outcome::Missed
        } else {
            Outcome::Unknown
        };
        self.end(outcome, now, out);
    }

    /// The modem's call (the one without a reference).
    fn modem(&self) -> Option<&Active> {
        self.calls.iter().find(|a| a.reference.is_none())
    }

    fn modem_mut(&mut self) -> Option<&mut Active> {
        self.calls.iter_mut().find(|a| a.reference.is_none())
    }

    fn started(line: &str, reference: Option<String>, direction: Direction, now: Now) -> Active {
        Active {
            reference,
            call: Call::new(new_id(now.wall), line, direction, now.wall),
            started: now.mono,
            last_activity: now.mono,
            answered: None,
            announced: false,
            has_name: false,
            settle_at: None,
        }
    }

    /// The modem's call, begun now if there is none.
    fn ensure_active(&mut self, now: Now, direction: Direction) -> &mut Active {
        let i = match self.calls.iter().position(|a| a.reference.is_none()) {
            Some(i) => i,
            None => {
                let a = Self::started(&self.line, None, direction, now);
                self.calls.push(a);
                self.calls.len() - 1
            }
        };
        &mut self.calls[i]
    }

    fn cid_arrived(a: &mut Active, now: Now, out: &mut Vec<CallTransition>) {
        if a.answered.is_none() {
            a.last_activity = now.mono;
        }
        if a.announced {
            return;
        }
        if a.call.number_status != NumberStatus::None && a.has_name {
            Self::announce(a, out);
        } else {
            a.settle_at = Some(now.mono + CID_SETTLE);
        }
    }

    fn announce(a: &mut Active, out: &mut Vec<CallTransition>) {
        a.announced = true;
        a.settle_at = None;
        out.push(CallTransition {
            kind: CallEventKind::Ringing,
            call: a.call.clone(),
        });
    }

    /// Ends the modem's call.
    fn end(&mut self, outcome: Outcome, now: Now, out: &mut Vec<CallTransition>) {
        if let Some(i) = self.calls.iter().position(|a| a.reference.is_none()) {
            let a = self.calls.remove(i);
            Self::finish(a, outcome, now, out);
        }
    }

    fn finish(mut a: Active, outcome: Outcome, now: Now, out: &mut Vec<CallTransition>) {
        a.call.ended_at = Some(now.wall);
        a.call.outcome = Some(outcome);
        match a.answered {
            Some(ans) => a.call.talk_s = Some(secs(now.mono - ans)),
            // Unanswered: the caller waited from the start to the last ring we saw.
            None => a.call.wait_s = Some(secs(a.last_activity - a.started)),
        }
        out.push(CallTransition {
            kind: CallEventKind::Ended,
            call: a.call,
        });
    }

    fn update_status(&mut self, now: Now) {
        let status = if !self.link_up {
            LineStatus::Down
        } else {
            if self.calls.iter().any(|a| a.answered.is_none()) {
                LineStatus::Ringing
            } else if self.calls.is_empty() {
                LineStatus::Idle
            } else {
                LineStatus::Offhook
            }
        };
        if status != self.status {
            self.status = status;
            self.since = now.wall;
        }
    }
}

fn secs(d: Duration) -> f64 {
    (d.as_millis() as f64) / 1000.0
}

#[cfg(test)]
mod tests;
