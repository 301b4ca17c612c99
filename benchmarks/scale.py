"""Scale benchmarks of ``textproj train`` (docs/scale.md): 1 vs 2 data-parallel processes and
streaming input, with the wall time, accuracy and peak RSS of every process.

    python benchmarks/scale.py quality --seeds 0 1            # banking77, 1 vs 2 processes
    python benchmarks/scale.py allreduce                      # flat vs per-tensor all-reduce
    python benchmarks/scale.py large --texts 1000000 -- --stream   # 1 vs 2 processes
    python benchmarks/scale.py stream --texts 5000000         # streaming run, RSS over time

Every mode prints one JSON line per run and appends them to ``--log`` (a JSON-lines file).
The large corpora are ``benchmarks/train_speed.py``'s ``scaled_corpus`` (the bundled short-text
corpora's train splits, repeated with one word dropped per copy). Peak RSS is each process's
VmHWM from /proc, read every ``SAMPLE_SECONDS`` for the whole process tree (torchrun, workers).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

SAMPLE_SECONDS = 1.0
TEXTPROJ = [sys.executable, "-c", "from textproj.cli import app; app(prog_name='textproj')"]


def _status(pid: int) -> dict[str, int]:
    """VmRSS, VmHWM, RssAnon and RssFile (bytes) of a process."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            fields[key] = int(value.split()[0]) * 1024
    return fields


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


def run_measured(args: list[str], timeline: Path | None = None) -> dict:
    """Run ``args``; wall seconds, each process's peak RSS (python processes only: the
    launcher and the workers) and, with ``timeline`` (a file, appended to as the run goes), the
    largest process's RSS (all, anonymous and file-backed) every sample."""
    started = time.perf_counter()
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peaks: dict[int, int] = {}
    samples: list[tuple[float, int, int, int]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.wait(SAMPLE_SECONDS):
            largest: dict[str, int] = {}
            for pid in _tree(process.pid):
                with contextlib.suppress(OSError, ValueError):
                    status = _status(pid)
                    peaks[pid] = max(peaks.get(pid, 0), status.get("VmHWM", 0))
                    if status.get("VmRSS", 0) > largest.get("VmRSS", -1):
                        largest = status
            mb = [round(largest.get(k, 0) / 2**20) for k in ("VmRSS", "RssAnon", "RssFile")]
            samples.append((round(time.perf_counter() - started, 1), *mb))
            if timeline is not None:
                with timeline.open("a") as f:
                    f.write(json.dumps(samples[-1]) + "\n")

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:6])} failed:\n{err[-3000:]}")
    result = {
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_mb": sorted((round(v / 2**20) for v in peaks.values()), reverse=True),
    }
    if timeline is not None:
        result["rss_mb_over_time"] = samples  # (seconds, RSS, anonymous, file-backed) MB
    return result


def train(data: list[str], out: Path, processes: int, extra: list[str], **kw: Path) -> dict:
    """One ``textproj train`` run (a launcher and ``processes`` workers when > 1)."""
    args = [*TEXTPROJ, "train", *data, "--output", str(out), "--quiet", "--force", *extra]
    result = run_measured([*args, "--processes", str(processes)], **kw)
    metrics = json.loads((out / "metrics.json").read_text())
    result.update(
        processes=processes,
        dev=metrics["projection"]["dev"]["accuracy"],
        test=metrics["projection"]["test"]["accuracy"] if "test" in metrics["projection"] else None,
        trainer_test=metrics["trainer"].get("test", {}).get("accuracy"),
        epochs=len(metrics["history"]),
        phases=metrics["seconds"],
        distributed=metrics.get("distributed"),
    )
    return result


