//! A simulated board against the real host decoder + HostSession.

use super::*;
use crate::frame::encode;
use crate::host::{HostEvent, HostLink, HostSession, ProtoMismatch, SessionState};

/// The daemon's side, as the daemon will do it: a HostLink (decoder -> session -> replies).
struct Host {
    link: HostLink,
    /// Application-level events delivered so far.
    events: StdVec<HostEvent>,
    /// When false, replies are computed but not sent (to simulate lost acks / a host crash).
    send_replies: bool,
}

impl Host {
    fn new() -> Self {
        Self::resume(SessionState::default())
    }

    fn resume(state: SessionState) -> Self {
        Host {
            link: HostLink::resume(state),
            events: StdVec::new(),
            send_replies: true,
        }
    }

    fn session(&self) -> &HostSession {
        self.link.session()
    }

    /// Process board bytes; returns host bytes.
    fn take(&mut self, bytes: &[u8]) -> StdVec<u8> {
        let mut out = StdVec::new();
        let events = &mut self.events;
        let send = self.send_replies;
        self.link.feed(
            bytes,
            |e| events.push(e),
            |reply| {
                if send {
                    let mut buf = [0u8; MAX_FRAME];
                    let n = encode(reply, &mut buf).unwrap();
                    out.extend_from_slice(&buf[..n]);
                }
            },
        );
        out
    }

    /// The delivered line events, in order.
    fn line_events(&self) -> StdVec<(u32, Event)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                HostEvent::Event { seq, event, .. } => Some((*seq, event.clone())),
                _ => None,
            })
            .collect()
    }

    fn kinds(&self) -> StdVec<&'static str> {
        self.line_events().iter().map(|(_, e)| kind(e)).collect()
    }
}

fn kind(e: &Event) -> &'static str {
    match e {
        Event::RingStart { .. } => "ring",
        Event::RingStop => "ringstop",
        Event::Hook { off_hook: true } => "offhook",
        Event::Hook { off_hook: false } => "onhook",
        Event::LineVoltage { .. } => "voltage",
        Event::LineLost => "lost",
        Event::LineRestored => "restored",
        Event::CallerId(_) => "cid",
        Event::Digit { .. } => "digit",
        Event::Key { .. } => "key",
    }
}

/// Move bytes both ways until both sides are quiet.
fn pump<const N: usize>(board: &mut SimBoard<N>, host: &mut Host) {
    for _ in 0..100 {
        let up = board.take_output();
        if up.is_empty() {
            return;
        }
        let down = host.take(&up);
        board.receive(&down);
    }
    panic!("link did not settle");
}

#[test]
fn missed_call() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    b.ring();
    b.caller_id("13800138000", "Zhang");
    b.ring();
    b.ring();
    b.ring_stop();
    pump(&mut b, &mut h);
    assert!(matches!(
        h.events[0],
        HostEvent::Hello {
            rebooted: false,
            new_board: false,
            ..
        }
    ));
    assert_eq!(h.kinds(), ["ring", "cid", "ring", "ring", "ringstop"]);
    let cid = h
        .line_events()
        .into_iter()
        .find_map(|(_, e)| match e {
            Event::CallerId(c) => Some(c),
            _ => None,
        })
        .unwrap();
    assert_eq!(cid.number.as_str(), "13800138000");
    assert_eq!(cid.name.as_str(), "Zhang");
    assert_eq!(cid.presentation, Presentation::Available);
    assert_eq!(cid.format, CidFormat::Bell202);
    assert_eq!(cid.datetime, Some(*b"12031415"));
    // MDMF: type 0x80, and the checksum makes the byte sum 0 mod 256.
    assert_eq!(cid.raw[0], 0x80);
    assert_eq!(cid.raw.iter().fold(0u8, |a, x| a.wrapping_add(*x)), 0);
    // Second burst reports the cadence, first does not.
    let cad: StdVec<Cadence> = h
        .line_events()
        .into_iter()
        .filter_map(|(_, e)| match e {
            Event::RingStart { cadence } => Some(cadence),
            _ => None,
        })
        .collect();
    assert_eq!(cad[0], Cadence::default());
    assert_eq!(cad[1], b.config().cadence);
    // Everything acknowledged.
    assert_eq!(b.unacked(), 0);
    assert_eq!(h.session().state().last_seq, 5);
    assert_eq!(b.counters().rings, 3);
    assert_eq!(b.counters().cids, 1);
}

