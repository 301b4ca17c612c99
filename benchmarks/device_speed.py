"""The C runtime beside fastText's C++ predict and textproj's Python runtime, on one thread.

    python benchmarks/device_speed.py                      # banking77
    python benchmarks/device_speed.py --corpora all --rounds 3 --repeats 5
    python benchmarks/device_speed.py --pool-cost --corpora banking77,spamassassin --rounds 5

For each corpus, on its test texts: the C runtime (``textproj export --c``, built with the
export's flags, ``benchmarks/device_speed.c``; its fastest API, ``tp_predict_batch`` on
``C_BATCH`` texts per call), the Python runtime and fastText's quantized
default and tuned models (fasttext-wheel; tuned hyper-parameters as chosen on dev by
``benchmarks/compare.py``, read from docs/benchmarks-results) are each measured in a fresh
process pinned to one thread: texts/s over the median CPU time of ``--repeats`` passes, peak
resident memory of the process; ``--rounds`` rounds alternate the order, and the table shows
the median round. Code bytes are ``size`` (text + data) of the compiled library objects and of
fastText's extension module; model bytes are the files'.

banking77 uses the bundled trained model; the other corpora a model of the default
architecture with random int8 weights (made here in a second; the speed of a model does not
depend on its weights), so their accuracy column is empty.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from harness import environment
from harness.common import Trained
from harness.measure import measure, worker_env
from harness.systems_fasttext import TUNED_CUTOFF, _save_pair, _train, _write

from textproj import netspec
from textproj.config import PROJECTION_DEFAULTS, TrainConfig
from textproj.corpora import load_corpus
from textproj.export import COMPILE_FLAGS, LIBRARY_C, WASM_FILE, export_c, export_wasm
from textproj.features import token_counts
from textproj.metrics import classification_scores
from textproj.model_file import encode_model
from textproj.projector import Projector
from textproj.runtime import load

ROOT = Path(__file__).resolve().parents[1]
BUNDLED = ROOT / "app" / "models" / "banking77" / "model.tpn"
RESULTS = ROOT / "docs" / "benchmarks-results"
CORPORA = ("banking77", "clinc150", "sentiment_sentences", "spamassassin", "udhr_langid")
BENCH_SOURCE = Path(__file__).with_name("device_speed.c")
C_BATCH = 1024  # texts per tp_predict_batch call (its token cache then has 4096 rows)


def default_pools(corpus: str) -> dict[str, bool]:
    """The poolings TrainConfig()'s defaults give ``corpus``'s training texts."""
    counts = token_counts(load_corpus(corpus, "train").texts)
    return TrainConfig().pooling_for(float(np.median(counts)))


def random_model(path: Path, labels: list[str], pools: dict[str, bool], seed: int = 0) -> Path:
    """A model of the default architecture (TrainConfig()) with ``pools`` (its max_pool and
    mean_pool) and random weights."""
    config = TrainConfig()
    projector = Projector(*PROJECTION_DEFAULTS[config.design], seed=seed)
    network = {
        "design": "token", "n_bits": projector.n_bits, "bottleneck": config.bottleneck,
        "filters": config.filters, "windows": list(config.windows), "n_labels": len(labels),
        **{key: True for key, on in pools.items() if on},
    }  # fmt: skip
    rng = np.random.default_rng(seed)
    params = {}
    for prefix, shape in netspec.expected_tensors(network).items():
        params[f"{prefix}.weight"] = rng.standard_normal(shape) * 0.1
        params[f"{prefix}.bias"] = rng.standard_normal(shape[0]) * 0.1
    header = {"labels": labels, "projector": projector.get_config(), "network": network}
    path.write_bytes(encode_model(header, netspec.quantize_params(params)))
    return path


def build_c(model: Path, directory: Path) -> tuple[Path, int]:
    """The benchmark program for ``model``, and the library's code bytes (``size``)."""
    export_c(model, directory)
    (directory / BENCH_SOURCE.name).write_bytes(BENCH_SOURCE.read_bytes())
    flags = COMPILE_FLAGS.split()
    subprocess.run(["cc", *flags, "-c", *LIBRARY_C], cwd=directory, check=True)
    objects = [name.replace(".c", ".o") for name in LIBRARY_C]
    program = directory / "device_speed"
    command = ["cc", *flags, "-o", str(program), BENCH_SOURCE.name, *objects, "-lm"]
    subprocess.run(command, cwd=directory, check=True)
    return program, code_bytes([directory / o for o in objects])


