//! The durable store. Every call into the storage engine (redb) lives in this module, so it could be replaced.
//!
//! One file, `linekeeper.redb` in the store directory. Tables: `calls` and `tasks` (key: the ULID id, so keys sort
//! by time), `open_calls` and `open_tasks` (indexes of what is still open), `outbox` (key: the event `seq`,
//! big-endian), `meta` (schema version, next seq, the seq MQTT has acknowledged), `tokens` (key: SHA-256 of an API
//! token), `records` (small keyed documents), `accounts` (web users and the audit log).
//!
//! Durability: a [`Change`] (calls, tasks, outbox events and the next seq, together) is one redb write transaction
//! committed with [`redb::Durability::Immediate`]: `commit` returns only after the data and the commit record are
//! fsynced (`fdatasync`), so nothing is published or acknowledged before it would survive a power cut. API tokens,
//! web users and the audit log are committed the same way. Only two writes are left to the next durable commit (a
//! power cut can lose them, which costs nothing): the MQTT acknowledgement watermark with outbox pruning (losing it
//! re-sends events with their own seq and event_id) and outputs' small memos (`set_meta_json`).
//!
//! Stores of linekeeper 0.1 were sled 0.34 databases in `db/`, which never reached the disk before a power cut
//! (sled's flush ends in `sync_file_range`, never `fsync`). [`Store::open`] migrates such a store once (see
//! `migrate`).
//!
//! Long on purpose: every call of the storage engine lives in this one module.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use tracing::warn;

use crate::model::{Call, Event, Task, Time};

mod codec;
mod migrate;

/// 1: every record JSON (sled). 2: calls as compact binary records (`codec`; sled); version-1 records still read.
/// 3: the same records in redb (a migrated sled store is marked 3 too, so linekeeper 0.1 refuses it). A store is
/// marked with this version when it opens, so an older linekeeper refuses it (`TooNew`) rather than misreading it.
pub const SCHEMA_VERSION: u64 = 3;

/// The store's file inside the store directory.
pub const FILE_NAME: &str = "linekeeper.redb";

/// redb's page cache. Small boards: the store is read in ranges (reports, the call log), so a modest cache is
/// enough; redb's default (1 GiB) is not for a 512 MB board.
const CACHE_BYTES: usize = 8 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the store at {path} is in use by another linekeeper process (is the daemon running?)"
    )]
    Locked { path: PathBuf },
    #[error("the store at {path} cannot be opened: {reason}; check the path, its permissions and free disk space")]
    Open { path: PathBuf, reason: String },
    #[error("store write failed: {0}; check free disk space and the disk's health")]
    Write(String),
    #[error("store read failed: {0}")]
    Read(String),
    #[error("record {tree}/{key} is unreadable: {source}")]
    Corrupt {
        tree: &'static str,
        key: String,
        source: serde_json::Error,
    },
    #[error("the store at {path} has schema version {found}, newer than this linekeeper understands ({SCHEMA_VERSION}); upgrade linekeeper")]
    TooNew { path: PathBuf, found: u64 },
    #[error("migrating the old store at {from} failed: {reason}; the old store is unchanged, and linekeeper will try again at the next start")]
    Migrate { from: PathBuf, reason: String },
}

/// Errors of a read: the storage engine's, said as a read failure.
macro_rules! read_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Read(e.to_string())
            }
        }
    )*};
}
read_errors!(redb::StorageError, redb::TableError, redb::TransactionError);

fn write_err(e: impl std::fmt::Display) -> StoreError {
    StoreError::Write(e.to_string())
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
    /// What the token may do. Tokens made before roles existed have none and act as admin (so nothing that worked
    /// stops working); the diagnostics page lists them for review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<crate::model::Role>,
}

impl TokenRecord {
    pub fn role(&self) -> crate::model::Role {
        self.role.unwrap_or(crate::model::Role::Admin)
    }
}

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

