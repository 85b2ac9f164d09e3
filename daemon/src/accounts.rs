//! Web users, sessions, login lockout and the audit log.
//!
//! Users live in the store (`user/{name}`) with argon2id password hashes and a role. Sessions are in memory
//! (a restart signs everyone out), identified by a random id that only the browser's HttpOnly cookie holds;
//! the table keeps the id's SHA-256. Failed logins are counted per user name and per client address: after
//! [`LOCK_AFTER`] failures of a name (or [`LOCK_ADDR_AFTER`] from an address) within [`LOCK_FOR`], the name (or
//! address) is locked for [`LOCK_FOR`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{new_id, Time};
use crate::store::{Store, StoreError};

pub use crate::model::Role;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// argon2id PHC string.
    pub hash: String,
    /// The password was set by someone else (first start, `linekeeper passwd`, an admin): change it first.
    pub must_change: bool,
    /// "zh-CN" or "en"; `None` follows the site's language.
    #[serde(default)]
    pub language: Option<String>,
    pub created_at: Time,
}

/// One line of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: Time,
    pub user: String,
    /// `login`, `login_failed`, `logout`, `password`, `config`, `export`, `task`, `user`, `token`, `customer`...
    pub action: String,
    pub detail: String,
    #[serde(default)]
    pub from: Option<String>,
}

pub const MIN_PASSWORD: usize = 10;
/// Failures of one user name that lock it.
pub const LOCK_AFTER: u32 = 5;
/// Failures from one client address (any names) that lock the address.
pub const LOCK_ADDR_AFTER: u32 = 20;
pub const LOCK_FOR: Duration = Duration::from_secs(15 * 60);
/// A session ends after this long without a request.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 3600);
const MAX_SESSIONS: usize = 256;
const MAX_TRACKED_FAILURES: usize = 4096;

fn user_key(name: &str) -> String {
    format!("user/{name}")
}

pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

pub fn hash_password(password: &str) -> Result<String, StoreError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::Write(format!("no randomness: {e}")))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| StoreError::Write(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Write(format!("argon2: {e}")))
}

pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// 16 letters and digits without look-alikes (0/O, 1/l/I).
pub fn random_password() -> String {
    const ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ";
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter()
        .map(|x| ALPHABET[*x as usize % ALPHABET.len()] as char)
        .collect()
}

/// Why a new password is refused (a catalog key of the web page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    TooShort,
    Mismatch,
    SameAsName,
}

pub fn check_new_password(user: &str, new: &str, confirm: &str) -> Result<(), PasswordProblem> {
    if new != confirm {
        Err(PasswordProblem::Mismatch)
    } else if new.chars().count() < MIN_PASSWORD {
        Err(PasswordProblem::TooShort)
    } else if new.eq_ignore_ascii_case(user) {
        Err(PasswordProblem::SameAsName)
    } else {
        Ok(())
    }
}

pub fn user(store: &Store, name: &str) -> Result<Option<User>, StoreError> {
    store.account(&user_key(name))
}

pub fn users(store: &Store) -> Result<Vec<User>, StoreError> {
    let mut v: Vec<User> = store
        .accounts_newest_first::<User>("user/", None, usize::MAX)?
        .into_iter()
        .map(|(_, u)| u)
        .collect();
    v.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(v)
}

pub fn put_user(store: &Store, u: &User) -> Result<(), StoreError> {
    store.put_account(&user_key(&u.name), Some(u))
}

pub fn delete_user(store: &Store, name: &str) -> Result<(), StoreError> {
    store.put_account::<User>(&user_key(name), None)
}

/// Sets a new random password that must be changed at the next login (first start, `linekeeper passwd`,
/// an admin's reset); creates the user as an admin when it does not exist. Returns the password.
pub fn reset_password(store: &Store, name: &str, now: Time) -> Result<String, StoreError> {
    let password = random_password();
    let hash = hash_password(&password)?;
    let u = match user(store, name)? {
        Some(mut u) => {
            u.hash = hash;
            u.must_change = true;
            u
        }
        None => User {
            name: name.to_string(),
            role: Role::Admin,
            hash,
            must_change: true,
            language: None,
            created_at: now,
        },
    };
    put_user(store, &u)?;
    Ok(password)
}

