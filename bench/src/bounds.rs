//! What the hardware allows: RS256 signatures per second on one core with
//! the library Latch signs with (aws-lc-rs, RSA 2048, PKCS#1 v1.5 SHA-256),
//! and the time of one argon2id hash with Latch's parameters.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;

/// Latch's argon2id parameters (OWASP): 19 MiB, 2 passes, 1 lane.
pub const ARGON2_M_KIB: u32 = 19 * 1024;
pub const ARGON2_T: u32 = 2;
pub const ARGON2_P: u32 = 1;

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Bounds {
    /// Cores this process may run on.
    pub cores: usize,
    /// RS256 signatures per second on one core.
    pub rs256_per_core: f64,
    /// RS256 signatures per second with every core signing at once. On a
    /// machine whose cores scale linearly this is `cores × rs256_per_core`;
    /// virtual cores that share a physical one (SMT siblings on the host)
    /// make fewer, and then this, not the product, is the ceiling.
    #[serde(default)]
    pub rs256_all_cores: f64,
    /// Milliseconds per argon2id verification on one core.
    pub argon2_ms: f64,
}

impl Bounds {
    /// Two signatures per flow: the access token (a JWT) and the ID token.
    pub const SIGNATURES_PER_FLOW: f64 = 2.0;

    /// The formula: cores × one core's signatures ÷ signatures per flow.
    pub fn sso_flows_per_second(&self) -> f64 {
        self.cores as f64 * self.rs256_per_core / Self::SIGNATURES_PER_FLOW
    }

    /// What every core signing at once allows.
    pub fn sso_flows_all_cores(&self) -> f64 {
        self.rs256_all_cores / Self::SIGNATURES_PER_FLOW
    }

    pub fn logins_per_second(&self) -> f64 {
        self.cores as f64 / (self.argon2_ms / 1000.0)
    }

    pub fn averaged_with(&self, other: &Bounds) -> Bounds {
        Bounds {
            cores: self.cores,
            rs256_per_core: (self.rs256_per_core + other.rs256_per_core) / 2.0,
            rs256_all_cores: (self.rs256_all_cores + other.rs256_all_cores) / 2.0,
            argon2_ms: (self.argon2_ms + other.argon2_ms) / 2.0,
        }
    }
}

/// Measures both on the calling thread (run it on a blocking thread, while
/// nothing else runs), each for about `time`.
pub fn measure(time: Duration) -> anyhow::Result<Bounds> {
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    Ok(Bounds {
        cores,
        rs256_per_core: rs256_per_second(time)?,
        rs256_all_cores: rs256_on_every_core(cores, time)?,
        argon2_ms: argon2_ms(time)?,
    })
}

fn rs256_on_every_core(cores: usize, time: Duration) -> anyhow::Result<f64> {
    let signers: Vec<_> = (0..cores).map(|_| std::thread::spawn(move || rs256_per_second(time))).collect();
    let mut total = 0.0;
    for signer in signers {
        total += signer.join().map_err(|_| anyhow!("a signing thread panicked"))??;
    }
    Ok(total)
}

fn rs256_per_second(time: Duration) -> anyhow::Result<f64> {
    let key = KeyPair::generate(KeySize::Rsa2048).map_err(|_| anyhow!("RSA key generation failed"))?;
    let rng = SystemRandom::new();
    // About the size of a JWS signing input of Latch's ID token.
    let message = vec![b'e'; 700];
    let mut signature = vec![0u8; key.public_modulus_len()];
    let mut sign =
        || key.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut signature).map_err(|_| anyhow!("signing failed"));
    for _ in 0..20 {
        sign()?;
    }
    let started = Instant::now();
    let mut count = 0u64;
    while started.elapsed() < time {
        for _ in 0..10 {
            sign()?;
        }
        count += 10;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

fn argon2_ms(time: Duration) -> anyhow::Result<f64> {
    let params = Params::new(ARGON2_M_KIB, ARGON2_T, ARGON2_P, None).map_err(|error| anyhow!("{error}"))?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let salt = SaltString::encode_b64(b"latch-bench-salt").map_err(|error| anyhow!("{error}"))?;
    let password = b"bench-password-correct-horse-battery";
    let stored = argon2.hash_password(password, &salt).map_err(|error| anyhow!("{error}"))?;
    // A login verifies: parse the stored PHC string, hash, compare.
    let stored = stored.to_string();
    let verify = || -> anyhow::Result<()> {
        let parsed = argon2::PasswordHash::new(&stored).map_err(|error| anyhow!("{error}"))?;
        argon2.verify_password(password, &parsed).map_err(|error| anyhow!("{error}"))
    };
    verify()?;
    let started = Instant::now();
    let mut count = 0u32;
    while started.elapsed() < time || count < 3 {
        verify()?;
        count += 1;
    }
    Ok(started.elapsed().as_secs_f64() * 1000.0 / f64::from(count))
}