const CALLS: Table = TableDefinition::new("calls");
const TASKS: Table = TableDefinition::new("tasks");
const OPEN_CALLS: Table = TableDefinition::new("open_calls");
const OPEN_TASKS: Table = TableDefinition::new("open_tasks");
const OUTBOX: Table = TableDefinition::new("outbox");
const META: Table = TableDefinition::new("meta");
const TOKENS: Table = TableDefinition::new("tokens");
const RECORDS: Table = TableDefinition::new("records");
/// Web users (`user/{name}`) and the audit log (`audit/{ulid}`).
const ACCOUNTS: Table = TableDefinition::new("accounts");

/// Every table, with the name it had as a sled tree (the migration copies each tree into its table).
const TABLES: [(&str, Table); 9] = [
    ("calls", CALLS),
    ("tasks", TASKS),
    ("open_calls", OPEN_CALLS),
    ("open_tasks", OPEN_TASKS),
    ("outbox", OUTBOX),
    ("meta", META),
    ("tokens", TOKENS),
    ("records", RECORDS),
    ("accounts", ACCOUNTS),
];

#[derive(Clone)]
pub struct Store {
    /// `None` after an I/O error closed it (redb refuses every operation after one until it is opened again): the
    /// next operation opens it again, so a disk that was full or failing for a while does not need a restart.
    db: Arc<RwLock<Option<Arc<redb::Database>>>>,
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

/// fsyncs a directory, so a file created or renamed in it survives a power cut.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Opens (or creates) the redb file at `file`; a file another process holds is `Locked`.
fn open_db(dir: &Path, file: &Path) -> Result<redb::Database, StoreError> {
    let existed = file.exists();
    let db = redb::Builder::new()
        .set_cache_size(CACHE_BYTES)
        .create(file)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Locked {
                path: dir.to_path_buf(),
            },
            other => StoreError::Open {
                path: dir.to_path_buf(),
                reason: other.to_string(),
            },
        })?;
    if !existed {
        // The new file's directory entry must be durable before anything in it is acknowledged.
        sync_dir(dir).map_err(|e| StoreError::Open {
            path: dir.to_path_buf(),
            reason: format!("cannot sync the directory: {e}"),
        })?;
    }
    Ok(db)
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if !path.exists() {
            std::fs::create_dir_all(path).map_err(|e| open_err(e.to_string()))?;
            if let Some(parent) = path.parent() {
                sync_dir(parent).map_err(|e| open_err(format!("cannot sync its parent: {e}")))?;
            }
        }
        let file = path.join(FILE_NAME);
        if !file.exists() && migrate::sled_store_present(path) {
            migrate::from_sled(path, &file)?;
        }
        let db = open_db(path, &file)?;
        let store = Store {
            db: Arc::new(RwLock::new(Some(Arc::new(db)))),
            path: path.to_path_buf(),
        };
        // A file redb just created has no tables yet.
        let found = match store.meta_u64(SCHEMA) {
            Err(StoreError::Read(_)) if !store.has_table("meta")? => None,
            other => other?,
        };
        match found {
            Some(v) if v > SCHEMA_VERSION => {
                return Err(StoreError::TooNew {
                    path: path.to_path_buf(),
                    found: v,
                })
            }
            Some(v) if v == SCHEMA_VERSION => {}
            _ => {
                // A new store: create every table and mark the version, durably.
                store.write(redb::Durability::Immediate, |txn| {
                    for (_, t) in TABLES {
                        txn.open_table(t)?;
                    }
                    txn.open_table(META)?
                        .insert(SCHEMA, be(SCHEMA_VERSION).as_slice())?;
                    Ok(())
                })?;
            }
        }
        Ok(store)
    }

    /// Opens a store this process just closed. (sled's I/O threads held a closed store for a moment; redb lets
    /// go at once.) For tests.
    #[cfg(test)]
    pub fn reopen(path: &Path) -> Store {
        Store::open(path).unwrap_or_else(|e| panic!("reopen {}: {e}", path.display()))
    }

    fn has_table(&self, name: &str) -> Result<bool, StoreError> {
        let txn = self.db()?.begin_read()?;
        let mut tables = txn.list_tables()?;
        Ok(tables.any(|t| redb::TableHandle::name(&t) == name))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one write transaction and commits it with `durability`.
    fn write(
        &self,
        durability: redb::Durability,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), StoreError> {
        let db = self.db()?;
        let r = (|| -> Result<(), redb::Error> {
            let mut txn = db.begin_write()?;
            if !matches!(durability, redb::Durability::Immediate) {
                txn.set_durability(durability)?;
            }
            f(&txn)?;
            txn.commit()?;
            Ok(())
        })();
        r.map_err(|e| {
            self.closed_by(&e);
            write_err(e)
        })
    }

    /// The open database, opened again if an I/O error closed it.
    fn db(&self) -> Result<Arc<redb::Database>, StoreError> {
        if let Some(db) = self.db.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return Ok(db.clone());
        }
        let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
        if let Some(db) = slot.as_ref() {
            return Ok(db.clone());
        }
        let db = Arc::new(
            open_db(&self.path, &self.path.join(FILE_NAME)).map_err(|e| {
                StoreError::Write(format!(
                    "the store was closed after an I/O error and cannot be opened again yet: {e}"
                ))
            })?,
        );
        warn!(path = %self.path.display(), "store opened again after an I/O error");
        *slot = Some(db.clone());
        Ok(db)
    }

    /// After an I/O error redb refuses everything until the database is opened again: let go of it (the next
    /// operation opens it, once every transaction still using it has ended).
    fn closed_by(&self, e: &redb::Error) {
        if matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo) {
            let mut slot = self.db.write().unwrap_or_else(|e| e.into_inner());
            if slot.take().is_some() {
                warn!(path = %self.path.display(), error = %e,
                    "store I/O error: closing it, to open it again at the next write");
            }
        }
    }

    /// Runs `f` on one table in a read transaction.
    fn read<T>(
        &self,
        table: Table,
        f: impl FnOnce(&redb::ReadOnlyTable<&'static [u8], &'static [u8]>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db()?.begin_read()?;
        let t = txn.open_table(table)?;
        f(&t)
    }

    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read(table, |t| Ok(t.get(key)?.map(|v| v.value().to_vec())))
    }

    fn meta_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        Ok(self.get(META, key)?.map(|v| from_be(&v)))
    }

    /// Writes a change atomically and durably (fsynced before it returns). `next_seq` is the sequence number after
    /// the change's last event.
    pub fn commit(&self, change: &Change, next_seq: u64) -> Result<(), StoreError> {
        self.write(redb::Durability::Immediate, |txn| {
            if !change.records.is_empty() {
                let mut records = txn.open_table(RECORDS)?;
                for (k, v) in &change.records {
                    match v {
                        Some(v) => {
                            records.insert(k.as_bytes(), v.as_slice())?;
                        }
                        None => {
                            records.remove(k.as_bytes())?;
                        }
                    }
                }
            }
            if !change.calls.is_empty() {
                let mut calls = txn.open_table(CALLS)?;
                let mut open = txn.open_table(OPEN_CALLS)?;
                for c in &change.calls {
                    calls.insert(c.id.as_bytes(), codec::encode_call(c).as_slice())?;
                    if c.ended_at.is_none() {
                        open.insert(c.id.as_bytes(), [].as_slice())?;
                    } else {
                        open.remove(c.id.as_bytes())?;
                    }
                }
            }
            if !change.tasks.is_empty() {
                let mut tasks = txn.open_table(TASKS)?;
                let mut open = txn.open_table(OPEN_TASKS)?;
                for t in &change.tasks {
                    tasks.insert(t.id.as_bytes(), json(t).as_slice())?;
                    if t.state == crate::model::TaskState::Open {
                        open.insert(t.id.as_bytes(), [].as_slice())?;
                    } else {
                        open.remove(t.id.as_bytes())?;
                    }
                }
            }
            if !change.events.is_empty() {
                let mut outbox = txn.open_table(OUTBOX)?;
                for e in &change.events {
                    outbox.insert(be(e.seq).as_slice(), json(e).as_slice())?;
                }
            }
            txn.open_table(META)?
                .insert(NEXT_SEQ, be(next_seq).as_slice())?;
            Ok(())
        })
    }

    pub fn next_seq(&self) -> Result<u64, StoreError> {
        Ok(self.meta_u64(NEXT_SEQ)?.unwrap_or(1))
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

    /// A record of the `calls` table: binary, or JSON as written before (see `codec`).
    fn decode_call(key: &[u8], v: &[u8]) -> Result<Call, StoreError> {
        codec::decode_call(v).map_err(|source| StoreError::Corrupt {
            tree: "calls",
            key: String::from_utf8_lossy(key).into_owned(),
            source,
        })
    }

    pub fn call(&self, id: &str) -> Result<Option<Call>, StoreError> {
        self.get(CALLS, id.as_bytes())?
            .map(|v| Self::decode_call(id.as_bytes(), &v))
            .transpose()
    }

    pub fn task(&self, id: &str) -> Result<Option<Task>, StoreError> {
        self.get(TASKS, id.as_bytes())?
            .map(|v| Self::decode("tasks", id.as_bytes(), &v))
            .transpose()
    }

    /// Visits the (key, value) pairs of `table` with keys in `[lo, hi)` (`hi` `None`: to the end), oldest first or,
    /// with `rev`, newest first, until `f` returns false.
    fn scan(
        &self,
        table: Table,
        lo: &[u8],
        hi: Option<&[u8]>,
        rev: bool,
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.read(table, |t| {
            let range = match hi {
                Some(hi) => t.range::<&[u8]>(lo..hi)?,
                None => t.range::<&[u8]>(lo..)?,
            };
            let mut visit = |kv: Result<_, redb::StorageError>| -> Result<bool, StoreError> {
                let (k, v): (redb::AccessGuard<&[u8]>, redb::AccessGuard<&[u8]>) = kv?;
                f(k.value(), v.value())
            };
            if rev {
                for kv in range.rev() {
                    if !visit(kv)? {
                        break;
                    }
                }
            } else {
                for kv in range {
                    if !visit(kv)? {
                        break;
                    }
                }
            }
            Ok(())
        })
    }

    /// Visits the records of `calls` with ids in `[from_id, to_id)`, as `scan`.
    fn calls_in(
        &self,
        from_id: &str,
        to_id: &str,
        rev: bool,
        f: impl FnMut(&[u8], &[u8]) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        self.scan(CALLS, from_id.as_bytes(), Some(to_id.as_bytes()), rev, f)
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
        if limit == 0 {
            return Ok(out);
        }
        self.calls_in(from_id, to_id, true, |k, v| {
            let c = Self::decode_call(k, v)?;
            if keep(&c) {
                out.push(c);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Calls in `[from_id, to_id)`, oldest first.
    pub fn calls_between(&self, from_id: &str, to_id: &str) -> Result<Vec<Call>, StoreError> {
        let mut out = Vec::new();
        self.for_each_call(from_id, to_id, |c| out.push(c))?;
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
        self.calls_in(from_id, to_id, false, |k, v| {
            let (number, started_at) =
                codec::decode_number_at(v).map_err(|source| StoreError::Corrupt {
                    tree: "calls",
                    key: String::from_utf8_lossy(k).into_owned(),
                    source,
                })?;
            if let Some(n) = number {
                f(n, started_at);
            }
            Ok(true)
        })
    }

    /// Visits calls in `[from_id, to_id)`, oldest first.
    pub fn for_each_call(
        &self,
        from_id: &str,
        to_id: &str,
        mut f: impl FnMut(Call),
    ) -> Result<(), StoreError> {
        self.calls_in(from_id, to_id, false, |k, v| {
            f(Self::decode_call(k, v)?);
            Ok(true)
        })
    }

    pub fn open_calls(&self) -> Result<Vec<Call>, StoreError> {
        self.via_index(OPEN_CALLS, |id| self.call(id))
    }

    pub fn open_tasks(&self) -> Result<Vec<Task>, StoreError> {
        self.via_index(OPEN_TASKS, |id| self.task(id))
    }

    fn via_index<T>(
        &self,
        index: Table,
        get: impl Fn(&str) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut ids = Vec::new();
        self.scan(index, b"", None, false, |k, _| {
            ids.push(String::from_utf8_lossy(k).into_owned());
            Ok(true)
        })?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(t) = get(&id)? {
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
        if limit == 0 {
            return Ok(out);
        }
        self.scan(TASKS, b"", Some(before.as_bytes()), true, |k, v| {
            let t: Task = Self::decode("tasks", k, v)?;
            if keep(&t) {
                out.push(t);
            }
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Tasks whose id lies in `[from_id, to_id)` (ids are ULIDs of their creation time), oldest first.
    pub fn tasks_between(&self, from_id: &str, to_id: &str) -> Result<Vec<Task>, StoreError> {
        let mut out = Vec::new();
        self.scan(
            TASKS,
            from_id.as_bytes(),
            Some(to_id.as_bytes()),
            false,
            |k, v| {
                out.push(Self::decode("tasks", k, v)?);
                Ok(true)
            },
        )?;
        Ok(out)
    }

    /// Events with `seq >= from`, in order, at most `limit`.
    pub fn events_from(&self, from: u64, limit: usize) -> Result<Vec<Event>, StoreError> {
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        self.scan(OUTBOX, &be(from), None, false, |k, v| {
            out.push(Self::decode("outbox", k, v)?);
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// The highest `seq` the broker has acknowledged (0: none).
    pub fn mqtt_acked(&self) -> Result<u64, StoreError> {
        Ok(self.meta_u64(MQTT_ACKED)?.unwrap_or(0))
    }

    /// Records the broker's acknowledgement up to `seq` and with `prune_keep`, drops outbox events older than
    /// `seq - keep` (kept a while for SSE clients that resume with Last-Event-ID). Not synced at once (it becomes
    /// durable with the next change): losing it only re-sends events, which carry the same `seq` and `event_id`.
    pub fn set_mqtt_acked(&self, seq: u64, prune_keep: Option<u64>) -> Result<(), StoreError> {
        self.write(redb::Durability::None, |txn| {
            txn.open_table(META)?
                .insert(MQTT_ACKED, be(seq).as_slice())?;
            if let Some(keep) = prune_keep {
                prune(txn, seq.saturating_sub(keep))?;
            }
            Ok(())
        })
    }

    /// Removes outbox events with `seq < below` (not synced at once, as `set_mqtt_acked`).
    pub fn prune_outbox(&self, below: u64) -> Result<(), StoreError> {
        self.write(redb::Durability::None, |txn| prune(txn, below))
    }

    pub fn outbox_len(&self) -> usize {
        self.read(OUTBOX, |t| Ok(t.len()?)).unwrap_or(0) as usize
    }

    /// A keyed document written by a [`Change`].
    pub fn record<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.get(RECORDS, key.as_bytes())?
            .map(|v| Self::decode("records", key.as_bytes(), &v))
            .transpose()
    }

    /// Every document whose key starts with `prefix`, in key order.
    pub fn records_with_prefix<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let mut out = Vec::new();
        let p = prefix.as_bytes();
        self.scan(RECORDS, p, None, false, |k, v| {
            if !k.starts_with(p) {
                return Ok(false);
            }
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                Self::decode("records", k, v)?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// A small document of an output's own (not part of any change; not synced at once).
    pub fn meta_json(&self, key: &str) -> Result<Option<serde_json::Value>, StoreError> {
        self.get(META, format!("json/{key}").as_bytes())?
            .map(|v| Self::decode("meta", key.as_bytes(), &v))
            .transpose()
    }

    pub fn set_meta_json(&self, key: &str, value: &serde_json::Value) -> Result<(), StoreError> {
        self.write(redb::Durability::None, |txn| {
            txn.open_table(META)?
                .insert(format!("json/{key}").as_bytes(), json(value).as_slice())?;
            Ok(())
        })
    }

    /// Stores an API token's hash, durably before it returns.
    pub fn add_token(&self, hash: &str, rec: &TokenRecord) -> Result<(), StoreError> {
        self.write(redb::Durability::Immediate, |txn| {
            txn.open_table(TOKENS)?
                .insert(hash.as_bytes(), json(rec).as_slice())?;
            Ok(())
        })
    }

    pub fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        self.get(TOKENS, hash.as_bytes())?
            .map(|v| Self::decode("tokens", hash.as_bytes(), &v))
            .transpose()
    }

    /// Every API token: (hash, record), in hash order.
    pub fn tokens(&self) -> Result<Vec<(String, TokenRecord)>, StoreError> {
        let mut out = Vec::new();
        self.scan(TOKENS, b"", None, false, |k, v| {
            out.push((
                String::from_utf8_lossy(k).into_owned(),
                Self::decode("tokens", k, v)?,
            ));
            Ok(true)
        })?;
        Ok(out)
    }

    /// Revokes the token with this hash, durably; true when there was one.
    pub fn delete_token(&self, hash: &str) -> Result<bool, StoreError> {
        let mut found = false;
        self.write(redb::Durability::Immediate, |txn| {
            found = txn.open_table(TOKENS)?.remove(hash.as_bytes())?.is_some();
            Ok(())
        })?;
        Ok(found)
    }

    /// A document of the accounts table (web users, audit entries), by key.
    pub fn account<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, StoreError> {
        self.get(ACCOUNTS, key.as_bytes())?
            .map(|v| Self::decode("accounts", key.as_bytes(), &v))
            .transpose()
    }

    /// Writes (or with `None` removes) a document of the accounts table, durably before it returns.
    pub fn put_account<T: Serialize>(
        &self,
        key: &str,
        value: Option<&T>,
    ) -> Result<(), StoreError> {
        self.write(redb::Durability::Immediate, |txn| {
            let mut t = txn.open_table(ACCOUNTS)?;
            match value {
                Some(v) => {
                    t.insert(key.as_bytes(), json(v).as_slice())?;
                }
                None => {
                    t.remove(key.as_bytes())?;
                }
            }
            Ok(())
        })
    }

    /// Documents of the accounts table under `prefix`, newest (highest key) first, at most `limit`, with keys
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
        if limit == 0 {
            return Ok(out);
        }
        self.scan(ACCOUNTS, &lo, Some(&hi), true, |k, v| {
            out.push((
                String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                Self::decode("accounts", k, v)?,
            ));
            Ok(out.len() < limit)
        })?;
        Ok(out)
    }

    /// Bytes on disk (for /metrics and health).
    pub fn size_on_disk(&self) -> u64 {
        std::fs::metadata(self.path.join(FILE_NAME))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// A cheap read that fails when the store is unusable.
    pub fn check(&self) -> Result<(), StoreError> {
        self.meta_u64(SCHEMA)?;
        Ok(())
    }

    /// Closes the database as an I/O error does (the next operation opens it again), for tests.
    #[cfg(test)]
    pub(crate) fn close(&self) {
        self.db.write().unwrap().take();
    }

    /// A value of a table as stored, for tests of the encoding.
    #[cfg(test)]
    pub(crate) fn get_raw(&self, table: &str, key: &[u8]) -> Option<Vec<u8>> {
        let (_, t) = TABLES.into_iter().find(|(n, _)| *n == table).unwrap();
        self.get(t, key).unwrap()
    }

    /// Writes a value as is (durably), for tests of old or damaged records.
    #[cfg(test)]
    pub(crate) fn put_raw(&self, table: &str, key: &[u8], value: &[u8]) {
        let (_, t) = TABLES.into_iter().find(|(n, _)| *n == table).unwrap();
        self.write(redb::Durability::Immediate, |txn| {
            txn.open_table(t)?.insert(key, value)?;
            Ok(())
        })
        .unwrap()
    }
}

fn prune(txn: &redb::WriteTransaction, below: u64) -> Result<(), redb::Error> {
    let mut outbox = txn.open_table(OUTBOX)?;
    outbox.retain_in::<&[u8], _>(..be(below).as_slice(), |_, _| false)?;
    Ok(())
}

#[cfg(test)]
mod tests;