def log(row: dict, path: Path) -> None:
    print(json.dumps(row), flush=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")


def quality(args: argparse.Namespace, work: Path) -> None:
    """banking77 with 1 and 2 processes over seeds, alternating so load hits both alike."""
    for seed in args.seeds:
        for processes in (1, 2):
            extra = ["--seed", str(seed), *args.extra]
            row = train(["--corpus", "banking77"], work / "out", processes, extra)
            log({"mode": "quality", "seed": seed, **row}, args.log)


def write_scaled(n: int, path: Path) -> Path:
    from train_speed import scaled_corpus

    from textproj.data import write_dataset

    if not path.exists():
        write_dataset(scaled_corpus(n), path)
    return path


def large(args: argparse.Namespace, work: Path) -> None:
    """The scaled corpus with 1 and 2 processes."""
    data = write_scaled(args.texts, work / f"scaled-{args.texts}.tsv.gz")
    for processes in args.processes:
        extra = ["--epochs", str(args.epochs), *args.extra]
        row = train(["--train", str(data)], work / "out", processes, extra)
        row["texts_per_second"] = round(args.texts * 0.9 * row["epochs"] / row["phases"]["fit"])
        log({"mode": "large", "texts": args.texts, **row}, args.log)


def stream(args: argparse.Namespace, work: Path) -> None:
    """A streaming run (--stream) on the scaled corpus, with the RSS timeline."""
    data = write_scaled(args.texts, work / f"scaled-{args.texts}.tsv.gz")
    cache = ["--stream", "--cache-dir", str(work / "cache")]
    extra = ["--epochs", str(args.epochs), *cache, *args.extra]
    timeline = args.log.with_suffix(".rss-timeline.jsonl")
    row = train(["--train", str(data)], work / "out", 1, extra, timeline=timeline)
    row["texts_per_second"] = round(args.texts * 0.9 * row["epochs"] / row["phases"]["fit"])
    log({"mode": "stream", "texts": args.texts, **row}, args.log)


ALLREDUCE_WORKER = """
import json, statistics, sys, time
import numpy as np, torch, torch.distributed as dist
from textproj import distributed
from textproj.config import FeatureConfig, TrainConfig
from textproj.corpora import load_corpus
from textproj.inputs import encode_targets, prepare_inputs
from textproj.projector import Projector
from textproj.training import JointStep
dist.init_process_group("gloo")
config, reps = TrainConfig(max_pool=True), int(sys.argv[1])  # train() resolves it so here
data = load_corpus("banking77", "train")
labels = {label: i for i, label in enumerate(sorted(set(data.labels)))}
n = reps * config.batch_size
projector = Projector(*config.projection_shape, features=FeatureConfig(), seed=0)
batch = prepare_inputs(data.texts[:n], encode_targets(data.labels[:n], labels, False),
                       projector, config)
step = JointStep(config, projector.n_bits, len(labels))
params = [p for g in step.optimiser.param_groups for p in g["params"]]
times = {mode: [] for mode in (*distributed.ALLREDUCE_MODES, "step", "optimiser")}
for rep in range(reps):
    index = np.arange(rep * config.batch_size, (rep + 1) * config.batch_size)
    for mode in distributed.ALLREDUCE_MODES:
        step.parallel = distributed.DataParallel(dist.get_rank(), dist.get_world_size(), mode)
        started = time.perf_counter()
        step(batch, index, apply=False)
        times["step"].append(time.perf_counter() - started)
        dist.barrier()
        started = time.perf_counter()
        step.parallel.reduce_gradients(params, step.trainer.embedding.weight)
        times[mode].append(time.perf_counter() - started)
        started = time.perf_counter()
        step.optimiser.step()
        times["optimiser"].append(time.perf_counter() - started)
        step.optimiser.zero_grad(set_to_none=True)
table = step.trainer.embedding.weight
if dist.get_rank() == 0:
    print(json.dumps({
        "tensors": len(params), "floats": sum(p.numel() for p in params),
        "table_floats": table.numel(), "batch": config.batch_size,
        **{f"{mode}_ms": round(1000 * statistics.median(t), 2) for mode, t in times.items()},
    }))
dist.destroy_process_group()
"""


def allreduce(args: argparse.Namespace, work: Path) -> None:
    """Median time of one gradient all-reduce of the default networks, flat vs per tensor."""
    script = work / "allreduce_worker.py"
    script.write_text(ALLREDUCE_WORKER)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", str(script), str(args.reps)]  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    log({"mode": "allreduce", "processes": 2, **json.loads(out.strip().splitlines()[-1])}, args.log)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["quality", "allreduce", "large", "stream"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--texts", type=int, default=1_000_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--work", type=Path, default=None, help="Keep data here (default: temp).")
    parser.add_argument("--log", type=Path, default=Path("scale-runs.jsonl"))
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.extra = argv[cut + 1 :]  # more textproj train options, after --
    modes = {"quality": quality, "allreduce": allreduce, "large": large, "stream": stream}
    with tempfile.TemporaryDirectory() as folder:
        work = args.work or Path(folder)
        work.mkdir(parents=True, exist_ok=True)
        modes[args.mode](args, work)


if __name__ == "__main__":
    main()
