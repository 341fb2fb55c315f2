"""BM25 by bm25s (PyPI) over `nexus-bench quality`'s retrieval set: the peer that our
full-text ranking is measured beside.

    python bm25.py SET_DIR OUT.json

Writes, for each configuration, each query's 100 best passage ids, best first; the
benchmark scores them as it scores its own runs. Configurations: `plain` (lower case,
no stop words, no stemming: what our index's analyzer does) and `english` (English
stop words and the Snowball stemmer: what the BEIR papers' Elasticsearch BM25 does).
Both use bm25s's defaults, Lucene's BM25 with k1 = 1.5, b = 0.75; the title is
part of each passage's text.
"""

import json
import sys

import bm25s
import Stemmer


def main():
    set_dir, out = sys.argv[1], sys.argv[2]
    passages = [json.loads(line) for line in open(f"{set_dir}/passages.jsonl", encoding="utf-8")]
    queries = [json.loads(line) for line in open(f"{set_dir}/queries.jsonl", encoding="utf-8")]
    corpus = [p["title"] + "\n" + p["text"] for p in passages]
    ids = [p["id"] for p in passages]
    runs = {}
    for name, stopwords, stemmer in (
        ("plain", None, None),
        ("english", "en", Stemmer.Stemmer("english")),
    ):
        retriever = bm25s.BM25()
        retriever.index(
            bm25s.tokenize(corpus, stopwords=stopwords, stemmer=stemmer, show_progress=False),
            show_progress=False,
        )
        tokens = bm25s.tokenize(
            [q["text"] for q in queries], stopwords=stopwords, stemmer=stemmer, show_progress=False
        )
        found, scores = retriever.retrieve(tokens, k=min(100, len(ids)), show_progress=False)
        runs[name] = {
            q["id"]: [ids[i] for i, s in zip(row, srow) if s > 0]
            for q, row, srow in zip(queries, found.tolist(), scores.tolist())
        }
    with open(out, "w", encoding="utf-8") as f:
        json.dump(runs, f)


if __name__ == "__main__":
    main()
