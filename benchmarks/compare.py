"""textproj against fastText, scikit-learn and spaCy on every bundled corpus, in one run.

Usage::

    python benchmarks/compare.py                     # everything -> docs/benchmarks.md + PNGs
    python benchmarks/compare.py --quick --out /tmp/q   # small slices, few epochs (the test)
    python benchmarks/compare.py --report-only       # rebuild the report from saved results
    python benchmarks/compare.py --merge --systems textproj   # re-run textproj's rows only

Each system is trained on the corpus's train split (hyper-parameters of the tuned peers chosen
on its dev split), then measured on its test split in a fresh one-thread process (see
``harness/predict_worker.py``). Peers whose package is not installed are skipped and listed as
such; install them with ``pip install -e ".[bench]"``. Results are saved per corpus as JSON
under ``--out`` as they finish, and the report is rebuilt from them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from harness import environment, report, stages
from harness.common import Splits, Trained
from harness.measure import measure
from harness.systems_spacy import MAX_STEPS as SPACY_MAX_STEPS
from harness.systems_spacy import train_spacy
from harness.systems_textproj import train_textproj

from textproj.config import TrainConfig
from textproj.corpora import CORPORA, load_corpus
from textproj.data import Dataset

QUICK_SIZES = {"train": 300, "dev": 60, "test": 60}
# Quick mode trains textproj for two epochs with a small trainer hash table (the default
# 2**18 x 64 embedding dominates the time of a tiny run); a full run uses TrainConfig().
QUICK_TEXTPROJ = {"epochs": 2, "trainer_buckets": 2**12, "threads": 1}
PEERS = {"fastText": "fasttext", "scikit-learn": "sklearn", "spaCy": "spacy"}
FAMILIES = ["textproj", *PEERS]
PROFILE_CORPUS = "banking77"


def _slice(data: Dataset, n: int | None) -> Dataset:
    if n is None or n >= len(data):
        return data
    return Dataset(list(data.texts[:n]), list(data.labels[:n]), data.source)


def load_splits(corpus: str, quick: bool) -> Splits:
    """The corpus's splits (the first few hundred texts of each with ``quick``)."""
    parts = {
        split: _slice(load_corpus(corpus, split), QUICK_SIZES[split] if quick else None)
        for split in ("train", "dev", "test")
    }
    return Splits(corpus, parts["train"], parts["dev"], parts["test"])


def installed_peers() -> dict[str, bool]:
    """Which peer families can run here."""
    return {
        family: importlib.util.find_spec(module) is not None for family, module in PEERS.items()
    }


def train_all(splits: Splits, workdir: Path, args: argparse.Namespace) -> list[Trained]:
    """Every available system, trained on ``splits`` under ``workdir``."""
    trained = []
    if "textproj" in args.systems:
        overrides = {
            name: value
            for name, value in (
                ("epochs", args.textproj_epochs),
                ("threads", args.textproj_threads),
            )
            if value is not None
        }
        config = TrainConfig(**(QUICK_TEXTPROJ if args.quick else overrides))
        trained += train_textproj(splits, workdir / "textproj", config)
    available = {family: ok and family in args.systems for family, ok in installed_peers().items()}
    if available["fastText"]:
        from harness.systems_fasttext import train_fasttext

        trained += train_fasttext(splits, workdir / "fasttext", args.quick)
    if available["scikit-learn"]:
        from harness.systems_sklearn import train_sklearn

        trained += train_sklearn(splits, workdir / "sklearn")
    if available["spaCy"]:
        ensemble = not args.no_ensemble and not args.quick
        steps = dict(zip(("bow", "ensemble"), args.spacy_steps, strict=True))
        trained += train_spacy(splits, workdir / "spacy", args.quick, ensemble, steps)
    return trained