/// On first start (no users yet) creates `admin` with a random password, returned to be shown once.
pub fn ensure_admin(store: &Store, now: Time) -> Result<Option<String>, StoreError> {
    if store
        .accounts_newest_first::<User>("user/", None, 1)?
        .is_empty()
    {
        reset_password(store, "admin", now).map(Some)
    } else {
        Ok(None)
    }
}

/// Writes a line of the audit log, now.
pub fn audit(
    store: &Store,
    user: &str,
    action: &str,
    detail: impl Into<String>,
    from: Option<&str>,
) {
    let entry = AuditEntry {
        at: chrono::Utc::now(),
        user: user.to_string(),
        action: action.to_string(),
        detail: detail.into(),
        from: from.map(str::to_string),
    };
    let key = format!("audit/{}", new_id(entry.at));
    if let Err(e) = store.put_account(&key, Some(&entry)) {
        tracing::error!(error = %e, action = %entry.action, "could not write the audit log");
    }
}

/// The newest audit entries, before the entry id `before` when given (paging): (id, entry).
pub fn audit_log(
    store: &Store,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<(String, AuditEntry)>, StoreError> {
    store.accounts_newest_first("audit/", before, limit)
}

// ---- sessions ----

/// A live session as a request sees it: the user's role, language and must-change flag are read from the stored
/// user on every request, so a change made anywhere (page, CLI) applies at once.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: String,
    pub role: Role,
    pub csrf: String,
    pub must_change: bool,
    pub language: Option<String>,
}

/// What the table keeps of a session: only what the stored user does not tell.
struct Entry {
    user: String,
    csrf: String,
    /// The password hash at login: a password set elsewhere (`linekeeper passwd`, an admin's reset) ends it.
    pw: String,
    last_seen: Instant,
    /// The user as last read (role, must change, language): used only while the store cannot be read, so a
    /// signed-in user still sees the status page and its banner when the disk fails.
    last: Option<(Role, bool, Option<String>)>,
}

fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    let _ = getrandom::fill(&mut b);
    hex::encode(b)
}

fn sid_hash(sid: &str) -> [u8; 32] {
    Sha256::digest(sid.as_bytes()).into()
}

#[derive(Default)]
pub struct Sessions {
    table: Mutex<HashMap<[u8; 32], Entry>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Entry>> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new session for `user` (login): returns the session id for the cookie. Any earlier session id
    /// the browser held is dropped by the caller, so the id rotates at every login.
    pub fn create(&self, u: &User, now: Instant) -> String {
        let sid = random_hex(32);
        let mut t = self.lock();
        t.retain(|_, e| now.saturating_duration_since(e.last_seen) < SESSION_IDLE);
        if t.len() >= MAX_SESSIONS {
            if let Some(oldest) = t.iter().min_by_key(|(_, e)| e.last_seen).map(|(k, _)| *k) {
                t.remove(&oldest);
            }
        }
        t.insert(
            sid_hash(&sid),
            Entry {
                user: u.name.clone(),
                csrf: random_hex(16),
                pw: u.hash.clone(),
                last_seen: now,
                last: Some((u.role, u.must_change, u.language.clone())),
            },
        );
        sid
    }

    /// The live session with this id, touched, as the stored user is now. A session idle too long, of a user
    /// removed, or whose password was set elsewhere, ends.
    pub fn get(&self, store: &Store, sid: &str, now: Instant) -> Option<Session> {
        let key = sid_hash(sid);
        let (name, csrf, pw, last) = {
            let mut t = self.lock();
            let e = t.get_mut(&key)?;
            if now.saturating_duration_since(e.last_seen) >= SESSION_IDLE {
                t.remove(&key);
                return None;
            }
            e.last_seen = now;
            (e.user.clone(), e.csrf.clone(), e.pw.clone(), e.last.clone())
        };
        match user(store, &name) {
            Ok(Some(u)) if u.hash == pw => {
                if let Some(e) = self.lock().get_mut(&key) {
                    e.last = Some((u.role, u.must_change, u.language.clone()));
                }
                Some(Session {
                    user: u.name,
                    role: u.role,
                    csrf,
                    must_change: u.must_change,
                    language: u.language,
                })
            }
            Ok(_) => {
                self.lock().remove(&key);
                None
            }
            Err(e) => {
                // The store cannot be read (a failing disk): the session goes on as the user was last read.
                tracing::warn!(error = %e, user = %name, "cannot read the web users; the session goes on as last read");
                let (role, must_change, language) = last?;
                Some(Session {
                    user: name,
                    role,
                    csrf,
                    must_change,
                    language,
                })
            }
        }
    }

