//! Credentials: password hashes (argon2id), access tokens (HS256 JWTs), and the opaque random
//! secrets behind refresh tokens, API tokens and WebSocket tickets.
//!
//! Opaque secrets are stored only as SHA-256 hashes: they carry 256 bits of randomness, so a fast
//! hash is enough (argon2's slowness protects low-entropy passwords, which these are not).

use std::sync::LazyLock;
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// Every API token starts with this, so the server (and secret scanners) can tell it from a JWT.
pub const API_TOKEN_PREFIX: &str = "chat_pat_";
/// Refresh tokens start with this.
pub const REFRESH_TOKEN_PREFIX: &str = "chat_rt_";

/// Signs and checks access tokens. The algorithm is pinned: a token that names another one
/// (`none` included) is rejected before its signature is looked at.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

/// What an access token says.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    /// The user id, as a string (RFC 7519 makes `sub` a string).
    sub: String,
    /// Expiry, Unix seconds.
    exp: i64,
    /// Issue time, Unix seconds.
    iat: i64,
    /// The session (refresh-token family) the token belongs to: ending the session ends the token.
    sid: String,
}

/// What a valid access token says.
#[derive(Clone, Debug)]
pub struct Verified {
    pub user_id: i64,
    /// Expiry, Unix seconds.
    pub expires_at: i64,
    /// The session it belongs to.
    pub session: String,
}

/// An access token as issued.
pub struct AccessToken {
    pub token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> JwtKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        // Nodes share a clock source; a token past `exp` is refused at once.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp", "sub"]);
        // `sid` is required by `Claims` itself: a token without one (issued before sessions) is refused.
        JwtKeys {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl,
        }
    }

    pub fn issue(&self, user_id: i64, session: &str) -> Result<AccessToken, ApiError> {
        let now = chrono::Utc::now().timestamp();
        let expires_in = self.ttl.as_secs() as i64;
        let claims = Claims { sub: user_id.to_string(), iat: now, exp: now + expires_in, sid: session.to_owned() };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(ApiError::internal)?;
        Ok(AccessToken { token, expires_in })
    }

    /// What a valid token says; 401 otherwise. Whether its session still lives is the caller's check.
    pub fn verify(&self, token: &str) -> Result<Verified, ApiError> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => ApiError::unauthorized("token_expired", "The access token has expired."),
                _ => ApiError::unauthorized("invalid_token", "The access token is not valid."),
            })?;
        let user_id = data
            .claims
            .sub
            .parse()
            .map_err(|_| ApiError::unauthorized("invalid_token", "The access token is not valid."))?;
        Ok(Verified { user_id, expires_at: data.claims.exp, session: data.claims.sid })
    }
}

/// Password hashes computed at once, at most: each argon2 hash holds 19 MiB while it runs, so without a
/// cap a burst of 100 registrations held 493 MiB. One per core keeps the cores busy and memory flat;
/// the rest wait their turn (and the login and register rate limits keep that queue short).
static HASHING: LazyLock<tokio::sync::Semaphore> =
    LazyLock::new(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

/// Runs password hashing work (`hash_password`, `verify_password`) off the async workers, within the cap.
pub async fn hashing<R: Send + 'static>(work: impl FnOnce() -> R + Send + 'static) -> Result<R, ApiError> {
    // The semaphore is never closed, so acquiring fails only if it were.
    let _slot = HASHING.acquire().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(work).await.map_err(ApiError::internal)
}

/// An argon2id hash in PHC form, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default().hash_password(password.as_bytes()).map(|h| h.to_string()).map_err(ApiError::internal)
}

/// True when `password` matches the stored `hash`. An unreadable hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
}

/// Spends the time of a real verification, so that a login for an unknown user takes as long as
/// one with a wrong password and does not reveal which usernames exist.
pub fn verify_password_of_nobody(password: &str) {
    static NOBODY: LazyLock<String> = LazyLock::new(|| {
        // Unwrap: hashing a fixed password with valid default parameters cannot fail.
        hash_password("no user has this password").unwrap()
    });
    let _ = verify_password(&NOBODY, password);
}

/// A new random secret: `prefix` and 32 random bytes, URL-safe.
pub fn new_secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// How a secret is stored and looked up.
pub fn hash_secret(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A burst of hashes runs one per core at a time (each argon2 hash holds 19 MiB): without the cap,
    /// `spawn_blocking` would run all of them at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn hashing_runs_at_most_one_hash_per_core_at_once() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let burst: Vec<_> = (0..cores * 4)
            .map(|_| {
                let (running, most) = (Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(hashing(move || {
                    most.fetch_max(running.fetch_add(1, SeqCst) + 1, SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    running.fetch_sub(1, SeqCst);
                }))
            })
            .collect();
        for hash in burst {
            hash.await.unwrap().unwrap();
        }
        let most = most.load(SeqCst);
        assert!((1..=cores).contains(&most), "{most} hashes ran at once on {cores} cores");
    }

    #[test]
    fn passwords_verify_only_themselves() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct horsE"));
        assert!(!verify_password("not a hash", "correct horse"));
    }

    #[test]
    fn jwt_round_trip_and_wrong_key() {
        let keys = JwtKeys::new(b"k1", Duration::from_secs(60));
        let token = keys.issue(42, "family").unwrap();
        let verified = keys.verify(&token.token).unwrap();
        assert_eq!((verified.user_id, verified.session.as_str()), (42, "family"));
        let other = JwtKeys::new(b"k2", Duration::from_secs(60));
        assert!(other.verify(&token.token).is_err());
    }

    #[test]
    fn secrets_are_unique_and_hash_stably() {
        let a = new_secret(API_TOKEN_PREFIX);
        let b = new_secret(API_TOKEN_PREFIX);
        assert_ne!(a, b);
        assert!(a.starts_with(API_TOKEN_PREFIX) && a.len() > 40);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_eq!(hash_secret(&a).len(), 64);
    }
}
