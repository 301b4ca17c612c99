"""A/B of training time: the defaults against TrainConfig overrides, on bundled corpora.

Usage::

    python benchmarks/config_ab.py --corpus banking77 clinc150 udhr_langid --runs 3 \
        trainer_share=0.5

In one process, after a one-epoch warm-up per corpus, ``train()`` runs alternate between the
defaults and the overrides (``key=value``, as ``tune.py`` reads them); it prints each run's
wall time, dev accuracy and epochs, then per corpus the median seconds of each side and their
ratio (overrides / defaults). Ratios, not absolute speeds: run it on a quiet machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

from tune import parse_overrides

from textproj import FeatureConfig, TrainConfig, load_corpus
from textproj.training import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["banking77"])
    parser.add_argument("--runs", type=int, default=3, help="runs of each side (median)")
    parser.add_argument("overrides", nargs="+", help="key=value TrainConfig fields")
    args = parser.parse_args()
    fields, feature_fields = parse_overrides(args.overrides)
    sides = {
        "defaults": (TrainConfig(), FeatureConfig()),
        " ".join(args.overrides): (TrainConfig(**fields), FeatureConfig(**feature_fields)),
    }
    for corpus in args.corpus:
        splits = [load_corpus(corpus, split) for split in ("train", "dev", "test")]
        train(*splits, config=TrainConfig(epochs=1), progress=False)  # numba and torch warm
        seconds: dict[str, list[float]] = {name: [] for name in sides}
        for _ in range(args.runs):
            for name, (config, features) in sides.items():
                started = time.perf_counter()
                result = train(*splits, config=config, features=features, progress=False)
                seconds[name].append(time.perf_counter() - started)
                dev = result.metrics["projection"]["dev"]["accuracy"]
                epochs = len(result.metrics["history"])
                print(f"{corpus} {name}: {seconds[name][-1]:.2f} s, dev {dev:.4f}, {epochs} epochs")
        medians = {name: statistics.median(values) for name, values in seconds.items()}
        base, other = medians.values()
        print(f"{corpus}: median {base:.2f} s against {other:.2f} s, ratio {other / base:.2f}")


if __name__ == "__main__":
    main()
