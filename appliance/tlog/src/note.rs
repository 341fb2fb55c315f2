//! Checkpoints as C2SP `tlog-checkpoint` bodies, signed as C2SP `signed-note`s with
//! ed25519. A checkpoint names the log (its origin), the tree size and the root:
//!
//! ```text
//! nexus.local/log/3f2a9c0d1e7b4a55
//! 1234
//! 5dnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=
//!
//! — nexus.local/log/3f2a9c0d1e7b4a55 Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe…
//! ```
//!
//! A signature line is `— NAME BASE64(key hash ‖ signature)`, where the key hash is
//! the first 4 bytes of `SHA-256(NAME ‖ "\n" ‖ 0x01 ‖ public key)` and the signature is
//! ed25519 over the note's text (every line above the blank one, each ending in `\n`).
//! A verifier key is written `NAME+HASH_HEX+BASE64(0x01 ‖ public key)`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signature algorithm byte of ed25519 in signed notes.
const ALG_ED25519: u8 = 0x01;
/// The em dash and space that begin a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// Why a note or checkpoint is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the checkpoint is malformed: {0}")]
    Malformed(String),
    #[error("the key is malformed: {0}")]
    BadKey(String),
    #[error("the checkpoint carries no signature by the key {0}")]
    NotSigned(String),
    #[error("the signature by {0} does not match the checkpoint (forged or altered)")]
    BadSignature(String),
}

/// A log's signing key with its name (the log's origin).
pub struct LogKey {
    name: String,
    key: SigningKey,
}

impl LogKey {
    /// The key from its 32-byte seed.
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Result<LogKey, NoteError> {
        check_name(name)?;
        Ok(LogKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(seed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key others verify with.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// Signs a note's text (which must end in a newline): the text, a blank line, and
    /// the signature line.
    pub fn sign(&self, text: &str) -> Result<String, NoteError> {
        if !text.ends_with('\n') || text.contains("\n\n") || text.is_empty() {
            return Err(NoteError::Malformed(
                "a note's text is non-empty lines, each ending in a newline".into(),
            ));
        }
        let signature = self.key.sign(text.as_bytes());
        let mut blob = self.verifier().key_hash().to_vec();
        blob.extend(signature.to_bytes());
        Ok(format!(
            "{text}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(blob)
        ))
    }
}

/// A public key that verifies a log's checkpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key: VerifyingKey,
}

impl Verifier {
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first 4 bytes of `SHA-256(name ‖ "\n" ‖ 0x01 ‖ public key)`.
    pub fn key_hash(&self) -> [u8; 4] {
        let mut h = Sha256::new();
        h.update(self.name.as_bytes());
        h.update(b"\n");
        h.update([ALG_ED25519]);
        h.update(self.key.as_bytes());
        let d = h.finalize();
        [d[0], d[1], d[2], d[3]]
    }

    /// The fingerprint people compare: SHA-256 of the public key, in hex.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.key.as_bytes()))
    }

    /// The verifier key as C2SP writes it: `name+hash+base64(0x01 ‖ key)`.
    pub fn encode(&self) -> String {
        let mut k = vec![ALG_ED25519];
        k.extend(self.key.as_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.key_hash()),
            B64.encode(k)
        )
    }

    /// Reads a verifier key written by [`Verifier::encode`].
    pub fn parse(text: &str) -> Result<Verifier, NoteError> {
        let text = text.trim();
        // The name has no '+' and the hash is hex; the base64 key may hold '+'.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey("expected name+hash+key".into()));
        };
        check_name(name).map_err(|e| NoteError::BadKey(e.to_string()))?;
        let raw = B64
            .decode(key)
            .map_err(|e| NoteError::BadKey(format!("the key is not base64: {e}")))?;
        let Some((&ALG_ED25519, public)) = raw.split_first() else {
            return Err(NoteError::BadKey("only ed25519 keys are accepted".into()));
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::BadKey("an ed25519 key is 32 bytes".into()))?;
        let key = VerifyingKey::from_bytes(&public)
            .map_err(|e| NoteError::BadKey(format!("not an ed25519 key: {e}")))?;
        let v = Verifier {
            name: name.to_string(),
            key,
        };
        if hex::encode(v.key_hash()) != hash {
            return Err(NoteError::BadKey(
                "the key hash does not match the name and key".into(),
            ));
        }
        Ok(v)
    }

    /// Checks `note`'s signature by this key and returns its text.
    pub fn open<'n>(&self, note: &'n str) -> Result<&'n str, NoteError> {
        let Some(split) = note.find("\n\n") else {
            return Err(NoteError::Malformed(
                "no blank line before the signatures".into(),
            ));
        };
        let (text, sigs) = (&note[..split + 1], &note[split + 2..]);
        if sigs.is_empty() || !sigs.ends_with('\n') {
            return Err(NoteError::Malformed("no signature lines".into()));
        }
        let mut found = false;
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix(SIG_PREFIX) else {
                return Err(NoteError::Malformed(format!(
                    "a signature line must start with an em dash: {line:?}"
                )));
            };
            let Some((name, blob)) = rest.split_once(' ') else {
                return Err(NoteError::Malformed(format!("a signature line: {line:?}")));
            };
            if name != self.name {
                continue;
            }
            let blob = B64
                .decode(blob)
                .map_err(|_| NoteError::Malformed("a signature is not base64".into()))?;
            if blob.len() != 4 + 64 || blob[..4] != self.key_hash() {
                continue;
            }
            found = true;
            let sig: [u8; 64] = blob[4..]
                .try_into()
                .map_err(|_| NoteError::Malformed("a signature is 64 bytes".into()))?;
            let sig = ed25519_dalek::Signature::from_bytes(&sig);
            if self.key.verify_strict(text.as_bytes(), &sig).is_err() {
                return Err(NoteError::BadSignature(self.name.clone()));
            }
        }
        if found {
            Ok(text)
        } else {
            Err(NoteError::NotSigned(self.name.clone()))
        }
    }
}

