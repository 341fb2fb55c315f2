//! One embedding model on a thread of its own.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Mutex, PoisonError};
use std::thread::JoinHandle;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::{AiError, ModelInfo, backend, inspect};

/// The tokens of one llama.cpp batch (and its context): texts are packed into it
/// until it is full. A sentence encoder attends over the whole batch at once, so its
/// scratch memory grows with the square of this; 512 keeps it near 13 MB.
const BATCH_TOKENS: u32 = 512;

/// The most texts in one batch.
const BATCH_TEXTS: u32 = 32;

/// How an [`Embedder`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbedderOptions {
    /// CPU threads llama.cpp computes with; 0: every core the process may use.
    pub threads: usize,
    /// The most tokens of a text that count (the rest is cut off); 0: the model's
    /// own context, at most 512.
    pub max_tokens: u32,
    /// Requests that may wait for the engine before a caller waits to hand one in.
    pub queue: usize,
}

impl Default for EmbedderOptions {
    fn default() -> Self {
        EmbedderOptions {
            threads: 0,
            max_tokens: 0,
            queue: 64,
        }
    }
}

struct Job {
    texts: Vec<String>,
    reply: mpsc::Sender<Result<Vec<Vec<f32>>, AiError>>,
}

/// A loaded embedding model. Cheap to share (`Arc`); [`Embedder::embed`] may be called
/// from any thread and blocks until its vectors are computed. Dropping it stops the
/// thread and frees the model.
pub struct Embedder {
    info: ModelInfo,
    max_tokens: u32,
    jobs: Mutex<Option<mpsc::SyncSender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.info.name)
            .field("dimension", &self.info.dimension)
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Inspects `path` ([`inspect`]), refuses it unless it is an embedding model, and
    /// loads it into llama.cpp on a new thread. Returns once the model is loaded (or
    /// has failed to load).
    pub fn load(path: &Path, options: EmbedderOptions) -> Result<Embedder, AiError> {
        let info = inspect(path)?;
        if !info.is_embedding_model() {
            return Err(AiError::Model {
                path: path.to_path_buf(),
                reason: format!(
                    "is a {} model that generates text, not an embedding model",
                    info.architecture
                ),
            });
        }
        let limit = info.context.clamp(2, BATCH_TOKENS);
        let max_tokens = match options.max_tokens {
            0 => limit,
            n => n.clamp(2, limit),
        };
        let threads = match options.threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        let threads = i32::try_from(threads).unwrap_or(i32::MAX);
        let (jobs, inbox) = mpsc::sync_channel::<Job>(options.queue.max(1));
        let (ready, started) = mpsc::channel();
        let worker = info.clone();
        let thread = std::thread::Builder::new()
            .name("nexus-embed".into())
            .spawn(move || serve(&worker, threads, max_tokens, &ready, &inbox))
            .map_err(|e| AiError::Engine(format!("cannot start its thread: {e}")))?;
        match started.recv() {
            Ok(Ok(())) => Ok(Embedder {
                info,
                max_tokens,
                jobs: Mutex::new(Some(jobs)),
                thread: Mutex::new(Some(thread)),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(AiError::Engine(
                    "its thread ended while loading the model".into(),
                ))
            }
        }
    }

    /// The model's metadata.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The width of every vector it returns.
    pub fn dimension(&self) -> usize {
        self.info.dimension as usize
    }

    /// The most tokens of a text that count.
    pub fn max_tokens(&self) -> u32 {
        self.max_tokens
    }

    /// One L2-normalised vector per text, in order. A text longer than
    /// [`Embedder::max_tokens`] is cut to its first tokens; an empty text has a vector
    /// too (that of the model's separators).
    pub fn embed<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>, AiError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let jobs = self
            .jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or(AiError::Stopped)?;
        let (reply, answer) = mpsc::channel();
        jobs.send(Job {
            texts: texts.iter().map(|t| t.as_ref().to_owned()).collect(),
            reply,
        })
        .map_err(|_| AiError::Stopped)?;
        answer.recv().map_err(|_| AiError::Stopped)?
    }
}

