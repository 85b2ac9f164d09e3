use super::super::{Change, Store, StoreError};
use super::*;
use proptest::prelude::*;

fn arb_time() -> impl Strategy<Value = Time> {
    // 1900 .. 2200, any nanosecond.
    (-2_208_988_800i64..7_258_118_400, 0u32..1_000_000_000)
        .prop_map(|(s, n)| DateTime::from_timestamp(s, n).unwrap())
}

fn arb_text() -> impl Strategy<Value = String> {
    // Empty, ASCII, Chinese, quotes and control characters, and long enough for a two-byte length.
    prop_oneof![
        Just(String::new()),
        "[a-zA-Z0-9 +]{1,20}",
        "[张王李客户\\\\\"\\n\\t\u{0}-\u{1f}]{1,10}",
        ".{100,200}",
    ]
}

fn arb_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        0.0f64..10_000.0,
        Just(0.0),
        Just(-0.0),
        proptest::num::f64::NORMAL | proptest::num::f64::SUBNORMAL,
    ]
}

prop_compose! {
    fn arb_call()(
        id in arb_text(),
        line in arb_text(),
        out in any::<bool>(),
        number in proptest::option::of(arb_text()),
        number_status in 0u8..4,
        name in proptest::option::of(arb_text()),
        started_at in arb_time(),
        answered_at in proptest::option::of(arb_time()),
        ended_at in proptest::option::of(arb_time()),
        rings in any::<u32>(),
        wait_s in proptest::option::of(arb_f64()),
        talk_s in proptest::option::of(arb_f64()),
        outcome in 0u8..5,
        agent in proptest::option::of(arb_text()),
        flags in any::<[bool; 3]>(),
        message in proptest::option::of(arb_text()),
        answered_by in proptest::option::of(arb_text()),
        cleared_by in 0u8..4,
    ) -> Call {
        Call {
            id,
            line,
            direction: if out { Direction::Out } else { Direction::In },
            number,
            number_status: [
                NumberStatus::Known,
                NumberStatus::Withheld,
                NumberStatus::Unavailable,
                NumberStatus::None,
            ][number_status as usize],
            name,
            started_at,
            answered_at,
            ended_at,
            rings,
            wait_s,
            talk_s,
            outcome: [
                None,
                Some(Outcome::Answered),
                Some(Outcome::Missed),
                Some(Outcome::Unknown),
                Some(Outcome::Interrupted),
            ][outcome as usize],
            agent,
            repeat: flags[0],
            vip: flags[1],
            clock_unsynced: flags[2],
            message,
            answered_by,
            cleared_by: [None, Some(ClearedBy::Caller), Some(ClearedBy::Office), Some(ClearedBy::Unknown)]
                [cleared_by as usize],
        }
    }
}

proptest! {
    #[test]
    fn binary_round_trip(c in arb_call()) {
        let bytes = encode_call(&c);
        // Version 1 unless the call has a field only version 2 holds: old records stay byte for byte.
        let v2 = c.answered_by.is_some() || c.cleared_by.is_some();
        prop_assert_eq!(bytes[0], if v2 { CALL_V2 } else { CALL_V1 });
        let back = decode_call(&bytes).unwrap();
        prop_assert_eq!(&back, &c);
        // Bit for bit (`==` does not tell -0.0 from 0.0).
        prop_assert_eq!(
            back.wait_s.map(f64::to_bits),
            c.wait_s.map(f64::to_bits)
        );
        prop_assert_eq!(
            back.talk_s.map(f64::to_bits),
            c.talk_s.map(f64::to_bits)
        );
    }

    /// A JSON record (as every earlier linekeeper wrote) reads to the same call as the binary one.
    #[test]
    fn json_and_binary_read_alike(
        c in arb_call(),
        secs in proptest::option::of(0u32..10_000_000),
        nan in any::<[bool; 2]>(),
    ) {
        let mut c = c;
        // Durations with a few decimals (serde_json without `float_roundtrip` can read other numbers one
        // unit in the last place off; the binary record is exact).
        c.wait_s = secs.map(|s| f64::from(s) / 1000.0);
        c.talk_s = secs.map(|s| f64::from(s) / 10.0);
        // Non-finite durations read back as absent either way.
        if nan[0] { c.wait_s = Some(f64::NAN) }
        if nan[1] { c.talk_s = Some(f64::INFINITY) }
        let from_json = decode_call(&serde_json::to_vec(&c).unwrap()).unwrap();
        let from_binary = decode_call(&encode_call(&c)).unwrap();
        prop_assert_eq!(from_binary, from_json);
    }

    #[test]
    fn number_at_reads_alike(c in arb_call()) {
        let want = (c.number.clone(), c.started_at);
        prop_assert_eq!(decode_number_at(&encode_call(&c)).unwrap(), want.clone());
        prop_assert_eq!(decode_number_at(&serde_json::to_vec(&c).unwrap()).unwrap(), want);
    }

    /// Damaged records are errors, never panics; a cut-off binary record never reads as a call.
    #[test]
    fn damaged_records_do_not_panic(c in arb_call(), cut in any::<prop::sample::Index>(),
                                    junk in proptest::collection::vec(any::<u8>(), 0..80)) {
        let bytes = encode_call(&c);
        let cut = cut.index(bytes.len());
        prop_assert!(decode_call(&bytes[..cut]).is_err());
        let mut noisy = vec![CALL_V1];
        noisy.extend_from_slice(&junk);
        let _ = decode_call(&noisy);
        let _ = decode_call(&junk);
        let _ = decode_number_at(&bytes[..cut]);
        let _ = decode_number_at(&noisy);
    }
}

