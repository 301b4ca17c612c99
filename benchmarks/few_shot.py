"""Few labels: banking77 with N labelled texts per intent, the rest of its train split as
unlabelled text. Projection network alone (λ2 = 0), joint, and joint + unlabelled, over seeds;
dev is banking77's dev split, test its test split. One JSON line per run, then a table:

    python benchmarks/few_shot.py --per-label 10 --seeds 0 1 2 --markdown docs/few-shot.md
    python benchmarks/few_shot.py --per-label 10 --seeds 0 min_steps=400    # with overrides
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from textproj import TrainConfig, load_corpus
from textproj.data import Dataset
from textproj.training import train

SETTINGS = {
    "alone": {"lambda_distill": 0.0},
    "joint": {},
    "joint + unlabelled": {},
}


def few_labels(data: Dataset, per_label: int, seed: int) -> tuple[Dataset, list[str]]:
    """``per_label`` texts of each label (all of a rarer label's; a seeded draw per label, in
    label order), in their original order, and the other texts, unlabelled."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(seed)
    chosen = {
        i
        for label in sorted(by_label)
        for i in rng.sample(by_label[label], min(per_label, len(by_label[label])))
    }
    keep = sorted(chosen)
    labelled = Dataset([data.texts[i] for i in keep], [data.labels[i] for i in keep], data.source)
    return labelled, [text for i, text in enumerate(data.texts) if i not in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-label", type=int, default=10)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--log", type=Path, default=Path("/dev/null"))
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("overrides", nargs="*", help="key=value TrainConfig fields (JSON values)")
    args = parser.parse_args()
    fields = {k: json.loads(v) for k, v in (pair.split("=", 1) for pair in args.overrides)}
    full, dev, test = (load_corpus("banking77", split) for split in ("train", "dev", "test"))
    rows = []
    for seed in args.seeds:
        labelled, unlabelled = few_labels(full, args.per_label, seed)
        for name, setting in SETTINGS.items():
            config = TrainConfig(**{**fields, **setting, "seed": seed})
            started = time.perf_counter()
            extra = unlabelled if "unlabelled" in name else ()
            result = train(labelled, dev, test, config=config, progress=False, unlabeled=extra)
            m = result.metrics
            row = {
                "setting": name, "seed": seed, "per_label": args.per_label,
                "overrides": args.overrides,
                "dev": m["projection"]["dev"]["accuracy"],
                "test": m["projection"]["test"]["accuracy"],
                "trainer_test": m["trainer"]["test"]["accuracy"],
                "epochs": len(m["history"]), "seconds": round(time.perf_counter() - started, 1),
            }  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)
            with args.log.open("a") as log:
                log.write(json.dumps(row) + "\n")
    lines = [
        f"`python benchmarks/few_shot.py {' '.join(sys.argv[1:])}`: banking77, "
        f"{args.per_label} labelled texts per intent, seeds {args.seeds}; mean (min–max).",
        "",
        "| setting | dev | test | trainer test | epochs |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in SETTINGS:
        mine = [r for r in rows if r["setting"] == name]

        def cell(key: str, mine: list = mine) -> str:
            values = [r[key] for r in mine]
            return f"{statistics.mean(values):.3f} ({min(values):.3f}–{max(values):.3f})"

        epochs = statistics.mean(r["epochs"] for r in mine)
        lines.append(f"| {name} | {cell('dev')} | {cell('test')} | {cell('trainer_test')} | "
                     f"{epochs:.0f} |")  # fmt: skip
    text = "\n".join(lines) + "\n"
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
