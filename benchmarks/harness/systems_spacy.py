"""spaCy textcat trained with ``spacy train``: the bag-of-words model, and the default ensemble.

Both start from ``spacy init config -p textcat`` (English, CPU, no pretrained vectors). The
bow model is that config's ``TextCatBOW.v3`` (unigrams); the ensemble is the textcat factory's
default model (``TextCatEnsemble.v2``: BOW + a Tok2Vec CNN). The bow model trains with spaCy's
own schedule (at most 20,000 steps, stopping after 1,600 without a better dev score). The
ensemble's Tok2Vec makes each step much slower, so it is capped at 2,000 steps; the cap is
written into the report.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from harness.common import Splits, Trained
from textproj.data import Dataset

SPACY_DEFAULT_MAX_STEPS = 20_000
MAX_STEPS = {"bow": SPACY_DEFAULT_MAX_STEPS, "ensemble": 2_000}
QUICK_MAX_STEPS = {"bow": 20, "ensemble": 10}
EVAL_FREQUENCY = {"bow": 200, "ensemble": 200}
QUICK_EVAL_FREQUENCY = 10


def _docbin(data: Dataset, labels: list[str], path: Path) -> Path:
    import spacy
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    docs = DocBin()
    for doc, label in zip(nlp.pipe(data.texts), data.labels, strict=True):
        doc.cats = {name: float(name == label) for name in labels}
        docs.add(doc)
    docs.to_disk(path)
    return path


def _config(model: str, path: Path) -> Path:
    """``spacy init config`` for textcat, with the bow or the factory-default ensemble model."""
    import spacy
    from spacy.cli.init_config import init_config

    config = init_config(lang="en", pipeline=["textcat"], optimize="efficiency", gpu=False)
    if model == "ensemble":
        nlp = spacy.blank("en")
        nlp.add_pipe("textcat")
        config["components"]["textcat"] = nlp.config["components"]["textcat"]
    config.to_disk(path)
    return path


def train_spacy(
    splits: Splits,
    workdir: Path,
    quick: bool,
    ensemble: bool,
    steps: dict[str, int] | None = None,
) -> list[Trained]:
    """The bow textcat, and unless ``ensemble`` is false the default ensemble, each trained for
    at most ``steps[model]`` steps (default ``MAX_STEPS``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    labels = sorted(set(splits.train.labels))
    train_path = _docbin(splits.train, labels, workdir / "train.spacy")
    dev_path = _docbin(splits.dev, labels, workdir / "dev.spacy")
    results = []
    for model in ("bow", "ensemble") if ensemble else ("bow",):
        max_steps = (QUICK_MAX_STEPS if quick else steps or MAX_STEPS)[model]
        eval_frequency = QUICK_EVAL_FREQUENCY if quick else EVAL_FREQUENCY[model]
        config = _config(model, workdir / f"{model}.cfg")
        output = workdir / model
        command = [
            sys.executable,
            "-m",
            "spacy",
            "train",
            str(config),
            "--output",
            str(output),
            "--paths.train",
            str(train_path),
            "--paths.dev",
            str(dev_path),
            "--training.max_steps",
            str(max_steps),
            "--training.eval_frequency",
            str(eval_frequency),
            "--system.seed",
            "0",
        ]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            raise RuntimeError(f"spacy train ({model}) failed:\n{done.stderr[-3000:]}")
        architecture = "TextCatBOW.v3 (unigrams)" if model == "bow" else "TextCatEnsemble.v2"
        params = {
            "architecture": architecture,
            "max_steps": max_steps,
            "eval_frequency": eval_frequency,
            "config": "spacy init config -p textcat -o efficiency (CPU, no vectors)",
        }
        results.append(
            Trained(
                f"spaCy textcat {model}",
                "spaCy",
                "spacy",
                output / "model-best",
                seconds,
                params,
                notes=[]
                if max_steps == SPACY_DEFAULT_MAX_STEPS
                else [f"training capped at {max_steps} steps (spaCy default: 20,000)"],
            )
        )
    return results
