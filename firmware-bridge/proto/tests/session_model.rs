//! Model test of BoardCore + EventRing (board) and HostSession (host) over a lossy link, through
//! the real encoder and decoder: random events, lost frames and acks, disconnects with replay,
//! host restarts (resuming persisted state), board reboots and retransmit timeouts. Every event
//! reaches the application exactly once, except events the board dropped from its full ring or
//! held unacknowledged when it rebooted (its RAM is gone); and the host accounts for every drop
//! (as lost, or as unknown history before its first contact with a boot).

use std::collections::{BTreeSet, VecDeque};

use linekeeper_bridge_proto::board::{BoardCore, LineState};
use linekeeper_bridge_proto::frame::{encode, Decoder, MAX_FRAME};
use linekeeper_bridge_proto::host::{HostEvent, HostSession, SessionState};
use linekeeper_bridge_proto::msg::*;
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
    /// Time passes on the board (retransmit timeout 1000 ms).
    Tick(u16),
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
        1 => (0u16..1500).prop_map(Op::Tick),
    ]
}

fn frame<M: serde::Serialize>(m: &M) -> Vec<u8> {
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(m, &mut buf).unwrap();
    buf[..n].to_vec()
}

struct Board {
    core: BoardCore<RING>,
    next_boot: u32,
    dec: Decoder,
}

fn hello(boot_id: u32) -> Hello {
    Hello {
        proto_version: linekeeper_bridge_proto::PROTO_VERSION,
        board_id: 42,
        boot_id,
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
        ring_capacity: 0,
    }
}

/// The board's `send`: queue the encoded frame on the link.
fn to(up: &mut VecDeque<Vec<u8>>) -> impl FnMut(&BoardMsg) + '_ {
    |m| up.push_back(frame(m))
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
                core: BoardCore::new(hello(1000), 1000),
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
        w.board.core.link_up(&mut to(&mut w.up));
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
        let mut frames = Vec::new();
        self.board.dec.feed::<HostMsg>(bytes, |r| frames.push(r));
        for f in frames {
            let line = LineState::default();
            self.board.core.on_host(f, 0, line, &mut to(&mut self.up));
        }
    }

    fn apply(&mut self, op: &Op) {
        match *op {
            Op::Event => {
                let ring = self.board.core.ring();
                let boot = ring.boot_id();
                let front = ring.unacked_from(0).next().map(|e| e.seq);
                let before = ring.dropped();
                self.key = self.key.wrapping_add(1);
                let event = Event::Key {
                    key: self.key,
                    long_press: false,
                };
                let seq = self.board.core.event(event, &mut to(&mut self.up));
                if self.board.core.ring().dropped() != before {
                    self.evicted.insert((boot, front.unwrap()));
                }
                self.created.insert((boot, seq));
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
                let ring = self.board.core.ring();
                let old = ring.boot_id();
                for e in ring.unacked_from(0) {
                    self.lost_in_reboot.insert((old, e.seq));
                }
                self.board.core = BoardCore::new(hello(self.board.next_boot), 1000);
                self.board.next_boot += 1;
                self.board.dec = Decoder::new();
                // In-flight frames of the old boot may still arrive; the new boot says hello.
                self.board.core.link_up(&mut to(&mut self.up));
            }
            Op::Heartbeat => {
                let hb = self.board.core.heartbeat(0, LineState::default());
                self.up.push_back(frame(&BoardMsg::Heartbeat(hb)));
            }
            Op::Tick(ms) => self.board.core.tick(u32::from(ms), &mut to(&mut self.up)),
        }
    }

    fn reconnect(&mut self) {
        self.up.clear();
        self.down.clear();
        self.host_dec.reset();
        self.board.dec.reset();
        // Board on link-up: Hello and replay. Host on open: StatusRequest.
        self.board.core.link_up(&mut to(&mut self.up));
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

/// `PROPTEST_CASES` overrides the number of cases (for long runs).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(1000)))]

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
        prop_assert!(w.board.core.ring().is_empty(), "board still holds {}", w.board.core.ring().len());

        // The host counts as lost only events that were really dropped, and without reboots it
        // counts every one of them.
        let dropped_undelivered = w.evicted.iter().filter(|e| !seen.contains(*e)).count() as u32;
        let stats = w.host.stats();
        let rebooted = ops.iter().any(|o| matches!(o, Op::BoardReboot));
        let restarted = ops.iter().any(|o| matches!(o, Op::HostRestart));
        if !rebooted && !restarted {
            prop_assert_eq!(stats.lost + stats.unknown_history, dropped_undelivered);
        } else if !restarted {
            prop_assert!(stats.lost + stats.unknown_history <= dropped_undelivered);
        }
    }
}