    pub fn remove(&self, sid: &str) {
        self.lock().remove(&sid_hash(sid));
    }

    /// The user changed their own password: their sessions stay.
    pub fn password_changed(&self, u: &User) {
        for e in self.lock().values_mut().filter(|e| e.user == u.name) {
            e.pw = u.hash.clone();
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---- lockout ----

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    first: Instant,
    locked_until: Option<Instant>,
}

/// Failed-login counts per user name and per client address.
#[derive(Default)]
pub struct Lockout {
    table: Mutex<HashMap<String, Failures>>,
}

impl Lockout {
    /// When `key` is locked, how long it stays locked.
    pub fn locked(&self, key: &str, now: Instant) -> Option<Duration> {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        t.get(key)
            .and_then(|f| f.locked_until)
            .and_then(|u| u.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    /// Counts a failure; true when this one locked the key (at `limit` failures within [`LOCK_FOR`]).
    pub fn fail(&self, key: &str, limit: u32, now: Instant) -> bool {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if t.len() >= MAX_TRACKED_FAILURES && !t.contains_key(key) {
            t.retain(|_, f| now.saturating_duration_since(f.first) < LOCK_FOR);
            if t.len() >= MAX_TRACKED_FAILURES {
                return false;
            }
        }
        let f = t.entry(key.to_string()).or_insert(Failures {
            count: 0,
            first: now,
            locked_until: None,
        });
        if now.saturating_duration_since(f.first) >= LOCK_FOR {
            *f = Failures {
                count: 0,
                first: now,
                locked_until: None,
            };
        }
        f.count += 1;
        if f.count >= limit && f.locked_until.is_none_or(|u| u <= now) {
            f.locked_until = Some(now + LOCK_FOR);
            f.count = 0;
            f.first = now;
            return true;
        }
        false
    }

    pub fn clear(&self, key: &str) {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "correct horsf"));
        assert!(!verify_password("garbage", "x"));
        let p = random_password();
        assert_eq!(p.len(), 16);
        assert!(p.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(p, random_password());
    }

    #[test]
    fn new_passwords_are_checked() {
        assert_eq!(
            check_new_password("bob", "abcdefghij", "abcdefghij"),
            Ok(())
        );
        assert_eq!(
            check_new_password("bob", "short", "short"),
            Err(PasswordProblem::TooShort)
        );
        assert_eq!(
            check_new_password("bob", "abcdefghij", "abcdefghik"),
            Err(PasswordProblem::Mismatch)
        );
        assert_eq!(
            check_new_password("administrator", "Administrator", "Administrator"),
            Err(PasswordProblem::SameAsName)
        );
    }

    #[test]
    fn first_start_makes_one_admin_and_reset_keeps_the_role() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let now = chrono::Utc::now();
        let pw = ensure_admin(&store, now).unwrap().unwrap();
        assert_eq!(ensure_admin(&store, now).unwrap(), None);
        let u = user(&store, "admin").unwrap().unwrap();
        assert_eq!(u.role, Role::Admin);
        assert!(u.must_change);
        assert!(verify_password(&u.hash, &pw));
        let mut u2 = u.clone();
        u2.name = "ann".into();
        u2.role = Role::Agent;
        u2.must_change = false;
        put_user(&store, &u2).unwrap();
        let pw2 = reset_password(&store, "ann", now).unwrap();
        let ann = user(&store, "ann").unwrap().unwrap();
        assert_eq!(ann.role, Role::Agent);
        assert!(ann.must_change && verify_password(&ann.hash, &pw2));
        assert_eq!(
            users(&store)
                .unwrap()
                .iter()
                .map(|u| u.name.as_str())
                .collect::<Vec<_>>(),
            ["admin", "ann"]
        );
        delete_user(&store, "ann").unwrap();
        assert_eq!(user(&store, "ann").unwrap(), None);
    }

    #[test]
    fn audit_log_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..5 {
            audit(&store, "admin", "login", format!("#{i}"), None);
        }
        let page1 = audit_log(&store, None, 3).unwrap();
        let details: Vec<_> = page1.iter().map(|(_, e)| e.detail.as_str()).collect();
        assert_eq!(details, ["#4", "#3", "#2"]);
        let page2 = audit_log(&store, Some(&page1[2].0), 3).unwrap();
        let details: Vec<_> = page2.iter().map(|(_, e)| e.detail.as_str()).collect();
        assert_eq!(details, ["#1", "#0"]);
    }

    /// While the store cannot be read (a failing disk), a signed-in user's session goes on as the user was last
    /// read, so the status page and its banner still show; unknown sessions still get nothing.
    #[test]
    fn a_session_survives_a_store_that_cannot_be_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let store = Store::open(&path).unwrap();
        let s = Sessions::default();
        let now = Instant::now();
        reset_password(&store, "ann", chrono::Utc::now()).unwrap();
        let mut u = user(&store, "ann").unwrap().unwrap();
        u.must_change = false;
        u.role = Role::Supervisor;
        put_user(&store, &u).unwrap();
        let sid = s.create(&u, now);
        assert_eq!(s.get(&store, &sid, now).unwrap().role, Role::Supervisor);
        // The store closes (as after an I/O error) and cannot be opened again: its directory is gone.
        store.close();
        std::fs::remove_dir_all(&path).unwrap();
        assert!(
            user(&store, "ann").is_err(),
            "the store must be unreadable now"
        );
        let got = s.get(&store, &sid, now).expect("the session goes on");
        assert_eq!(
            (got.user.as_str(), got.role, got.must_change),
            ("ann", Role::Supervisor, false)
        );
        assert!(s.get(&store, "unknown", now).is_none());
    }