impl Drop for Embedder {
    fn drop(&mut self) {
        drop(
            self.jobs
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        if let Some(thread) = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = thread.join();
        }
    }
}

/// The engine's thread: loads the model, says whether it could, then computes the
/// jobs handed in until the embedder is dropped.
fn serve(
    info: &ModelInfo,
    threads: i32,
    max_tokens: u32,
    ready: &mpsc::Sender<Result<(), AiError>>,
    inbox: &mpsc::Receiver<Job>,
) {
    let model = match load(info) {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut context = match context(&model, info, threads) {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(()));
    while let Ok(job) = inbox.recv() {
        let vectors = embed_all(&model, &mut context, &job.texts, max_tokens);
        let _ = job.reply.send(vectors);
    }
}

fn load(info: &ModelInfo) -> Result<LlamaModel, AiError> {
    LlamaModel::load_from_file(backend()?, &info.path, &LlamaModelParams::default()).map_err(|e| {
        AiError::Model {
            path: info.path.clone(),
            reason: format!("llama.cpp cannot load it ({e}): it may be truncated or damaged"),
        }
    })
}

fn context<'m>(
    model: &'m LlamaModel,
    info: &ModelInfo,
    threads: i32,
) -> Result<LlamaContext<'m>, AiError> {
    let mut params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(BATCH_TOKENS))
        .with_n_batch(BATCH_TOKENS)
        .with_n_ubatch(BATCH_TOKENS)
        .with_n_seq_max(BATCH_TEXTS)
        .with_embeddings(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    if info.pooling.is_none() {
        params = params.with_pooling_type(LlamaPoolingType::Mean);
    }
    model
        .new_context(backend()?, params)
        .map_err(|e| AiError::Engine(format!("llama.cpp cannot make a context: {e}")))
}

/// The tokens of `text` as the model reads it: its separators added, cut to `max`
/// tokens keeping the closing separator.
fn tokens(model: &LlamaModel, text: &str, max: u32) -> Vec<LlamaToken> {
    let mut tokens = model.vocab().tokenize(text.as_bytes(), true, false);
    let max = max as usize;
    if tokens.len() > max
        && let Some(&last) = tokens.last()
    {
        tokens.truncate(max - 1);
        tokens.push(last);
    }
    tokens
}

fn embed_all(
    model: &LlamaModel,
    context: &mut LlamaContext<'_>,
    texts: &[String],
    max_tokens: u32,
) -> Result<Vec<Vec<f32>>, AiError> {
    let all: Vec<Vec<LlamaToken>> = texts.iter().map(|t| tokens(model, t, max_tokens)).collect();
    let mut out = Vec::with_capacity(texts.len());
    let mut batch = LlamaBatch::new(BATCH_TOKENS as usize, BATCH_TEXTS as i32);
    let mut start = 0;
    while start < all.len() {
        // As many whole texts as fit (at least one: each fits alone).
        let mut end = start;
        let mut used = 0usize;
        while end < all.len()
            && end - start < BATCH_TEXTS as usize
            && used + all[end].len() <= BATCH_TOKENS as usize
        {
            used += all[end].len();
            end += 1;
        }
        batch.clear();
        for (seq, t) in (0i32..).zip(&all[start..end]) {
            batch
                .add_sequence(t, seq, true)
                .map_err(|e| AiError::Embed(e.to_string()))?;
        }
        context.clear_kv_cache();
        context
            .decode(&mut batch)
            .map_err(|e| AiError::Embed(e.to_string()))?;
        for seq in 0..(end - start) {
            let seq = i32::try_from(seq).unwrap_or(i32::MAX);
            let v = context
                .embeddings_seq_ith(seq)
                .map_err(|e| AiError::Embed(format!("no pooled vector ({e})")))?;
            out.push(normalised(v));
        }
        start = end;
    }
    Ok(out)
}

/// `v / |v|`; a zero (or not finite) vector stays zero.
fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = v
        .iter()
        .map(|x| f64::from(*x) * f64::from(*x))
        .sum::<f64>()
        .sqrt();
    if !norm.is_normal() {
        return vec![0.0; v.len()];
    }
    v.iter().map(|x| (f64::from(*x) / norm) as f32).collect()
}
