//! Randomness, hashing, password hashing, signing keys and JWS.

pub mod aead;
pub mod at_rest;
pub mod jws;
pub mod keys;
pub mod password;
pub mod recovery;
pub mod seal;
pub mod secret;
pub mod signing_threads;
pub mod totp;

pub use secret::{constant_time_eq, random_token, sha256_b64, sha256_hex};
