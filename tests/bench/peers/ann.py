#!/usr/bin/env python3
"""The peers of `nexus-bench vectors`: hnswlib and faiss (HNSWFlat) on the same vectors,
with the same graph parameters and threads, against the same exact ground truth.

    ann.py DIR M EF_CONSTRUCTION EF[,EF...] K

DIR holds base.f32 (n x d, little-endian float32), queries.f32 (q x d) and truth.u32
(q x K ids of the exact nearest by inner product), and dims.txt ("n d q"). Builds use
every core; searches use one thread. Prints one JSON object per engine and ef.
"""

import json
import os
import sys
import time

import numpy as np


def main():
    d, m, efc, efs, k = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5])
    n, dim, q = (int(x) for x in open(os.path.join(d, "dims.txt")).read().split())
    base = np.fromfile(os.path.join(d, "base.f32"), dtype="<f4").reshape(n, dim)
    queries = np.fromfile(os.path.join(d, "queries.f32"), dtype="<f4").reshape(q, dim)
    truth = np.fromfile(os.path.join(d, "truth.u32"), dtype="<u4").reshape(q, k)
    efs = [int(e) for e in efs.split(",")]

    def recall(found):
        return float(np.mean([len(set(found[i][:k]) & set(truth[i])) / k for i in range(q)]))

    import hnswlib

    index = hnswlib.Index(space="ip", dim=dim)
    index.init_index(max_elements=n, M=m, ef_construction=efc, random_seed=100)
    t = time.perf_counter()
    index.add_items(base, np.arange(n), num_threads=os.cpu_count())
    build = time.perf_counter() - t
    index.set_num_threads(1)
    for ef in efs:
        index.set_ef(ef)
        t = time.perf_counter()
        labels, _ = index.knn_query(queries, k=k, num_threads=1)
        took = time.perf_counter() - t
        print(json.dumps({"engine": "hnswlib", "ef": ef, "build_s": build, "qps": q / took, "recall": recall(labels)}))

    import faiss

    faiss.omp_set_num_threads(os.cpu_count())
    index = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = efc
    t = time.perf_counter()
    index.add(base)
    build = time.perf_counter() - t
    faiss.omp_set_num_threads(1)
    for ef in efs:
        index.hnsw.efSearch = ef
        t = time.perf_counter()
        _, labels = index.search(queries, k)
        took = time.perf_counter() - t
        print(json.dumps({"engine": "faiss", "ef": ef, "build_s": build, "qps": q / took, "recall": recall(labels)}))


if __name__ == "__main__":
    main()