fn check_name(name: &str) -> Result<(), NoteError> {
    if name.is_empty()
        || name.contains(['+', ' ', '\n', '\t'])
        || name.chars().any(char::is_control)
    {
        return Err(NoteError::Malformed(format!(
            "a key name is non-empty, without spaces or +: {name:?}"
        )));
    }
    Ok(())
}

/// A signed statement of the log's state: its origin, tree size and root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The note text (`tlog-checkpoint` body).
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Signs it as a note.
    pub fn sign(&self, key: &LogKey) -> Result<String, NoteError> {
        key.sign(&self.body())
    }

    /// Verifies a signed checkpoint with `key` and reads it; its origin must be the
    /// key's name (one key per log).
    pub fn open(note: &str, key: &Verifier) -> Result<Checkpoint, NoteError> {
        let text = key.open(note)?;
        let cp = Checkpoint::parse(text)?;
        if cp.origin != key.name() {
            return Err(NoteError::Malformed(format!(
                "the checkpoint is of the log {:?}, not of {:?}",
                cp.origin,
                key.name()
            )));
        }
        Ok(cp)
    }

    fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let mut lines = text.lines();
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| NoteError::Malformed("no origin line".into()))?;
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .filter(|s| s.len() == 1 || !s.starts_with('0'))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| NoteError::Malformed("the second line is not a tree size".into()))?;
        let root: Hash = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| {
                NoteError::Malformed("the third line is not a base64 SHA-256 root".into())
            })?;
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, seed: u8) -> LogKey {
        LogKey::from_seed(name, &[seed; 32]).expect("key")
    }

    #[test]
    fn a_signed_checkpoint_opens_with_its_key_only() {
        let k = key("nexus.local/log/test", 7);
        let cp = Checkpoint {
            origin: "nexus.local/log/test".into(),
            size: 1234,
            root: [9u8; 32],
        };
        let note = cp.sign(&k).expect("sign");
        assert!(
            note.starts_with("nexus.local/log/test\n1234\nCQkJ"),
            "{note}"
        );
        assert!(
            note.contains("\n\n\u{2014} nexus.local/log/test "),
            "{note}"
        );
        let v = Verifier::parse(&k.verifier().encode()).expect("vkey");
        assert_eq!(v, k.verifier());
        assert_eq!(Checkpoint::open(&note, &v), Ok(cp.clone()));
        // Another key with the same name: not signed by it.
        let other = key("nexus.local/log/test", 8).verifier();
        assert!(matches!(
            Checkpoint::open(&note, &other),
            Err(NoteError::NotSigned(_))
        ));
        // Every altered byte of the text or signature is caught.
        for i in 0..note.len() {
            let mut bytes = note.clone().into_bytes();
            bytes[i] ^= 0x01;
            if let Ok(altered) = String::from_utf8(bytes)
                && let Ok(opened) = Checkpoint::open(&altered, &v)
            {
                panic!("byte {i} altered, still opened: {opened:?}");
            }
        }
    }

    #[test]
    fn every_verifier_key_round_trips() {
        // Base64 keys often hold '+': the name and hash come first.
        let mut with_plus = 0;
        for seed in 0..=255u8 {
            let v = key("nexus.local/log/abc", seed).verifier();
            let text = v.encode();
            with_plus += usize::from(text.matches('+').count() > 2);
            assert_eq!(Verifier::parse(&text), Ok(v), "{text}");
        }
        assert!(with_plus > 0, "some keys hold a '+'");
    }

    #[test]
    fn verifier_keys_are_checked() {
        let v = key("log", 1).verifier().encode();
        assert!(Verifier::parse(&v).is_ok());
        let bad_hash = v.replacen('+', "+0", 1);
        assert!(Verifier::parse(&bad_hash).is_err());
        assert!(Verifier::parse("log+00000000+AQ==").is_err());
        assert!(Verifier::parse("nonsense").is_err());
        assert!(LogKey::from_seed("has space", &[1; 32]).is_err());
    }
}
