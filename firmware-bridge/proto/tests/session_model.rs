//! Model test of EventRing (board) + HostSession (host) over a lossy link, through the real
//! encoder and decoder: random events, lost frames and acks, disconnects with replay, host
//! restarts (resuming persisted state) and board reboots. Every event reaches the application
//! exactly once, except events the board dropped from its full ring or held unacknowledged when it
//! rebooted (its RAM is gone), and the host's loss count matches the ring's drops.

use std::collections::{BTreeSet, VecDeque};

use linekeeper_bridge_proto::frame::{encode, Decoder, MAX_FRAME};
use linekeeper_bridge_proto::host::{HostEvent, HostSession, SessionState};
use linekeeper_bridge_proto::msg::*;
use linekeeper_bridge_proto::ring::EventRing;
use proptest::prelude::*;

const RING: usize = 6;

#[derive(Debug, Clone)]
enum Op {
    /// The board produces an event.
    Event,
    /// Deliver up to n frames board -> host.
    Up(u8),
    /// Deliver up to n frames host -> board.
    Down(u8),
    /// Lose the next frame board -> host.
    LoseUp,
    /// Lose the next frame host -> board.
    LoseDown,
    /// Cable pulled and plugged back: in-flight bytes lost, both sides reconnect.
    Reconnect,
    /// The daemon restarts from its persisted state.
    HostRestart,
    /// The board reboots with a new boot id.
    BoardReboot,
    /// The host hears a heartbeat.
    Heartbeat,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => Just(Op::Event),
        5 => (1u8..6).prop_map(Op::Up),
        4 => (1u8..6).prop_map(Op::Down),
        1 => Just(Op::LoseUp),
        1 => Just(Op::LoseDown),
        1 => Just(Op::Reconnect),
        1 => Just(Op::HostRestart),
        1 => Just(Op::BoardReboot),
        1 => Just(Op::Heartbeat),
    ]
}

fn frame<M: serde::Serialize>(m: &M) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(m, &mut buf).unwrap();
    buf[..n].to_vec()
}

struct Board {
    ring: EventRing<RING>,
    next_boot: u32,
    dec: Decoder,
}

impl Board {
    fn hello(&self) -> BoardMsg {
        BoardMsg::Hello(Hello {
            proto_version: linekeeper_bridge_proto::PROTO_VERSION,
            board_id: 42,
            boot_id: self.ring.boot_id(),
            firmware_version: FwVersion {
                major: 1,
                minor: 0,
                patch: 0,
            },
            capabilities: Capabilities(Capabilities::ALL),
            region: Region {
                country: *b"CN",
                cid_standard: CidStandard::Bell202,
                cid_start: CidStart::Ring,
            },
            ring_capacity: RING as u16,
        })
    }
    fn replay(&self, from: u32, up: &mut VecDeque<Vec<u8>>) {
        for e in self.ring.unacked_from(from) {
            up.push_back(frame(&BoardMsg::Event(e)));
        }
    }
}

struct World {
    board: Board,
    host: HostSession,
    host_dec: Decoder,
    /// Persisted with every delivered event (as the daemon's store would).
    persisted: SessionState,
    up: VecDeque<Vec<u8>>,
    down: VecDeque<Vec<u8>>,
    created: BTreeSet<(u32, u32)>,
    delivered: Vec<(u32, u32)>,
    evicted: BTreeSet<(u32, u32)>,
    lost_in_reboot: BTreeSet<(u32, u32)>,
    key: u8,
}

impl World {
    fn new() -> Self {
        let mut w = World {
            board: Board {
                ring: EventRing::new(1000),
                next_boot: 1001,
                dec: Decoder::new(),
            },
            host: HostSession::new(),
            host_dec: Decoder::new(),
            persisted: SessionState::default(),
            up: VecDeque::new(),
            down: VecDeque::new(),
            created: BTreeSet::new(),
            delivered: Vec::new(),
            evicted: BTreeSet::new(),
            lost_in_reboot: BTreeSet::new(),
            key: 0,
        };
        w.up.push_back(frame(&w.board.hello()));
        w
    }

    fn host_rx(&mut self, bytes: &[u8]) {
        let mut frames = Vec::new();
        self.host_dec.feed::<BoardMsg>(bytes, |r| frames.push(r));
        for f in frames {
            let step = self.host.on_frame(f);
            if let Some(HostEvent::Event { boot_id, seq, .. }) = step.event {
                self.delivered.push((boot_id, seq));
            }
            self.persisted = self.host.state();
            if let Some(r) = step.reply {
                self.down.push_back(frame(&r));
            }
        }
    }

