//! API tokens: random, shown once, stored only as a SHA-256 hash.

use sha2::{Digest, Sha256};

use crate::model::{Role, Time};
use crate::store::{Store, StoreError, TokenRecord};

pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Makes a new token named `name` with `role`, stores its hash and returns the token itself.
pub fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    now: Time,
) -> Result<String, StoreError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Write(format!("no randomness for a token: {e}")))?;
    let token = format!("lk_{}", hex::encode(bytes));
    store.add_token(
        &hash_token(&token),
        &TokenRecord {
            name: name.to_string(),
            created_at: now,
            role: Some(role),
        },
    )?;
    Ok(token)
}
