//! Frame sizes: the largest possible message fits MAX_FRAME, typical sizes are pinned (so a layout
//! change is noticed), and golden bytes freeze the wire format of one event.
//! `cargo test --test sizes -- --nocapture` prints the table.

use heapless::{String, Vec};
use linekeeper_bridge_proto::frame::{encode, Decoder, CRC16, MAX_FRAME, MAX_HOST_FRAME};
use linekeeper_bridge_proto::msg::*;

fn size<M: serde::Serialize>(m: &M) -> usize {
    let mut buf = [0u8; MAX_FRAME];
    encode(m, &mut buf).expect("fits")
}

fn ev(event: Event) -> BoardMsg {
    BoardMsg::Event(SeqEvent {
        boot_id: 0x1234_5678,
        seq: 1000,
        oldest: 990,
        event,
    })
}

fn s<const N: usize>(x: &str) -> String<N> {
    let mut out = String::new();
    out.push_str(x).unwrap();
    out
}

#[test]
fn largest_messages_fit() {
    let worst_cid = BoardMsg::Event(SeqEvent {
        boot_id: u32::MAX,
        seq: u32::MAX,
        oldest: u32::MAX,
        event: Event::CallerId(CallerId {
            number: s(&"9".repeat(MAX_NUMBER)),
            name: s(&"N".repeat(MAX_NAME)),
            presentation: Presentation::Unavailable,
            datetime: Some([0xFF; 8]),
            format: CidFormat::Dtmf,
            raw: Vec::from_slice(&[0xFF; MAX_CID_RAW]).unwrap(),
        }),
    });
    let worst_log = BoardMsg::Log(Log {
        level: LogLevel::Debug,
        text: s(&"x".repeat(MAX_LOG)),
    });
    let worst_hb = BoardMsg::Heartbeat(Heartbeat {
        boot_id: u32::MAX,
        uptime_s: u32::MAX,
        next_seq: u32::MAX,
        unacked: u16::MAX,
        off_hook: true,
        ringing: true,
        line_ok: true,
        counters: Counters {
            rings: u32::MAX,
            cids: u32::MAX,
            cid_errors: u32::MAX,
            crc_errors: u32::MAX,
            frames_dropped: u32::MAX,
            events_dropped: u32::MAX,
            replayed: u32::MAX,
        },
    });
    let c = size(&worst_cid);
    println!(
        "worst CallerId {c}, worst Log {}, worst Heartbeat {}, MAX_FRAME {MAX_FRAME}",
        size(&worst_log),
        size(&worst_hb)
    );
    assert_eq!(c, 196);
    assert!(c <= MAX_FRAME);
}

#[test]
fn typical_sizes() {
    let hello = BoardMsg::Hello(Hello {
        proto_version: 1,
        board_id: 0xE660_5838_3B4A_2F27,
        boot_id: 0x1234_5678,
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
        ring_capacity: 32,
    });
    let cid = ev(Event::CallerId(CallerId {
        number: s("13800138000"),
        name: s("Zhang"),
        presentation: Presentation::Available,
        datetime: Some(*b"12031415"),
        format: CidFormat::Bell202,
        raw: Vec::from_slice(&[0x80; 34]).unwrap(),
    }));
    let table: [(&str, usize, usize); 8] = [
        ("Hello", size(&hello), 32),
        (
            "Event RingStart",
            size(&ev(Event::RingStart {
                cadence: Cadence {
                    on_ms: 2000,
                    off_ms: 4000,
                },
            })),
            20,
        ),
        ("Event Hook", size(&ev(Event::Hook { off_hook: true })), 17),
        (
            "Event CallerId (11 digits, 5-char name, 34 raw bytes)",
            size(&cid),
            80,
        ),
        (
            "Heartbeat (small counters)",
            size(&BoardMsg::Heartbeat(Heartbeat {
                boot_id: 0x1234_5678,
                uptime_s: 86_400,
                next_seq: 1001,
                unacked: 0,
                off_hook: false,
                ringing: false,
                line_ok: true,
                counters: Counters::default(),
            })),
            27,
        ),
        (
            "Ack",
            size(&HostMsg::Ack {
                boot_id: 0x1234_5678,
                up_to_seq: 1000,
            }),
            13,
        ),
        ("StatusRequest", size(&HostMsg::StatusRequest), 6),
        (
            "Leds",
            size(&HostMsg::Leds(Leds {
                on: 1,
                blink: 2,
                blink_period_ms: 500,
            })),
            10,
        ),
    ];
    for (name, got, _) in &table {
        println!("{name:<55} {got:>4} bytes on the wire");
    }
    for (name, got, want) in table {
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn golden_bytes_hook_event() {
    // BoardMsg::Event { boot_id 5, seq 1, oldest 1, Hook { off_hook: true } }
    let m = BoardMsg::Event(SeqEvent {
        boot_id: 5,
        seq: 1,
        oldest: 1,
        event: Event::Hook { off_hook: true },
    });
    let mut buf = [0u8; MAX_FRAME];
    let n = encode(&m, &mut buf).unwrap();
    // body: version 01 | tag 01 (Event) | boot 05 | seq 01 | oldest 01 | event tag 02 (Hook) | 01 (true)
    let body = [0x01, 0x01, 0x05, 0x01, 0x01, 0x02, 0x01];
    let crc = CRC16.checksum(&body).to_le_bytes();
    // No zero bytes in body or CRC here, so COBS is one code byte (len + 1) in front.
    assert!(!crc.contains(&0));
    let mut want = vec![10u8];
    want.extend_from_slice(&body);
    want.extend_from_slice(&crc);
    want.push(0);
    assert_eq!(&buf[..n], &want[..]);
    println!("golden Hook frame: {:02X?}", &buf[..n]);
}

#[test]
fn largest_host_messages_fit_the_board_decoder() {
    let worst = [
        HostMsg::Ack {
            boot_id: u32::MAX,
            up_to_seq: u32::MAX,
        },
        HostMsg::Replay {
            boot_id: u32::MAX,
            from_seq: u32::MAX,
        },
        HostMsg::Configure(Configure {
            region: Region {
                country: [0xFF; 2],
                cid_standard: CidStandard::NttJclip,
                cid_start: CidStart::None,
            },
            off_hook_below_mv: u16::MAX,
            line_lost_below_mv: u16::MAX,
            ring_timeout_ms: u16::MAX,
            heartbeat_s: u16::MAX,
            voltage_step_mv: u16::MAX,
        }),
        HostMsg::Leds(Leds {
            on: u16::MAX,
            blink: u16::MAX,
            blink_period_ms: u16::MAX,
        }),
        HostMsg::StatusRequest,
    ];
    for m in worst {
        let mut buf = [0u8; MAX_FRAME];
        let n = encode(&m, &mut buf).unwrap();
        println!("worst {m:?}: {n} bytes");
        assert!(n <= MAX_HOST_FRAME, "{m:?} is {n} bytes");
        // A decoder of MAX_HOST_FRAME bytes takes it (it stores the frame without the delimiter).
        let mut d: Decoder<MAX_HOST_FRAME> = Decoder::new();
        let mut got = None;
        d.feed::<HostMsg>(&buf[..n], |r| got = Some(r));
        assert_eq!(got, Some(Ok(m)));
    }
}
