//! The board's side of the protocol, `no_std`: [`BoardCore`] numbers events, keeps them in an
//! [`EventRing`], applies the host's acks and replay requests, answers `StatusRequest`, and
//! re-sends after a timeout. The firmware drives it with line events and decoded host frames and
//! writes out the [`BoardMsg`]s it emits (encode each with [`crate::frame::encode`]); the
//! simulator (`sim`) runs the same code.
//!
//! Every method that may send takes `send: &mut impl FnMut(&BoardMsg)`. Call it whether or not a
//! host is connected; drop the bytes if not (the events stay held and are re-sent on
//! [`BoardCore::link_up`]).

use crate::frame::FrameError;
use crate::msg::{BoardMsg, Configure, Counters, Event, Heartbeat, Hello, HostMsg, Leds};
use crate::ring::EventRing;

/// Live line state, for heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LineState {
    pub off_hook: bool,
    pub ringing: bool,
    pub line_ok: bool,
}

/// A host message the firmware must act on (the rest is handled inside [`BoardCore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCommand {
    /// Apply these settings (the region is already updated in the board's Hello).
    Configure(Configure),
    /// Set the LEDs.
    Leds(Leds),
}

/// Board-side protocol state for one boot.
#[derive(Debug, Clone)]
pub struct BoardCore<const N: usize> {
    hello: Hello,
    ring: EventRing<N>,
    counters: Counters,
    retransmit_ms: u32,
    since_progress_ms: u32,
}

impl<const N: usize> BoardCore<N> {
    /// `hello` describes the board (its `boot_id` must be new for this boot; `ring_capacity` is set
    /// to `N`). Held events are re-sent after `retransmit_ms` without ack progress (0 = never).
    /// Nothing is sent yet: call [`Self::link_up`] when the host is there.
    pub fn new(mut hello: Hello, retransmit_ms: u32) -> Self {
        hello.ring_capacity = u16::try_from(N).unwrap_or(u16::MAX);
        BoardCore {
            ring: EventRing::new(hello.boot_id),
            hello,
            counters: Counters::default(),
            retransmit_ms,
            since_progress_ms: 0,
        }
    }

    pub fn hello(&self) -> &Hello {
        &self.hello
    }

