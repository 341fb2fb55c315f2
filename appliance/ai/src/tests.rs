//! The engine against a real model: all-MiniLM-L6-v2 as GGUF, made by
//! `scripts/install-embedding-model.sh` (which `make test` runs), compared with the
//! embeddings the same script computed independently (Hugging Face's tokenizer and
//! the BERT forward pass in numpy).

use std::path::PathBuf;
use std::sync::Arc;

use super::*;

fn model_path() -> PathBuf {
    let path = installed_model();
    assert!(
        path.is_file(),
        "{} is missing: run scripts/install-embedding-model.sh (make test does)",
        path.display()
    );
    path
}

fn embedder() -> Embedder {
    match Embedder::load(&model_path(), EmbedderOptions::default()) {
        Ok(e) => e,
        Err(e) => panic!("the model does not load: {e}"),
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum()
}

fn norm(a: &[f32]) -> f64 {
    cosine(a, a).sqrt()
}

struct Reference {
    texts: Vec<String>,
    vectors: Vec<Vec<f32>>,
}

fn reference() -> Reference {
    let path = model_path().with_extension("reference.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run scripts/install-embedding-model.sh)",
            path.display()
        )
    });
    let json: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let rows = json["sentences"].as_array().cloned().unwrap_or_default();
    assert!(
        rows.len() >= 5,
        "the reference holds {} sentences",
        rows.len()
    );
    Reference {
        texts: rows
            .iter()
            .map(|r| r["text"].as_str().unwrap_or_default().to_owned())
            .collect(),
        vectors: rows
            .iter()
            .map(|r| {
                r["embedding"]
                    .as_array()
                    .map(|v| {
                        v.iter()
                            .filter_map(|x| x.as_f64())
                            .map(|x| x as f32)
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect(),
    }
}

#[test]
fn the_model_describes_itself() {
    let info = inspect(&model_path()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.architecture, "bert");
    assert_eq!(info.name, "all-MiniLM-L6-v2");
    assert_eq!(info.dimension, 384);
    assert_eq!(info.context, 512);
    assert_eq!(info.layers, 6);
    assert_eq!(info.pooling, Some(1));
    assert!(info.is_embedding_model());
    // 6 blocks × 16 tensors + 5 embedding tensors.
    assert_eq!(info.tensors, 101);
}

#[test]
fn vectors_match_an_independent_implementation() {
    let reference = reference();
    let e = embedder();
    assert_eq!(e.dimension(), 384);
    let ours = e
        .embed(&reference.texts)
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(ours.len(), reference.texts.len());
    for ((text, a), b) in reference.texts.iter().zip(&ours).zip(&reference.vectors) {
        assert_eq!(a.len(), 384);
        assert!(
            (norm(a) - 1.0).abs() < 1e-5,
            "{text:?} has norm {}",
            norm(a)
        );
        let c = cosine(a, b);
        // f16 weights against the float64 reference.
        assert!(c > 0.999, "{text:?}: cosine {c} with the reference");
    }
    // Meaning, not spelling: the overdue invoice and the late bill are close, the cat is not.
    let same = cosine(&ours[0], &ours[1]);
    let other = cosine(&ours[0], &ours[6]);
    assert!(same > other + 0.4, "same meaning {same}, unrelated {other}");
}

/// The figures sentence-transformers' own README prints for all-MiniLM-L6-v2.
#[test]
fn similarities_are_the_published_ones() {
    let e = embedder();
    let v = e
        .embed(&[
            "The weather is lovely today.",
            "It's so sunny outside!",
            "He drove to the stadium.",
        ])
        .unwrap_or_else(|err| panic!("{err}"));
    for ((a, b), published) in [((0, 1), 0.6660), ((0, 2), 0.1046), ((1, 2), 0.1411)] {
        let c = cosine(&v[a], &v[b]);
        assert!(
            (c - published).abs() < 0.005,
            "{a}·{b}: {c}, published {published}"
        );
    }
}

#[test]
fn batches_give_the_vectors_of_single_texts() {
    let reference = reference();
    let e = embedder();
    let together = e
        .embed(&reference.texts)
        .unwrap_or_else(|err| panic!("{err}"));
    for (text, v) in reference.texts.iter().zip(&together) {
        let alone = e.embed(&[text]).unwrap_or_else(|err| panic!("{err}"));
        let c = cosine(&alone[0], v);
        assert!(c > 0.99999, "{text:?} alone and in a batch: cosine {c}");
    }
    // More texts than one llama.cpp batch holds: split, and in order.
    let many: Vec<String> = (0..70)
        .map(|i| format!("invoice number {i} is paid"))
        .collect();
    let vectors = e.embed(&many).unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(vectors.len(), 70);
    let last = e.embed(&[&many[69]]).unwrap_or_else(|err| panic!("{err}"));
    assert!(cosine(&last[0], &vectors[69]) > 0.99999);
    assert!(
        cosine(&vectors[3], &vectors[69]) < 0.99999,
        "distinct texts, distinct vectors"
    );
}

#[test]
fn long_empty_and_odd_texts_have_vectors() {
    let e = embedder();
    assert_eq!(e.max_tokens(), 512);
    let long = "reconciliation ".repeat(5_000);
    let odd = "[SEP] [CLS] \u{0} \u{202e}\u{1F600} ####";
    let longer = format!("{long} and then something else entirely");
    let vectors = e
        .embed(&[long.as_str(), "", odd, longer.as_str()])
        .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        assert!((norm(v) - 1.0).abs() < 1e-5);
    }
    // Only the first 512 tokens count: what follows them changes nothing.
    assert!(cosine(&vectors[0], &vectors[3]) > 0.99999);
    assert!(
        e.embed::<&str>(&[])
            .unwrap_or_else(|err| panic!("{err}"))
            .is_empty()
    );
}

#[test]
fn callers_on_many_threads_share_one_engine() {
    let e = Arc::new(embedder());
    let expected = e
        .embed(&["thread safety of the engine"])
        .unwrap_or_else(|err| panic!("{err}"));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let e = Arc::clone(&e);
            std::thread::spawn(move || {
                (0..5)
                    .map(|_| e.embed(&["thread safety of the engine"]))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        for v in h.join().unwrap_or_else(|_| panic!("a caller panicked")) {
            let v = v.unwrap_or_else(|err| panic!("{err}"));
            assert!(cosine(&v[0], &expected[0]) > 0.99999);
        }
    }
}

#[test]
fn bad_model_files_are_refused_in_words() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let refused = |path: &std::path::Path| match Embedder::load(path, EmbedderOptions::default()) {
        Ok(_) => panic!("{} was loaded", path.display()),
        Err(e) => e.to_string(),
    };

    let missing = dir.path().join("missing.gguf");
    assert!(
        refused(&missing).contains("cannot be read"),
        "{}",
        refused(&missing)
    );

    assert!(refused(dir.path()).contains("is not a file"));

    let text = dir.path().join("notes.gguf");
    std::fs::write(&text, "these are my notes, not a model").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        refused(&text).contains("is not a GGUF model"),
        "{}",
        refused(&text)
    );

    let tiny = dir.path().join("tiny.gguf");
    std::fs::write(&tiny, b"GG").unwrap_or_else(|e| panic!("{e}"));
    assert!(
        refused(&tiny).contains("only 2 bytes"),
        "{}",
        refused(&tiny)
    );

    let real = std::fs::read(model_path()).unwrap_or_else(|e| panic!("{e}"));
    // The header alone (cut inside the vocabulary), and the weights cut in half.
    for (name, len) in [("header.gguf", 4096), ("half.gguf", real.len() / 2)] {
        let cut = dir.path().join(name);
        std::fs::write(&cut, &real[..len]).unwrap_or_else(|e| panic!("{e}"));
        let message = refused(&cut);
        assert!(
            message.contains("damaged or truncated") || message.contains("cannot load it"),
            "{name}: {message}"
        );
    }

    // The same header with the magic of another format.
    let mut other = real.clone();
    other[..4].copy_from_slice(b"GGML");
    let ggml = dir.path().join("old.bin");
    std::fs::write(&ggml, &other).unwrap_or_else(|e| panic!("{e}"));
    assert!(refused(&ggml).contains("is not a GGUF model"));
}
