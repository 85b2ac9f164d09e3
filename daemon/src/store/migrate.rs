//! One-time migration of a linekeeper 0.1 store (sled 0.34 in `db/` of the store directory) into redb.
//!
//! Runs at [`super::Store::open`] when the store directory has a sled store and no redb file yet:
//!
//! 1. opens the sled store (refused with `Locked` while an old daemon holds it) and checks its schema version;
//! 2. copies every tree into the table of the same name of `linekeeper.redb.migrating`, byte for byte (records
//!    keep their encoding: JSON, or binary calls), in transactions of [`CHUNK`] records, the last one durable;
//! 3. counts every table against its tree, marks the new store with this schema version, renames the file to
//!    `linekeeper.redb` and fsyncs the directory: from that instant the migration is done, atomically;
//! 4. marks the old sled store with the schema version too (so linekeeper 0.1, if reinstalled, refuses it
//!    instead of running on stale records) and leaves it where it was, as a backup, with a log line saying so.
//!
//! A failure or a power cut anywhere before the rename leaves the old store untouched and no redb file, so the next
//! start migrates again from the beginning.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tracing::{info, warn};

use super::{be, from_be, StoreError, SCHEMA, SCHEMA_VERSION, TABLES};

/// The directory of a 0.1 store, inside the store directory.
const SLED_DIR: &str = "db";
/// Records copied per redb transaction.
const CHUNK: usize = 5000;

pub(super) fn sled_store_present(store_dir: &Path) -> bool {
    store_dir.join(SLED_DIR).join("conf").is_file()
}

pub(super) fn from_sled(store_dir: &Path, file: &Path) -> Result<(), StoreError> {
    let from = store_dir.join(SLED_DIR);
    let fail = |reason: String| StoreError::Migrate {
        from: from.clone(),
        reason,
    };
    let started = Instant::now();
    let sled_db = sled::Config::new()
        .path(&from)
        .cache_capacity(8 * 1024 * 1024)
        .flush_every_ms(None)
        .open()
        .map_err(|e| {
            if e.to_string().contains("could not acquire lock") {
                StoreError::Locked {
                    path: store_dir.to_path_buf(),
                }
            } else {
                fail(format!("cannot open it: {e}"))
            }
        })?;
    let meta = sled_db.open_tree("meta").map_err(|e| fail(e.to_string()))?;
    let version = meta
        .get(SCHEMA)
        .map_err(|e| fail(e.to_string()))?
        .map(|v| from_be(&v))
        .unwrap_or(1);
    if version >= SCHEMA_VERSION {
        return Err(fail(format!(
            "it is marked as already migrated (schema version {version}), but {} is missing; restore that file \
             from a backup, or move {} away to start with an empty store",
            file.display(),
            from.display()
        )));
    }
    info!(from = %from.display(), to = %file.display(), schema = version,
        "migrating the store from sled to redb (once)");

    let tmp: PathBuf = file.with_extension("redb.migrating");
    let _ = std::fs::remove_file(&tmp);
    let copied = copy_all(&sled_db, &tmp).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })?;
    std::fs::rename(&tmp, file)
        .map_err(|e| fail(format!("cannot rename {}: {e}", tmp.display())))?;
    super::sync_dir(store_dir)
        .map_err(|e| fail(format!("cannot sync the store directory: {e}")))?;

    // The migration is done; mark the old store so an older linekeeper refuses it.
    let marked = meta
        .insert(SCHEMA, &be(SCHEMA_VERSION))
        .and_then(|_| sled_db.flush())
        .map_err(|e| e.to_string())
        .and_then(|_| sync_sled_files(&from).map_err(|e| e.to_string()));
    if let Err(e) = marked {
        warn!(error = %e, from = %from.display(), "could not mark the old sled store as migrated; \
            delete it so an older linekeeper cannot run on it");
    }
    let total: u64 = copied.iter().map(|(_, n)| n).sum();
    let per_table = copied
        .iter()
        .map(|(t, n)| format!("{t} {n}"))
        .collect::<Vec<_>>()
        .join(", ");
    info!(records = total, tables = %per_table, secs = started.elapsed().as_secs_f64(),
        backup = %from.display(),
        "store migrated to redb; the old sled store is kept unchanged (but marked) as a backup: delete it once \
         you are satisfied");
    Ok(())
}

/// Copies every tree into a new redb file at `tmp`; (table, records) per table.
fn copy_all(sled_db: &sled::Db, tmp: &Path) -> Result<Vec<(&'static str, u64)>, String> {
    let db = redb::Builder::new()
        .set_cache_size(super::CACHE_BYTES)
        .create(tmp)
        .map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let mut counts = Vec::new();
    for (name, table) in TABLES {
        let tree = sled_db.open_tree(name).map_err(|e| e.to_string())?;
        let mut n = 0u64;
        let mut iter = tree.iter();
        loop {
            let mut txn = db.begin_write().map_err(|e| e.to_string())?;
            txn.set_durability(redb::Durability::None)
                .map_err(|e| e.to_string())?;
            let mut done = true;
            {
                let mut t = txn.open_table(table).map_err(|e| e.to_string())?;
                for kv in iter.by_ref() {
                    let (k, v) = kv.map_err(|e| format!("reading {name}: {e}"))?;
                    if name == "meta" && k.as_ref() == SCHEMA {
                        continue;
                    }
                    t.insert(k.as_ref(), v.as_ref())
                        .map_err(|e| e.to_string())?;
                    n += 1;
                    if n.is_multiple_of(CHUNK as u64) {
                        done = false;
                        break;
                    }
                }
            }
            txn.commit().map_err(|e| e.to_string())?;
            if done {
                break;
            }
        }
        counts.push((name, n));
    }
    // Count every table against its tree, mark the version, and make it all durable in one commit.
    let txn = db.begin_write().map_err(|e| e.to_string())?;
    {
        for ((name, table), (_, n)) in TABLES.iter().zip(&counts) {
            let t = txn.open_table(*table).map_err(|e| e.to_string())?;
            let have = redb::ReadableTableMetadata::len(&t).map_err(|e| e.to_string())?;
            if have != *n {
                return Err(format!(
                    "table {name} has {have} records after the copy, the tree {n}"
                ));
            }
        }
        txn.open_table(super::META)
            .map_err(|e| e.to_string())?
            .insert(SCHEMA, be(SCHEMA_VERSION).as_slice())
            .map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())?;
    Ok(counts)
}

/// sled's own flush does not reach the disk (`sync_file_range`); fsync its files and directory ourselves.
fn sync_sled_files(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::File::open(entry.path())?.sync_all()?;
        }
    }
    super::sync_dir(dir)
}
