"""Score TrainConfig variants on a corpus's dev split and append one JSON line per run.

Defaults in textproj/config.py were chosen from these lines by dev accuracy only (the test
scores are logged for the ablation and the final report; docs/training.md):

    python benchmarks/tune.py --corpus banking77 --name base
    python benchmarks/tune.py --name lr5e-3 learning_rate=0.005 epochs=12
    python benchmarks/tune.py --corpus banking77 clinc150 --seeds 0 1 2 --name b256 batch_size=256
    python benchmarks/tune.py --report            # docs/sweeps.jsonl -> docs/sweeps.md table
    python benchmarks/tune.py --seeds-report b256 # mean and range over the seeds of run b256
    python benchmarks/tune.py --corpus clinc150 --train-texts 1500 --name small  # a cut train split
    python benchmarks/tune.py --corpus banking77 --labels 16 --train-texts 1200 --svm --name c
                                                  # 16 of its labels, 75 texts each, and the SVM
    python benchmarks/tune.py --corpus clinc150 --folds 3 --seeds 0 1 2 --name f max_pool=true
                                                  # dev: fold (seed mod 3) of the train split
    python benchmarks/tune.py --corpus banking77 --long-docs --svm --name long max_pool=true
                                                  # documents of 40 texts, 12 of their label

Each ``key=value`` overrides a TrainConfig field (``feature.key=value`` a FeatureConfig field);
values are parsed as JSON, so ``hidden=[256]`` and ``design="text"`` work.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

from few_shot import few_labels

from textproj import FeatureConfig, TrainConfig, load_corpus
from textproj.data import Dataset
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


def render_report(log: Path) -> str:
    """A markdown table per corpus of every logged run, best dev accuracy first."""
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    lines = []
    for corpus in dict.fromkeys(row["corpus"] for row in rows):
        lines += [
            f"### {corpus}",
            "",
            "| run | overrides | dev acc, on-device int8 | float | trainer | best epoch "
            "(proj/trainer) | weight bytes | seconds |",
            "|---|---|---|---|---|---|---|---|",
        ]
        ranked = sorted(
            (row for row in rows if row["corpus"] == corpus), key=lambda r: -r["dev_projection"]
        )
        for row in ranked:
            epochs = row["best_epoch"]
            lines.append(
                f"| {row['name']} | `{' '.join(row['overrides']) or '-'}` "
                f"| {row['dev_projection']:.4f} | {row['dev_projection_float']:.4f} "
                f"| {row['dev_trainer']:.4f} | {epochs['projection']}/{epochs['trainer']} "
                f"| {row['model_bytes']:,} | {row['seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def render_seeds(log: Path, name: str) -> str:
    """A markdown table of run ``name``'s mean (and range) over its seeds, per corpus."""
    rows = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line]
    rows = [row for row in rows if row["name"] == name]
    lines = [
        "| corpus | seeds | on-device dev | on-device test (range) | trainer dev | trainer test "
        "| ensemble dev | ensemble test | SVM test | weight bytes |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for corpus in dict.fromkeys(row["corpus"] for row in rows):
        runs = [row for row in rows if row["corpus"] == corpus]
        metric = "micro_f1" if "micro_f1" in runs[0]["test"]["projection"] else "accuracy"
        test = [row["test"]["projection"][metric] for row in runs]
        lines.append(
            f"| {corpus} | {', '.join(str(row['seed']) for row in runs)} "
            f"| {statistics.mean(row['dev_projection'] for row in runs):.4f} "
            f"| **{statistics.mean(test):.4f}** ({min(test):.4f}–{max(test):.4f}) "
            f"| {statistics.mean(row['dev_trainer'] for row in runs):.4f} "
            f"| {statistics.mean(row['test']['trainer'][metric] for row in runs):.4f} "
            f"| {_mean(runs, 'dev_ensemble')} | {_mean(runs, 'test', 'ensemble', metric)} "
            f"| {format(runs[0]['svm']['test'], '.4f') if 'svm' in runs[0] else '–'} "
            f"| {runs[0]['model_bytes']:,} |"
        )
    return "\n".join(lines)


def _mean(runs: list[dict], *path: str) -> str:
    """The mean over ``runs`` of the value at ``path`` in each row, to four places; '–' if a
    run predates it (logs of earlier sessions have no ensemble)."""
    values = []
    for row in runs:
        for key in path:
            row = row.get(key, {})
        values.append(row)
    if not all(isinstance(value, float) for value in values):
        return "–"
    return f"{statistics.mean(values):.4f}"


def cut_train(data: Dataset, n_texts: int, seed: int = 0) -> Dataset:
    """A small training set made from ``data``: ``n_texts // labels`` texts of each label
    (``few_shot.few_labels``, drawn with ``seed``)."""
    return few_labels(data, max(1, n_texts // len(set(data.labels))), seed)[0]


def train_fold(data: Dataset, k: int, fold: int) -> tuple[Dataset, Dataset]:
    """(train, dev) from ``data``: each label's texts dealt into ``k`` folds in an order drawn
    with ``random.Random(0)``; fold ``fold`` is dev, the rest train, both in ``data``'s order.
    Dev from folds of train holds k times more texts than a split of 1/k, across its runs."""
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    rng = random.Random(0)
    held = set()
    for label in sorted(by_label):
        order = by_label[label][:]
        rng.shuffle(order)
        held.update(order[fold::k])

    def part(keep: bool, name: str) -> Dataset:
        rows = [i for i in range(len(data)) if (i in held) == keep]
        texts, labels = [data.texts[i] for i in rows], [data.labels[i] for i in rows]
        return Dataset(texts, labels, f"{data.source}[{name} {fold} of {k}]")

    return part(False, "train without fold"), part(True, "fold")


def some_labels(splits: list[Dataset], n_labels: int, seed: int = 0) -> list[Dataset]:
    """``splits`` kept to ``n_labels`` labels of the first split, drawn with ``seed``."""
    kept = set(random.Random(seed).sample(sorted(set(splits[0].labels)), n_labels))
    return [
        Dataset(
            [text for text, label in zip(data.texts, data.labels, strict=True) if label in kept],
            [label for label in data.labels if label in kept],
            f"{data.source}[{n_labels} labels]",
        )
        for data in splits
    ]


LONG_DOCS = {"train": 3000, "dev": 500, "test": 500}  # documents made per split
DOC_OWN, DOC_OTHERS = 12, 28  # texts of a document's label, and of other labels, per document


def long_documents(data: Dataset, n_docs: int, seed: int = 0) -> Dataset:
    """Long documents whose evidence is spread out: each joins DOC_OWN texts of its label and
    DOC_OTHERS of other labels (drawn with ``seed``) in a shuffled order, the labels taken in
    turn. A banking77 document has about 460 tokens, so a model must add up what it reads."""
    by_label: dict[str, list[str]] = {}
    for text, label in zip(data.texts, data.labels, strict=True):
        by_label.setdefault(label, []).append(text)
    labels = sorted(by_label)
    rng = random.Random(seed)
    texts, doc_labels = [], []
    for i in range(n_docs):
        label = labels[i % len(labels)]
        others = [other for other in labels if other != label]
        parts = [rng.choice(by_label[label]) for _ in range(DOC_OWN)]
        parts += [rng.choice(by_label[rng.choice(others)]) for _ in range(DOC_OTHERS)]
        rng.shuffle(parts)
        texts.append(" ".join(part.rstrip(".?! ") + "." for part in parts))
        doc_labels.append(label)
    return Dataset(texts, doc_labels, f"{data.source}[{n_docs} long documents]")


def svm_scores(train_data: Dataset, dev_data: Dataset, test_data: Dataset) -> dict[str, float]:
    """Dev and test accuracy of the benchmark's TF-IDF + LinearSVC (C chosen on dev, by the
    benchmark harness's own search)."""
    import numpy as np
    from harness.common import Splits
    from harness.systems_sklearn import SVC_CS, _tfidf_features, _tuned
    from sklearn.svm import LinearSVC

    splits = Splits(train_data.source, train_data, dev_data, test_data)
    pipeline = _tuned(splits, _tfidf_features(), lambda c: LinearSVC(C=c), SVC_CS)[0]
    return {
        split: float((pipeline.predict(data.texts) == np.array(data.labels)).mean())
        for split, data in (("dev", dev_data), ("test", test_data))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["banking77"], help="one or more")
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="runs per seed")
    parser.add_argument("--name")
    parser.add_argument("--report", action="store_true", help="print the table of logged runs")
    parser.add_argument("--seeds-report", metavar="NAME", help="print run NAME's mean over seeds")
    parser.add_argument("--log", type=Path, default=Path("docs/sweeps.jsonl"))
    parser.add_argument(
        "--output", type=Path, default=None, help="also write the model here (replaced each run)"
    )
    parser.add_argument(
        "--train-texts", type=int, default=None, help="cut the train split to about N texts"
    )
    parser.add_argument(
        "--labels", type=int, default=None, help="keep N labels (drawn with seed 0) in every split"
    )
    parser.add_argument("--svm", action="store_true", help="also log TF-IDF + LinearSVC's scores")
    parser.add_argument(
        "--folds", type=int, default=None, help="dev is fold (seed mod K) of K folds of train"
    )
    parser.add_argument(
        "--long-docs", action="store_true", help="every split as long documents (LONG_DOCS)"
    )
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()
    if args.report:
        print(render_report(args.log))
        return
    if args.seeds_report:
        print(render_seeds(args.log, args.seeds_report))
        return
    if not args.name:
        parser.error("--name is required to run")
    train_fields, feature_fields = parse_overrides(args.overrides)
    for corpus in args.corpus:
        for seed in args.seeds or [train_fields.get("seed", 0)]:
            run(args, corpus, {**train_fields, "seed": seed}, feature_fields)


def run(args: argparse.Namespace, corpus: str, train_fields: dict, feature_fields: dict) -> None:
    """Train one configuration on one corpus and log its row."""
    config = TrainConfig(**train_fields)
    features = FeatureConfig(**feature_fields)
    started = time.perf_counter()
    train_data, dev_data, test_data = (load_corpus(corpus, s) for s in ("train", "dev", "test"))
    if args.labels is not None:
        train_data, dev_data, test_data = some_labels(
            [train_data, dev_data, test_data], args.labels
        )
    if args.folds is not None:  # dev is fold (seed mod k) of the train split
        train_data, dev_data = train_fold(train_data, args.folds, config.seed % args.folds)
    if args.train_texts is not None:
        train_data = cut_train(train_data, args.train_texts)
    if args.long_docs:
        train_data, dev_data, test_data = (
            long_documents(data, LONG_DOCS[split], seed=i)
            for i, (split, data) in enumerate(
                (("train", train_data), ("dev", dev_data), ("test", test_data))
            )
        )
    result = train(
        train_data,
        dev_data,
        test_data,
        config=config,
        features=features,
        output_dir=args.output,
        force=True,
        progress=False,
    )
    metrics = result.metrics
    row = {
        "corpus": corpus,
        "name": args.name,
        "seed": config.seed,
        "overrides": args.overrides,
        "train_texts": len(train_data),
        "dev_texts": len(dev_data),
        "labels": len(result.labels),
        "dev_projection": metrics["projection"]["dev"]["accuracy"],
        "dev_projection_float": metrics["projection_float"]["dev"]["accuracy"],
        "dev_trainer": metrics["trainer"]["dev"]["accuracy"],
        "best_epoch": metrics["best_epoch"],
        # recorded for the ablation and the final report; never used to choose a setting
        "dev_ensemble": metrics["ensemble"]["dev"]["accuracy"],
        "test": {name: metrics[name]["test"] for name in ("projection", "trainer", "ensemble")},
        "model_bytes": sum(  # the tensors' bytes in model.tpn (int4 ones at two per byte)
            (t.size + 1) // 2 if name in result.int4 else t.nbytes
            for name, t in result.tensors.items()
        ),
        "epochs": len(metrics["history"]),
        "seconds": round(time.perf_counter() - started, 1),
    }
    if args.svm:
        row["svm"] = svm_scores(train_data, dev_data, test_data)
    print(json.dumps(row))
    with args.log.open("a", encoding="utf-8") as log:
        log.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