fn sample(id: &str) -> Call {
    Call {
        number: Some("13800000001".into()),
        number_status: NumberStatus::Known,
        name: Some("王小姐".into()),
        answered_at: Some("2026-11-03T01:02:09.5Z".parse().unwrap()),
        ended_at: Some("2026-11-03T01:07:09.5Z".parse().unwrap()),
        rings: 2,
        wait_s: Some(6.044),
        talk_s: Some(300.0),
        outcome: Some(Outcome::Answered),
        agent: Some("alice".into()),
        repeat: true,
        ..Call::new(
            id,
            "line1",
            Direction::In,
            "2026-11-03T01:02:03.456Z".parse().unwrap(),
        )
    }
}

#[test]
fn binary_record_is_small() {
    let c = sample("01JCX6Y0Z0AAAAAAAAAAAAAAAA");
    let (bin, json) = (encode_call(&c), serde_json::to_vec(&c).unwrap());
    assert!(
        bin.len() * 2 < json.len(),
        "{} vs {}",
        bin.len(),
        json.len()
    );
}

/// Records as linekeeper 0.1 stored them (JSON, byte for byte) still read, mixed with binary ones, through
/// every read path of calls.
#[test]
fn old_json_records_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let old_a = concat!(
        r#"{"id":"01JCX6Y0Z0AAAAAAAAAAAAAAAA","line":"line1","direction":"in","number":"13800000001","#,
        r#""number_status":"known","name":"王小姐","started_at":"2026-11-03T01:02:03.456Z","#,
        r#""answered_at":"2026-11-03T01:02:09.500Z","ended_at":"2026-11-03T01:07:09.500Z","rings":2,"#,
        r#""wait_s":6.044,"talk_s":300.0,"outcome":"answered","agent":"alice","repeat":true,"vip":false}"#
    );
    // Exactly what the JSON encoding (all earlier stores) writes for this call.
    assert_eq!(
        serde_json::to_string(&sample("01JCX6Y0Z0AAAAAAAAAAAAAAAA")).unwrap(),
        old_a
    );
    // From before `repeat` and `vip` existed.
    let old_c = concat!(
        r#"{"id":"01JCX6Y0Z0CCCCCCCCCCCCCCCC","line":"line2","direction":"in","number":null,"#,
        r#""number_status":"withheld","name":null,"started_at":"2026-11-02T18:00:00Z","answered_at":null,"#,
        r#""ended_at":null,"rings":1,"wait_s":null,"talk_s":null,"outcome":null,"agent":null}"#
    );
    s.put_raw("calls", b"01JCX6Y0Z0AAAAAAAAAAAAAAAA", old_a.as_bytes());
    s.put_raw("calls", b"01JCX6Y0Z0CCCCCCCCCCCCCCCC", old_c.as_bytes());
    s.put_raw("open_calls", b"01JCX6Y0Z0CCCCCCCCCCCCCCCC", b"");
    // A new record between them, written by this linekeeper.
    let mut b = sample("01JCX6Y0Z0BBBBBBBBBBBBBBBB");
    b.clock_unsynced = true;
    b.message = Some("MESG".into());
    s.commit(
        &Change {
            calls: vec![b.clone()],
            ..Default::default()
        },
        1,
    )
    .unwrap();
    assert_eq!(
        s.get_raw("calls", b.id.as_bytes()).unwrap()[0],
        CALL_V1,
        "new calls are stored binary"
    );

    let a = s.call("01JCX6Y0Z0AAAAAAAAAAAAAAAA").unwrap().unwrap();
    assert_eq!(a, sample("01JCX6Y0Z0AAAAAAAAAAAAAAAA"));
    let c = s.call("01JCX6Y0Z0CCCCCCCCCCCCCCCC").unwrap().unwrap();
    assert_eq!(c.number_status, NumberStatus::Withheld);
    assert_eq!(
        c.started_at,
        "2026-11-02T18:00:00Z".parse::<Time>().unwrap()
    );
    assert!(!c.repeat && !c.vip && !c.clock_unsynced && c.message.is_none());
    assert_eq!(s.call(&b.id).unwrap().unwrap(), b);

    let want = vec![a.clone(), b.clone(), c.clone()];
    assert_eq!(s.calls_between("", "~").unwrap(), want);
    let mut seen = Vec::new();
    s.for_each_call("", "~", |c| seen.push(c)).unwrap();
    assert_eq!(seen, want);
    let newest: Vec<Call> = want.iter().rev().cloned().collect();
    assert_eq!(s.calls_newest_first("", "~", 10, |_| true).unwrap(), newest);
    let mut numbers = Vec::new();
    s.for_each_call_number("", "~", |n, at| numbers.push((n, at)))
        .unwrap();
    assert_eq!(
        numbers,
        vec![
            (a.number.clone().unwrap(), a.started_at),
            (b.number.clone().unwrap(), b.started_at)
        ]
    );
    assert_eq!(s.open_calls().unwrap(), vec![c.clone()]);

    // Rewriting an old record (the engine updates calls) stores it binary, with the same content.
    s.commit(
        &Change {
            calls: vec![c.clone()],
            ..Default::default()
        },
        1,
    )
    .unwrap();
    assert_eq!(s.get_raw("calls", c.id.as_bytes()).unwrap()[0], CALL_V1);
    assert_eq!(s.call(&c.id).unwrap().unwrap(), c);
}

#[test]
fn a_damaged_record_is_reported_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let mut bytes = encode_call(&sample("X"));
    bytes.pop();
    s.put_raw("calls", b"X", &bytes);
    match s.call("X") {
        Err(StoreError::Corrupt { tree, key, source }) => {
            assert_eq!((tree, key.as_str()), ("calls", "X"));
            assert!(source.to_string().contains("truncated"), "{source}");
        }
        other => panic!("{other:?}"),
    }
    assert!(s.calls_between("", "~").is_err());
}
