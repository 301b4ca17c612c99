"""Score TrainConfig variants on a corpus's dev split and append one JSON line per run.

Defaults in textproj/config.py were chosen from these lines (dev accuracy only; docs/sweeps.md):

    python benchmarks/tune.py --corpus banking77 --name base
    python benchmarks/tune.py --name lr5e-3 learning_rate=0.005 epochs=12

Each ``key=value`` overrides a TrainConfig field (``feature.key=value`` a FeatureConfig field);
values are parsed as JSON, so ``hidden=[256]`` and ``design="text"`` work.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from textproj import FeatureConfig, TrainConfig, load_corpus
from textproj.training import train


def parse_overrides(pairs: list[str]) -> tuple[dict, dict]:
    """``key=value`` pairs -> (TrainConfig overrides, FeatureConfig overrides)."""
    train_fields: dict = {}
    feature_fields: dict = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        if isinstance(value, list):
            value = tuple(value)
        if key.startswith("feature."):
            feature_fields[key.removeprefix("feature.")] = value
        else:
            train_fields[key] = value
    return train_fields, feature_fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="banking77")
    parser.add_argument("--name", required=True)
    parser.add_argument("--log", type=Path, default=Path("docs/sweeps.jsonl"))
    parser.add_argument("--output", type=Path, default=None, help="also write the model here")
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    train_fields, feature_fields = parse_overrides(args.overrides)
    config = TrainConfig(**train_fields)
    features = FeatureConfig(**feature_fields)
    started = time.perf_counter()
    result = train(
        load_corpus(args.corpus, "train"),
        load_corpus(args.corpus, "dev"),
        config=config,
        features=features,
        output_dir=args.output,
        progress=False,
    )
    metrics = result.metrics
    row = {
        "corpus": args.corpus,
        "name": args.name,
        "overrides": args.overrides,
        "dev_projection": metrics["projection"]["dev"]["accuracy"],
        "dev_projection_float": metrics["projection_float"]["dev"]["accuracy"],
        "dev_trainer": metrics["trainer"]["dev"]["accuracy"],
        "best_epoch": metrics["best_epoch"],
        "model_bytes": sum(t.nbytes for t in result.tensors.values()),
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(row))
    with args.log.open("a", encoding="utf-8") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
