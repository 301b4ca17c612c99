"""Shared fixtures: tiny trained models of both designs, trained once per test session."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from textproj import netspec
from textproj.config import TrainConfig
from textproj.corpora import load_corpus
from textproj.data import Dataset
from textproj.model_file import UNICODE_VERSION_KEY, encode_model, read_model

# Small enough to train in a few seconds, big enough to be a real model of either design.
TINY_CONFIG = dict(
    epochs=2,
    batch_size=32,
    trainer_buckets=2**12,
    trainer_dim=16,
    trainer_hidden=32,
    bottleneck=16,
    filters=16,
    hidden=(32,),
    num_projections=8,
    bits_per_projection=16,
    augment_copies=0,  # tests of other things train on the given texts alone (small sets augment)
    consistency=0,  # ... with one dropout draw per batch (small sets take two)
)


# Data files with no rows, by name: empty in each format (gzipped too) and header-only.
EMPTY_DATA_FILES = (
    ("e.tsv", b""),
    ("e.csv", b""),
    ("e.jsonl", b""),
    ("e.txt", b""),
    ("e.txt.gz", gzip.compress(b"")),
    ("e.tsv.gz", gzip.compress(b"")),
    ("h.tsv", b"text\tlabel\n"),
    ("h.csv", b"id,text,label\n"),
)


def need(ok: bool, why: str) -> None:
    """Skip outside CI when a tool (node, a compiler, ziglang) is missing; under CI (.ci/run
    installs it) fail."""
    if not ok:
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(why)


def tiny_banking(n: int = 300) -> Dataset:
    """The first ``n`` banking77 training texts (the file is not sorted by label)."""
    data = load_corpus("banking77", "train")
    return Dataset(data.texts[:n], data.labels[:n], f"banking77-train[:{n}]")


def per_intent(data: Dataset, n_intents: int, per_label: int) -> Dataset:
    """The first ``per_label`` texts of each of the first ``n_intents`` labels (sorted)."""
    keep = sorted(set(data.labels))[:n_intents]
    counts = dict.fromkeys(keep, 0)
    texts, gold = [], []
    for text, label in zip(data.texts, data.labels, strict=True):
        if label in counts and counts[label] < per_label:
            counts[label] += 1
            texts.append(text)
            gold.append(label)
    return Dataset(texts, gold, f"{data.source}[{n_intents} labels x {per_label}]")


def old_unicode_model(folder: Path) -> bytes:
    """The model in ``folder`` as written under Unicode 1.1.0: loading it warns."""
    header, tensors = read_model(folder / "model.tpn")
    header = {**header, UNICODE_VERSION_KEY: "1.1.0"}
    bits = header["train_config"]["weight_bits"]
    return encode_model(header, tensors, int4=netspec.int4_tensors(tensors, bits))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``{"text": dir, "token": dir}``: each a training output directory holding model.tpn."""
    from textproj.training import train

    data = tiny_banking()
    models = {}
    for design in ("text", "token"):
        out = tmp_path_factory.mktemp(f"tiny-{design}")
        train(
            data, config=TrainConfig(design=design, **TINY_CONFIG), output_dir=out, progress=False
        )
        models[design] = out
    return models