    fn board_rx(&mut self, bytes: &[u8]) {
        let mut msgs = Vec::new();
        self.board.dec.feed::<HostMsg>(bytes, |r| msgs.push(r));
        for m in msgs.into_iter().flatten() {
            match m {
                HostMsg::Ack { boot_id, up_to_seq } => {
                    self.board.ring.ack(boot_id, up_to_seq);
                }
                HostMsg::Replay { boot_id, from_seq } => {
                    if boot_id == self.board.ring.boot_id() {
                        self.board.ring.ack(boot_id, from_seq.saturating_sub(1));
                        self.board.replay(from_seq, &mut self.up);
                    }
                }
                HostMsg::StatusRequest => {
                    self.up.push_back(frame(&self.board.hello()));
                    self.board.replay(0, &mut self.up);
                }
                HostMsg::Configure(_) | HostMsg::Leds(_) => {}
            }
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Event => {
                let boot = self.board.ring.boot_id();
                let front = self.board.ring.unacked_from(0).next().map(|e| e.seq);
                let before = self.board.ring.dropped();
                self.key = self.key.wrapping_add(1);
                let e = self.board.ring.push(Event::Key {
                    key: self.key,
                    long_press: false,
                });
                if self.board.ring.dropped() != before {
                    self.evicted.insert((boot, front.unwrap()));
                }
                self.created.insert((boot, e.seq));
                self.up.push_back(frame(&BoardMsg::Event(e)));
            }
            Op::Up(n) => {
                for _ in 0..n {
                    if let Some(f) = self.up.pop_front() {
                        self.host_rx(&f);
                    }
                }
            }
            Op::Down(n) => {
                for _ in 0..n {
                    if let Some(f) = self.down.pop_front() {
                        self.board_rx(&f);
                    }
                }
            }
            Op::LoseUp => {
                self.up.pop_front();
            }
            Op::LoseDown => {
                self.down.pop_front();
            }
            Op::Reconnect => self.reconnect(),
            Op::HostRestart => {
                self.host = HostSession::resume(self.persisted);
                self.host_dec = Decoder::new();
                self.reconnect();
            }
            Op::BoardReboot => {
                let old = self.board.ring.boot_id();
                for e in self.board.ring.unacked_from(0) {
                    self.lost_in_reboot.insert((old, e.seq));
                }
                self.board.ring = EventRing::new(self.board.next_boot);
                self.board.next_boot += 1;
                self.board.dec = Decoder::new();
                // In-flight frames of the old boot may still arrive (stale); the new boot says hello.
                self.up.push_back(frame(&self.board.hello()));
            }
            Op::Heartbeat => {
                let r = &self.board.ring;
                let hb = Heartbeat {
                    boot_id: r.boot_id(),
                    uptime_s: 0,
                    next_seq: r.next_seq(),
                    unacked: r.len() as u16,
                    off_hook: false,
                    ringing: false,
                    line_ok: true,
                    counters: Counters::default(),
                };
                self.up.push_back(frame(&BoardMsg::Heartbeat(hb)));
            }
        }
    }

    fn reconnect(&mut self) {
        self.up.clear();
        self.down.clear();
        self.host_dec.reset();
        self.board.dec.reset();
        // Board on link-up: Hello and replay. Host on open: StatusRequest.
        self.up.push_back(frame(&self.board.hello()));
        self.board.replay(0, &mut self.up);
        let m = self.host.on_connect();
        self.down.push_back(frame(&m));
    }

    /// A clean reconnect, then deliver everything both ways until quiet.
    fn settle(&mut self) {
        self.reconnect();
        for _ in 0..1000 {
            if self.up.is_empty() && self.down.is_empty() {
                return;
            }
            self.apply(&Op::Up(255));
            self.apply(&Op::Down(255));
        }
        panic!("did not settle");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn every_event_exactly_once_except_counted_drops(ops in proptest::collection::vec(op(), 0..200)) {
        let mut w = World::new();
        for o in &ops {
            w.apply(o);
        }
        w.settle();

        // No duplicates, and in seq order within each boot.
        let mut seen = BTreeSet::new();
        for d in &w.delivered {
            prop_assert!(seen.insert(*d), "delivered twice: {:?}", d);
        }
        for pair in w.delivered.windows(2) {
            if pair[0].0 == pair[1].0 {
                prop_assert!(pair[0].1 < pair[1].1, "out of order {:?}", pair);
            }
        }
        // Everything created was delivered, unless dropped by the ring or lost in a reboot.
        for c in &w.created {
            prop_assert!(
                seen.contains(c) || w.evicted.contains(c) || w.lost_in_reboot.contains(c),
                "never delivered: {:?}", c
            );
        }
        prop_assert!(seen.is_subset(&w.created));
        prop_assert!(w.board.ring.is_empty(), "board still holds {}", w.board.ring.len());

        // The host counts as lost only events that were really dropped, and without reboots it
        // counts every one of them.
        let dropped_undelivered = w.evicted.iter().filter(|e| !seen.contains(*e)).count() as u32;
        let stats = w.host.stats();
        let rebooted = ops.iter().any(|o| matches!(o, Op::BoardReboot));
        let restarted = ops.iter().any(|o| matches!(o, Op::HostRestart));
        if !rebooted && !restarted {
            prop_assert_eq!(stats.lost, dropped_undelivered);
        } else if !restarted {
            prop_assert!(stats.lost <= dropped_undelivered);
        }
    }
}