#[test]
fn answered_call() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    b.ring();
    b.caller_id("13800138000", "Zhang");
    b.off_hook();
    b.digit('1');
    b.on_hook();
    pump(&mut b, &mut h);
    assert_eq!(
        h.kinds(),
        ["ring", "cid", "ringstop", "offhook", "digit", "onhook"]
    );
    let seqs: StdVec<u32> = h.line_events().iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(b.unacked(), 0);
}

#[test]
fn reconnect_replays_without_double_count() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    pump(&mut b, &mut h);
    // The host receives these but its acks never reach the board (cable pulled right after).
    h.send_replies = false;
    b.ring();
    b.caller_id("13800138000", "Zhang");
    pump(&mut b, &mut h);
    assert_eq!(b.unacked(), 2);
    b.disconnect();
    // Events while disconnected are kept, not sent.
    b.ring();
    b.ring_stop();
    assert!(b.take_output().is_empty());
    // Reconnect: Hello, then replay of all 4 unacked (2 of which the host already has).
    h.send_replies = true;
    b.connect();
    let msg = h.link.on_connect();
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(&msg, &mut buf).unwrap();
    b.receive(&buf[..n]);
    pump(&mut b, &mut h);
    assert_eq!(h.kinds(), ["ring", "cid", "ring", "ringstop"]);
    assert!(h.session().stats().duplicates >= 2);
    assert_eq!(b.unacked(), 0);
    assert_eq!(b.counters().events_dropped, 0);
}

#[test]
fn host_restart_with_persisted_state_does_not_double_count() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    h.send_replies = false; // the host stores the events, then crashes before acking
    b.ring();
    b.caller_id("13800138000", "Zhang");
    pump(&mut b, &mut h);
    let saved = h.session().state();
    let mut h2 = Host::resume(saved);
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(&h2.link.on_connect(), &mut buf).unwrap();
    b.receive(&buf[..n]);
    b.ring_stop();
    pump(&mut b, &mut h2);
    assert_eq!(h2.kinds(), ["ringstop"]);
    assert_eq!(h2.session().stats().duplicates, 2);
    assert_eq!(b.unacked(), 0);
}

#[test]
fn board_reboot_restarts_seq_and_is_not_replay() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    b.ring();
    b.ring_stop();
    pump(&mut b, &mut h);
    b.reboot(2);
    b.ring();
    b.caller_id_private();
    pump(&mut b, &mut h);
    let hellos: StdVec<bool> = h
        .events
        .iter()
        .filter_map(|e| match e {
            HostEvent::Hello { rebooted, .. } => Some(*rebooted),
            _ => None,
        })
        .collect();
    assert_eq!(hellos, [false, true]);
    let got: StdVec<(u32, &str)> = h.line_events().iter().map(|(s, e)| (*s, kind(e))).collect();
    assert_eq!(got, [(1, "ring"), (2, "ringstop"), (1, "ring"), (2, "cid")]);
    assert_eq!(h.session().stats().reboots, 1);
    assert_eq!(h.session().state().boot_id, Some(2));
    assert_eq!(b.unacked(), 0);
}

#[test]
fn reboot_while_host_missed_hello_is_detected_from_events() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    b.ring();
    pump(&mut b, &mut h);
    b.reboot(77);
    // Drop the Hello: the first frame the host sees is an event of boot 77 with seq 1.
    let bytes = b.take_output();
    let first_end = bytes.iter().position(|x| *x == 0).unwrap();
    b.ring();
    let mut rest = bytes[first_end + 1..].to_vec();
    rest.extend(b.take_output());
    let down = h.take(&rest);
    b.receive(&down);
    pump(&mut b, &mut h);
    let got: StdVec<u32> = h.line_events().iter().map(|(s, _)| *s).collect();
    assert_eq!(got, [1, 1]);
    assert_eq!(h.session().state().boot_id, Some(77));
    assert_eq!(b.unacked(), 0);
}

#[test]
fn version_mismatch_is_reported_with_both_versions() {
    let cfg = SimConfig {
        proto_version: PROTO_VERSION + 2,
        ..SimConfig::default()
    };
    let mut b: SimBoard = SimBoard::new(cfg);
    let mut h = Host::new();
    b.ring();
    pump(&mut b, &mut h);
    let expect = ProtoMismatch::BoardProtoTooNew {
        board: PROTO_VERSION + 2,
        host: PROTO_VERSION,
    };
    assert_eq!(h.session().mismatch(), Some(expect));
    assert!(h.events.contains(&HostEvent::VersionMismatch(expect)));
    assert!(h.line_events().is_empty());
    let text = std::format!("{expect}");
    assert!(
        text.contains("version 3") && text.contains("version 1"),
        "{text}"
    );
    assert!(text.contains("upgrade linekeeper") && text.contains("reflash"));
    assert_eq!(h.link.decoder_stats().version, 2);

    let old = ProtoMismatch::check(0).unwrap();
    assert_eq!(
        old,
        ProtoMismatch::BoardProtoTooOld {
            board: 0,
            host: PROTO_VERSION
        }
    );
}

