"""Docs/s of the textproj spaCy component in ``nlp.pipe`` next to spaCy's own textcat.

Usage::

    python benchmarks/spacy_speed.py [--epochs 5] [--bow-epochs 2] [--default-steps 40]
    python benchmarks/spacy_speed.py --model textproj-model/model.tpn   # skip textproj training

On the banking77 test texts (3,080), one process, spaCy's default ``nlp.pipe`` batch size: a blank
English pipeline (tokenizer only), the ``textproj`` component, spaCy ``textcat`` with the
``TextCatBOW.v3`` architecture (unigrams), and spaCy's default ``textcat`` (``TextCatEnsemble.v2``:
tok2vec + BOW). Every system is trained on the banking77 train split here, briefly: textproj for
``--epochs`` with ``textproj.train``, the BOW textcat for ``--bow-epochs`` passes of
``nlp.update``, the default textcat for only ``--default-steps`` steps (it trains at about 0.4 s a
step on 2 cores, so its accuracy here means nothing: its row is for speed and size). Speed does
not depend on how long a model trained. Docs/s are the median of ``--repeats`` runs after a
warm-up run; sizes are what ``nlp.to_disk`` writes for the component (and for the whole
pipeline, which adds the vocab and tokenizer).
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from pathlib import Path

import spacy
from spacy.language import Language
from spacy.training import Example

from textproj.config import TrainConfig
from textproj.corpora import load_corpus
from textproj.data import Dataset
from textproj.layout import MODEL_NAME

sys.path.insert(0, str(Path(__file__).resolve().parent))
from projection import machine_lines, median_seconds

BOW = {
    "@architectures": "spacy.TextCatBOW.v3",
    "exclusive_classes": True,
    "ngram_size": 1,
    "no_output_layer": False,
    "length": 262144,
}


def examples(nlp: Language, data: Dataset, labels: list[str]) -> list[Example]:
    """spaCy examples whose cats hold every label (1.0 for the gold one)."""
    return [
        Example.from_dict(doc, {"cats": {label: float(label == gold) for label in labels}})
        for doc, gold in zip(nlp.tokenizer.pipe(data.texts), data.labels, strict=True)
    ]


def train_textcat(
    train: Dataset, labels: list[str], model: dict | None, epochs: float, seed: int
) -> Language:
    """spaCy textcat (``model`` None: spaCy's default architecture) trained with nlp.update for
    ``epochs`` passes (a fraction stops early) in batches of 64."""
    spacy.util.fix_random_seed(seed)
    nlp = spacy.blank("en")
    nlp.add_pipe("textcat", config={} if model is None else {"model": model})
    train_examples = examples(nlp, train, labels)
    optimizer = nlp.initialize(lambda: train_examples)
    steps = round(epochs * len(train_examples) / 64)
    order = list(range(len(train_examples)))
    rng = random.Random(seed)
    step = 0
    while step < steps:
        rng.shuffle(order)
        for lo in range(0, len(order), 64):
            if step >= steps:
                break
            nlp.update([train_examples[i] for i in order[lo : lo + 64]], sgd=optimizer)
            step += 1
    return nlp


def textproj_pipeline(model: Path | None, epochs: int, work: Path) -> Language:
    """A blank pipeline with the textproj component on ``model``, or on a model trained here."""
    if model is None:
        from textproj.training import train

        train(
            load_corpus("banking77", "train"),
            load_corpus("banking77", "dev"),
            config=TrainConfig(epochs=epochs),
            output_dir=work / "textproj",
            progress=False,
        )
        model = work / "textproj" / MODEL_NAME
    nlp = spacy.blank("en")
    nlp.add_pipe("textproj", config={"model": str(model)})
    return nlp


def accuracy(nlp: Language, test: Dataset) -> float | None:
    """Share of test texts whose highest-scoring cat is the gold label (None: no classifier)."""
    if not nlp.pipe_names:
        return None
    docs = nlp.pipe(test.texts)
    hits = sum(
        max(doc.cats, key=doc.cats.get) == gold for doc, gold in zip(docs, test.labels, strict=True)
    )
    return hits / len(test)


def disk_bytes(nlp: Language, work: Path, name: str) -> tuple[int, int]:
    """(component bytes, whole pipeline bytes) as written by nlp.to_disk."""
    out = work / f"pipeline-{name}"
    nlp.to_disk(out)

    def total(path: Path) -> int:
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())

    component = total(out / nlp.pipe_names[0]) if nlp.pipe_names else 0
    return component, total(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="a textproj model.tpn to use")
    parser.add_argument("--epochs", type=int, default=5, help="textproj training epochs")
    parser.add_argument("--bow-epochs", type=float, default=2.0)
    parser.add_argument("--default-steps", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    train, test = load_corpus("banking77", "train"), load_corpus("banking77", "test")
    labels = sorted(set(train.labels))
    default_epochs = args.default_steps * 64 / len(train)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        systems = {
            "blank en (tokenizer only)": spacy.blank("en"),
            "textproj component ("
            + (f"{args.model}" if args.model else f"{args.epochs} epochs")
            + ")": textproj_pipeline(args.model, args.epochs, work),
            f"spaCy textcat, TextCatBOW.v3 ({args.bow_epochs:g} epochs)": train_textcat(
                train, labels, BOW, args.bow_epochs, args.seed
            ),
            f"spaCy textcat, default ensemble ({args.default_steps} steps)": train_textcat(
                train, labels, None, default_epochs, args.seed
            ),
        }
        rows = []
        for i, (name, nlp) in enumerate(systems.items()):
            seconds = median_seconds(lambda nlp=nlp: list(nlp.pipe(test.texts)), args.repeats)
            rows.append(
                (name, len(test) / seconds, accuracy(nlp, test), *disk_bytes(nlp, work, str(i)))
            )

    print("\n".join(machine_lines()))
    print(f"spaCy {spacy.__version__}; banking77 test, {len(test)} texts; median of {args.repeats}")
    print()
    print("| system | docs/s | test accuracy | component bytes | pipeline bytes |")
    print("|---|---:|---:|---:|---:|")
    for name, speed, acc, component, pipeline in rows:
        shown = "" if acc is None else f"{acc:.3f}"
        print(f"| {name} | {speed:,.0f} | {shown} | {component:,} | {pipeline:,} |")


if __name__ == "__main__":
    main()
