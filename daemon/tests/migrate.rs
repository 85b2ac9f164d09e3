//! The one-time migration of a linekeeper 0.1 store (sled 0.34) into redb, on a store that release wrote.
//!
//! `fixtures/sled-0.1.0/store` was written by linekeeper 0.1.0 (commit 7497441, the last sled release) with its own
//! engine and store code (`generator.rs.txt` beside it): calls answered and missed, a withheld number, a call left
//! ringing, callback tasks (one closed), a complaint, agents' state, web users, an audit entry, an API token, the
//! MQTT watermark and an output's memo. `expected.json` is everything that release read back from it through its
//! own API. After the migration this release must read exactly the same.

use std::path::{Path, PathBuf};

use linekeeper::store::{Store, SCHEMA_VERSION};
use serde_json::{json, Value};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sled-0.1.0")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), dst).unwrap();
        }
    }
}

/// The fixture's store in a fresh temporary directory.
fn old_store() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    copy_dir(&fixture().join("store"), &store);
    (dir, store)
}

/// Everything the store holds, read through this release's API, in the shape of `expected.json`.
fn read_all(s: &Store) -> Value {
    json!({
        "next_seq": s.next_seq().unwrap(),
        "mqtt_acked": s.mqtt_acked().unwrap(),
        "meta_json_discovery": s.meta_json("discovery").unwrap(),
        "calls": v(&s.calls_between("", "~").unwrap()),
        "tasks": v(&s.tasks_between("", "~").unwrap()),
        "open_calls": s.open_calls().unwrap().into_iter().map(|c| c.id).collect::<Vec<_>>(),
        "open_tasks": s.open_tasks().unwrap().into_iter().map(|t| t.id).collect::<Vec<_>>(),
        "events": v(&s.events_from(0, 100_000).unwrap()),
        "records": s.records_with_prefix::<Value>("").unwrap(),
        "tokens": v(&s.tokens().unwrap()),
        "users": s.accounts_newest_first::<Value>("user/", None, 1000).unwrap(),
        "audit": s.accounts_newest_first::<Value>("audit/", None, 1000).unwrap(),
    })
}

/// sled's I/O threads hold a store for a moment after its last handle is dropped (the migration closes the old
/// store just before this process opens it again), so a test opening it again waits for that.
fn settle<T, E: std::fmt::Display>(mut open: impl FnMut() -> Result<T, E>) -> Result<T, E> {
    for _ in 0..100 {
        match open() {
            Err(e) if e.to_string().contains("lock") || e.to_string().contains("in use") => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            other => return other,
        }
    }
    open()
}

fn v<T: serde::Serialize>(x: &T) -> Value {
    serde_json::to_value(x).unwrap()
}

fn expected() -> Value {
    let text = std::fs::read_to_string(fixture().join("expected.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    let o = v.as_object_mut().unwrap();
    o.remove("written_by");
    o.remove("token");
    v
}

#[test]
fn a_store_written_by_linekeeper_0_1_is_migrated_once_and_reads_the_same() {
    let (_dir, path) = old_store();
    let want = expected();
    assert!(
        want["calls"].as_array().unwrap().len() >= 10
            && !want["events"].as_array().unwrap().is_empty(),
        "the fixture holds calls and events"
    );
    {
        let s = Store::open(&path).unwrap();
        assert_eq!(
            read_all(&s),
            want,
            "the migrated store reads as the old one did"
        );
        assert!(path.join(linekeeper::store::FILE_NAME).is_file());
        assert!(!path.join("linekeeper.redb.migrating").exists());
    }
    // The old store is kept, marked with the new schema version so linekeeper 0.1 (which refuses any version above
    // 2) cannot run on stale records.
    {
        let old = settle(|| sled::open(path.join("db"))).unwrap();
        let v = old
            .open_tree("meta")
            .unwrap()
            .get("schema_version")
            .unwrap()
            .unwrap();
        assert_eq!(
            u64::from_be_bytes(v.as_ref().try_into().unwrap()),
            SCHEMA_VERSION
        );
    }
    // The second start opens the redb store and does not migrate again: a change made after the migration stays.
    let s = Store::open(&path).unwrap();
    let token = linekeeper::auth::create_token(
        &s,
        "after",
        linekeeper::model::Role::Admin,
        chrono::Utc::now(),
    )
    .unwrap();
    drop(s);
    let s = Store::open(&path).unwrap();
    assert!(s
        .token(&linekeeper::auth::hash_token(&token))
        .unwrap()
        .is_some());
    // The old store's own token still works: the hash was copied.
    let old_token = serde_json::from_str::<Value>(
        &std::fs::read_to_string(fixture().join("expected.json")).unwrap(),
    )
    .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        s.token(&linekeeper::auth::hash_token(&old_token))
            .unwrap()
            .unwrap()
            .name,
        "fixture"
    );
}

#[test]
fn an_interrupted_migration_starts_again_from_the_old_store() {
    let (_dir, path) = old_store();
    // What a power cut in the middle of the copy leaves: a partial file under the temporary name.
    std::fs::write(path.join("linekeeper.redb.migrating"), b"partial").unwrap();
    let s = Store::open(&path).unwrap();
    assert_eq!(read_all(&s), expected());
}

#[test]
fn a_migrated_sled_store_without_its_redb_file_is_refused_with_what_to_do() {
    let (_dir, path) = old_store();
    drop(Store::open(&path).unwrap());
    std::fs::remove_file(path.join(linekeeper::store::FILE_NAME)).unwrap();
    let err = settle(|| Store::open(&path))
        .err()
        .expect("must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains("already migrated") && msg.contains("restore"),
        "{msg}"
    );
}
