"""Training speed, beside fastText, in one run: the table of docs/training.md.

For each corpus, alternately and ``--runs`` times: ``textproj train`` with the defaults as a
fresh process (process start to files written), and fastText's quantized recipe as a fresh
process (``train_supervised(epoch=50, lr=0.5, wordNgrams=2, minn=2, maxn=5, dim=50,
bucket=100000, thread=2)`` then ``quantize(retrain=True, qnorm=True, cutoff=20000)``; lr 0.25
where 0.5 diverges). Each reports wall seconds and its peak RSS (``wait4``); the table gives the
medians, their ratio, test accuracy and the bytes textproj wrote (model, trainer, and the
largest checkpoint seen while it ran). ``--scale`` trains on 10k, 100k and 1M texts made from
the bundled short-text corpora (see :func:`scaled_corpus`) and reports texts/s per epoch.

    python benchmarks/train_speed.py --runs 3 --markdown docs/train-speed.md
    python benchmarks/train_speed.py --scale 10000 100000 1000000 --markdown docs/train-scale.md
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from textproj.corpora import load_corpus
from textproj.data import Dataset, write_dataset
from textproj.layout import CHECKPOINT_NAME, METRICS_NAME, MODEL_NAME, TRAINER_WEIGHTS

CORPORA = ["banking77", "clinc150", "sentiment_sentences", "spamassassin", "udhr_langid"]
SHORT_TEXT_CORPORA = ["banking77", "clinc150", "sentiment_sentences", "udhr_langid"]
FASTTEXT_RECIPE = dict(epoch=50, lr=0.5, wordNgrams=2, minn=2, maxn=5, dim=50, bucket=100000)
FASTTEXT_SCRIPT = """
import json, sys, time
import fasttext
train, test, lr = sys.argv[1], sys.argv[2], float(sys.argv[3])
recipe = json.loads(sys.argv[4])
model = fasttext.train_supervised(input=train, thread=2, seed=0, verbose=0, **{**recipe, "lr": lr})
model.quantize(input=train, retrain=True, qnorm=True, cutoff=20000)
texts, gold = [], []
for line in open(test, encoding="utf-8"):
    label, _, text = line.rstrip("\\n").partition(" ")
    texts.append(text)
    gold.append(label)
predicted = model.predict(texts)[0]
hits = sum(p[0] == g for p, g in zip(predicted, gold))
print(json.dumps({"accuracy": hits / len(gold)}))
"""


def run_measured(args: list[str], watch: Path | None = None) -> tuple[float, int, str, int]:
    """Run ``args``; return (wall seconds, its peak RSS in bytes, its stdout, the largest
    checkpoint seen in ``watch`` while it ran). The peak RSS is the child's own, read by a
    thin wrapper process with ``getrusage(RUSAGE_CHILDREN)``."""
    wrapper = [
        sys.executable,
        "-c",
        "import resource, subprocess, sys, json\n"
        "r = subprocess.run(sys.argv[1:])\n"
        "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
        "print(json.dumps({'rc': r.returncode, 'rss': u.ru_maxrss * 1024}), file=sys.stderr)\n"
        "sys.exit(r.returncode)",
        *args,
    ]
    started = time.perf_counter()
    process = subprocess.Popen(wrapper, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    largest = 0
    done = threading.Event()

    def watch_checkpoint() -> None:
        nonlocal largest
        while watch is not None and not done.wait(0.1):
            with contextlib.suppress(OSError):
                largest = max(largest, (watch / CHECKPOINT_NAME).stat().st_size)

    watcher = threading.Thread(target=watch_checkpoint, daemon=True)
    watcher.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    done.set()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} failed:\n{err[-3000:]}")
    rss = json.loads(err.strip().splitlines()[-1])["rss"]
    return seconds, rss, out, largest


def fasttext_file(data: Dataset, label_index: dict[str, int], path: Path) -> Path:
    """``data`` in fastText's format (labels as indices, one text per line)."""
    lines = (
        f"__label__{label_index.get(label, -1)} {' '.join(text.split())}\n"
        for text, label in zip(data.texts, data.labels, strict=True)
    )
    path.write_text("".join(lines), encoding="utf-8")
    return path


