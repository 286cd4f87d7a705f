//! Bearer tokens: created once and shown once; only their SHA-256 is stored, so a copy of the
//! database does not leak working tokens.

use rand::Rng;
use sha2::{Digest, Sha256};

use super::AppError;
use crate::core::AccessRole;
use crate::store::{Store, TokenInfo};

/// Prefix of every token, so a leaked one is easy to recognise (and to grep for).
pub const TOKEN_PREFIX: &str = "blg_";

/// A freshly created token: the only time its secret exists outside the caller.
#[derive(Debug)]
pub struct NewToken {
    /// Stored id (for `belong token revoke ID`).
    pub id: i64,
    /// The secret to hand to the user.
    pub token: String,
    /// What it grants.
    pub role: AccessRole,
}

/// Hex SHA-256 of a token, as stored.
pub fn hash_token(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Create a token with 256 random bits from the thread's CSPRNG.
pub fn create_token(store: &dyn Store, role: AccessRole, name: Option<&str>) -> Result<NewToken, AppError> {
    let bytes: [u8; 32] = rand::rng().random();
    let token = format!("{TOKEN_PREFIX}{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
    let id = store.create_token(&hash_token(&token), role, name)?;
    Ok(NewToken { id, token, role })
}

/// The live token matching `token`, if any.
pub fn authenticate(store: &dyn Store, token: &str) -> Result<Option<TokenInfo>, AppError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    Ok(store.token_by_hash(&hash_token(token))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    #[test]
    fn tokens_authenticate_until_revoked() {
        let store = SqliteStore::open_in_memory().unwrap();
        let t = create_token(&store, AccessRole::Recruiter, Some("laptop")).unwrap();
        assert!(t.token.starts_with(TOKEN_PREFIX) && t.token.len() == TOKEN_PREFIX.len() + 64);
        let info = authenticate(&store, &t.token).unwrap().unwrap();
        assert_eq!((info.id, info.role, info.name.as_deref()), (t.id, AccessRole::Recruiter, Some("laptop")));
        assert!(authenticate(&store, "blg_nope").unwrap().is_none());
        assert!(authenticate(&store, "").unwrap().is_none());
        // Only the hash is stored.
        let other = create_token(&store, AccessRole::Manager, None).unwrap();
        assert_ne!(other.token, t.token);
        assert!(store.revoke_token(t.id).unwrap());
        assert!(!store.revoke_token(t.id).unwrap());
        assert!(authenticate(&store, &t.token).unwrap().is_none());
        let list = store.tokens().unwrap();
        assert_eq!(list.len(), 2);
        assert!(list[0].revoked_at.is_some() && list[1].revoked_at.is_none());
    }
}
