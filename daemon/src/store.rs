//! The durable store. Every sled call of the daemon lives in this module, so the engine could be replaced.
//!
//! Trees: `calls` and `tasks` (key: the ULID id, so keys sort by time), `open_calls` and `open_tasks` (indexes of
//! what is still open), `outbox` (key: the event `seq`, big-endian), `meta` (schema version, next seq, the seq MQTT
//! has acknowledged), `tokens` (key: SHA-256 of an API token).
//!
//! A [`Change`] is written in one transaction over all trees and then flushed to disk before `commit` returns, so
//! nothing is published or acknowledged before it is durable.

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::model::{Call, Event, Task, Time};

mod codec;

/// 1: every record JSON. 2: calls as compact binary records (`codec`); version-1 records still read. A store is
/// marked 2 when this version opens it, so an older linekeeper refuses it (`TooNew`) rather than misreading calls.
pub const SCHEMA_VERSION: u64 = 2;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another linekeeper process (is the daemon running?)"
    )]
    Locked { path: PathBuf },
    #[error("the store at {path} cannot be opened: {reason}; check the path and its permissions")]
    Open { path: PathBuf, reason: sled::Error },
    #[error("store write failed: {0}; check free disk space and the disk's health")]
    Write(String),
    #[error("store read failed: {0}")]
    Read(#[from] sled::Error),
    #[error("record {tree}/{key} is unreadable: {source}")]
    Corrupt {
        tree: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("the store at {path} has schema version {found}, newer than this linekeeper understands ({SCHEMA_VERSION}); upgrade linekeeper")]
    TooNew { path: PathBuf, found: u64 },
}

/// Everything one step of the engine changes, written atomically.
#[derive(Debug, Default)]
pub struct Change {
    pub calls: Vec<Call>,
    pub tasks: Vec<Task>,
    pub events: Vec<Event>,
    /// Small keyed documents (`agent/ID`, `customer/NUMBER`, `report/KIND/LABEL`), JSON; `None` deletes.
    pub records: Vec<(String, Option<Vec<u8>>)>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.tasks.is_empty()
            && self.events.is_empty()
            && self.records.is_empty()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenRecord {
    pub name: String,
    pub created_at: Time,
}

#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    calls: sled::Tree,
    tasks: sled::Tree,
    open_calls: sled::Tree,
    open_tasks: sled::Tree,
    outbox: sled::Tree,
    meta: sled::Tree,
    tokens: sled::Tree,
    records: sled::Tree,
    /// Web users (`user/{name}`) and the audit log (`audit/{ulid}`).
    accounts: sled::Tree,
    path: PathBuf,
}

const NEXT_SEQ: &[u8] = b"next_seq";
const MQTT_ACKED: &[u8] = b"mqtt_acked";
const SCHEMA: &[u8] = b"schema_version";

fn be(n: u64) -> [u8; 8] {
    n.to_be_bytes()
}