def code_bytes(files: list[Path]) -> int:
    """text + data bytes of compiled files, as ``size`` reports them."""
    out = subprocess.run(["size", *map(str, files)], capture_output=True, text=True, check=True)
    rows = [line.split() for line in out.stdout.splitlines()[1:]]
    return sum(int(row[0]) + int(row[1]) for row in rows)


def measure_c(program: Path, model: Path, texts: list[str], repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        data = b"".join(struct.pack("<I", len(b)) + b for b in (t.encode() for t in texts))
        (Path(tmp) / "texts.bin").write_bytes(data)
        out = Path(tmp) / "out.json"
        command = [str(program), str(model), f"{tmp}/texts.bin", str(out), str(repeats)]
        command.append(str(C_BATCH))
        subprocess.run(command, env=worker_env(), check=True)
        result = json.loads(out.read_text())
    return {
        "texts_per_second": len(texts) / statistics.median(result["cpu_seconds"]),
        "peak_rss_kib": result["peak_rss_kib"],
        "predictions": result["predictions"],
        "workspace_bytes": result["workspace_bytes"],
    }


def fasttext_models(corpus: str, workdir: Path) -> list[Trained]:
    """fastText's quantized default model and its quantized tuned one (recorded parameters)."""
    import fasttext

    train = load_corpus(corpus, "train")
    labels = sorted(set(train.labels))
    train_file = _write(train, {label: i for i, label in enumerate(labels)}, workdir / "train.txt")
    rows = json.loads((RESULTS / f"{corpus}.json").read_text())["rows"]
    tuned = next(r for r in rows if r["system"] == "fastText tuned on dev, quantized")
    recorded = ("quantize", "grid", "grid_points")  # how it was found and quantized, not params
    params = {k: v for k, v in tuned["params"].items() if k not in recorded}
    chosen = []
    for name, p, cutoff in (("defaults", {}, 0), ("tuned", params, TUNED_CUTOFF)):
        model, seconds = _train(fasttext, train_file, p)
        pair = _save_pair(model, name, p, seconds, 0.0, cutoff, train_file, workdir, labels)
        chosen.append(pair[1])  # the quantized one
    return chosen


def fasttext_code_bytes() -> int:
    spec = importlib.util.find_spec("fasttext_pybind")
    return code_bytes([Path(spec.origin)]) if spec and spec.origin else 0


def run_corpus(corpus: str, rounds: int, repeats: int, workdir: Path) -> list[dict]:
    test = load_corpus(corpus, "test")
    labels = sorted(set(load_corpus(corpus, "train").labels))
    model = BUNDLED
    if corpus != "banking77":
        model = random_model(workdir / "model.tpn", labels, default_pools(corpus))
    program, c_code = build_c(model, workdir / "c")
    peers = fasttext_models(corpus, workdir)
    python = Trained("textproj Python runtime", "textproj", "textproj", model, 0.0, {})
    systems = [("textproj C runtime", None), (python.system, python)] + [
        (t.system, t) for t in peers
    ]
    samples: dict[str, list[dict]] = {name: [] for name, _ in systems}
    for r in range(rounds):
        for name, trained in systems[r % len(systems) :] + systems[: r % len(systems)]:
            if trained is None:
                samples[name].append(measure_c(program, model, list(test.texts), repeats))
            else:
                samples[name].append(measure(trained, test, repeats))
    classifier = load(model)
    rows = []
    for name, trained in systems:
        runs = sorted(samples[name], key=lambda s: s["texts_per_second"])
        middle = runs[len(runs) // 2]
        row = {
            "corpus": corpus,
            "system": name,
            "texts_per_second": middle["texts_per_second"],
            "peak_rss_kib": middle["peak_rss_kib"],
        }
        if trained is None:
            predicted = [classifier.labels[i] for i in middle["predictions"]]
            row["accuracy"] = classification_scores(list(test.labels), predicted)["accuracy"]
            row.update(code_bytes=c_code, model_bytes=model.stat().st_size)
            row["workspace_bytes"] = middle["workspace_bytes"]
            row["same_labels_as_python"] = predicted == classifier.predict(list(test.texts))
        else:
            row["accuracy"] = middle["accuracy"]
            row["model_bytes"] = middle["model_bytes"]
            row["code_bytes"] = fasttext_code_bytes() if trained.family == "fastText" else None
        if corpus != "banking77" and (trained is None or trained is python):
            row["accuracy"] = None  # random weights: speed only
        rows.append(row)
    return rows


POOLINGS = {  # --pool-cost's models: attention pooling alone, then with each other pooling
    "attention": {},
    "max": {"max_pool": True},
    "mean": {"mean_pool": True},
}


def pool_cost(corpus: str, rounds: int, repeats: int, workdir: Path) -> str:
    """The C runtime's texts/s on ``corpus``'s test texts for random models of the default
    architecture with each of POOLINGS, in a rotated order per round: a markdown row with the
    median of each and each one's ratio to attention pooling alone."""
    test = list(load_corpus(corpus, "test").texts)
    labels = sorted(set(load_corpus(corpus, "train").labels))
    programs = {}
    for name, pools in POOLINGS.items():
        model = random_model(workdir / f"model-{name}.tpn", labels, pools)
        programs[name] = (build_c(model, workdir / f"c-{name}")[0], model)
    names = list(POOLINGS)
    speed: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            program, model = programs[name]
            speed[name].append(measure_c(program, model, test, repeats)["texts_per_second"])
    plain, *pooled = (statistics.median(speed[name]) for name in names)
    cells = " | ".join(f"{value:,.0f} ({value / plain:.2f})" for value in pooled)
    return f"| {corpus} | {plain:,.0f} | {cells} |"


def table(rows: list[dict], wasm_bytes: int | None) -> str:
    lines = [
        "| corpus | system | texts/s (1 thread) | C ÷ this | peak RSS | code bytes | model bytes "
        "| test accuracy |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        c_row = next(r for r in rows if r["corpus"] == row["corpus"] and "C runtime" in r["system"])
        code = f"{row['code_bytes']:,}" if row.get("code_bytes") else "—"
        if "C runtime" in row["system"] and wasm_bytes:
            code += f" (.wasm {wasm_bytes:,})"
        accuracy = f"{row['accuracy']:.4f}" if row.get("accuracy") is not None else "—"
        lines.append(
            f"| {row['corpus']} | {row['system']} | {row['texts_per_second']:,.0f} | "
            f"{c_row['texts_per_second'] / row['texts_per_second']:.2f} | "
            f"{row['peak_rss_kib'] / 1024:.1f} MiB | {code} | {row['model_bytes']:,} | {accuracy} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", default="banking77", help="comma-separated, or 'all'")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument(
        "--pool-cost", action="store_true", help="C runtime only: max and mean pooling's cost"
    )
    args = parser.parse_args()
    corpora = CORPORA if args.corpora == "all" else tuple(args.corpora.split(","))
    if args.pool_cost:
        print("| corpus | texts/s, attention pooling | with max pooling (ratio) ", end="")
        print("| with mean pooling (ratio) |")
        print("|---|---:|---:|---:|")
        with tempfile.TemporaryDirectory(prefix="textproj-device-") as tmp:
            for corpus in corpora:
                (Path(tmp) / corpus).mkdir()
                print(pool_cost(corpus, args.rounds, args.repeats, Path(tmp) / corpus))
        return
    print(json.dumps({**environment.machine(), **environment.versions()}))
    rows = []
    with tempfile.TemporaryDirectory(prefix="textproj-device-") as tmp:
        wasm_bytes = None
        if importlib.util.find_spec("ziglang") is not None:
            wasm_bytes = (export_wasm(BUNDLED, Path(tmp) / "web") / WASM_FILE).stat().st_size
        for corpus in corpora:
            workdir = Path(tmp) / corpus
            workdir.mkdir()
            rows += run_corpus(corpus, args.rounds, args.repeats, workdir)
            print(f"{corpus}: done", file=sys.stderr)
    print(table(rows, wasm_bytes))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
