//! Signed digests of the checkpoint chain: what lets an archive prove itself unaltered, in place
//! or as any copy of it.
//!
//! ```text
//! {prefix}/{kind}/_lago-audit/digests/00000000000000000001.json
//! {prefix}/{kind}/_lago-audit/digests/00000000000000000002.json
//! …
//! ```
//!
//! The sink writes a digest at the end of every run and at least once an hour while it runs,
//! each created only if absent. A digest commits the [chain](crate::chain) records written since
//! the previous digest, by the SHA-256 of each record's bytes, and holds the previous digest's
//! SHA-256 and signature, so the digests form a second chain over the first.
//!
//! # The format, for writing a verifier
//!
//! A digest file is two lines of JSON, each ending with `\n`:
//!
//! 1. **The payload** ([`DigestPayload`]): `v` (1), `kind`, `seq` (from 1, without holes),
//!    `created_at`, `chain_from`/`chain_to` (the chain records it commits, inclusive; the first
//!    digest starts at 1, each next one at the previous `chain_to + 1`), `records` (each
//!    `{"seq", "sha256"}`: the SHA-256, lowercase hex, of that chain record's file as stored),
//!    `position` (the chain's position at `chain_to`), `previous` (`null` for the first digest,
//!    else `{"seq", "sha256", "signature"}`: the SHA-256 of the previous digest's whole file and
//!    its signature), `signature_algorithm` (`"Ed25519"` or `null`), `public_key` (the raw 32-byte
//!    Ed25519 public key, base64, or `null`) and `public_key_fingerprint` (the SHA-256 of those 32
//!    bytes, lowercase hex, or `null`).
//! 2. **The signature**: `{"signature": "<base64>"}`, the Ed25519 signature of the exact bytes of
//!    line 1 without its `\n`; or `{"signature": null}` when the sink had no key.
//!
//! To verify by hand: split the file at its first `\n`; check the signature over line 1 with the
//! public key you trust (not only the one the digest names); check `previous.sha256` against the
//! SHA-256 of the previous digest's file and `previous.signature` against its line 2; check each
//! `records[].sha256` against the SHA-256 of `chain/{seq:020}.json`; then check the chain and
//! the objects as [`crate::chain`] describes.

use crate::chain::sha256_hex;
use crate::layout::{LogKind, DIGEST_DIR, STATE_DIR};
use crate::{Destination, SinkError};
use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use object_store::path::Path;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};

/// The version of the digest format this crate writes.
pub const DIGEST_VERSION: u32 = 1;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// A chain record a digest commits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHash {
    /// The record's sequence number.
    pub seq: u64,
    /// The SHA-256 of its file, lowercase hex.
    pub sha256: String,
}

/// The previous digest, as the next one names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousDigest {
    /// Its sequence number.
    pub seq: u64,
    /// The SHA-256 of its whole file, lowercase hex.
    pub sha256: String,
    /// Its signature (base64), if it was signed.
    pub signature: Option<String>,
}

/// Line 1 of a digest file: what is signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DigestPayload {
    /// The format ([`DIGEST_VERSION`]).
    pub v: u32,
    /// The kind of log.
    pub kind: String,
    /// The digest's sequence number, from 1.
    pub seq: u64,
    /// When it was written (the writer's clock).
    pub created_at: DateTime<Utc>,
    /// The first chain record it commits.
    pub chain_from: u64,
    /// The last chain record it commits.
    pub chain_to: u64,
    /// Each record it commits, with the SHA-256 of its file.
    pub records: Vec<RecordHash>,
    /// The chain's position at `chain_to`.
    pub position: Option<DateTime<Utc>>,
    /// The previous digest (`None` for the first).
    pub previous: Option<PreviousDigest>,
    /// `Ed25519`, or `None` for an unsigned digest.
    pub signature_algorithm: Option<String>,
    /// The raw public key (base64) that signed it.
    pub public_key: Option<String>,
    /// The SHA-256 of the raw public key, lowercase hex.
    pub public_key_fingerprint: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct SignatureLine {
    signature: Option<String>,
}