fn from_be(v: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    let n = v.len().min(8);
    b[8 - n..].copy_from_slice(&v[v.len() - n..]);
    u64::from_be_bytes(b)
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising our own plain data structs cannot fail.
    serde_json::to_vec(v).unwrap_or_default()
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(path).map_err(|e| StoreError::Open {
            path: path.to_path_buf(),
            reason: e.into(),
        })?;
        let db = sled::Config::new()
            .path(path.join("db"))
            // Small boards: a modest cache; we flush ourselves, so no background flusher timer either.
            .cache_capacity(8 * 1024 * 1024)
            .flush_every_ms(None)
            .open()
            .map_err(|source| {
                if source.to_string().contains("could not acquire lock") {
                    StoreError::Locked {
                        path: path.to_path_buf(),
                    }
                } else {
                    StoreError::Open {
                        path: path.to_path_buf(),
                        reason: source,
                    }
                }
            })?;
        let tree = |name: &str| db.open_tree(name);
        let store = Store {
            calls: tree("calls")?,
            tasks: tree("tasks")?,
            open_calls: tree("open_calls")?,
            open_tasks: tree("open_tasks")?,
            outbox: tree("outbox")?,
            meta: tree("meta")?,
            tokens: tree("tokens")?,
            records: tree("records")?,
            accounts: tree("accounts")?,
            db,
            path: path.to_path_buf(),
        };
        match store.meta.get(SCHEMA)? {
            Some(v) if from_be(&v) > SCHEMA_VERSION => {
                return Err(StoreError::TooNew {
                    path: path.to_path_buf(),
                    found: from_be(&v),
                })
            }
            Some(v) if from_be(&v) == SCHEMA_VERSION => {}
            _ => {
                store.meta.insert(SCHEMA, &be(SCHEMA_VERSION))?;
                store.flush()?;
            }
        }
        Ok(store)
    }

    /// Opens a store this process just closed: sled's I/O threads can hold it for a moment after the last handle
    /// is dropped. For tests.
    #[cfg(test)]
    pub fn reopen(path: &Path) -> Store {
        for _ in 0..100 {
            match Store::open(path) {
                Err(StoreError::Locked { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => return other.unwrap_or_else(|e| panic!("reopen {}: {e}", path.display())),
            }
        }
        panic!("{} stayed locked", path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map(|_| ())
            .map_err(|e| StoreError::Write(e.to_string()))
    }

    /// Writes a change atomically and flushes it to disk. `next_seq` is the sequence number after the change's last
    /// event.
    pub fn commit(&self, change: &Change, next_seq: u64) -> Result<(), StoreError> {
        use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
        let trees = (
            &self.calls,
            &self.tasks,
            &self.open_calls,
            &self.open_tasks,
            &self.outbox,
            &self.meta,
            &self.records,
        );
        let r: Result<(), TransactionError<()>> = trees.transaction(
            |(calls, tasks, open_calls, open_tasks, outbox, meta, records)| {
                for (k, v) in &change.records {
                    match v {
                        Some(v) => records.insert(k.as_bytes(), v.as_slice())?,
                        None => records.remove(k.as_bytes())?,
                    };
                }
                for c in &change.calls {
                    calls.insert(c.id.as_bytes(), codec::encode_call(c))?;
                    if c.ended_at.is_none() {
                        open_calls.insert(c.id.as_bytes(), &[])?;
                    } else {
                        open_calls.remove(c.id.as_bytes())?;
                    }
                }
                for t in &change.tasks {
                    tasks.insert(t.id.as_bytes(), json(t))?;
                    if t.state == crate::model::TaskState::Open {
                        open_tasks.insert(t.id.as_bytes(), &[])?;
                    } else {
                        open_tasks.remove(t.id.as_bytes())?;
                    }
                }
                for e in &change.events {
                    outbox.insert(&be(e.seq), json(e))?;
                }
                meta.insert(NEXT_SEQ, &be(next_seq))?;
                Ok::<(), ConflictableTransactionError<()>>(())
            },
        );
        r.map_err(|e| StoreError::Write(format!("{e:?}")))?;
        self.flush()
    }

    pub fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.meta.get(NEXT_SEQ)?.map(|v| from_be(&v)).unwrap_or(1))
    }

    fn decode<T: DeserializeOwned>(
        tree: &'static str,
        key: &[u8],
        v: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(v).map_err(|source| StoreError::Corrupt {
            tree,
            key: String::from_utf8_lossy(key).into_owned(),
            source,
        })
    }

    /// A record of the `calls` tree: binary, or JSON as written before (see `codec`).
    fn decode_call(key: &[u8], v: &[u8]) -> Result<Call, StoreError> {
        codec::decode_call(v).map_err(|source| StoreError::Corrupt {
            tree: "calls",
            key: String::from_utf8_lossy(key).into_owned(),
            source,
        })
    }

    pub fn call(&self, id: &str) -> Result<Option<Call>, StoreError> {
        self.calls
            .get(id.as_bytes())?
            .map(|v| Self::decode_call(id.as_bytes(), &v))
            .transpose()
    }

    pub fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        self.tasks
            .get(id.as_bytes())?
            .map(|v| Self::decode("tasks", id.as_bytes(), &v))
            .transpose()
    }

    /// Calls whose id lies in `[from_id, to_id)`, newest first, that pass `keep`, at most `limit`.
    pub fn calls_newest_first(
        &self,
        from_id: &str,
        to_id: &str,
        limit: usize,
        mut keep: impl FnMut(&Call) -> bool,
    ) -> Result<Vec<Call>, StoreError> {
        let mut out = Vec::new();
        for kv in self.calls.range(from_id.as_bytes()..to_id.as_bytes()).rev() {
            let (k, v) = kv?;
            let c = Self::decode_call(&k, &v)?;
            if keep(&c) {
                out.push(c);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Calls in `[from_id, to_id)`, oldest first.
    pub fn calls_between(&self, from_id: &str, to_id: &str) -> Result<Vec<Call>, StoreError> {
        let mut out = Vec::new();
        for kv in self.calls.range(from_id.as_bytes()..to_id.as_bytes()) {
            let (k, v) = kv?;
            out.push(Self::decode_call(&k, &v)?);
        }
        Ok(out)
    }

    /// Visits the number and start of the calls in `[from_id, to_id)` that have a number, oldest first. Reads only
    /// those two fields (no allocation for the rest): the repeat-caller index is built from a week of calls at start.
    pub fn for_each_call_number(
        &self,
        from_id: &str,
        to_id: &str,
        mut f: impl FnMut(String, Time),
    ) -> Result<(), StoreError> {
        for kv in self.calls.range(from_id.as_bytes()..to_id.as_bytes()) {
            let (k, v) = kv?;
            let (number, started_at) =
                codec::decode_number_at(&v).map_err(|source| StoreError::Corrupt {
                    tree: "calls",
                    key: String::from_utf8_lossy(&k).into_owned(),
                    source,
                })?;
            if let Some(n) = number {
                f(n, started_at);
            }
        }
        Ok(())
    }

    /// Visits calls in `[from_id, to_id)`, oldest first.
    pub fn for_each_call(
        &self,
        from_id: &str,
        to_id: &str,
        mut f: impl FnMut(Call),
    ) -> Result<(), StoreError> {
        for kv in self.calls.range(from_id.as_bytes()..to_id.as_bytes()) {
            let (k, v) = kv?;
            f(Self::decode_call(&k, &v)?);
        }
        Ok(())
    }

    pub fn open_calls(&self) -> Result<Vec<Call>, StoreError> {
        self.via_index(&self.open_calls, |id| self.call(id))
    }

    pub fn open_tasks(&self) -> Result<Vec<Task>, StoreError> {
        self.via_index(&self.open_tasks, |id| self.task(id))
    }

    fn via_index<T>(
        &self,
        index: &sled::Tree,
        get: impl Fn(&str) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        for k in index.iter().keys() {
            let k = k?;
            if let Some(t) = get(&String::from_utf8_lossy(&k))? {
                out.push(t);
            }
        }
        Ok(out)
    }

    /// Tasks, newest first, that pass `keep`, at most `limit`.
    pub fn tasks_newest_first(
        &self,
        limit: usize,
        keep: impl FnMut(&Task) -> bool,
    ) -> Result<Vec<Task>, StoreError> {
        self.tasks_newest_before("~", limit, keep)
    }

    /// As [`Store::tasks_newest_first`], only tasks whose id sorts below `before` (paging).
    pub fn tasks_newest_before(
        &self,
        before: &str,
        limit: usize,
        mut keep: impl FnMut(&Task) -> bool,
    ) -> Result<Vec<Task>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tasks.range(..before.as_bytes()).rev() {
            let (k, v) = kv?;
            let t: Task = Self::decode("tasks", &k, &v)?;
            if keep(&t) {
                out.push(t);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Tasks whose id lies in `[from_id, to_id)` (ids are ULIDs of their creation time), oldest first.
    pub fn tasks_between(&self, from_id: &str, to_id: &str) -> Result<Vec<Task>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tasks.range(from_id.as_bytes()..to_id.as_bytes()) {
            let (k, v) = kv?;
            out.push(Self::decode("tasks", &k, &v)?);
        }
        Ok(out)
    }

    /// Events with `seq >= from`, in order, at most `limit`.
    pub fn events_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        for kv in self.outbox.range(be(from)..).take(limit) {
            let (k, v) = kv?;
            out.push(Self::decode("outbox", &k, &v)?);
        }
        Ok(out)
    }

    /// The highest `seq` the broker has acknowledged (0: none).
    pub fn mqtt_acked(&self) -> Result<u64, StoreError> {
        Ok(self.meta.get(MQTT_ACKED)?.map(|v| from_be(&v)).unwrap_or(0))
    }

    /// Records the broker's acknowledgement up to `seq` and with `prune_keep`, drops outbox events older than `seq - keep` (kept a while
    /// for SSE clients that resume with Last-Event-ID). Not flushed at once: losing it only re-sends events, which
    /// carry the same `event_id`.
    pub fn set_mqtt_acked(&self, seq: u64, prune_keep: Option<u64>) -> Result<(), StoreError> {
        self.meta.insert(MQTT_ACKED, &be(seq))?;
        match prune_keep {
            Some(keep) => self.prune_outbox(seq.saturating_sub(keep)),
            None => Ok(()),
        }
    }

    /// Removes outbox events with `seq < below`.
    pub fn prune_outbox(&self, below: u64) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let mut n = 0;
        for k in self.outbox.range(..be(below)).keys() {
            batch.remove(k?);
            n += 1;
        }
        if n > 0 {
            self.outbox
                .apply_batch(batch)
                .map_err(|e| StoreError::Write(e.to_string()))?;
        }
        Ok(())
    }

    pub fn outbox_len(&self) -> usize {
        self.outbox.len()
    }

    /// A keyed document written by a [`Change`].
    pub fn record<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.records
            .get(key.as_bytes())?
            .map(|v| Self::decode("records", key.as_bytes(), &v))
            .transpose()
    }

    /// Every document whose key starts with `prefix`, in key order.
    pub fn records_with_prefix<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.records.scan_prefix(prefix.as_bytes()) {
            let (k, v) = kv?;
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                Self::decode("records", &k, &v)?,
            ));
        }
        Ok(out)
    }

    /// A small document of an output's own (not part of any change; not flushed at once).
    pub fn meta_json(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.meta
            .get(format!("json/{key}").as_bytes())?
            .map(|v| Self::decode("meta", key.as_bytes(), &v))
            .transpose()
    }

    pub fn set_meta_json(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.meta
            .insert(format!("json/{key}").as_bytes(), json(value))
            .map(|_| ())
            .map_err(|e| StoreError::Write(e.to_string()))
    }

    pub fn add_token(&self, hash: &str, rec: &TokenRecord) -> Result<(), StoreError> {
        self.tokens
            .insert(hash.as_bytes(), json(rec))
            .map_err(|e| StoreError::Write(e.to_string()))?;
        self.flush()
    }

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.tokens
            .get(hash.as_bytes())?
            .map(|v| Self::decode("tokens", hash.as_bytes(), &v))
            .transpose()
    }

    /// Every API token: (hash, record), in hash order.
    pub fn tokens(&self) -> Result<Vec<(String, TokenRecord)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.tokens.iter() {
            let (k, v) = kv?;
            out.push((
                String::from_utf8_lossy(&k).into_owned(),
                Self::decode("tokens", &k, &v)?,
            ));
        }
        Ok(out)
    }

    /// Revokes the token with this hash; true when there was one.
    pub fn delete_token(&self, hash: &str) -> Result<bool, StoreError> {
        let old = self
            .tokens
            .remove(hash.as_bytes())
            .map_err(|e| StoreError::Write(e.to_string()))?;
        self.flush()?;
        Ok(old.is_some())
    }

    /// A document of the accounts tree (web users, audit entries), by key.
    pub fn account<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.accounts
            .get(key.as_bytes())?
            .map(|v| Self::decode("accounts", key.as_bytes(), &v))
            .transpose()
    }

    /// Writes (or with `None` removes) a document of the accounts tree, flushed before it returns.
    pub fn put_account<T: Serialize>(
        &self,
        key: &str,
        value: Option<&T>,
    ) -> Result<(), StoreError> {
        match value {
            Some(v) => self.accounts.insert(key.as_bytes(), json(v)).map(|_| ()),
            None => self.accounts.remove(key.as_bytes()).map(|_| ()),
        }
        .map_err(|e| StoreError::Write(e.to_string()))?;
        self.flush()
    }

    /// Documents of the accounts tree under `prefix`, newest (highest key) first, at most `limit`, with keys
    /// below `before` when it is given (paging).
    pub fn accounts_newest_first<T: DeserializeOwned>(
        &self,
        prefix: &str,
        before: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let lo = prefix.as_bytes().to_vec();
        let hi = match before {
            Some(b) => format!("{prefix}{b}").into_bytes(),
            None => format!("{prefix}\u{10ffff}").into_bytes(),
        };
        let mut out = Vec::new();
        for kv in self.accounts.range(lo..hi).rev().take(limit) {
            let (k, v) = kv?;
            out.push((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                Self::decode("accounts", &k, &v)?,
            ));
        }
        Ok(out)
    }

    /// Bytes on disk (for /metrics and health).
    pub fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }

    /// A cheap read that fails when the store is unusable.
    pub fn check(&self) -> Result<(), StoreError> {
        self.meta.get(SCHEMA)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::*;
    use chrono::Utc;

    fn call(id: &str, ended: bool) -> Call {
        Call {
            id: id.into(),
            line: "line1".into(),
            direction: Direction::In,
            number: Some("1".into()),
            number_status: NumberStatus::Known,
            name: None,
            started_at: Utc::now(),
            answered_at: None,
            ended_at: ended.then(Utc::now),
            rings: 1,
            wait_s: None,
            talk_s: None,
            outcome: None,
            agent: None,
            repeat: false,
            vip: false,
            clock_unsynced: false,
            message: None,
        }
    }

    #[test]
    fn schema_version_is_raised_on_open_and_a_newer_store_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store.meta.insert(SCHEMA, &be(1)).unwrap();
            store.flush().unwrap();
        }
        {
            let store = Store::reopen(dir.path());
            let v = store.meta.get(SCHEMA).unwrap().unwrap();
            assert_eq!(
                from_be(&v),
                SCHEMA_VERSION,
                "a version-1 store is marked as this version's"
            );
            store.meta.insert(SCHEMA, &be(SCHEMA_VERSION + 1)).unwrap();
            store.flush().unwrap();
        }
        let err = loop {
            match Store::open(dir.path()) {
                Err(StoreError::Locked { .. }) => {
                    std::thread::sleep(std::time::Duration::from_millis(20))
                }
                other => break other.err().expect("a newer store must be refused"),
            }
        };
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
            },
        )
        .unwrap();
        assert_eq!(s.token("abc").unwrap().unwrap().name, "ha");
        assert!(s.token("abd").unwrap().is_none());
    }
}