    #[test]
    fn sessions_rotate_expire_and_follow_the_stored_user() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let s = Sessions::default();
        let now = Instant::now();
        reset_password(&store, "ann", chrono::Utc::now()).unwrap();
        let u = user(&store, "ann").unwrap().unwrap();
        let a = s.create(&u, now);
        let b = s.create(&u, now);
        assert_ne!(a, b);
        let got = s.get(&store, &a, now).unwrap();
        assert_eq!(
            (got.user.as_str(), got.role, got.must_change),
            ("ann", Role::Admin, true)
        );
        assert!(s.get(&store, "nope", now).is_none());
        // A role or flag changed in the store applies to the live session at once.
        let mut changed = u.clone();
        changed.must_change = false;
        changed.role = Role::Agent;
        put_user(&store, &changed).unwrap();
        let got = s.get(&store, &a, now).unwrap();
        assert_eq!((got.role, got.must_change), (Role::Agent, false));
        // The user's own new password keeps their sessions; one set elsewhere ends them.
        changed.hash = hash_password("a new password").unwrap();
        put_user(&store, &changed).unwrap();
        s.password_changed(&changed);
        assert!(s.get(&store, &a, now).is_some());
        reset_password(&store, "ann", chrono::Utc::now()).unwrap();
        assert!(s.get(&store, &a, now).is_none());
        assert_eq!(s.len(), 1, "the ended session left the table");
        let c = s.create(&user(&store, "ann").unwrap().unwrap(), now);
        assert!(
            s.get(&store, &c, now + SESSION_IDLE).is_none(),
            "idle too long"
        );
        let d = s.create(&user(&store, "ann").unwrap().unwrap(), now);
        s.remove(&d);
        assert!(s.get(&store, &d, now).is_none());
        let e = s.create(&user(&store, "ann").unwrap().unwrap(), now);
        delete_user(&store, "ann").unwrap();
        assert!(s.get(&store, &e, now).is_none());
    }

    #[test]
    fn lockout_after_repeated_failures_then_expires() {
        let l = Lockout::default();
        let now = Instant::now();
        for i in 1..LOCK_AFTER {
            assert!(!l.fail("ann", LOCK_AFTER, now), "failure {i}");
            assert_eq!(l.locked("ann", now), None);
        }
        assert!(l.fail("ann", LOCK_AFTER, now));
        assert_eq!(l.locked("ann", now), Some(LOCK_FOR));
        assert!(l.locked("bob", now).is_none());
        assert_eq!(l.locked("ann", now + LOCK_FOR), None);
        // Failures spread wider than the window never lock.
        let l = Lockout::default();
        for i in 0..20 {
            assert!(!l.fail("x", LOCK_AFTER, now + LOCK_FOR * i));
        }
        l.fail("y", LOCK_AFTER, now);
        l.clear("y");
        assert!(l.locked("y", now).is_none());
    }
}
