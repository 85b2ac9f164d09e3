use super::*;
use crate::model::*;
use chrono::Utc;

fn call(id: &str, ended: bool) -> Call {
    Call {
        number: Some("1".into()),
        number_status: NumberStatus::Known,
        ended_at: ended.then(Utc::now),
        rings: 1,
        ..Call::new(id, "line1", Direction::In, Utc::now())
    }
}

#[test]
fn a_new_store_is_marked_with_this_version_and_a_newer_store_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let v = store.get_raw("meta", SCHEMA).unwrap();
        assert_eq!(from_be(&v), SCHEMA_VERSION);
        assert!(dir.path().join(FILE_NAME).is_file());
        store.put_raw("meta", SCHEMA, &be(SCHEMA_VERSION + 1));
    }
    let err = Store::open(dir.path())
        .err()
        .expect("a newer store must be refused");
    assert!(
        err.to_string().contains("newer than this linekeeper"),
        "{err}"
    );
}

#[test]
fn commit_reopen_and_indexes() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        assert_eq!(s.next_seq().unwrap(), 1);
        let ch = Change {
            calls: vec![call("A", false), call("B", true)],
            ..Default::default()
        };
        s.commit(&ch, 5).unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Locked { .. })
        ));
    }
    let s = Store::reopen(dir.path());
    assert_eq!(s.next_seq().unwrap(), 5);
    let open: Vec<String> = s.open_calls().unwrap().into_iter().map(|c| c.id).collect();
    assert_eq!(open, vec!["A"]);
    s.commit(
        &Change {
            calls: vec![call("A", true)],
            ..Default::default()
        },
        5,
    )
    .unwrap();
    assert!(s.open_calls().unwrap().is_empty());
    let all = s.calls_newest_first("", "~", 10, |_| true).unwrap();
    assert_eq!(
        all.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        vec!["B", "A"]
    );
}

#[test]
fn outbox_order_ack_and_prune() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let ev = |seq| Event {
        event_id: format!("e{seq}"),
        seq,
        kind: "call.ringing".into(),
        at: Utc::now().fixed_offset(),
        subject: Subject::Call {
            call: call("A", false),
        },
    };
    // 256 and 1 sort correctly only with big-endian keys
    s.commit(
        &Change {
            events: vec![ev(1), ev(2), ev(256)],
            ..Default::default()
        },
        257,
    )
    .unwrap();
    let seqs: Vec<u64> = s
        .events_from(2, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![2, 256]);
    s.set_mqtt_acked(256, Some(1)).unwrap();
    assert_eq!(s.mqtt_acked().unwrap(), 256);
    let seqs: Vec<u64> = s
        .events_from(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.seq)
        .collect();
    assert_eq!(seqs, vec![256]);
}

#[test]
fn calls_between_is_a_time_range() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let t0 = Utc::now();
    let calls: Vec<Call> = (0..5000)
        .map(|i| call(&new_id(t0 + chrono::Duration::milliseconds(i)), true))
        .collect();
    s.commit(
        &Change {
            calls: calls.clone(),
            ..Default::default()
        },
        1,
    )
    .unwrap();
    let lo = id_floor(t0 + chrono::Duration::milliseconds(1000));
    let hi = id_floor(t0 + chrono::Duration::milliseconds(4000));
    let between = s.calls_between(&lo, &hi).unwrap();
    assert_eq!(between.len(), 3000);
    assert_eq!(between[0].id, calls[1000].id);
    assert_eq!(between[2999].id, calls[3999].id);
}

#[test]
fn tokens_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    s.add_token(
        "abc",
        &TokenRecord {
            name: "ha".into(),
            created_at: Utc::now(),
            role: Some(crate::model::Role::Agent),
        },
    )
    .unwrap();
    let t = s.token("abc").unwrap().unwrap();
    assert_eq!(
        (t.name.as_str(), t.role()),
        ("ha", crate::model::Role::Agent)
    );
    assert!(s.token("abd").unwrap().is_none());
    // A token stored before roles existed reads as admin, flagged by its missing role.
    s.put_raw(
        "tokens",
        b"old",
        br#"{"name":"old","created_at":"2026-11-01T00:00:00Z"}"#,
    );
    let old = s.token("old").unwrap().unwrap();
    assert_eq!((old.role, old.role()), (None, crate::model::Role::Admin));
}
