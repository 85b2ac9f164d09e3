//! powerfs: an in-process FUSE file system that behaves like a disk with a volatile write cache, for power-cut
//! tests.
//!
//! Everything a process does (write, truncate, fallocate, create, mkdir, mknod, rename, unlink, rmdir) lands in a
//! volatile layer that the process sees at once. Only what POSIX promises becomes durable:
//!
//! - `fsync`/`fdatasync` of a file makes that file's data and size durable (not its name);
//! - `fsyncdir` (an `fsync` of a directory's fd) makes that directory's entries durable: the creates, renames and
//!   unlinks in it (not the data of the files they name).
//!
//! [`PowerFs::cut`] is the power going: from that instant, under the same mutex every operation takes, each further
//! operation fails with EIO. An armed cut ([`PowerFs::cut_at_op`], [`PowerFs::cut_before_nth`]) is the same cut made
//! by the file system itself, right before the n-th mutating operation ([`OpKind`]: write, truncate, fallocate,
//! fsync, fdatasync, fsyncdir, create, rename, unlink) from the arm, or the n-th of one kind: between a commit's
//! writes and its sync, or among its writes, where a cut from outside almost never lands. [`PowerFs::restore`] is the power coming back: the live state is replaced by what the
//! disk kept, which is
//!
//! - [`RestoreMode::DropAll`]: only what was synced, or
//! - [`RestoreMode::RandomSubset`]: what was synced plus a random subset of the unsynced operations, each write
//!   surviving or not per 4 KiB block, each directory operation as a whole, as a write cache that reorders would
//!   leave it. The result stays consistent: a rename whose source name is not on disk is dropped, and whatever no
//!   surviving directory entry reaches (a file whose creation did not survive, with its writes) is gone.
//!
//! Syncs (`sync_file_range`, `syncfs`, `sync`) that never reach a FUSE file system make nothing durable, as on a
//! disk whose cache they do not flush. The model never invents bytes: a restored byte is one that was written there,
//! or zero where a file was extended.
//!
//! Errors for other tests: [`PowerFs::fail_syncs`], [`PowerFs::fail_writes`] (EIO, ENOSPC...) and
//! [`PowerFs::set_capacity`] (ENOSPC past it).
//!
//! The mount answers opens with `FOPEN_DIRECT_IO` and attributes and entries with a TTL of 0, so the kernel's page
//! cache and dentry cache never show what a restore threw away (memory mappings are therefore not supported). It
//! leaves file locks (`flock`, `fcntl`) to the kernel: it does not ask for the FUSE lock capabilities.
//!
//! The model ([`Model`]) is plain logic, tested without a mount; [`PowerFs::mount`] serves it through `fuser` in a
//! background session of the calling process (as root the kernel mount needs no `fusermount`).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use fuser::{
    BackgroundSession, Config, Errno, FileAttr, FileHandle, FileType, Filesystem, FopenFlags,
    Generation, INodeNo, LockOwner, MountOption, OpenFlags, RenameFlags, ReplyAttr, ReplyCreate,
    ReplyData, ReplyDirectory, ReplyEmpty, ReplyEntry, ReplyOpen, ReplyStatfs, ReplyWrite, Request,
    SessionACL, TimeOrNow, WriteFlags,
};

/// The unit in which an unsynced write survives a [`RestoreMode::RandomSubset`] restore or not.
pub const BLOCK: u64 = 4096;

/// The root directory's inode number.
pub const ROOT: u64 = 1;

const TTL: Duration = Duration::ZERO;

/// What the disk kept when the power came back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreMode {
    /// Only what was synced.
    DropAll,
    /// What was synced, plus each unsynced operation (per block for writes) at random, from this seed.
    RandomSubset(u64),
    /// Everything, synced or not: a crash of the processes without a power cut (`kill -9`), the control case
    /// that shows a test's checks are not fooled by the restore itself.
    KeepAll,
}

impl std::fmt::Display for RestoreMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreMode::DropAll => write!(f, "drop-all"),
            RestoreMode::KeepAll => write!(f, "keep-all"),
            RestoreMode::RandomSubset(seed) => write!(f, "random-subset({seed})"),
        }
    }
}

/// A mutating operation: what an armed cut counts ([`Model::cut_at_op`], [`Model::cut_before_nth`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpKind {
    Write,
    /// `ftruncate`/`truncate`, an `O_TRUNC` open, `setattr` of the size.
    SetLen,
    Fallocate,
    /// `fsync` of a file.
    Fsync,
    /// `fdatasync` of a file.
    Fdatasync,
    /// `fsync`/`fdatasync` of a directory.
    Fsyncdir,
    /// Create, mkdir, mknod, symlink, link.
    Create,
    Rename,
    /// Unlink, rmdir.
    Unlink,
}

impl OpKind {
    pub fn name(self) -> &'static str {
        match self {
            OpKind::Write => "write",
            OpKind::SetLen => "set_len",
            OpKind::Fallocate => "fallocate",
            OpKind::Fsync => "fsync",
            OpKind::Fdatasync => "fdatasync",
            OpKind::Fsyncdir => "fsyncdir",
            OpKind::Create => "create",
            OpKind::Rename => "rename",
            OpKind::Unlink => "unlink",
        }
    }
}