def run_corpus(corpus: str, workdir: Path, args: argparse.Namespace) -> dict:
    """Train and measure every system on one corpus; the result as saved to JSON."""
    splits = load_splits(corpus, args.quick)
    started = time.perf_counter()
    trained = train_all(splits, workdir / corpus, args)
    rows = []
    for system in trained:
        print(f"  measuring {system.system}", file=sys.stderr, flush=True)
        rows.append(measure(system, splits.test, args.repeats))
    result = {
        "corpus": corpus,
        "sizes": {name: len(getattr(splits, name)) for name in ("train", "dev", "test")},
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    models = [t.model_path for t in trained if t.kind == "textproj"]
    if corpus == PROFILE_CORPUS and models:
        result["stages"] = stages.run(models[0], splits.test, args.repeats)
    return result


def _run_corpora(workdir: Path, args: argparse.Namespace) -> Iterator[dict]:
    """Each corpus's result as it finishes; ``args.jobs`` corpora at a time in fresh processes
    (spawned, so no torch or numba state is shared)."""
    if args.jobs <= 1:
        for corpus in args.corpora:
            print(f"{corpus}: training and measuring", file=sys.stderr, flush=True)
            yield run_corpus(corpus, workdir, args)
        return
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        futures = [pool.submit(run_corpus, corpus, workdir, args) for corpus in args.corpora]
        for future in as_completed(futures):
            result = future.result()
            print(f"{result['corpus']}: done", file=sys.stderr, flush=True)
            yield result


def _merged_run(results_dir: Path, rerun: dict) -> dict:
    """The saved run description, with this re-run recorded; textproj's training settings are
    the re-run's when it re-ran textproj."""
    run = json.loads((results_dir / "run.json").read_text("utf-8"))
    keys = ("command", "started", "systems", "textproj_epochs", "textproj_threads", "jobs")
    run.setdefault("reruns", []).append({key: rerun[key] for key in keys})
    if "textproj" in rerun["systems"]:
        run["textproj_epochs"], run["textproj_threads"] = (
            rerun["textproj_epochs"],
            rerun["textproj_threads"],
        )
    return run


def _merged_result(results_dir: Path, result: dict) -> dict:
    """A corpus's saved rows with those of the re-run systems replaced by ``result``'s."""
    path = results_dir / f"{result['corpus']}.json"
    if not path.exists():
        return result
    saved = json.loads(path.read_text("utf-8"))
    rerun = {row["system"] for row in result["rows"]}
    saved["rows"] = [row for row in saved["rows"] if row["system"] not in rerun] + result["rows"]
    if "stages" in result:
        saved["stages"] = result["stages"]
    return saved


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small slices, few epochs")
    parser.add_argument("--corpora", nargs="+", choices=sorted(CORPORA), default=list(CORPORA))
    parser.add_argument("--out", type=Path, help="report folder (default docs/, quick: required)")
    parser.add_argument("--repeats", type=int, help="timed predict passes (median; default 5)")
    parser.add_argument(
        "--systems", nargs="+", choices=FAMILIES, default=FAMILIES, help="families to run"
    )
    parser.add_argument("--textproj-epochs", type=int, help="cap textproj's epochs")
    parser.add_argument("--textproj-threads", type=int, help="torch threads of textproj's training")
    parser.add_argument("--no-ensemble", action="store_true", help="skip spaCy's ensemble")
    parser.add_argument(
        "--spacy-steps",
        nargs=2,
        type=int,
        metavar=("BOW", "ENSEMBLE"),
        default=[SPACY_MAX_STEPS["bow"], SPACY_MAX_STEPS["ensemble"]],
        help="most training steps of spaCy's bow and ensemble textcat (default: %(default)s)",
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="corpora trained at once (separate processes)"
    )
    parser.add_argument("--report-only", action="store_true", help="rebuild the report only")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="replace only the saved rows of --systems (and their corpora) in --out's results",
    )
    parser.add_argument("--keep", type=Path, help="keep trained models in this folder")
    args = parser.parse_args(argv)
    if args.out is None:
        if args.quick:
            parser.error("--quick needs --out (the committed report lives in docs/)")
        args.out = Path(__file__).resolve().parent.parent / "docs"
    if args.repeats is None:
        args.repeats = 1 if args.quick else 5
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results_dir = args.out / "benchmarks-results"
    if not args.report_only:
        results_dir.mkdir(parents=True, exist_ok=True)
        run = {
            "command": " ".join(["python", "benchmarks/compare.py", *(argv or sys.argv[1:])]),
            "quick": args.quick,
            "started": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "machine": environment.machine(),
            "versions": environment.versions(),
            "peers_installed": installed_peers(),
            "textproj_epochs": args.textproj_epochs,
            "textproj_threads": args.textproj_threads,
            "systems": args.systems,
            "repeats": args.repeats,
            "jobs": args.jobs,
        }
        if args.merge:
            run = _merged_run(results_dir, run)
        (results_dir / "run.json").write_text(json.dumps(run, indent=2), "utf-8")
        workdir = Path(tempfile.mkdtemp(prefix="textproj-compare-"))
        try:
            for result in _run_corpora(workdir, args):
                if args.merge:
                    result = _merged_result(results_dir, result)
                text = json.dumps(result, indent=2, ensure_ascii=False)
                (results_dir / f"{result['corpus']}.json").write_text(text, "utf-8")
        finally:
            if args.keep is not None:
                shutil.copytree(workdir, args.keep, dirs_exist_ok=True)
            shutil.rmtree(workdir, ignore_errors=True)
    report.write(results_dir, args.out)
    print(f"report: {args.out / report.REPORT_NAME}", file=sys.stderr)


if __name__ == "__main__":
    main()