def fasttext_run(train: Path, test: Path) -> tuple[float, int, float, float]:
    """(seconds, peak RSS, test accuracy, lr used) of the quantized recipe; lr 0.25 if 0.5
    diverges (fastText then exits with an error)."""
    for lr in (0.5, 0.25):
        args = [sys.executable, "-c", FASTTEXT_SCRIPT, str(train), str(test), str(lr)]
        try:
            seconds, rss, out, _ = run_measured([*args, json.dumps(FASTTEXT_RECIPE)])
        except RuntimeError as error:
            if "NaN" in str(error) or "diverg" in str(error).lower():
                continue
            raise
        return seconds, rss, json.loads(out.strip().splitlines()[-1])["accuracy"], lr
    raise RuntimeError(f"fastText diverged at lr 0.5 and 0.25 on {train}")


def textproj_run(data_args: list[str], out: Path, extra: list[str]) -> dict:
    """One ``textproj train`` process: seconds, RSS, accuracies and bytes."""
    cli = [str(Path(sys.executable).parent / "textproj")]
    args = [*cli, "train", *data_args, "--output", str(out), "--quiet", *extra]
    seconds, rss, _, checkpoint_bytes = run_measured(args, watch=out)
    metrics = json.loads((out / METRICS_NAME).read_text(encoding="utf-8"))
    return {
        "seconds": seconds,
        "rss": rss,
        "test": metrics["projection"].get("test", {}).get("accuracy"),
        "dev": metrics["projection"]["dev"]["accuracy"],
        "trainer_test": metrics["trainer"].get("test", {}).get("accuracy"),
        "model_bytes": (out / MODEL_NAME).stat().st_size,
        "trainer_bytes": (out / TRAINER_WEIGHTS).stat().st_size,
        "checkpoint_bytes": checkpoint_bytes,
        "epochs": len(metrics["history"]),
        "phases": metrics.get("seconds", {}),
    }


def speed_table(corpora: list[str], runs: int, extra: list[str]) -> list[dict]:
    """Per corpus: medians of ``runs`` alternating textproj and fastText runs."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for corpus in corpora:
            train, test = load_corpus(corpus, "train"), load_corpus(corpus, "test")
            label_index = {label: i for i, label in enumerate(sorted(set(train.labels)))}
            ft_train = fasttext_file(train, label_index, work / f"{corpus}.train.ft")
            ft_test = fasttext_file(test, label_index, work / f"{corpus}.test.ft")
            ours, theirs = [], []
            for i in range(runs):
                ours.append(textproj_run(["--corpus", corpus], work / f"{corpus}-{i}", extra))
                theirs.append(fasttext_run(ft_train, ft_test))
                print(corpus, i, ours[-1], theirs[-1], flush=True)
            row = {
                "corpus": corpus,
                "textproj_seconds": statistics.median(r["seconds"] for r in ours),
                "fasttext_seconds": statistics.median(r[0] for r in theirs),
                "textproj_rss": max(r["rss"] for r in ours),
                "fasttext_rss": max(r[1] for r in theirs),
                "test": statistics.median(r["test"] for r in ours),
                "trainer_test": statistics.median(r["trainer_test"] for r in ours),
                "fasttext_test": statistics.median(r[2] for r in theirs),
                "fasttext_lr": theirs[-1][3],
                "model_bytes": ours[-1]["model_bytes"],
                "trainer_bytes": ours[-1]["trainer_bytes"],
                "checkpoint_bytes": max(r["checkpoint_bytes"] for r in ours),
                "epochs": statistics.median(r["epochs"] for r in ours),
                "phases": ours[-1]["phases"],
            }
            row["ratio"] = row["textproj_seconds"] / row["fasttext_seconds"]
            rows.append(row)
    return rows


def scaled_corpus(n: int, seed: int = 0) -> Dataset:
    """``n`` texts made from the train splits of the bundled short-text corpora: their union
    (labels prefixed with the corpus name), repeated as often as needed, each repeat of a text
    with one word dropped at random (so copies differ), in shuffled order."""
    texts, labels = [], []
    for corpus in SHORT_TEXT_CORPORA:
        data = load_corpus(corpus, "train")
        texts += data.texts
        labels += [f"{corpus}:{label}" for label in data.labels]
    rng = np.random.default_rng(seed)
    order = rng.permutation(n) % len(texts)
    out_texts, out_labels = [], []
    for k, i in enumerate(order):
        words = texts[i].split()
        if k >= len(texts) and len(words) > 2:
            del words[int(rng.integers(len(words)))]
        out_texts.append(" ".join(words))
        out_labels.append(labels[i])
    return Dataset(out_texts, out_labels, f"scaled-{n}")


def scale_table(sizes: list[int], epochs: int) -> list[dict]:
    """Per size: one ``textproj train`` process of ``epochs`` epochs on ``scaled_corpus``."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        for n in sizes:
            path = work / f"scaled-{n}.tsv.gz"
            write_dataset(scaled_corpus(n), path)
            out = work / f"out-{n}"
            extra = ["--epochs", str(epochs)]
            result = textproj_run(["--train", str(path)], out, extra)
            fit = result["phases"].get("fit", 0.0)
            n_train = n - round(0.1 * n)
            rows.append(
                {
                    "texts": n,
                    "seconds": result["seconds"],
                    "rss": result["rss"],
                    "prepare_seconds": result["phases"].get("prepare"),
                    "texts_per_second_per_epoch": n_train * result["epochs"] / fit if fit else 0,
                    "epochs": result["epochs"],
                    "dev": result["dev"],
                }
            )
            print(rows[-1], flush=True)
    return rows