/// A digest as read back: its payload, the bytes of line 1, its signature and its file's hash.
#[derive(Clone, Debug)]
pub struct Digest {
    /// Line 1, parsed.
    pub payload: DigestPayload,
    /// Line 1's bytes (what the signature covers).
    pub signed: Bytes,
    /// The signature (base64), if any.
    pub signature: Option<String>,
    /// The SHA-256 of the whole file.
    pub sha256: String,
}

impl Digest {
    /// Parses a digest file.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_owned())?;
        let (line1, rest) = text
            .split_once('\n')
            .ok_or_else(|| "not two lines".to_owned())?;
        let line2 = rest.trim_end_matches('\n');
        let payload: DigestPayload =
            serde_json::from_str(line1).map_err(|e| format!("line 1: {e}"))?;
        let sig: SignatureLine = serde_json::from_str(line2).map_err(|e| format!("line 2: {e}"))?;
        Ok(Self {
            payload,
            signed: Bytes::copy_from_slice(line1.as_bytes()),
            signature: sig.signature,
            sha256: sha256_hex(bytes),
        })
    }

    /// Whether the signature verifies with `key` (raw 32 bytes).
    pub fn signed_by(&self, key: &[u8]) -> bool {
        let Some(sig) = self.signature.as_deref().and_then(|s| B64.decode(s).ok()) else {
            return false;
        };
        UnparsedPublicKey::new(&ED25519, key)
            .verify(&self.signed, &sig)
            .is_ok()
    }

    /// The public key the digest names (raw bytes), if any.
    pub fn named_key(&self) -> Option<Vec<u8>> {
        self.payload
            .public_key
            .as_deref()
            .and_then(|k| B64.decode(k).ok())
    }
}

/// An Ed25519 key that signs digests, from a PKCS#8 file (PEM `PRIVATE KEY` or DER).
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// The DER prefix of an Ed25519 `SubjectPublicKeyInfo` (RFC 8410), before the 32 key bytes.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn pem(label: &str, der: &[u8]) -> String {
    let body = B64.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The DER inside a PEM block labelled `label`, or the bytes themselves when they are not PEM.
fn unpem(bytes: &[u8], label: &str) -> Result<Vec<u8>, String> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(bytes.to_vec());
    };
    let begin = format!("-----BEGIN {label}-----");
    let Some(start) = text.find(&begin) else {
        if text.trim_start().starts_with("-----BEGIN") {
            return Err(format!("not a PEM {label}"));
        }
        return Ok(bytes.to_vec());
    };
    let rest = &text[start + begin.len()..];
    let end = rest
        .find("-----END")
        .ok_or_else(|| format!("a PEM {label} without its END line"))?;
    let b64: String = rest[..end].split_whitespace().collect();
    B64.decode(b64).map_err(|e| format!("bad base64: {e}"))
}

impl SigningKey {
    /// A new key as a PKCS#8 PEM document (`PRIVATE KEY`).
    pub fn generate_pem() -> Result<String, String> {
        let rng = ring::rand::SystemRandom::new();
        let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|e| e.to_string())?;
        Ok(pem("PRIVATE KEY", doc.as_ref()))
    }

    /// Reads a key: PKCS#8 as PEM (`PRIVATE KEY`) or DER.
    pub fn from_pkcs8(bytes: &[u8]) -> Result<Self, String> {
        let der = unpem(bytes, "PRIVATE KEY")?;
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|e| format!("not an Ed25519 PKCS#8 key ({e})"))?;
        Ok(Self { pair })
    }

    /// The raw 32-byte public key.
    pub fn public_key(&self) -> &[u8] {
        self.pair.public_key().as_ref()
    }

    /// The SHA-256 of the raw public key, lowercase hex.
    pub fn fingerprint(&self) -> String {
        sha256_hex(self.public_key())
    }

    /// The public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo), for `--public-key`.
    pub fn public_key_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.public_key());
        pem("PUBLIC KEY", &der)
    }

    fn sign(&self, message: &[u8]) -> String {
        B64.encode(self.pair.sign(message).as_ref())
    }
}