    pub fn ring(&self) -> &EventRing<N> {
        &self.ring
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// For the firmware's own counters (`rings`, `cids`, `cid_errors`).
    pub fn counters_mut(&mut self) -> &mut Counters {
        &mut self.counters
    }

    /// The heartbeat to send now.
    pub fn heartbeat(&self, uptime_s: u32, line: LineState) -> Heartbeat {
        Heartbeat {
            boot_id: self.ring.boot_id(),
            uptime_s,
            next_seq: self.ring.next_seq(),
            unacked: u16::try_from(self.ring.len()).unwrap_or(u16::MAX),
            off_hook: line.off_hook,
            ringing: line.ringing,
            line_ok: line.line_ok,
            counters: self.counters,
        }
    }

    /// Number, hold and send an event; returns its seq. A full ring drops (and counts) its oldest.
    pub fn event(&mut self, event: Event, send: &mut impl FnMut(&BoardMsg)) -> u32 {
        let before = self.ring.dropped();
        if self.ring.is_empty() {
            // The retransmit timer runs from the oldest unacknowledged send.
            self.since_progress_ms = 0;
        }
        let env = self.ring.push(event);
        let dropped = self.ring.dropped().wrapping_sub(before);
        self.counters.events_dropped = self.counters.events_dropped.wrapping_add(dropped);
        let seq = env.seq;
        send(&BoardMsg::Event(env));
        seq
    }

    /// The link came up (USB configured / DTR raised): Hello, then every held event.
    pub fn link_up(&mut self, send: &mut impl FnMut(&BoardMsg)) {
        send(&BoardMsg::Hello(self.hello.clone()));
        self.replay_from(0, send);
    }

    /// Let `ms` pass: re-sends every held event after `retransmit_ms` without ack progress.
    pub fn tick(&mut self, ms: u32, send: &mut impl FnMut(&BoardMsg)) {
        self.since_progress_ms = self.since_progress_ms.saturating_add(ms);
        if self.retransmit_ms > 0
            && !self.ring.is_empty()
            && self.since_progress_ms >= self.retransmit_ms
        {
            self.replay_from(0, send);
        }
    }

    /// Handle one decoder result from the host. Bad frames are counted (`crc_errors`,
    /// `frames_dropped`). `uptime_s` and `line` fill the heartbeat a `StatusRequest` asks for.
    pub fn on_host(
        &mut self,
        frame: Result<HostMsg, FrameError>,
        uptime_s: u32,
        line: LineState,
        send: &mut impl FnMut(&BoardMsg),
    ) -> Option<HostCommand> {
        let msg = match frame {
            Ok(m) => m,
            Err(FrameError::Crc) => {
                self.counters.crc_errors = self.counters.crc_errors.wrapping_add(1);
                return None;
            }
            Err(_) => {
                self.counters.frames_dropped = self.counters.frames_dropped.wrapping_add(1);
                return None;
            }
        };
        match msg {
            HostMsg::Ack { boot_id, up_to_seq } => {
                if self.ring.ack(boot_id, up_to_seq) > 0 {
                    self.since_progress_ms = 0;
                }
                None
            }
            HostMsg::Replay { boot_id, from_seq } => {
                if boot_id == self.ring.boot_id() {
                    self.ring.ack(boot_id, from_seq.saturating_sub(1));
                    self.replay_from(from_seq, send);
                }
                None
            }
            HostMsg::Configure(c) => {
                self.hello.region = c.region;
                Some(HostCommand::Configure(c))
            }
            HostMsg::Leds(l) => Some(HostCommand::Leds(l)),
            HostMsg::StatusRequest => {
                send(&BoardMsg::Hello(self.hello.clone()));
                send(&BoardMsg::Heartbeat(self.heartbeat(uptime_s, line)));
                self.replay_from(0, send);
                None
            }
        }
    }

    fn replay_from(&mut self, from_seq: u32, send: &mut impl FnMut(&BoardMsg)) {
        self.since_progress_ms = 0;
        for e in self.ring.unacked_from(from_seq) {
            self.counters.replayed = self.counters.replayed.wrapping_add(1);
            send(&BoardMsg::Event(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{Capabilities, CidStandard, CidStart, FwVersion, Region};
    use std::cell::RefCell;
    use std::vec::Vec;

    fn core() -> BoardCore<2> {
        BoardCore::new(
            Hello {
                proto_version: crate::PROTO_VERSION,
                board_id: 1,
                boot_id: 7,
                firmware_version: FwVersion {
                    major: 0,
                    minor: 1,
                    patch: 0,
                },
                capabilities: Capabilities(Capabilities::ALL),
                region: Region {
                    country: *b"CN",
                    cid_standard: CidStandard::Bell202,
                    cid_start: CidStart::Ring,
                },
                ring_capacity: 0,
            },
            1000,
        )
    }

    #[test]
    fn ack_replay_status_and_retransmit() {
        let mut c = core();
        assert_eq!(c.hello().ring_capacity, 2);
        let sent: RefCell<Vec<BoardMsg>> = RefCell::new(Vec::new());
        let mut send = |m: &BoardMsg| sent.borrow_mut().push(m.clone());
        c.event(Event::RingStop, &mut send);
        c.event(Event::LineLost, &mut send);
        c.event(Event::LineRestored, &mut send); // evicts seq 1
        assert_eq!(c.counters().events_dropped, 1);
        let line = LineState::default();
        // Ack of another boot: ignored.
        let ack = HostMsg::Ack {
            boot_id: 8,
            up_to_seq: 3,
        };
        c.on_host(Ok(ack), 0, line, &mut send);
        assert_eq!(c.ring().len(), 2);
        // Replay from 3 acks 2 and re-sends 3.
        let n = sent.borrow().len();
        let replay = HostMsg::Replay {
            boot_id: 7,
            from_seq: 3,
        };
        c.on_host(Ok(replay), 0, line, &mut send);
        assert_eq!(c.ring().len(), 1);
        assert!(matches!(&sent.borrow()[n..], [BoardMsg::Event(e)] if e.seq == 3));
        // StatusRequest: Hello, Heartbeat, held events.
        let n = sent.borrow().len();
        c.on_host(Ok(HostMsg::StatusRequest), 5, line, &mut send);
        assert!(matches!(
            &sent.borrow()[n..],
            [BoardMsg::Hello(_), BoardMsg::Heartbeat(hb), BoardMsg::Event(_)]
                if hb.next_seq == 4 && hb.unacked == 1 && hb.uptime_s == 5
        ));
        // Retransmit after 1000 ms without progress.
        let n = sent.borrow().len();
        c.tick(999, &mut send);
        assert_eq!(sent.borrow().len(), n);
        c.tick(1, &mut send);
        assert_eq!(sent.borrow().len(), n + 1);
        // Bad frames are counted.
        c.on_host(Err(FrameError::Crc), 0, line, &mut send);
        c.on_host(Err(FrameError::Cobs), 0, line, &mut send);
        assert_eq!(
            (c.counters().crc_errors, c.counters().frames_dropped),
            (1, 1)
        );
        // Leds and Configure go to the firmware.
        let leds = Leds {
            on: 1,
            blink: 0,
            blink_period_ms: 0,
        };
        assert_eq!(
            c.on_host(Ok(HostMsg::Leds(leds)), 0, line, &mut send),
            Some(HostCommand::Leds(leds))
        );
    }
}
