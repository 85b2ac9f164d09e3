//! The host's side of the seq/ack protocol: [`HostSession`] turns decoded frames into
//! [`HostEvent`]s, delivering every board event once (replays are recognised and not delivered
//! again), and says which [`HostMsg`] to answer with.
//!
//! It is I/O-free and time-free. Feed it every `Result<BoardMsg, FrameError>` the
//! [`crate::frame::Decoder`] yields, in order, and send the returned reply.
//!
//! To survive a host restart without counting a replayed event twice, persist [`HostSession::state`]
//! together with (in the same transaction as) what you stored for each delivered event, and start
//! with [`HostSession::resume`].

use core::fmt;

use serde::{Deserialize, Serialize};

use crate::frame::{Decoder, DecoderStats, FrameError, MAX_FRAME};
use crate::msg::{BoardMsg, Event, Heartbeat, Hello, HostMsg, Log, SeqEvent};
use crate::PROTO_VERSION;

/// The board speaks another protocol version than this host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoMismatch {
    /// The board's firmware is newer than this linekeeper.
    BoardProtoTooNew { board: u8, host: u8 },
    /// The board's firmware is older than this linekeeper.
    BoardProtoTooOld { board: u8, host: u8 },
}

impl ProtoMismatch {
    /// The mismatch for a frame of version `board`, or `None` if this host speaks it.
    pub fn check(board: u8) -> Option<Self> {
        let host = PROTO_VERSION;
        match board {
            b if b > host => Some(ProtoMismatch::BoardProtoTooNew { board: b, host }),
            b if b < host => Some(ProtoMismatch::BoardProtoTooOld { board: b, host }),
            _ => None,
        }
    }
}

impl fmt::Display for ProtoMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ProtoMismatch::BoardProtoTooNew { board, host } => write!(
                f,
                "the bridge board speaks protocol version {board}, this linekeeper only \
                 version {host}: upgrade linekeeper, or reflash the board with firmware for \
                 protocol {host}"
            ),
            ProtoMismatch::BoardProtoTooOld { board, host } => write!(
                f,
                "the bridge board speaks protocol version {board}, this linekeeper needs \
                 version {host}: reflash the board with the firmware shipped with this \
                 linekeeper"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ProtoMismatch {}

/// What the host has durably taken from a board. Persist it to survive host restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionState {
    /// From the last [`Hello`]; `None` until one arrives.
    pub board_id: Option<u64>,
    /// The boot whose events we track; `None` before the first frame.
    pub boot_id: Option<u32>,
    /// Every event of `boot_id` with `seq <= last_seq` has been delivered (or is known lost).
    pub last_seq: u32,
}

/// Host-side counters (wrapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HostStats {
    /// Events delivered.
    pub delivered: u32,
    /// Replayed events recognised and not delivered again.
    pub duplicates: u32,
    /// Events the board dropped from its full ring (never delivered).
    pub lost: u32,
    /// Events before the first one this session saw of a boot it knew nothing about (no persisted
    /// state): acknowledged by an earlier host, or dropped; nobody can tell. Not reported as lost.
    pub unknown_history: u32,
    /// Events that arrived after a gap and were discarded awaiting a replay.
    pub out_of_order: u32,
    /// Frames from a previous boot arriving after the new one (ignored).
    pub stale: u32,
    /// Board reboots seen (new boot id of a known board).
    pub reboots: u32,
    /// Replays requested.
    pub replay_requests: u32,
    /// Frames rejected by the decoder.
    pub frame_errors: u32,
}

/// What a frame meant to the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostEvent {
    /// The board introduced itself. `rebooted`: a new boot of the board we knew (its earlier
    /// unacknowledged events are gone with its RAM). `new_board`: another board id than before.
    Hello {
        hello: Hello,
        rebooted: bool,
        new_board: bool,
    },
    /// A new event, to act on exactly once. `lost_before` events just before it were dropped by the
    /// board (its ring was full) and will never arrive.
    Event {
        boot_id: u32,
        seq: u32,
        event: Event,
        lost_before: u32,
    },
    /// A new event this host cannot decode (newer board); acknowledged and skipped.
    UnknownEvent {
        seq: u32,
        lost_before: u32,
    },
    /// `count` events before `next_seq` were dropped by the board (reported when the next event
    /// itself is not yet available).
    Lost {
        count: u32,
        next_seq: u32,
    },
    Heartbeat(Heartbeat),
    Log(Log),
    /// The board speaks another protocol version; nothing from it can be used.
    VersionMismatch(ProtoMismatch),
    /// A rejected frame (already counted by the decoder).
    FrameError(FrameError),
}

