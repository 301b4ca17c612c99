"""Throughput of the projection, end to end and per stage, on a bundled corpus.

Usage::

    python benchmarks/projection.py [--corpus banking77] [--split test] [--repeats 7]

Prints the machine and versions, then a table: texts/s of ``Projector(80, 14).transform`` with
one thread and with every core, the time per text of each stage on one thread (normalise +
encode, featurise, project, unpack), features per text, and the per-token path
``Projector(16, 16).transform_tokens``. Every figure is the median of ``--repeats`` runs after
a warm-up run (which also loads or compiles the numba kernels).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata

import numba
import numpy as np
from harness.environment import cpu_name

from textproj._kernels.features import featurize_batch
from textproj._kernels.projection import project_texts, unpack_bits
from textproj.corpora import load_corpus
from textproj.features import class_table, encode_texts
from textproj.projector import PARALLEL_MIN_TEXTS, Projector


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def machine_lines() -> list[str]:
    try:
        textproj_version = metadata.version("textproj")
    except metadata.PackageNotFoundError:
        textproj_version = "unknown"
    return [
        f"machine : {platform.machine()}, {os.cpu_count()} logical CPUs, {platform.platform()}",
        f"cpu     : {cpu_name()}",
        f"python  : {sys.version.split()[0]} ({platform.python_implementation()})",
        f"versions: textproj {textproj_version}, numpy {np.__version__}, numba {numba.__version__}",
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="banking77")
    parser.add_argument("--split", default="test")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--limit", type=int, default=0, help="use only the first N texts")
    args = parser.parse_args(argv)

    texts = load_corpus(args.corpus, args.split).texts
    if args.limit:
        texts = texts[: args.limit]
    n = len(texts)

    serial = Projector(80, 14, n_jobs=1)
    parallel = Projector(80, 14, n_jobs=-1)
    config, params, keys, last_mask, n_words = serial._prepared()
    table = class_table()

    # Stage inputs, prepared once (each stage is then timed on its own).
    buf, offsets = encode_texts(texts, config)
    hashes, _, _ = featurize_batch(buf, offsets, table, params)
    words = np.zeros((n, n_words), dtype=np.uint64)

    def project() -> None:
        project_texts(buf, offsets, 0, n, table, params, keys, last_mask, words)

    t_serial = median_seconds(lambda: serial.transform(texts), args.repeats)
    t_parallel = median_seconds(lambda: parallel.transform(texts), args.repeats)
    t_encode = median_seconds(lambda: encode_texts(texts, config), args.repeats)
    t_featurize = median_seconds(lambda: featurize_batch(buf, offsets, table, params), args.repeats)
    t_project_all = median_seconds(project, args.repeats)
    t_unpack = median_seconds(lambda: unpack_bits(words, serial.n_bits), args.repeats)

    tok_serial = Projector(16, 16, n_jobs=1)
    tok_parallel = Projector(16, 16, n_jobs=-1)
    n_tokens = int(tok_serial.transform_tokens_words(texts)[1][-1])
    t_tok_serial = median_seconds(lambda: tok_serial.transform_tokens(texts), args.repeats)
    t_tok_parallel = median_seconds(lambda: tok_parallel.transform_tokens(texts), args.repeats)

    us = 1e6 / n
    features_per_text = len(hashes) / n
    rows = [
        ("Projector(80, 14).transform, n_jobs=1", f"{n / t_serial:,.0f} texts/s"),
        ("Projector(80, 14).transform, n_jobs=-1", f"{n / t_parallel:,.0f} texts/s"),
        ("  per text, n_jobs=1 (end to end)", f"{t_serial * us:8.2f} us"),
        ("  normalise + encode (encode_texts)", f"{t_encode * us:8.2f} us"),
        ("  featurise (featurize_batch)", f"{t_featurize * us:8.2f} us"),
        ("  project (project_texts - featurise)", f"{(t_project_all - t_featurize) * us:8.2f} us"),
        ("  unpack (unpack_bits)", f"{t_unpack * us:8.2f} us"),
        ("  features per text (mean)", f"{features_per_text:8.1f}"),
        ("Projector(16, 16).transform_tokens, n_jobs=1", f"{n / t_tok_serial:,.0f} texts/s"),
        ("Projector(16, 16).transform_tokens, n_jobs=-1", f"{n / t_tok_parallel:,.0f} texts/s"),
        ("  per token, n_jobs=1", f"{t_tok_serial * 1e6 / n_tokens:8.2f} us"),
        ("  tokens per text (mean)", f"{n_tokens / n:8.1f}"),
    ]

    print("\n".join(machine_lines()))
    mean_chars = np.mean([len(t) for t in texts])
    print(
        f"data    : {args.corpus}/{args.split}, {n} texts, mean {mean_chars:.0f} chars; "
        f"median of {args.repeats} runs; parallel path from {PARALLEL_MIN_TEXTS} texts"
    )
    print()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  value")
    print(f"{'-' * width}  {'-' * 16}")
    for name, value in rows:
        print(f"{name:<{width}}  {value.strip():>16}")


if __name__ == "__main__":
    main()