#[test]
fn full_ring_while_disconnected_reports_loss() {
    let mut b: SimBoard<4> = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    b.ring();
    pump(&mut b, &mut h);
    b.disconnect();
    for _ in 0..6 {
        b.key(3, false);
    }
    b.connect();
    pump(&mut b, &mut h);
    let got: StdVec<u32> = h.line_events().iter().map(|(s, _)| *s).collect();
    assert_eq!(got, [1, 4, 5, 6, 7]);
    assert_eq!(b.counters().events_dropped, 2);
    assert_eq!(h.session().stats().lost, 2);
    assert!(h.events.iter().any(|e| matches!(
        e,
        HostEvent::Event {
            seq: 4,
            lost_before: 2,
            ..
        }
    )));
}

#[test]
fn corrupted_frame_is_replayed() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    pump(&mut b, &mut h);
    b.ring();
    b.caller_id("02079460000", "Smith");
    b.ring();
    let mut bytes = b.take_output();
    // Corrupt a byte of the second frame (the caller ID).
    let second = bytes.iter().position(|x| *x == 0).unwrap() + 5;
    bytes[second] ^= 0x01;
    let down = h.take(&bytes);
    b.receive(&down);
    pump(&mut b, &mut h);
    assert_eq!(h.kinds(), ["ring", "cid", "ring"]);
    assert_eq!(h.session().stats().replay_requests, 1);
    assert!(h.link.decoder_stats().errors() >= 1);
    assert_eq!(b.unacked(), 0);
}

#[test]
fn lost_replay_request_recovered_by_heartbeat_or_retransmit() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    pump(&mut b, &mut h);
    b.ring();
    b.ring();
    let mut bytes = b.take_output();
    bytes[2] ^= 0x40; // corrupt the first event
    let _lost_reply = h.take(&bytes); // the Replay request is lost too
    assert_eq!(b.unacked(), 2);
    b.tick(2_000); // retransmit timeout
    pump(&mut b, &mut h);
    assert_eq!(h.kinds(), ["ring", "ring"]);
    assert_eq!(b.unacked(), 0);
    // A heartbeat on a quiet link changes nothing.
    b.heartbeat();
    pump(&mut b, &mut h);
    assert_eq!(h.kinds().len(), 2);
}

#[test]
fn status_request_leds_configure() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    let mut h = Host::new();
    pump(&mut b, &mut h);
    let leds = Leds {
        on: 0b01,
        blink: 0b10,
        blink_period_ms: 500,
    };
    let cfg = Configure {
        region: Region {
            country: *b"GB",
            cid_standard: CidStandard::EtsiV23,
            cid_start: CidStart::Polarity,
        },
        off_hook_below_mv: 15_000,
        line_lost_below_mv: 2_000,
        ring_timeout_ms: 6_000,
        heartbeat_s: 10,
        voltage_step_mv: 0,
    };
    let mut down = StdVec::new();
    for m in [
        HostMsg::Leds(leds),
        HostMsg::Configure(cfg),
        HostMsg::StatusRequest,
    ] {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&m, &mut buf).unwrap();
        down.extend_from_slice(&buf[..n]);
    }
    b.receive(&down);
    pump(&mut b, &mut h);
    assert_eq!(b.leds(), leds);
    assert_eq!(b.configured(), Some(&cfg));
    assert_eq!(b.hello().region.cid_standard, CidStandard::EtsiV23);
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, HostEvent::Heartbeat(hb) if hb.next_seq == 1 && hb.line_ok)));
    // V.23 region now: caller ID is reported as V.23.
    b.caller_id("02079460000", "Smith");
    pump(&mut b, &mut h);
    assert!(matches!(&h.line_events()[0].1, Event::CallerId(c) if c.format == CidFormat::V23));
}

#[test]
fn host_garbage_is_counted_by_the_board() {
    let mut b: SimBoard = SimBoard::new(SimConfig::default());
    b.receive(&[1, 2, 3, 0, 0x55, 0x55, 0x55, 0x55, 0]);
    let c = b.counters();
    assert_eq!(c.crc_errors + c.frames_dropped, 2);
}

#[test]
fn fit_truncates_on_char_boundary() {
    let s: String<4> = fit("张三");
    assert_eq!(s.as_str(), "张");
}
