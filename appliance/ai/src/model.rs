//! What a GGUF file says about itself, read before llama.cpp loads it.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use llama_cpp_2::gguf::GgufContext;

use crate::AiError;

/// GGUF's value types (gguf.h's `enum gguf_type`) that the metadata read here uses.
const GGUF_UINT32: i64 = 4;
const GGUF_INT32: i64 = 5;
const GGUF_STRING: i64 = 8;

/// The architectures of llama.cpp that are sentence encoders even when the file
/// names no pooling.
const ENCODERS: &[&str] = &[
    "bert",
    "nomic-bert",
    "nomic-bert-moe",
    "jina-bert-v2",
    "jina-bert-v3",
    "modern-bert",
    "neo-bert",
    "eurobert",
    "gemma-embedding",
];

/// A model file's identity and shape, from its own metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelInfo {
    pub path: PathBuf,
    /// `general.name`, or the file's name when it has none.
    pub name: String,
    /// `general.architecture` (`bert`, `llama`, …).
    pub architecture: String,
    /// The width of its embeddings (`{arch}.embedding_length`).
    pub dimension: u32,
    /// The most tokens it was trained on (`{arch}.context_length`).
    pub context: u32,
    /// `{arch}.pooling_type` (1 mean, 2 CLS, 3 last), when the file says.
    pub pooling: Option<u32>,
    /// Layers (`{arch}.block_count`).
    pub layers: u32,
    pub tensors: u64,
    pub bytes: u64,
}

impl ModelInfo {
    /// Whether it computes one vector per text (a sentence encoder, or any model
    /// whose file names a pooling), rather than generating text.
    pub fn is_embedding_model(&self) -> bool {
        self.pooling.is_some_and(|p| p > 0) || ENCODERS.contains(&self.architecture.as_str())
    }
}

/// Reads `path`'s GGUF metadata, without its weights. A missing or unreadable file, a
/// file that is not GGUF (by its first bytes), or one whose header llama.cpp cannot
/// parse (truncated, damaged) is an [`AiError::Model`] saying so.
pub fn inspect(path: &Path) -> Result<ModelInfo, AiError> {
    let refuse = |reason: String| AiError::Model {
        path: path.to_path_buf(),
        reason,
    };
    let meta = std::fs::metadata(path).map_err(|e| refuse(format!("cannot be read: {e}")))?;
    if !meta.is_file() {
        return Err(refuse("is not a file".into()));
    }
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::UnexpectedEof => {
                refuse(format!("is not a GGUF model (only {} bytes)", meta.len()))
            }
            _ => refuse(format!("cannot be read: {e}")),
        })?;
    if &magic != b"GGUF" {
        return Err(refuse(format!(
            "is not a GGUF model (it starts with {:02x?}, a GGUF file with \"GGUF\")",
            magic
        )));
    }
    if path.to_str().is_none() {
        return Err(refuse("has a name that is not UTF-8".into()));
    }
    let gguf = GgufContext::from_file(path).ok_or_else(|| {
        refuse("is a damaged or truncated GGUF file (its header cannot be read)".into())
    })?;
    let string = |key: &str| {
        let i = gguf.find_key(key);
        (i >= 0 && i64::from(gguf.kv_type(i)) == GGUF_STRING)
            .then(|| gguf.val_str(i).map(str::to_owned))
            .flatten()
    };
    let number = |key: &str| {
        let i = gguf.find_key(key);
        if i < 0 {
            return None;
        }
        match i64::from(gguf.kv_type(i)) {
            GGUF_UINT32 => Some(gguf.val_u32(i)),
            GGUF_INT32 => u32::try_from(gguf.val_i32(i)).ok(),
            _ => None,
        }
    };
    let architecture = string("general.architecture")
        .ok_or_else(|| refuse("names no architecture (general.architecture)".into()))?;
    let required = |what: &str| {
        number(&format!("{architecture}.{what}")).ok_or_else(|| {
            refuse(format!(
                "is a {architecture} model without {architecture}.{what}"
            ))
        })
    };
    let name = string("general.name").unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Ok(ModelInfo {
        path: path.to_path_buf(),
        name,
        dimension: required("embedding_length")?,
        context: required("context_length")?,
        layers: required("block_count")?,
        pooling: number(&format!("{architecture}.pooling_type")),
        architecture,
        tensors: u64::try_from(gguf.n_tensors()).unwrap_or(0),
        bytes: meta.len(),
    })
}
