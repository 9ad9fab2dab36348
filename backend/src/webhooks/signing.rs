//! Signatures the Standard Webhooks way (<https://www.standardwebhooks.com>): any of its libraries
//! verifies what we send. The secret is `whsec_` and a base64 key; each delivery carries
//! `webhook-id`, `webhook-timestamp` (seconds) and `webhook-signature: v1,<base64 of HMAC-SHA256 over
//! "id.timestamp.body">`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

const SECRET_PREFIX: &str = "whsec_";

/// A new signing secret: 32 random bytes.
pub fn new_secret() -> String {
    let key: [u8; 32] = rand::rng().random();
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// A new event's `webhook-id`: `msg_` and 128 random bits.
pub fn new_event_id() -> String {
    let id: u128 = rand::rng().random();
    format!("msg_{id:032x}")
}

/// The `webhook-signature` header for one attempt.
pub fn signature(secret: &str, event_id: &str, timestamp: i64, body: &str) -> String {
    // Our secrets always decode; a key stored otherwise is used as its bytes rather than not signing.
    let encoded = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = STANDARD.decode(encoded).unwrap_or_else(|_| encoded.as_bytes().to_vec());
    // Unwrap: HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{event_id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_ids_are_fresh() {
        assert!(new_secret().starts_with("whsec_"));
        assert_ne!(new_secret(), new_secret());
        assert_ne!(new_event_id(), new_event_id());
    }

    #[test]
    fn a_signature_covers_the_id_the_time_and_the_body() {
        let secret = new_secret();
        let signed = signature(&secret, "msg_1", 1_700_000_000, "{}");
        assert!(signed.starts_with("v1,"));
        assert_eq!(signed, signature(&secret, "msg_1", 1_700_000_000, "{}"));
        assert_ne!(signed, signature(&secret, "msg_2", 1_700_000_000, "{}"));
        assert_ne!(signed, signature(&secret, "msg_1", 1_700_000_001, "{}"));
        assert_ne!(signed, signature(&secret, "msg_1", 1_700_000_000, "{} "));
    }
}