impl std::fmt::Display for OpKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What an armed cut aims at: the n-th mutating operation from the arm (`kind` `None`), or the n-th of `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CutAim {
    pub kind: Option<OpKind>,
    pub n: u64,
}

impl std::fmt::Display for CutAim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nth = match (self.n % 10, self.n % 100) {
            (_, 11..=13) => "th",
            (1, _) => "st",
            (2, _) => "nd",
            (3, _) => "rd",
            _ => "th",
        };
        match self.kind {
            None => write!(f, "the {}{nth} operation", self.n),
            Some(k) => write!(f, "the {}{nth} {k}", self.n),
        }
    }
}

/// An armed cut that fired: where it landed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FiredCut {
    pub aim: CutAim,
    /// The operation refused with EIO, the first one after the power went.
    pub before: OpKind,
    /// The mutating operation before it (since the mount, not only since the arm), if any.
    pub after: Option<OpKind>,
    /// Mutating operations that went through between the arm and the cut.
    pub ops_since_arm: u64,
    /// Unsynced data at the instant of the cut, over all files: 4 KiB parts of writes and size changes.
    pub unsynced_data: u64,
    /// Unsynced directory operations then.
    pub unsynced_entries: u64,
    pub at: Instant,
}

#[derive(Clone, Copy, Debug)]
struct Armed {
    aim: CutAim,
    /// Operations the aim counts still to go through; the cut comes instead of the one that would make it 0.
    left: u64,
    ops: u64,
}

/// Counters of what processes did, since the mount (or since [`PowerFs::take_stats`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub writes: u64,
    pub bytes_written: u64,
    pub truncates: u64,
    pub fallocates: u64,
    /// `fsync` of a file (datasync false).
    pub fsyncs: u64,
    /// `fdatasync` of a file.
    pub fdatasyncs: u64,
    /// `fsync`/`fdatasync` of a directory.
    pub fsyncdirs: u64,
    /// Creates, mkdirs, mknods, symlinks and links.
    pub creates: u64,
    pub renames: u64,
    /// Unlinks and rmdirs.
    pub unlinks: u64,
    /// Operations refused with EIO because the power was cut.
    pub refused_after_cut: u64,
    /// Operations refused by error injection or capacity.
    pub injected_errors: u64,
}

/// What a [`PowerFs::restore`] threw away.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RestoreReport {
    /// Unsynced write blocks and size changes kept / dropped.
    pub data_kept: u64,
    pub data_dropped: u64,
    /// Unsynced directory operations kept / dropped.
    pub entries_kept: u64,
    pub entries_dropped: u64,
    /// Inodes no surviving entry reaches, removed.
    pub inodes_removed: u64,
    /// The paths (relative to the root, a directory with a trailing `/`) that processes saw before the cut and
    /// that are gone with their inode, the topmost ones only (not what was under a vanished directory).
    pub vanished: Vec<String>,
    /// The armed cut that made this power cut, if it was one (`None` after [`Model::cut`] by hand).
    pub fired: Option<FiredCut>,
}

/// A small deterministic generator (SplitMix64), for seeds that reproduce a run.
#[derive(Clone, Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> SplitMix {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        assert!(lo <= hi);
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `percent` %.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

#[derive(Clone, Debug)]
enum DataOp {
    Write { offset: u64, bytes: Vec<u8> },
    SetLen(u64),
}

#[derive(Clone, Debug)]
enum EntryOp {
    /// A name now points at an inode (create, mkdir, mknod, symlink, link, the arriving half of a rename across
    /// directories).
    Link { name: OsString, ino: u64 },
    /// A name is gone (unlink, rmdir, the leaving half of a rename across directories).
    Unlink { name: OsString },
    /// A rename within one directory, atomic: `to` now points at `ino`, `from` is gone.
    Rename {
        from: OsString,
        to: OsString,
        ino: u64,
    },
}

#[derive(Clone, Debug)]
struct Inode {
    kind: FileType,
    perm: u16,
    uid: u32,
    gid: u32,
    rdev: u32,
    atime: SystemTime,
    mtime: SystemTime,
    ctime: SystemTime,
    /// Live links (entries naming it), 0 once unlinked.
    nlink: u32,
    /// Live data (regular files; a symlink's target).
    data: Vec<u8>,
    /// Live entries (directories).
    entries: BTreeMap<OsString, u64>,
    /// Live parent, for `..`.
    parent: u64,
    /// What the disk holds for sure.
    durable_data: Vec<u8>,
    durable_entries: BTreeMap<OsString, u64>,
    /// Unsynced, in order.
    pending_data: Vec<DataOp>,
    pending_entries: Vec<EntryOp>,
}

impl Inode {
    fn new(kind: FileType, perm: u16, uid: u32, gid: u32, rdev: u32, parent: u64) -> Inode {
        let now = SystemTime::now();
        Inode {
            kind,
            perm,
            uid,
            gid,
            rdev,
            atime: now,
            mtime: now,
            ctime: now,
            nlink: 0,
            data: Vec::new(),
            entries: BTreeMap::new(),
            parent,
            durable_data: Vec::new(),
            durable_entries: BTreeMap::new(),
            pending_data: Vec::new(),
            pending_entries: Vec::new(),
        }
    }

    fn is_dir(&self) -> bool {
        self.kind == FileType::Directory
    }
}

/// An error as an errno value (`libc::EIO`, `libc::ENOENT`...).
pub type Error = i32;

/// The file system's state: the live layer, the durable layer and the unsynced operations between them. Pure logic;
/// [`PowerFs`] serves it through FUSE.
#[derive(Debug)]
pub struct Model {
    inodes: HashMap<u64, Inode>,
    next_ino: u64,
    dead: bool,
    fail_syncs: Option<Error>,
    fail_writes: Option<Error>,
    capacity: u64,
    stats: Stats,
    armed: Option<Armed>,
    fired: Option<FiredCut>,
    last_op: Option<OpKind>,
}

impl Default for Model {
    fn default() -> Self {
        Self::new()
    }
}

/// A new file's attributes.
#[derive(Clone, Copy, Debug)]
pub struct NewNode {
    pub kind: FileType,
    pub perm: u16,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u32,
}

impl NewNode {
    pub fn file() -> NewNode {
        NewNode {
            kind: FileType::RegularFile,
            perm: 0o644,
            uid: 0,
            gid: 0,
            rdev: 0,
        }
    }

    pub fn dir() -> NewNode {
        NewNode {
            kind: FileType::Directory,
            perm: 0o755,
            ..NewNode::file()
        }
    }
}

impl Model {
    /// An empty file system (a root directory, durable).
    pub fn new() -> Model {
        let mut root = Inode::new(FileType::Directory, 0o755, 0, 0, 0, ROOT);
        root.nlink = 1;
        let mut inodes = HashMap::new();
        inodes.insert(ROOT, root);
        Model {
            inodes,
            next_ino: ROOT + 1,
            dead: false,
            fail_syncs: None,
            fail_writes: None,
            capacity: u64::MAX,
            stats: Stats::default(),
            armed: None,
            fired: None,
            last_op: None,
        }
    }

    fn alive(&mut self) -> Result<(), Error> {
        if self.dead {
            self.stats.refused_after_cut += 1;
            Err(libc::EIO)
        } else {
            Ok(())
        }
    }

    /// The start of a mutating operation: the power is on, and an armed cut that aims at this one fires now
    /// instead (the operation fails with EIO, as every later one).
    fn enter(&mut self, kind: OpKind) -> Result<(), Error> {
        self.alive()?;
        if let Some(a) = self.armed.as_mut() {
            if a.aim.kind.is_none_or(|k| k == kind) {
                a.left -= 1;
                if a.left == 0 {
                    let a = self.armed.take().expect("armed");
                    let (unsynced_data, unsynced_entries) = self.unsynced();
                    self.fired = Some(FiredCut {
                        aim: a.aim,
                        before: kind,
                        after: self.last_op,
                        ops_since_arm: a.ops,
                        unsynced_data,
                        unsynced_entries,
                        at: Instant::now(),
                    });
                    self.dead = true;
                    self.stats.refused_after_cut += 1;
                    return Err(libc::EIO);
                }
            }
            a.ops += 1;
        }
        self.last_op = Some(kind);
        Ok(())
    }

    /// Unsynced data (4 KiB parts of writes, size changes) and directory operations, over all inodes.
    fn unsynced(&self) -> (u64, u64) {
        let mut data = 0;
        let mut entries = 0;
        for n in self.inodes.values() {
            for op in &n.pending_data {
                data += match op {
                    DataOp::Write { offset, bytes } if !bytes.is_empty() => {
                        (offset + bytes.len() as u64 - 1) / BLOCK - offset / BLOCK + 1
                    }
                    DataOp::Write { .. } => 0,
                    DataOp::SetLen(_) => 1,
                };
            }
            entries += n.pending_entries.len() as u64;
        }
        (data, entries)
    }

    fn node(&self, ino: u64) -> Result<&Inode, Error> {
        self.inodes.get(&ino).ok_or(libc::ENOENT)
    }

    fn node_mut(&mut self, ino: u64) -> Result<&mut Inode, Error> {
        self.inodes.get_mut(&ino).ok_or(libc::ENOENT)
    }

    fn dir(&self, ino: u64) -> Result<&Inode, Error> {
        let n = self.node(ino)?;
        if n.is_dir() {
            Ok(n)
        } else {
            Err(libc::ENOTDIR)
        }
    }

    /// True after [`cut`](Self::cut) until [`restore`](Self::restore).
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    pub fn take_stats(&mut self) -> Stats {
        std::mem::take(&mut self.stats)
    }

    pub fn fail_syncs(&mut self, errno: Option<Error>) {
        self.fail_syncs = errno;
    }

    pub fn fail_writes(&mut self, errno: Option<Error>) {
        self.fail_writes = errno;
    }

    /// Live bytes past which writes that grow the total fail with ENOSPC (`u64::MAX`: no limit).
    pub fn set_capacity(&mut self, bytes: u64) {
        self.capacity = bytes;
    }

    /// The sum of the sizes of the live files.
    pub fn used(&self) -> u64 {
        self.inodes
            .values()
            .filter(|n| n.nlink > 0)
            .map(|n| n.data.len() as u64)
            .sum()
    }

    fn check_growth(&mut self, ino: u64, new_len: u64) -> Result<(), Error> {
        if let Some(e) = self.fail_writes {
            self.stats.injected_errors += 1;
            return Err(e);
        }
        let old = self.node(ino)?.data.len() as u64;
        if new_len > old && self.capacity != u64::MAX {
            let used = self.used();
            if used.saturating_add(new_len - old) > self.capacity {
                self.stats.injected_errors += 1;
                return Err(libc::ENOSPC);
            }
        }
        Ok(())
    }

    // --- the power -------------------------------------------------------------------------------------------------

    /// The power goes: every further operation fails with EIO until [`restore`](Self::restore). An armed cut that
    /// has not fired is dropped.
    pub fn cut(&mut self) {
        self.dead = true;
        self.armed = None;
    }

    /// Arms a cut: the power goes right before the `n`-th mutating operation from now (1: the next one), under the
    /// same lock, as if [`cut`](Self::cut) had been called at that instant; that operation and every later one
    /// fail with EIO. Replaces an armed cut that has not fired.
    pub fn cut_at_op(&mut self, n: u64) {
        self.arm(CutAim { kind: None, n });
    }

    /// Arms a cut right before the `n`-th operation of `kind` from now (operations of other kinds go through):
    /// `(Fdatasync, 1)` cuts between the writes of a commit and its sync, `(Write, k)` among its writes.
    pub fn cut_before_nth(&mut self, kind: OpKind, n: u64) {
        self.arm(CutAim {
            kind: Some(kind),
            n,
        });
    }

    fn arm(&mut self, aim: CutAim) {
        assert!(
            aim.n >= 1,
            "an armed cut counts from 1 (the next operation)"
        );
        self.armed = Some(Armed {
            aim,
            left: aim.n,
            ops: 0,
        });
    }

    /// The armed cut that has not fired yet, if any.
    pub fn armed_cut(&self) -> Option<CutAim> {
        self.armed.map(|a| a.aim)
    }

    /// Drops an armed cut that has not fired; what it aimed at, if there was one.
    pub fn disarm(&mut self) -> Option<CutAim> {
        self.armed.take().map(|a| a.aim)
    }

    /// The armed cut that cut the power, until [`restore`](Self::restore).
    pub fn fired_cut(&self) -> Option<FiredCut> {
        self.fired
    }

    /// The power comes back: the live state becomes what the disk kept. Also clears the dead flag.
    pub fn restore(&mut self, mode: RestoreMode) -> RestoreReport {
        let mut report = RestoreReport {
            fired: self.fired.take(),
            ..RestoreReport::default()
        };
        self.armed = None;
        let live_paths = self.live_paths();
        let mut rng = match mode {
            RestoreMode::DropAll | RestoreMode::KeepAll => None,
            RestoreMode::RandomSubset(seed) => Some(SplitMix::new(seed)),
        };
        if mode == RestoreMode::KeepAll {
            for n in self.inodes.values_mut() {
                n.durable_data = n.data.clone();
                n.durable_entries = n.entries.clone();
                n.pending_data.clear();
                n.pending_entries.clear();
            }
        }
        let mut inos: Vec<u64> = self.inodes.keys().copied().collect();
        inos.sort_unstable();
        for ino in &inos {
            let n = self.inodes.get_mut(ino).expect("listed");
            let mut data = std::mem::take(&mut n.durable_data);
            for op in std::mem::take(&mut n.pending_data) {
                match op {
                    DataOp::Write { offset, bytes } => {
                        // Each block of the write survives or not on its own.
                        let end = offset + bytes.len() as u64;
                        let mut at = offset;
                        while at < end {
                            let block_end = ((at / BLOCK) + 1) * BLOCK;
                            let seg_end = block_end.min(end);
                            if rng.as_mut().is_some_and(|r| r.chance(50)) {
                                let (a, b) = (at as usize, seg_end as usize);
                                if data.len() < b {
                                    data.resize(b, 0);
                                }
                                data[a..b].copy_from_slice(
                                    &bytes[(at - offset) as usize..(seg_end - offset) as usize],
                                );
                                report.data_kept += 1;
                            } else {
                                report.data_dropped += 1;
                            }
                            at = seg_end;
                        }
                    }
                    DataOp::SetLen(len) => {
                        if rng.as_mut().is_some_and(|r| r.chance(50)) {
                            data.resize(len as usize, 0);
                            report.data_kept += 1;
                        } else {
                            report.data_dropped += 1;
                        }
                    }
                }
            }
            n.data = data.clone();
            n.durable_data = data;
            let mut entries = std::mem::take(&mut n.durable_entries);
            for op in std::mem::take(&mut n.pending_entries) {
                if !rng.as_mut().is_some_and(|r| r.chance(50)) {
                    report.entries_dropped += 1;
                    continue;
                }
                match op {
                    EntryOp::Link { name, ino } => {
                        entries.insert(name, ino);
                        report.entries_kept += 1;
                    }
                    EntryOp::Unlink { name } => {
                        entries.remove(&name);
                        report.entries_kept += 1;
                    }
                    EntryOp::Rename { from, to, ino } => {
                        // Consistent: a rename of a name the disk does not hold is dropped with it.
                        if entries.get(&from) == Some(&ino) {
                            entries.remove(&from);
                            entries.insert(to, ino);
                            report.entries_kept += 1;
                        } else {
                            report.entries_dropped += 1;
                        }
                    }
                }
            }
            n.entries = entries.clone();
            n.durable_entries = entries;
        }
        // Whatever no entry reaches is gone; links, parents and entries to vanished inodes are rebuilt.
        let mut reached: HashSet<u64> = HashSet::new();
        let mut links: HashMap<u64, u32> = HashMap::new();
        let mut parents: HashMap<u64, u64> = HashMap::new();
        let mut queue = vec![ROOT];
        reached.insert(ROOT);
        while let Some(dir) = queue.pop() {
            let Some(d) = self.inodes.get(&dir) else {
                continue;
            };
            if !d.is_dir() {
                continue;
            }
            for &child in d.entries.values() {
                if !self.inodes.contains_key(&child) {
                    continue;
                }
                *links.entry(child).or_default() += 1;
                parents.entry(child).or_insert(dir);
                if reached.insert(child) {
                    queue.push(child);
                }
            }
        }
        let mut vanished = Vec::new();
        for ino in inos {
            if !reached.contains(&ino) {
                if let Some(path) = live_paths.get(&ino) {
                    vanished.push(path.clone());
                }
                self.inodes.remove(&ino);
                report.inodes_removed += 1;
            }
        }
        vanished.sort();
        let dirs: Vec<String> = vanished
            .iter()
            .filter(|p| p.ends_with('/'))
            .cloned()
            .collect();
        report.vanished = vanished
            .into_iter()
            .filter(|p| !dirs.iter().any(|d| p != d && p.starts_with(d.as_str())))
            .collect();
        let known: HashSet<u64> = self.inodes.keys().copied().collect();
        for (ino, n) in self.inodes.iter_mut() {
            n.entries.retain(|_, c| known.contains(c));
            n.durable_entries.retain(|_, c| known.contains(c));
            if *ino == ROOT {
                n.nlink = 1;
                n.parent = ROOT;
            } else {
                n.nlink = links.get(ino).copied().unwrap_or(0);
                n.parent = parents.get(ino).copied().unwrap_or(ROOT);
            }
        }
        self.dead = false;
        report
    }

    /// The path of every inode the live tree names (the first name found), a directory's with a trailing `/`.
    fn live_paths(&self) -> HashMap<u64, String> {
        let mut paths = HashMap::new();
        let mut queue = vec![(ROOT, String::new())];
        while let Some((dir, prefix)) = queue.pop() {
            let Some(d) = self.inodes.get(&dir) else {
                continue;
            };
            for (name, &child) in &d.entries {
                if paths.contains_key(&child) || child == ROOT {
                    continue;
                }
                let Some(c) = self.inodes.get(&child) else {
                    continue;
                };
                let mut path = format!("{prefix}{}", name.to_string_lossy());
                if c.is_dir() {
                    path.push('/');
                    queue.push((child, path.clone()));
                }
                paths.insert(child, path);
            }
        }
        paths
    }

    // --- reading ---------------------------------------------------------------------------------------------------

    /// The inode `name` in directory `parent` names.
    pub fn lookup(&mut self, parent: u64, name: &OsStr) -> Result<u64, Error> {
        self.alive()?;
        let d = self.dir(parent)?;
        if name == "." {
            return Ok(parent);
        }
        if name == ".." {
            return Ok(d.parent);
        }
        d.entries.get(name).copied().ok_or(libc::ENOENT)
    }

    /// Looks up a path relative to the root (`a/b/c`), for tests.
    pub fn resolve(&mut self, path: &str) -> Result<u64, Error> {
        let mut ino = ROOT;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            ino = self.lookup(ino, OsStr::new(part))?;
        }
        Ok(ino)
    }

    pub fn attr(&mut self, ino: u64) -> Result<FileAttr, Error> {
        self.alive()?;
        let n = self.node(ino)?;
        let size = if n.is_dir() {
            4096
        } else {
            n.data.len() as u64
        };
        let nlink = if n.is_dir() {
            2 + n
                .entries
                .values()
                .filter(|c| self.inodes.get(c).is_some_and(Inode::is_dir))
                .count() as u32
        } else {
            n.nlink
        };
        Ok(FileAttr {
            ino: INodeNo(ino),
            size,
            blocks: size.div_ceil(512),
            atime: n.atime,
            mtime: n.mtime,
            ctime: n.ctime,
            crtime: n.ctime,
            kind: n.kind,
            perm: n.perm,
            nlink,
            uid: n.uid,
            gid: n.gid,
            rdev: n.rdev,
            blksize: BLOCK as u32,
            flags: 0,
        })
    }

    pub fn read(&mut self, ino: u64, offset: u64, size: usize) -> Result<Vec<u8>, Error> {
        self.alive()?;
        let n = self.node_mut(ino)?;
        if n.is_dir() {
            return Err(libc::EISDIR);
        }
        n.atime = SystemTime::now();
        let len = n.data.len() as u64;
        if offset >= len {
            return Ok(Vec::new());
        }
        let end = (offset + size as u64).min(len);
        Ok(n.data[offset as usize..end as usize].to_vec())
    }

    /// A symlink's target.
    pub fn readlink(&mut self, ino: u64) -> Result<Vec<u8>, Error> {
        self.alive()?;
        let n = self.node(ino)?;
        if n.kind != FileType::Symlink {
            return Err(libc::EINVAL);
        }
        Ok(n.data.clone())
    }

    /// `(name, ino, kind)` of a directory's live entries, with `.` and `..` first.
    pub fn readdir(&mut self, ino: u64) -> Result<Vec<(OsString, u64, FileType)>, Error> {
        self.alive()?;
        let d = self.dir(ino)?;
        let mut out = vec![
            (OsString::from("."), ino, FileType::Directory),
            (OsString::from(".."), d.parent, FileType::Directory),
        ];
        for (name, &child) in &d.entries {
            if let Some(c) = self.inodes.get(&child) {
                out.push((name.clone(), child, c.kind));
            }
        }
        Ok(out)
    }

    /// Checks the power is on and the inode exists (open, opendir, flush, access).
    pub fn check(&mut self, ino: u64) -> Result<(), Error> {
        self.alive()?;
        self.node(ino).map(|_| ())
    }

    // --- writing data ----------------------------------------------------------------------------------------------

    pub fn write(&mut self, ino: u64, offset: u64, bytes: &[u8]) -> Result<usize, Error> {
        self.enter(OpKind::Write)?;
        if self.node(ino)?.is_dir() {
            return Err(libc::EISDIR);
        }
        let end = offset + bytes.len() as u64;
        let grown = end.max(self.node(ino)?.data.len() as u64);
        self.check_growth(ino, grown)?;
        let n = self.node_mut(ino)?;
        if n.data.len() < end as usize {
            n.data.resize(end as usize, 0);
        }
        n.data[offset as usize..end as usize].copy_from_slice(bytes);
        n.mtime = SystemTime::now();
        n.ctime = n.mtime;
        n.pending_data.push(DataOp::Write {
            offset,
            bytes: bytes.to_vec(),
        });
        self.stats.writes += 1;
        self.stats.bytes_written += bytes.len() as u64;
        Ok(bytes.len())
    }

    /// `ftruncate`/`truncate`/`setattr` of the size.
    pub fn set_len(&mut self, ino: u64, len: u64) -> Result<(), Error> {
        self.enter(OpKind::SetLen)?;
        if self.node(ino)?.is_dir() {
            return Err(libc::EISDIR);
        }
        self.check_growth(ino, len)?;
        let n = self.node_mut(ino)?;
        n.data.resize(len as usize, 0);
        n.mtime = SystemTime::now();
        n.ctime = n.mtime;
        n.pending_data.push(DataOp::SetLen(len));
        self.stats.truncates += 1;
        Ok(())
    }

    /// `fallocate`: mode 0 extends the size to `offset + length`; `FALLOC_FL_KEEP_SIZE` changes nothing visible;
    /// other modes are not supported (glibc's `posix_fallocate` then falls back to writes).
    pub fn fallocate(
        &mut self,
        ino: u64,
        offset: u64,
        length: u64,
        mode: i32,
    ) -> Result<(), Error> {
        self.enter(OpKind::Fallocate)?;
        if self.node(ino)?.is_dir() {
            return Err(libc::EISDIR);
        }
        self.stats.fallocates += 1;
        match mode {
            0 => {
                let end = offset + length;
                if end > self.node(ino)?.data.len() as u64 {
                    self.check_growth(ino, end)?;
                    let n = self.node_mut(ino)?;
                    n.data.resize(end as usize, 0);
                    n.pending_data.push(DataOp::SetLen(end));
                }
                Ok(())
            }
            libc::FALLOC_FL_KEEP_SIZE => {
                if let Some(e) = self.fail_writes {
                    self.stats.injected_errors += 1;
                    return Err(e);
                }
                Ok(())
            }
            _ => Err(libc::EOPNOTSUPP),
        }
    }

    /// `fsync` (`datasync` false) or `fdatasync` of a file, or of a directory (then its entries).
    pub fn fsync(&mut self, ino: u64, datasync: bool) -> Result<(), Error> {
        self.alive()?;
        if self.node(ino)?.is_dir() {
            return self.fsyncdir(ino);
        }
        self.enter(if datasync {
            OpKind::Fdatasync
        } else {
            OpKind::Fsync
        })?;
        if let Some(e) = self.fail_syncs {
            self.stats.injected_errors += 1;
            return Err(e);
        }
        if datasync {
            self.stats.fdatasyncs += 1;
        } else {
            self.stats.fsyncs += 1;
        }
        let n = self.node_mut(ino)?;
        n.durable_data = n.data.clone();
        n.pending_data.clear();
        Ok(())
    }

    /// `fsync` of a directory: its entries become durable.
    pub fn fsyncdir(&mut self, ino: u64) -> Result<(), Error> {
        self.alive()?;
        self.dir(ino)?;
        self.enter(OpKind::Fsyncdir)?;
        if let Some(e) = self.fail_syncs {
            self.stats.injected_errors += 1;
            return Err(e);
        }
        self.stats.fsyncdirs += 1;
        let d = self.node_mut(ino)?;
        d.durable_entries = d.entries.clone();
        d.pending_entries.clear();
        Ok(())
    }

    // --- directories -----------------------------------------------------------------------------------------------

    /// Creates `name` in `parent` (file, directory, socket, fifo, device, or a symlink to `target`).
    pub fn create(
        &mut self,
        parent: u64,
        name: &OsStr,
        node: NewNode,
        target: Option<&[u8]>,
    ) -> Result<u64, Error> {
        self.enter(OpKind::Create)?;
        let d = self.dir(parent)?;
        if d.entries.contains_key(name) || name == "." || name == ".." {
            return Err(libc::EEXIST);
        }
        if name.len() > 255 {
            return Err(libc::ENAMETOOLONG);
        }
        let ino = self.next_ino;
        self.next_ino += 1;
        let mut n = Inode::new(node.kind, node.perm, node.uid, node.gid, node.rdev, parent);
        n.nlink = 1;
        if let Some(t) = target {
            // A symlink's target is written with its inode.
            n.data = t.to_vec();
            n.durable_data = t.to_vec();
        }
        self.inodes.insert(ino, n);
        let d = self.node_mut(parent)?;
        d.entries.insert(name.to_os_string(), ino);
        d.pending_entries.push(EntryOp::Link {
            name: name.to_os_string(),
            ino,
        });
        d.mtime = SystemTime::now();
        self.stats.creates += 1;
        Ok(ino)
    }

    /// A hard link `newparent/newname` to `ino`.
    pub fn link(&mut self, ino: u64, newparent: u64, newname: &OsStr) -> Result<(), Error> {
        self.enter(OpKind::Create)?;
        if self.node(ino)?.is_dir() {
            return Err(libc::EPERM);
        }
        if self.dir(newparent)?.entries.contains_key(newname) {
            return Err(libc::EEXIST);
        }
        let d = self.node_mut(newparent)?;
        d.entries.insert(newname.to_os_string(), ino);
        d.pending_entries.push(EntryOp::Link {
            name: newname.to_os_string(),
            ino,
        });
        self.node_mut(ino)?.nlink += 1;
        self.stats.creates += 1;
        Ok(())
    }

    /// `unlink` (`dir` false) or `rmdir` (`dir` true).
    pub fn remove(&mut self, parent: u64, name: &OsStr, dir: bool) -> Result<(), Error> {
        self.enter(OpKind::Unlink)?;
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        let n = self.node(ino)?;
        match (dir, n.is_dir()) {
            (true, false) => return Err(libc::ENOTDIR),
            (false, true) => return Err(libc::EISDIR),
            (true, true) if !n.entries.is_empty() => return Err(libc::ENOTEMPTY),
            _ => {}
        }
        let d = self.node_mut(parent)?;
        d.entries.remove(name);
        d.pending_entries.push(EntryOp::Unlink {
            name: name.to_os_string(),
        });
        d.mtime = SystemTime::now();
        let n = self.node_mut(ino)?;
        n.nlink = n.nlink.saturating_sub(1);
        self.stats.unlinks += 1;
        Ok(())
    }

    /// `rename(2)`; `noreplace` is `RENAME_NOREPLACE`.
    pub fn rename(
        &mut self,
        parent: u64,
        name: &OsStr,
        newparent: u64,
        newname: &OsStr,
        noreplace: bool,
    ) -> Result<(), Error> {
        self.enter(OpKind::Rename)?;
        let ino = *self.dir(parent)?.entries.get(name).ok_or(libc::ENOENT)?;
        let moving_dir = self.node(ino)?.is_dir();
        if moving_dir && self.is_ancestor(ino, newparent) {
            return Err(libc::EINVAL);
        }
        let old = self.dir(newparent)?.entries.get(newname).copied();
        if let Some(old) = old {
            if old == ino {
                return Ok(());
            }
            if noreplace {
                return Err(libc::EEXIST);
            }
            let o = self.node(old)?;
            match (moving_dir, o.is_dir()) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                (true, true) if !o.entries.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
            let o = self.node_mut(old)?;
            o.nlink = o.nlink.saturating_sub(1);
        }
        if parent == newparent {
            let d = self.node_mut(parent)?;
            d.entries.remove(name);
            d.entries.insert(newname.to_os_string(), ino);
            d.pending_entries.push(EntryOp::Rename {
                from: name.to_os_string(),
                to: newname.to_os_string(),
                ino,
            });
        } else {
            let d = self.node_mut(parent)?;
            d.entries.remove(name);
            d.pending_entries.push(EntryOp::Unlink {
                name: name.to_os_string(),
            });
            let d = self.node_mut(newparent)?;
            d.entries.insert(newname.to_os_string(), ino);
            d.pending_entries.push(EntryOp::Link {
                name: newname.to_os_string(),
                ino,
            });
            self.node_mut(ino)?.parent = newparent;
        }
        self.stats.renames += 1;
        Ok(())
    }

    fn is_ancestor(&self, ancestor: u64, mut ino: u64) -> bool {
        for _ in 0..4096 {
            if ino == ancestor {
                return true;
            }
            if ino == ROOT {
                return false;
            }
            match self.inodes.get(&ino) {
                Some(n) => ino = n.parent,
                None => return false,
            }
        }
        false
    }

    /// `chmod`, `chown`, `utimes`.
    pub fn set_meta(
        &mut self,
        ino: u64,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        atime: Option<SystemTime>,
        mtime: Option<SystemTime>,
    ) -> Result<(), Error> {
        self.alive()?;
        let n = self.node_mut(ino)?;
        if let Some(m) = mode {
            n.perm = (m & 0o7777) as u16;
        }
        if let Some(u) = uid {
            n.uid = u;
        }
        if let Some(g) = gid {
            n.gid = g;
        }
        if let Some(t) = atime {
            n.atime = t;
        }
        if let Some(t) = mtime {
            n.mtime = t;
        }
        n.ctime = SystemTime::now();
        Ok(())
    }

    /// The live content of a file, for tests.
    pub fn content(&self, ino: u64) -> Option<&[u8]> {
        self.inodes.get(&ino).map(|n| n.data.as_slice())
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// The FUSE side
// ---------------------------------------------------------------------------------------------------------------------

/// A handle on a powerfs (cheap to clone): the model behind one mutex, and the controls.
#[derive(Clone, Debug, Default)]
pub struct PowerFs {
    model: Arc<Mutex<Model>>,
}

/// A mounted powerfs; unmounts when dropped.
#[derive(Debug)]
pub struct Mounted {
    session: Option<BackgroundSession>,
    path: std::path::PathBuf,
}

impl Mounted {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Unmounts and waits for the session thread.
    pub fn unmount(mut self) -> io::Result<()> {
        match self.session.take() {
            Some(s) => s.umount_and_join(),
            None => Ok(()),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Some(s) = self.session.take() {
            let _ = s.umount_and_join();
        }
    }
}

impl PowerFs {
    pub fn new() -> PowerFs {
        PowerFs::default()
    }

    /// The model, locked.
    pub fn lock(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Mounts this file system on `path` (an existing empty directory) in a background session of this process.
    pub fn mount(&self, path: &Path) -> io::Result<Mounted> {
        let mut config = Config::default();
        config.mount_options = vec![
            MountOption::FSName("powerfs".into()),
            MountOption::Subtype("powerfs".into()),
            MountOption::RW,
            MountOption::NoAtime,
        ];
        config.acl = SessionACL::Owner;
        config.n_threads = Some(1);
        let fs = Fuse {
            model: self.model.clone(),
        };
        let session = fuser::spawn_mount(fs, path, &config)?;
        Ok(Mounted {
            session: Some(session),
            path: path.to_path_buf(),
        })
    }

    /// The power goes, atomically with respect to every operation: each one after this fails with EIO.
    pub fn cut(&self) {
        self.lock().cut();
    }

    /// The power comes back with what the disk kept.
    pub fn restore(&self, mode: RestoreMode) -> RestoreReport {
        self.lock().restore(mode)
    }

    pub fn is_dead(&self) -> bool {
        self.lock().is_dead()
    }

    /// Arms a cut right before the `n`-th mutating operation from now: see [`Model::cut_at_op`].
    pub fn cut_at_op(&self, n: u64) {
        self.lock().cut_at_op(n);
    }

    /// Arms a cut right before the `n`-th operation of `kind` from now: see [`Model::cut_before_nth`].
    pub fn cut_before_nth(&self, kind: OpKind, n: u64) {
        self.lock().cut_before_nth(kind, n);
    }

    /// The armed cut that has not fired yet, if any.
    pub fn armed_cut(&self) -> Option<CutAim> {
        self.lock().armed_cut()
    }

    /// Drops an armed cut that has not fired.
    pub fn disarm(&self) -> Option<CutAim> {
        self.lock().disarm()
    }

    /// The armed cut that cut the power, until the restore.
    pub fn fired_cut(&self) -> Option<FiredCut> {
        self.lock().fired_cut()
    }

    /// From now on `fsync`, `fdatasync` and `fsyncdir` fail with `errno` (and make nothing durable); `None` stops it.
    pub fn fail_syncs(&self, errno: Option<Error>) {
        self.lock().fail_syncs(errno);
    }

    /// From now on writes, truncates and fallocates fail with `errno`; `None` stops it.
    pub fn fail_writes(&self, errno: Option<Error>) {
        self.lock().fail_writes(errno);
    }

    /// Writes that would take the live files past `bytes` in all fail with ENOSPC (`u64::MAX`: no limit).
    pub fn set_capacity(&self, bytes: u64) {
        self.lock().set_capacity(bytes);
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats().clone()
    }

    /// The counters since the last call, reset.
    pub fn take_stats(&self) -> Stats {
        self.lock().take_stats()
    }
}

struct Fuse {
    model: Arc<Mutex<Model>>,
}

impl Fuse {
    fn m(&self) -> MutexGuard<'_, Model> {
        self.model.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn errno(e: Error) -> Errno {
    Errno::from_i32(e)
}

/// Answers an operation that returns nothing: ok, or its errno.
fn answer_empty(reply: ReplyEmpty, r: Result<(), Error>) {
    match r {
        Ok(()) => reply.ok(),
        Err(e) => reply.error(errno(e)),
    }
}

fn time_of(t: TimeOrNow) -> SystemTime {
    match t {
        TimeOrNow::SpecificTime(t) => t,
        TimeOrNow::Now => SystemTime::now(),
    }
}

fn kind_of_mode(mode: u32) -> Option<FileType> {
    Some(match mode & libc::S_IFMT {
        libc::S_IFREG | 0 => FileType::RegularFile,
        libc::S_IFDIR => FileType::Directory,
        libc::S_IFSOCK => FileType::Socket,
        libc::S_IFIFO => FileType::NamedPipe,
        libc::S_IFCHR => FileType::CharDevice,
        libc::S_IFBLK => FileType::BlockDevice,
        libc::S_IFLNK => FileType::Symlink,
        _ => return None,
    })
}

impl Fuse {
    fn new_entry(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        node: NewNode,
        target: Option<&[u8]>,
        reply: ReplyEntry,
    ) {
        let mut m = self.m();
        let node = NewNode {
            uid: req.uid(),
            gid: req.gid(),
            ..node
        };
        match m
            .create(parent.0, name, node, target)
            .and_then(|ino| m.attr(ino))
        {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }
}

impl Filesystem for Fuse {
    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        let mut m = self.m();
        match m.lookup(parent.0, name).and_then(|ino| m.attr(ino)) {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.m().attr(ino.0) {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let mut m = self.m();
        let r = (|| {
            if let Some(size) = size {
                m.set_len(ino.0, size)?;
            }
            if mode.is_some()
                || uid.is_some()
                || gid.is_some()
                || atime.is_some()
                || mtime.is_some()
            {
                m.set_meta(
                    ino.0,
                    mode,
                    uid,
                    gid,
                    atime.map(time_of),
                    mtime.map(time_of),
                )?;
            }
            m.attr(ino.0)
        })();
        match r {
            Ok(attr) => reply.attr(&TTL, &attr),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readlink(&self, _req: &Request, ino: INodeNo, reply: ReplyData) {
        match self.m().readlink(ino.0) {
            Ok(t) => reply.data(&t),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn mknod(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        rdev: u32,
        reply: ReplyEntry,
    ) {
        let Some(kind) = kind_of_mode(mode) else {
            reply.error(Errno::EINVAL);
            return;
        };
        let node = NewNode {
            kind,
            perm: (mode & !umask & 0o7777) as u16,
            uid: 0,
            gid: 0,
            rdev,
        };
        self.new_entry(req, parent, name, node, None, reply);
    }

    fn mkdir(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        reply: ReplyEntry,
    ) {
        let node = NewNode {
            perm: (mode & !umask & 0o7777) as u16,
            ..NewNode::dir()
        };
        self.new_entry(req, parent, name, node, None, reply);
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer_empty(reply, self.m().remove(parent.0, name, false))
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        answer_empty(reply, self.m().remove(parent.0, name, true))
    }

    fn symlink(
        &self,
        req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        target: &Path,
        reply: ReplyEntry,
    ) {
        use std::os::unix::ffi::OsStrExt;
        let node = NewNode {
            kind: FileType::Symlink,
            perm: 0o777,
            ..NewNode::file()
        };
        let target = target.as_os_str().as_bytes().to_vec();
        self.new_entry(req, parent, link_name, node, Some(&target), reply);
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        if flags.contains(RenameFlags::RENAME_EXCHANGE)
            || flags.contains(RenameFlags::RENAME_WHITEOUT)
        {
            reply.error(Errno::EINVAL);
            return;
        }
        let noreplace = flags.contains(RenameFlags::RENAME_NOREPLACE);
        let r = self
            .m()
            .rename(parent.0, name, newparent.0, newname, noreplace);
        answer_empty(reply, r);
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        let mut m = self.m();
        match m
            .link(ino.0, newparent.0, newname)
            .and_then(|()| m.attr(ino.0))
        {
            Ok(attr) => reply.entry(&TTL, &attr, Generation(0)),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.m().check(ino.0) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::FOPEN_DIRECT_IO),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.m().read(ino.0, offset, size as usize) {
            Ok(d) => reply.data(&d),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.m().write(ino.0, offset, data) {
            Ok(n) => reply.written(n as u32),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        // close(2): makes nothing durable.
        answer_empty(reply, self.m().check(ino.0))
    }

    fn fsync(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        datasync: bool,
        reply: ReplyEmpty,
    ) {
        answer_empty(reply, self.m().fsync(ino.0, datasync))
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        let mut m = self.m();
        match m.check(ino.0).and_then(|()| m.dir(ino.0).map(|_| ())) {
            Ok(()) => reply.opened(FileHandle(0), FopenFlags::empty()),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        match self.m().readdir(ino.0) {
            Ok(entries) => {
                for (i, (name, child, kind)) in
                    entries.into_iter().enumerate().skip(offset as usize)
                {
                    if reply.add(INodeNo(child), (i + 1) as u64, kind, &name) {
                        break;
                    }
                }
                reply.ok();
            }
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fsyncdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _datasync: bool,
        reply: ReplyEmpty,
    ) {
        answer_empty(reply, self.m().fsyncdir(ino.0))
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let mut m = self.m();
        if let Err(e) = m.alive() {
            reply.error(errno(e));
            return;
        }
        let total = if m.capacity == u64::MAX {
            64 << 30
        } else {
            m.capacity
        };
        let used = m.used();
        let blocks = total / BLOCK;
        let free = total.saturating_sub(used) / BLOCK;
        reply.statfs(
            blocks,
            free,
            free,
            1 << 20,
            1 << 20,
            BLOCK as u32,
            255,
            BLOCK as u32,
        );
    }

    fn access(&self, _req: &Request, ino: INodeNo, _mask: fuser::AccessFlags, reply: ReplyEmpty) {
        answer_empty(reply, self.m().check(ino.0))
    }

    fn create(
        &self,
        req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        let mut m = self.m();
        let r = (|| {
            let ino = match m.lookup(parent.0, name) {
                Ok(_) if flags & libc::O_EXCL != 0 => return Err(libc::EEXIST),
                Ok(ino) => {
                    if flags & libc::O_TRUNC != 0 {
                        m.set_len(ino, 0)?;
                    }
                    ino
                }
                Err(libc::ENOENT) => {
                    let node = NewNode {
                        kind: kind_of_mode(mode).unwrap_or(FileType::RegularFile),
                        perm: (mode & !umask & 0o7777) as u16,
                        uid: req.uid(),
                        gid: req.gid(),
                        rdev: 0,
                    };
                    m.create(parent.0, name, node, None)?
                }
                Err(e) => return Err(e),
            };
            m.attr(ino)
        })();
        match r {
            Ok(attr) => reply.created(
                &TTL,
                &attr,
                Generation(0),
                FileHandle(0),
                FopenFlags::FOPEN_DIRECT_IO,
            ),
            Err(e) => reply.error(errno(e)),
        }
    }

    fn fallocate(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: u64,
        length: u64,
        mode: i32,
        reply: ReplyEmpty,
    ) {
        answer_empty(reply, self.m().fallocate(ino.0, offset, length, mode))
    }
}

// ---------------------------------------------------------------------------------------------------------------------
// Tests of the model (no mount)
// ---------------------------------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    fn name(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    /// `dir/file` created, written, the file fsynced and the directory fsynced.
    fn durable_file(m: &mut Model, bytes: &[u8]) -> (u64, u64) {
        let dir = m.create(ROOT, name("store"), NewNode::dir(), None).unwrap();
        m.fsyncdir(ROOT).unwrap();
        let f = m.create(dir, name("db"), NewNode::file(), None).unwrap();
        m.write(f, 0, bytes).unwrap();
        m.fsync(f, true).unwrap();
        m.fsyncdir(dir).unwrap();
        (dir, f)
    }

    #[test]
    fn synced_data_survives_drop_all() {
        let mut m = Model::new();
        let (_, f) = durable_file(&mut m, b"hello world");
        m.cut();
        let report = m.restore(RestoreMode::DropAll);
        assert_eq!(report.inodes_removed, 0);
        let g = m.resolve("store/db").unwrap();
        assert_eq!(g, f);
        assert_eq!(m.read(g, 0, 100).unwrap(), b"hello world");
    }

    #[test]
    fn unsynced_data_never_survives_drop_all() {
        let mut m = Model::new();
        let (_, f) = durable_file(&mut m, b"hello world");
        m.write(f, 6, b"WORLD, and more").unwrap();
        m.set_len(f, 8).unwrap();
        m.write(f, 100, b"far").unwrap();
        assert_eq!(m.attr(f).unwrap().size, 103);
        m.cut();
        m.restore(RestoreMode::DropAll);
        let g = m.resolve("store/db").unwrap();
        assert_eq!(m.read(g, 0, 1000).unwrap(), b"hello world");
        // fdatasync made size and data durable; a later fsync does too.
        m.write(g, 0, b"HELLO").unwrap();
        m.fsync(g, false).unwrap();
        m.cut();
        m.restore(RestoreMode::DropAll);
        assert_eq!(m.read(g, 0, 1000).unwrap(), b"HELLO world");
    }

    #[test]
    fn keep_all_keeps_everything_that_is_still_named() {
        let mut m = Model::new();
        let (dir, f) = durable_file(&mut m, b"hello");
        m.write(f, 5, b" world").unwrap();
        let n = m.create(dir, name("new"), NewNode::file(), None).unwrap();
        m.write(n, 0, b"new").unwrap();
        let gone = m.create(dir, name("gone"), NewNode::file(), None).unwrap();
        m.remove(dir, name("gone"), false).unwrap();
        m.cut();
        let report = m.restore(RestoreMode::KeepAll);
        assert_eq!(report.inodes_removed, 1);
        assert_eq!(m.attr(gone), Err(libc::ENOENT));
        assert_eq!(m.read(f, 0, 100).unwrap(), b"hello world");
        let new = m.resolve("store/new").unwrap();
        assert_eq!(new, n);
        assert_eq!(m.read(new, 0, 10).unwrap(), b"new");
        // And it is durable now: a drop-all right after keeps it.
        m.cut();
        m.restore(RestoreMode::DropAll);
        assert_eq!(m.read(f, 0, 100).unwrap(), b"hello world");
    }

    #[test]
    fn operations_fail_with_eio_after_a_cut() {
        let mut m = Model::new();
        let (dir, f) = durable_file(&mut m, b"x");
        m.cut();
        assert_eq!(m.write(f, 0, b"y"), Err(libc::EIO));
        assert_eq!(m.fsync(f, true), Err(libc::EIO));
        assert_eq!(m.lookup(dir, name("db")), Err(libc::EIO));
        assert_eq!(
            m.create(dir, name("new"), NewNode::file(), None),
            Err(libc::EIO)
        );
        assert_eq!(m.stats().refused_after_cut, 4);
        m.restore(RestoreMode::DropAll);
        assert_eq!(m.read(f, 0, 10).unwrap(), b"x");
    }

    #[test]
    fn a_created_file_without_fsyncdir_disappears() {
        let mut m = Model::new();
        let (dir, _) = durable_file(&mut m, b"x");
        let f = m.create(dir, name("new"), NewNode::file(), None).unwrap();
        m.write(f, 0, b"data").unwrap();
        // The file's own fsync does not make its name durable.
        m.fsync(f, false).unwrap();
        let sub = m.create(dir, name("sub"), NewNode::dir(), None).unwrap();
        let inner = m.create(sub, name("inner"), NewNode::file(), None).unwrap();
        m.fsync(inner, false).unwrap();
        // Syncing the new directory does not make the directory itself durable either.
        m.fsyncdir(sub).unwrap();
        m.cut();
        let report = m.restore(RestoreMode::DropAll);
        assert_eq!(report.inodes_removed, 3);
        assert_eq!(report.vanished, ["store/new", "store/sub/"]);
        assert_eq!(m.lookup(dir, name("new")), Err(libc::ENOENT));
        assert_eq!(m.lookup(dir, name("sub")), Err(libc::ENOENT));
        assert_eq!(m.attr(f), Err(libc::ENOENT));
        assert!(m.resolve("store/db").is_ok());

        // With the directory fsynced the name survives, and the data that was fsynced with it.
        let f = m.create(dir, name("new"), NewNode::file(), None).unwrap();
        m.write(f, 0, b"data").unwrap();
        m.fsync(f, false).unwrap();
        m.fsyncdir(dir).unwrap();
        m.cut();
        m.restore(RestoreMode::DropAll);
        let g = m.resolve("store/new").unwrap();
        assert_eq!(m.read(g, 0, 10).unwrap(), b"data");
    }

    #[test]
    fn a_rename_without_fsyncdir_reverts() {
        let mut m = Model::new();
        let (dir, old) = durable_file(&mut m, b"old");
        let tmp = m
            .create(dir, name("db.tmp"), NewNode::file(), None)
            .unwrap();
        m.write(tmp, 0, b"new").unwrap();
        m.fsync(tmp, true).unwrap();
        m.fsyncdir(dir).unwrap();
        // The classic atomic replace, without its last fsyncdir.
        m.rename(dir, name("db.tmp"), dir, name("db"), false)
            .unwrap();
        assert_eq!(m.resolve("store/db").unwrap(), tmp);
        m.cut();
        m.restore(RestoreMode::DropAll);
        assert_eq!(m.resolve("store/db").unwrap(), old);
        assert_eq!(m.read(old, 0, 10).unwrap(), b"old");
        assert_eq!(m.resolve("store/db.tmp").unwrap(), tmp);
        // An unlink without fsyncdir reverts too.
        m.remove(dir, name("db.tmp"), false).unwrap();
        m.cut();
        m.restore(RestoreMode::DropAll);
        assert_eq!(m.resolve("store/db.tmp").unwrap(), tmp);
        // And with the fsyncdir the rename holds.
        m.rename(dir, name("db.tmp"), dir, name("db"), false)
            .unwrap();
        m.fsyncdir(dir).unwrap();
        m.cut();
        let report = m.restore(RestoreMode::DropAll);
        assert_eq!(report.inodes_removed, 1, "the replaced file is gone");
        assert_eq!(m.resolve("store/db").unwrap(), tmp);
        assert_eq!(m.read(tmp, 0, 10).unwrap(), b"new");
        assert_eq!(m.lookup(dir, name("db.tmp")), Err(libc::ENOENT));
    }

    #[test]
    fn random_subset_never_invents_bytes() {
        for seed in 0..200u64 {
            let mut rng = SplitMix::new(seed ^ 0xABCD);
            let mut m = Model::new();
            let (dir, f) = durable_file(&mut m, &[1u8; 5000]);
            // Every value ever written at each offset (0 for a hole is allowed).
            let mut written: Vec<HashSet<u8>> = vec![HashSet::from([1u8]); 5000];
            let g = m.create(dir, name("other"), NewNode::file(), None).unwrap();
            for i in 0..30u8 {
                let target = if rng.chance(70) { f } else { g };
                let offset = rng.range(0, 20_000);
                let len = rng.range(1, 9000) as usize;
                let value = i + 2;
                if rng.chance(10) {
                    m.set_len(target, rng.range(0, 20_000)).unwrap();
                } else {
                    m.write(target, offset, &vec![value; len]).unwrap();
                }
                if target == f {
                    let end = offset as usize + len;
                    if written.len() < end {
                        written.resize(end, HashSet::new());
                    }
                    for w in &mut written[offset as usize..end] {
                        w.insert(value);
                    }
                }
                if rng.chance(10) {
                    m.fsync(target, true).unwrap();
                }
            }
            m.cut();
            m.restore(RestoreMode::RandomSubset(seed));
            let data = m.read(f, 0, 1 << 20).unwrap();
            for (i, b) in data.iter().enumerate() {
                assert!(
                    *b == 0 || written.get(i).is_some_and(|w| w.contains(b)),
                    "seed {seed}: byte {i} is {b}, never written there"
                );
            }
            // `other` was never made durable by a fsyncdir: it survives only if its creation did, and if it did
            // not, its writes are gone with it.
            if let Ok(h) = m.resolve("store/other") {
                assert_eq!(h, g);
            } else {
                assert_eq!(m.attr(g), Err(libc::ENOENT));
            }
        }
    }

    #[test]
    fn random_subset_keeps_what_was_synced_and_some_of_the_rest() {
        let mut kept_some = false;
        let mut dropped_some = false;
        for seed in 0..50u64 {
            let mut m = Model::new();
            let (dir, f) = durable_file(&mut m, b"synced");
            for i in 0..8u64 {
                m.write(f, 6 + i * BLOCK, b"more").unwrap();
            }
            let n = m.create(dir, name("new"), NewNode::file(), None).unwrap();
            m.write(n, 0, b"x").unwrap();
            m.fsync(n, false).unwrap();
            m.cut();
            let r = m.restore(RestoreMode::RandomSubset(seed));
            kept_some |= r.data_kept > 0;
            dropped_some |= r.data_dropped > 0;
            assert_eq!(m.read(f, 0, 6).unwrap(), b"synced");
            // A file whose creation may not have survived: if it did, with the data that was fsynced.
            match m.resolve("store/new") {
                Ok(h) => assert_eq!(m.read(h, 0, 10).unwrap(), b"x"),
                Err(e) => assert_eq!(e, libc::ENOENT),
            }
        }
        assert!(kept_some && dropped_some);
    }

    #[test]
    fn a_rename_of_a_file_whose_creation_did_not_survive_is_dropped() {
        for seed in 0..64u64 {
            let mut m = Model::new();
            let (dir, _) = durable_file(&mut m, b"old");
            let tmp = m.create(dir, name("tmp"), NewNode::file(), None).unwrap();
            m.write(tmp, 0, b"new").unwrap();
            m.fsync(tmp, true).unwrap();
            m.rename(dir, name("tmp"), dir, name("db"), false).unwrap();
            m.cut();
            m.restore(RestoreMode::RandomSubset(seed));
            let db = m.resolve("store/db").unwrap();
            let got = m.read(db, 0, 10).unwrap();
            assert!(got == b"old" || got == b"new", "seed {seed}: {got:?}");
            if got == b"new" {
                assert_eq!(m.lookup(dir, name("tmp")), Err(libc::ENOENT));
            }
        }
    }

    #[test]
    fn an_armed_cut_fires_right_before_the_nth_operation() {
        for n in 1..=6u64 {
            let mut m = Model::new();
            let (dir, f) = durable_file(&mut m, b"hello");
            m.cut_at_op(n);
            assert_eq!(m.armed_cut(), Some(CutAim { kind: None, n }));
            // Reads, lookups and attributes are not counted.
            type Op = fn(&mut Model, u64, u64) -> Result<(), Error>;
            let ops: [(OpKind, Op); 6] = [
                (OpKind::Write, |m, _, f| m.write(f, 0, b"H").map(|_| ())),
                (OpKind::SetLen, |m, _, f| m.set_len(f, 9)),
                (OpKind::Fdatasync, |m, _, f| m.fsync(f, true)),
                (OpKind::Create, |m, d, _| {
                    m.create(d, OsStr::new("new"), NewNode::file(), None)
                        .map(|_| ())
                }),
                (OpKind::Fsyncdir, |m, d, _| m.fsync(d, false)),
                (OpKind::Rename, |m, d, _| {
                    m.rename(d, OsStr::new("new"), d, OsStr::new("newer"), false)
                }),
            ];
            for (i, (kind, op)) in ops.iter().enumerate() {
                let i = i as u64 + 1;
                assert_eq!(
                    m.read(f, 0, 10).map(|_| ()),
                    if i <= n { Ok(()) } else { Err(libc::EIO) }
                );
                let r = op(&mut m, dir, f);
                if i < n {
                    assert_eq!(r, Ok(()), "n {n}: op {i} ({kind}) before the cut");
                    assert!(!m.is_dead());
                } else {
                    assert_eq!(
                        r,
                        Err(libc::EIO),
                        "n {n}: op {i} ({kind}) at or after the cut"
                    );
                    assert!(m.is_dead());
                }
            }
            let fired = m.fired_cut().expect("the armed cut fired");
            assert_eq!(fired.aim, CutAim { kind: None, n });
            assert_eq!(fired.before, ops[n as usize - 1].0);
            assert_eq!(fired.ops_since_arm, n - 1);
            let before = if n == 1 {
                OpKind::Fsyncdir
            } else {
                ops[n as usize - 2].0
            };
            assert_eq!(
                fired.after,
                Some(before),
                "the last operation of durable_file, or of the list"
            );
            assert_eq!(m.armed_cut(), None);
            // Everything after the cut is refused, the operation it landed on included.
            assert_eq!(m.stats().refused_after_cut, 2 * (6 - n) + 1);
            let report = m.restore(RestoreMode::DropAll);
            assert_eq!(report.fired, Some(fired));
            assert_eq!(m.fired_cut(), None);
            assert!(!m.is_dead());
            // The fdatasync (the third operation) made the write and the truncate durable, if it went through.
            let want: &[u8] = if n <= 3 { b"hello" } else { b"Hello\0\0\0\0" };
            assert_eq!(m.read(f, 0, 10).unwrap(), want, "n {n}");
        }
    }

    #[test]
    fn an_armed_cut_aimed_at_a_kind_lets_the_others_through() {
        let mut m = Model::new();
        let (dir, f) = durable_file(&mut m, b"x");
        m.cut_before_nth(OpKind::Fdatasync, 2);
        m.write(f, 0, b"a").unwrap();
        m.fsync(f, false).unwrap(); // an fsync, not an fdatasync
        m.fsync(dir, true).unwrap(); // a directory's: an fsyncdir
        m.write(f, 1, b"b").unwrap();
        m.fsync(f, true).unwrap(); // the first fdatasync
        m.write(f, 2, b"c").unwrap();
        m.set_len(f, 3).unwrap();
        assert!(!m.is_dead());
        assert_eq!(m.fsync(f, true), Err(libc::EIO), "the second fdatasync");
        let fired = m.fired_cut().unwrap();
        assert_eq!(
            (fired.before, fired.after),
            (OpKind::Fdatasync, Some(OpKind::SetLen))
        );
        assert_eq!(fired.ops_since_arm, 7);
        assert_eq!((fired.unsynced_data, fired.unsynced_entries), (2, 0));

        // The k-th write, among writes.
        m.restore(RestoreMode::DropAll);
        m.cut_before_nth(OpKind::Write, 3);
        m.fsync(f, true).unwrap();
        m.write(f, 0, b"1").unwrap();
        m.write(f, BLOCK, b"2").unwrap();
        assert_eq!(m.write(f, 2 * BLOCK, b"3"), Err(libc::EIO));
        let fired = m.fired_cut().unwrap();
        assert_eq!(
            (fired.before, fired.after),
            (OpKind::Write, Some(OpKind::Write))
        );
        assert_eq!((fired.ops_since_arm, fired.unsynced_data), (3, 2));

        // A cut by hand drops an armed cut; a restore drops one that never fired.
        m.restore(RestoreMode::DropAll);
        m.cut_at_op(5);
        m.cut();
        assert_eq!(m.armed_cut(), None);
        let report = m.restore(RestoreMode::DropAll);
        assert_eq!(report.fired, None);
        m.cut_at_op(1);
        m.restore(RestoreMode::DropAll);
        assert_eq!(m.armed_cut(), None);
        m.write(f, 0, b"fine").unwrap();
        assert!(!m.is_dead());
        // Disarming.
        m.cut_before_nth(OpKind::Unlink, 1);
        assert_eq!(
            m.disarm(),
            Some(CutAim {
                kind: Some(OpKind::Unlink),
                n: 1
            })
        );
        m.remove(dir, name("db"), false).unwrap();
        assert!(!m.is_dead());
    }

    #[test]
    fn what_was_synced_before_an_armed_cut_survives_drop_all() {
        let mut m = Model::new();
        let (_, f) = durable_file(&mut m, &[1u8; 3 * BLOCK as usize]);
        // A commit that went through: its writes, then its sync.
        m.write(f, 0, &[2u8; BLOCK as usize]).unwrap();
        m.write(f, 3 * BLOCK, &[2u8; 10]).unwrap();
        m.fsync(f, true).unwrap();
        // The next one: its writes reach the cache, the cut comes right before its sync.
        m.cut_before_nth(OpKind::Fdatasync, 1);
        m.write(f, BLOCK, &[3u8; 2 * BLOCK as usize]).unwrap();
        m.write(f, 5 * BLOCK, &[3u8; 10]).unwrap();
        assert_eq!(m.fsync(f, true), Err(libc::EIO));
        assert_eq!(m.fired_cut().unwrap().unsynced_data, 3);
        let report = m.restore(RestoreMode::DropAll);
        assert!(report.fired.is_some());
        assert_eq!((report.data_kept, report.data_dropped), (0, 3));
        let mut want = vec![2u8; BLOCK as usize];
        want.extend([1u8; 2 * BLOCK as usize]);
        want.extend([2u8; 10]);
        assert_eq!(m.read(f, 0, 1 << 20).unwrap(), want);
    }

    #[test]
    fn random_subset_after_an_armed_cut_keeps_only_bytes_that_were_written() {
        const SIZE: usize = 12 * BLOCK as usize;
        let (mut kept_some, mut dropped_some) = (false, false);
        for seed in 0..200u64 {
            let mut rng = SplitMix::new(seed ^ 0x5EED);
            let mut m = Model::new();
            let (_, f) = durable_file(&mut m, &vec![1u8; SIZE]);
            // What the disk holds for sure (the last sync), and every value written at each offset since.
            let mut synced = vec![1u8; SIZE];
            let mut since: Vec<HashSet<u8>> = vec![HashSet::new(); SIZE];
            if rng.chance(50) {
                m.cut_before_nth(OpKind::Write, rng.range(1, 12));
            } else {
                m.cut_at_op(rng.range(1, 16));
            }
            let mut refused = None;
            for value in 2u8..=255 {
                let (offset, len) = if rng.chance(50) {
                    (rng.range(0, 11) * BLOCK, BLOCK as usize)
                } else {
                    let o = rng.range(0, SIZE as u64 - 1);
                    (o, rng.range(1, SIZE as u64 - o) as usize)
                };
                match m.write(f, offset, &vec![value; len]) {
                    Ok(_) => since[offset as usize..offset as usize + len]
                        .iter_mut()
                        .for_each(|w| {
                            w.insert(value);
                        }),
                    Err(e) => {
                        assert_eq!(e, libc::EIO);
                        refused = Some(value);
                        break;
                    }
                }
                if rng.chance(25) {
                    if m.fsync(f, true).is_err() {
                        break;
                    }
                    synced = m.content(f).unwrap().to_vec();
                    since.iter_mut().for_each(HashSet::clear);
                }
            }
            let fired = m.fired_cut().expect("the armed cut fired");
            let report = m.restore(RestoreMode::RandomSubset(seed));
            assert_eq!(report.fired, Some(fired));
            kept_some |= report.data_kept > 0;
            dropped_some |= report.data_dropped > 0;
            let data = m.read(f, 0, 1 << 20).unwrap();
            assert_eq!(data.len(), SIZE, "seed {seed}");
            for (i, b) in data.iter().enumerate() {
                assert!(
                    *b == synced[i] || since[i].contains(b),
                    "seed {seed}: byte {i} is {b}: neither the synced {} nor written since",
                    synced[i]
                );
                assert_ne!(
                    Some(*b),
                    refused,
                    "seed {seed}: byte {i} of the refused write"
                );
            }
        }
        assert!(kept_some && dropped_some);
    }

    #[test]
    fn error_injection_and_capacity() {
        let mut m = Model::new();
        let (dir, f) = durable_file(&mut m, b"abc");
        m.fail_syncs(Some(libc::EIO));
        m.write(f, 0, b"X").unwrap();
        assert_eq!(m.fsync(f, true), Err(libc::EIO));
        assert_eq!(m.fsyncdir(dir), Err(libc::EIO));
        m.fail_syncs(None);
        m.cut();
        m.restore(RestoreMode::DropAll);
        assert_eq!(
            m.read(f, 0, 10).unwrap(),
            b"abc",
            "a failed fsync made nothing durable"
        );
        m.fail_writes(Some(libc::ENOSPC));
        assert_eq!(m.write(f, 0, b"X"), Err(libc::ENOSPC));
        assert_eq!(m.set_len(f, 1), Err(libc::ENOSPC));
        m.fail_writes(None);
        m.set_capacity(10);
        assert_eq!(m.write(f, 3, b"defghij"), Ok(7));
        assert_eq!(m.write(f, 10, b"k"), Err(libc::ENOSPC));
        assert_eq!(m.fallocate(f, 0, 11, 0), Err(libc::ENOSPC));
        assert_eq!(m.write(f, 0, b"ABC"), Ok(3), "overwriting needs no space");
        m.set_capacity(u64::MAX);
        assert_eq!(m.fallocate(f, 0, 100, 0), Ok(()));
        assert_eq!(m.attr(f).unwrap().size, 100);
    }
}