def speed_markdown(rows: list[dict], command: str) -> str:
    """The speed table as markdown."""
    lines = [
        f"Made by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{os.cpu_count()} CPUs). Medians; seconds are process start to files written.",
        "",
        "| corpus | textproj s | fastText.ftz s | ratio | textproj test | trainer test | "
        "fastText.ftz test | model bytes | trainer bytes | checkpoint bytes | "
        "textproj peak RSS | fastText peak RSS | epochs | prepare / fit / evaluate s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        phases = r["phases"]
        lines.append(
            f"| {r['corpus']} | {r['textproj_seconds']:.1f} | {r['fasttext_seconds']:.1f} "
            f"| **{r['ratio']:.2f}×** | {r['test']:.3f} | {r['trainer_test']:.3f} "
            f"| {r['fasttext_test']:.3f} | {r['model_bytes']:,} | {r['trainer_bytes']:,} "
            f"| {format(r['checkpoint_bytes'], ',') if r['checkpoint_bytes'] else '–'} "
            f"| {r['textproj_rss'] / 2**20:.0f} MB "
            f"| {r['fasttext_rss'] / 2**20:.0f} MB | {r['epochs']:g} "
            f"| {phases.get('prepare', 0):.1f} / {phases.get('fit', 0):.1f} / "
            f"{phases.get('evaluate', 0):.1f} |"
        )
    return "\n".join(lines) + "\n"


def scale_markdown(rows: list[dict], command: str) -> str:
    """The scaling table as markdown."""
    lines = [
        f"Made by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        "| texts | wall s | featurise s | texts/s per epoch | peak RSS | epochs | dev acc |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['texts']:,} | {r['seconds']:.0f} | {r['prepare_seconds']:.0f} "
            f"| {r['texts_per_second_per_epoch']:,.0f} | {r['rss'] / 2**20:.0f} MB "
            f"| {r['epochs']} | {r['dev']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", nargs="+", default=CORPORA)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--scale", nargs="+", type=int, help="sizes of the scaling runs instead")
    parser.add_argument("--scale-epochs", type=int, default=2)
    parser.add_argument("--markdown", type=Path, help="write the table here")
    parser.add_argument("extra", nargs="*", help="more `textproj train` options, after --")
    args = parser.parse_args()
    command = "python benchmarks/train_speed.py " + " ".join(sys.argv[1:])
    if args.scale:
        text = scale_markdown(scale_table(args.scale, args.scale_epochs), command)
    else:
        text = speed_markdown(speed_table(args.corpora, args.runs, args.extra), command)
    print(text)
    if args.markdown:
        args.markdown.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
