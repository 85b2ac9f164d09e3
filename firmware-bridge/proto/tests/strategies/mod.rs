//! proptest strategies for every message (shared by the property tests).
#![allow(dead_code)]

use heapless::{String, Vec};
use linekeeper_bridge_proto::msg::*;
use proptest::prelude::*;

pub fn hstring<const N: usize>() -> impl Strategy<Value = String<N>> {
    // Any chars (incl. multi-byte), truncated to fit N bytes.
    proptest::collection::vec(any::<char>(), 0..N).prop_map(|cs| {
        let mut s = String::new();
        for c in cs {
            if s.push(c).is_err() {
                break;
            }
        }
        s
    })
}

pub fn hvec<const N: usize>() -> impl Strategy<Value = Vec<u8, N>> {
    proptest::collection::vec(any::<u8>(), 0..=N).prop_map(|v| v.into_iter().collect())
}

pub fn cadence() -> impl Strategy<Value = Cadence> {
    (any::<u16>(), any::<u16>()).prop_map(|(on_ms, off_ms)| Cadence { on_ms, off_ms })
}

pub fn presentation() -> impl Strategy<Value = Presentation> {
    prop_oneof![
        Just(Presentation::Available),
        Just(Presentation::Private),
        Just(Presentation::Unavailable)
    ]
}

pub fn cid_format() -> impl Strategy<Value = CidFormat> {
    prop_oneof![
        Just(CidFormat::Bell202),
        Just(CidFormat::V23),
        Just(CidFormat::Dtmf)
    ]
}

pub fn caller_id() -> impl Strategy<Value = CallerId> {
    (
        hstring::<MAX_NUMBER>(),
        hstring::<MAX_NAME>(),
        presentation(),
        proptest::option::of(any::<[u8; 8]>()),
        cid_format(),
        hvec::<MAX_CID_RAW>(),
    )
        .prop_map(
            |(number, name, presentation, datetime, format, raw)| CallerId {
                number,
                name,
                presentation,
                datetime,
                format,
                raw,
            },
        )
}

pub fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        cadence().prop_map(|cadence| Event::RingStart { cadence }),
        Just(Event::RingStop),
        any::<bool>().prop_map(|off_hook| Event::Hook { off_hook }),
        any::<i32>().prop_map(|mv| Event::LineVoltage { mv }),
        Just(Event::LineLost),
        Just(Event::LineRestored),
        caller_id().prop_map(Event::CallerId),
        any::<u8>().prop_map(|digit| Event::Digit { digit }),
        (any::<u8>(), any::<bool>()).prop_map(|(key, long_press)| Event::Key { key, long_press }),
    ]
}

pub fn cid_standard() -> impl Strategy<Value = CidStandard> {
    prop_oneof![
        Just(CidStandard::Auto),
        Just(CidStandard::Bell202),
        Just(CidStandard::EtsiV23),
        Just(CidStandard::Dtmf),
        Just(CidStandard::NttJclip)
    ]
}

pub fn cid_start() -> impl Strategy<Value = CidStart> {
    prop_oneof![
        Just(CidStart::Ring),
        Just(CidStart::Polarity),
        Just(CidStart::RingPulse),
        Just(CidStart::None)
    ]
}

pub fn region() -> impl Strategy<Value = Region> {
    (any::<[u8; 2]>(), cid_standard(), cid_start()).prop_map(
        |(country, cid_standard, cid_start)| Region {
            country,
            cid_standard,
            cid_start,
        },
    )
}

pub fn hello() -> impl Strategy<Value = Hello> {
    (
        any::<u8>(),
        any::<u64>(),
        any::<u32>(),
        any::<[u8; 3]>(),
        any::<u32>(),
        region(),
        any::<u16>(),
    )
        .prop_map(
            |(pv, board_id, boot_id, fw, caps, region, ring_capacity)| Hello {
                proto_version: pv,
                board_id,
                boot_id,
                firmware_version: FwVersion {
                    major: fw[0],
                    minor: fw[1],
                    patch: fw[2],
                },
                capabilities: Capabilities(caps),
                region,
                ring_capacity,
            },
        )
}

pub fn counters() -> impl Strategy<Value = Counters> {
    any::<[u32; 7]>().prop_map(|c| Counters {
        rings: c[0],
        cids: c[1],
        cid_errors: c[2],
        crc_errors: c[3],
        frames_dropped: c[4],
        events_dropped: c[5],
        replayed: c[6],
    })
}

pub fn heartbeat() -> impl Strategy<Value = Heartbeat> {
    (
        any::<[u32; 3]>(),
        any::<u16>(),
        any::<[bool; 3]>(),
        counters(),
    )
        .prop_map(|(n, unacked, b, counters)| Heartbeat {
            boot_id: n[0],
            uptime_s: n[1],
            next_seq: n[2],
            unacked,
            off_hook: b[0],
            ringing: b[1],
            line_ok: b[2],
            counters,
        })
}

pub fn log_level() -> impl Strategy<Value = LogLevel> {
    prop_oneof![
        Just(LogLevel::Error),
        Just(LogLevel::Warn),
        Just(LogLevel::Info),
        Just(LogLevel::Debug)
    ]
}

pub fn board_msg() -> impl Strategy<Value = BoardMsg> {
    prop_oneof![
        hello().prop_map(BoardMsg::Hello),
        (any::<u32>(), any::<u32>(), any::<u32>(), event()).prop_map(
            |(boot_id, seq, oldest, event)| BoardMsg::Event(SeqEvent {
                boot_id,
                seq,
                oldest,
                event
            })
        ),
        heartbeat().prop_map(BoardMsg::Heartbeat),
        (log_level(), hstring::<MAX_LOG>())
            .prop_map(|(level, text)| BoardMsg::Log(Log { level, text })),
    ]
}

pub fn host_msg() -> impl Strategy<Value = HostMsg> {
    prop_oneof![
        (any::<u32>(), any::<u32>())
            .prop_map(|(boot_id, up_to_seq)| HostMsg::Ack { boot_id, up_to_seq }),
        (any::<u32>(), any::<u32>())
            .prop_map(|(boot_id, from_seq)| HostMsg::Replay { boot_id, from_seq }),
        (region(), any::<[u16; 5]>()).prop_map(|(region, t)| HostMsg::Configure(Configure {
            region,
            off_hook_below_mv: t[0],
            line_lost_below_mv: t[1],
            ring_timeout_ms: t[2],
            heartbeat_s: t[3],
            voltage_step_mv: t[4],
        })),
        any::<[u16; 3]>().prop_map(|l| HostMsg::Leds(Leds {
            on: l[0],
            blink: l[1],
            blink_period_ms: l[2]
        })),
        Just(HostMsg::StatusRequest),
    ]
}