/// The result of one frame: maybe something for the application, maybe a message to send.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Step {
    pub event: Option<HostEvent>,
    pub reply: Option<HostMsg>,
}

/// Per-link host state: dedup by (boot id, seq), cumulative acks, replay requests.
#[derive(Debug, Clone, Default)]
pub struct HostSession {
    state: SessionState,
    prev_boot: Option<u32>,
    /// Whether `last_seq` is known for the current boot (false after first contact with a boot
    /// this session has no state for, until its first event).
    history_known: bool,
    replay_requested: bool,
    hello: Option<Hello>,
    mismatch: Option<ProtoMismatch>,
    stats: HostStats,
}

impl HostSession {
    /// A session that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Continue from a persisted [`SessionState`].
    pub fn resume(state: SessionState) -> Self {
        HostSession {
            state,
            history_known: state.boot_id.is_some(),
            ..Self::default()
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn stats(&self) -> HostStats {
        self.stats
    }

    /// The last Hello received on this link.
    pub fn hello(&self) -> Option<&Hello> {
        self.hello.as_ref()
    }

    /// Set once a frame of another protocol version arrived (cleared by a good Hello).
    pub fn mismatch(&self) -> Option<ProtoMismatch> {
        self.mismatch
    }

    /// The ack that describes what we hold, if we track a boot.
    pub fn current_ack(&self) -> Option<HostMsg> {
        self.state.boot_id.map(|boot_id| HostMsg::Ack {
            boot_id,
            up_to_seq: self.state.last_seq,
        })
    }

    /// Call after (re)opening the port: send the returned message. It asks the board for Hello,
    /// Heartbeat and a replay of everything unacknowledged.
    pub fn on_connect(&mut self) -> HostMsg {
        self.replay_requested = false;
        HostMsg::StatusRequest
    }

    /// Process one decoder result.
    pub fn on_frame(&mut self, frame: Result<BoardMsg, FrameError>) -> Step {
        match frame {
            Ok(BoardMsg::Hello(h)) => self.on_hello(h),
            Ok(BoardMsg::Event(e)) => {
                let SeqEvent {
                    boot_id,
                    seq,
                    oldest,
                    event,
                } = e;
                self.on_event(boot_id, seq, oldest, Some(event))
            }
            Ok(BoardMsg::Heartbeat(hb)) => self.on_heartbeat(hb),
            Ok(BoardMsg::Log(l)) => Step {
                event: Some(HostEvent::Log(l)),
                reply: None,
            },
            Err(FrameError::UnknownEvent {
                boot_id,
                seq,
                oldest,
            }) => self.on_event(boot_id, seq, oldest, None),
            Err(FrameError::Version { frame, .. }) => {
                self.stats.frame_errors = self.stats.frame_errors.wrapping_add(1);
                match ProtoMismatch::check(frame) {
                    Some(m) => {
                        self.mismatch = Some(m);
                        Step {
                            event: Some(HostEvent::VersionMismatch(m)),
                            reply: None,
                        }
                    }
                    None => Step::default(),
                }
            }
            Err(e) => {
                self.stats.frame_errors = self.stats.frame_errors.wrapping_add(1);
                Step {
                    event: Some(HostEvent::FrameError(e)),
                    reply: None,
                }
            }
        }
    }

    /// Switch to tracking `boot_id` if it is new. Returns `None` for a stale frame of the previous
    /// boot (to be ignored), else whether this was a switch away from a known boot.
    fn enter_boot(&mut self, boot_id: u32) -> Option<bool> {
        match self.state.boot_id {
            Some(b) if b == boot_id => Some(false),
            _ if self.prev_boot == Some(boot_id) => {
                self.stats.stale = self.stats.stale.wrapping_add(1);
                None
            }
            old => {
                if old.is_some() {
                    self.stats.reboots = self.stats.reboots.wrapping_add(1);
                }
                self.prev_boot = old;
                // A reboot we witnessed starts at seq 1; a boot met with no state may be far along.
                self.history_known = old.is_some();
                self.state.boot_id = Some(boot_id);
                self.state.last_seq = 0;
                self.replay_requested = false;
                Some(old.is_some())
            }
        }
    }

    fn on_hello(&mut self, h: Hello) -> Step {
        self.mismatch = ProtoMismatch::check(h.proto_version);
        if let Some(m) = self.mismatch {
            return Step {
                event: Some(HostEvent::VersionMismatch(m)),
                reply: None,
            };
        }
        let new_board = self.state.board_id.is_some_and(|b| b != h.board_id);
        if new_board {
            // Another board on this link: its seqs have nothing to do with the old one's.
            self.state = SessionState::default();
            self.prev_boot = None;
        }
        self.state.board_id = Some(h.board_id);
        let Some(rebooted) = self.enter_boot(h.boot_id) else {
            return Step::default();
        };
        self.replay_requested = false;
        self.hello = Some(h.clone());
        Step {
            event: Some(HostEvent::Hello {
                hello: h,
                rebooted,
                new_board,
            }),
            reply: self.current_ack(),
        }
    }

    fn on_heartbeat(&mut self, hb: Heartbeat) -> Step {
        let mut reply = None;
        if self.enter_boot(hb.boot_id).is_some() {
            let expected = self.state.last_seq.wrapping_add(1);
            // The board has sent events we do not hold: ask again (this also recovers a lost
            // Replay request, since heartbeats are periodic).
            if hb.next_seq > expected {
                self.replay_requested = true;
                self.stats.replay_requests = self.stats.replay_requests.wrapping_add(1);
                reply = Some(HostMsg::Replay {
                    boot_id: hb.boot_id,
                    from_seq: expected,
                });
            }
        }
        Step {
            event: Some(HostEvent::Heartbeat(hb)),
            reply,
        }
    }

    fn on_event(&mut self, boot_id: u32, seq: u32, oldest: u32, event: Option<Event>) -> Step {
        if self.enter_boot(boot_id).is_none() {
            return Step::default();
        }
        let mut expected = self.state.last_seq.wrapping_add(1);
        if seq < expected {
            self.stats.duplicates = self.stats.duplicates.wrapping_add(1);
            return Step {
                event: None,
                reply: self.current_ack(),
            };
        }
        let mut lost = 0;
        if seq > expected && oldest > expected {
            // The board no longer holds expected..oldest-1: they were dropped from its full ring.
            let gap = oldest.min(seq) - expected;
            self.state.last_seq = expected + gap - 1;
            expected += gap;
            if self.history_known {
                lost = gap;
                self.stats.lost = self.stats.lost.wrapping_add(gap);
            } else {
                self.stats.unknown_history = self.stats.unknown_history.wrapping_add(gap);
            }
        }
        self.history_known = true;
        if seq > expected {
            // A frame between was lost or corrupted: discard this one, ask for a replay once.
            self.stats.out_of_order = self.stats.out_of_order.wrapping_add(1);
            let reply = if self.replay_requested {
                None
            } else {
                self.replay_requested = true;
                self.stats.replay_requests = self.stats.replay_requests.wrapping_add(1);
                Some(HostMsg::Replay {
                    boot_id,
                    from_seq: expected,
                })
            };
            let event = (lost > 0).then_some(HostEvent::Lost {
                count: lost,
                next_seq: expected,
            });
            return Step { event, reply };
        }
        // seq == expected: new.
        self.state.last_seq = seq;
        self.replay_requested = false;
        self.stats.delivered = self.stats.delivered.wrapping_add(1);
        let event = match event {
            Some(event) => HostEvent::Event {
                boot_id,
                seq,
                event,
                lost_before: lost,
            },
            None => HostEvent::UnknownEvent {
                seq,
                lost_before: lost,
            },
        };
        Step {
            event: Some(event),
            reply: self.current_ack(),
        }
    }
}

/// A [`Decoder`] and a [`HostSession`] together: what the daemon runs per serial port.
///
/// ```
/// use linekeeper_bridge_proto::host::{HostEvent, HostLink};
/// use linekeeper_bridge_proto::frame::{encode, MAX_FRAME};
///
/// let mut link: HostLink = HostLink::new();
/// let hello_request = link.on_connect(); // encode and write this after opening the port
/// # let _ = hello_request;
/// let bytes_from_port: &[u8] = &[0x00];
/// link.feed(
///     bytes_from_port,
///     |event: HostEvent| { /* store / act, then persist link.session().state() */ },
///     |reply| {
///         let mut buf = [0u8; MAX_FRAME];
///         let n = encode(reply, &mut buf).unwrap();
///         // write buf[..n] to the port
/// #       let _ = n;
///     },
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct HostLink<const N: usize = MAX_FRAME> {
    decoder: Decoder<N>,
    session: HostSession,
}

impl<const N: usize> HostLink<N> {
    pub fn new() -> Self {
        Self::resume(SessionState::default())
    }

    /// Continue from a persisted [`SessionState`].
    pub fn resume(state: SessionState) -> Self {
        HostLink {
            decoder: Decoder::new(),
            session: HostSession::resume(state),
        }
    }

    /// Call after (re)opening the port; send the returned message. Drops any partial frame.
    pub fn on_connect(&mut self) -> HostMsg {
        self.decoder.reset();
        self.session.on_connect()
    }

    /// Feed bytes read from the port: `on_event` gets each [`HostEvent`], `on_reply` each message to
    /// send back (in order).
    pub fn feed(
        &mut self,
        chunk: &[u8],
        mut on_event: impl FnMut(HostEvent),
        mut on_reply: impl FnMut(&HostMsg),
    ) {
        let session = &mut self.session;
        self.decoder.feed::<BoardMsg>(chunk, |r| {
            let step = session.on_frame(r);
            if let Some(e) = step.event {
                on_event(e);
            }
            if let Some(m) = &step.reply {
                on_reply(m);
            }
        });
    }

    pub fn session(&self) -> &HostSession {
        &self.session
    }

    pub fn decoder_stats(&self) -> DecoderStats {
        self.decoder.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(boot_id: u32, seq: u32, oldest: u32) -> Result<BoardMsg, FrameError> {
        Ok(BoardMsg::Event(SeqEvent {
            boot_id,
            seq,
            oldest,
            event: Event::RingStop,
        }))
    }

    #[test]
    fn dedup_gap_and_loss() {
        let mut h = HostSession::new();
        assert!(matches!(
            h.on_frame(ev(5, 1, 1)).event,
            Some(HostEvent::Event { seq: 1, .. })
        ));
        // replay of 1: not delivered, re-acked
        let s = h.on_frame(ev(5, 1, 1));
        assert_eq!(s.event, None);
        assert_eq!(
            s.reply,
            Some(HostMsg::Ack {
                boot_id: 5,
                up_to_seq: 1
            })
        );
        // 2 lost in transit: 3 is discarded, replay asked once
        let s = h.on_frame(ev(5, 3, 2));
        assert_eq!(
            s.reply,
            Some(HostMsg::Replay {
                boot_id: 5,
                from_seq: 2
            })
        );
        assert_eq!(h.on_frame(ev(5, 4, 2)).reply, None);
        // board ring overflowed: oldest is now 6, so 2..=5 are lost, 6 delivered
        let s = h.on_frame(ev(5, 6, 6));
        assert!(matches!(
            s.event,
            Some(HostEvent::Event {
                seq: 6,
                lost_before: 4,
                ..
            })
        ));
        assert_eq!(h.stats().lost, 4);
    }

    #[test]
    fn first_contact_with_a_running_board_is_not_loss() {
        // A host without persisted state meets a board whose ring starts at 490.
        let mut h = HostSession::new();
        let s = h.on_frame(ev(5, 490, 490));
        assert!(matches!(
            s.event,
            Some(HostEvent::Event {
                seq: 490,
                lost_before: 0,
                ..
            })
        ));
        assert_eq!((h.stats().lost, h.stats().unknown_history), (0, 489));
        // From then on a gap the board reports is loss.
        h.on_frame(ev(5, 495, 495));
        assert_eq!(h.stats().lost, 4);
        // Resumed state knows its history.
        let mut r = HostSession::resume(SessionState {
            board_id: None,
            boot_id: Some(5),
            last_seq: 10,
        });
        r.on_frame(ev(5, 20, 20));
        assert_eq!(r.stats().lost, 9);
    }

    #[test]
    fn mismatch_text_names_both_versions() {
        let m = ProtoMismatch::check(PROTO_VERSION + 2).unwrap();
        let t = std::format!("{m}");
        assert!(t.contains(&std::format!("version {}", PROTO_VERSION + 2)));
        assert!(t.contains(&std::format!("version {PROTO_VERSION}")));
        assert!(t.contains("upgrade linekeeper"));
    }
}