/// Reads a public key to pin: a PEM `PUBLIC KEY`, a PEM `PRIVATE KEY` (its public half), or the
/// raw 32 bytes as base64. Returns the raw 32 bytes.
pub fn public_key_from(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let text = String::from_utf8_lossy(bytes);
    if text.contains("PRIVATE KEY") {
        return Ok(SigningKey::from_pkcs8(bytes)?.public_key().to_vec());
    }
    if text.contains("-----BEGIN") {
        let der = unpem(bytes, "PUBLIC KEY")?;
        return match der.strip_prefix(&SPKI_PREFIX[..]) {
            Some(raw) if raw.len() == 32 => Ok(raw.to_vec()),
            _ => Err("not an Ed25519 public key".to_owned()),
        };
    }
    match B64.decode(text.trim()) {
        Ok(raw) if raw.len() == 32 => Ok(raw),
        _ => Err("not an Ed25519 public key (PEM or base64 of 32 bytes)".to_owned()),
    }
}

/// The path of digest `seq` of `kind`.
pub fn digest_path(dest: &Destination, kind: LogKind, seq: u64) -> Path {
    dest.path(&format!(
        "{}/{STATE_DIR}/{DIGEST_DIR}/{seq:020}.json",
        kind.dir()
    ))
}

/// Builds a digest file: the payload's line and the signature's (with `key`, it fills in the
/// payload's algorithm, public key and fingerprint first).
pub fn encode(mut payload: DigestPayload, key: Option<&SigningKey>) -> Result<Bytes, SinkError> {
    if let Some(key) = key {
        payload.signature_algorithm = Some("Ed25519".to_owned());
        payload.public_key = Some(B64.encode(key.public_key()));
        payload.public_key_fingerprint = Some(key.fingerprint());
    }
    let line1 = serde_json::to_string(&payload).map_err(|e| SinkError::Encode(e.to_string()))?;
    let line2 = serde_json::to_string(&SignatureLine {
        signature: key.map(|k| k.sign(line1.as_bytes())),
    })
    .map_err(|e| SinkError::Encode(e.to_string()))?;
    Ok(Bytes::from(format!("{line1}\n{line2}\n")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_digest_verifies_with_its_key_only() {
        let pem = SigningKey::generate_pem().unwrap();
        let key = SigningKey::from_pkcs8(pem.as_bytes()).unwrap();
        let other = SigningKey::from_pkcs8(SigningKey::generate_pem().unwrap().as_bytes()).unwrap();
        let payload = DigestPayload {
            v: DIGEST_VERSION,
            kind: "activity_logs".into(),
            seq: 1,
            created_at: Utc::now(),
            chain_from: 1,
            chain_to: 2,
            records: vec![],
            position: None,
            previous: None,
            signature_algorithm: None,
            public_key: None,
            public_key_fingerprint: None,
        };
        let bytes = encode(payload, Some(&key)).unwrap();
        let digest = Digest::parse(&bytes).unwrap();
        assert!(digest.signed_by(key.public_key()));
        assert!(!digest.signed_by(other.public_key()));
        assert_eq!(digest.named_key().unwrap(), key.public_key());
        assert_eq!(
            digest.payload.public_key_fingerprint.as_deref(),
            Some(key.fingerprint().as_str())
        );
        // The public key round-trips through its PEM, and through the private key's.
        assert_eq!(
            public_key_from(key.public_key_pem().as_bytes()).unwrap(),
            key.public_key()
        );
        assert_eq!(public_key_from(pem.as_bytes()).unwrap(), key.public_key());
        // One byte changed in line 1: the signature fails.
        let mut bad = bytes.to_vec();
        let at = bad.iter().position(|b| *b == b'2').unwrap();
        bad[at] = b'3';
        assert!(!Digest::parse(&bad).unwrap().signed_by(key.public_key()));
    }
}
