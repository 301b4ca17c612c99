"""Turn saved results into ``benchmarks.md`` (a table per corpus) and two PNG plots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

REPORT_NAME = "benchmarks.md"
ACCURACY_PLOT = "benchmarks-accuracy-vs-bytes.png"
SPEED_PLOT = "benchmarks-throughput.png"
SMALL_PEER_BYTES = 1_000_000  # the goal compares with the best peer of at most 1 MB
ON_DEVICE = "textproj on-device"  # the default int4 model.tpn
FASTTEXT_QUANTIZED = ("fastText defaults, quantized", "fastText tuned on dev, quantized")


def _bytes(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _load(results_dir: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    run = json.loads((results_dir / "run.json").read_text("utf-8"))
    corpora = []
    for path in sorted(results_dir.glob("*.json")):
        if path.name != "run.json":
            corpora.append(json.loads(path.read_text("utf-8")))
    return run, corpora


def _caveat_lines(run: dict[str, Any], corpora: list[dict[str, Any]]) -> list[str]:
    """Lines naming what this run left out or capped: peers, corpora, textproj's training."""
    from textproj.config import TrainConfig
    from textproj.corpora import CORPORA

    lines = []
    skipped = [
        family + ("" if installed else " (not installed)")
        for family, installed in run["peers_installed"].items()
        if not installed or family not in run["systems"]
    ]
    if skipped:
        lines.append(f"Skipped systems: {', '.join(skipped)}.")
    missing = sorted(set(CORPORA) - {result["corpus"] for result in corpora})
    if missing:
        lines.append(f"Corpora not in this run: {', '.join(missing)}.")
    default = TrainConfig()
    if run.get("textproj_epochs") is not None:
        lines.append(
            f"textproj was trained for at most {run['textproj_epochs']} epochs (TrainConfig "
            f"default: {default.schedule(10**6)[1]}), so its accuracy here is below what its "
            "defaults give."
        )
    if run.get("textproj_threads") is not None:
        lines.append(
            f"textproj trained with {run['textproj_threads']} torch thread(s) "
            f"(default {default.threads})."
        )
    for rerun in run.get("reruns", []):
        lines.append(
            f"Rows of {', '.join(rerun['systems'])} were re-run later by `{rerun['command']}` "
            f"({rerun['started']}, {rerun['jobs']} corpus at a time) and replace that run's; "
            "their texts/s were measured in that later run, so a speed ratio between them and "
            "another system's row compares two sittings of the machine."
        )
    if run.get("jobs", 1) > 1:
        lines.append(
            f"{run['jobs']} corpora were trained at once, in separate processes: training "
            "seconds (wall clock) are inflated by that; texts/s (CPU time) much less so."
        )
    return lines


def goal_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's three goals checked on one corpus's rows, as Markdown bullets."""
    ours = next((r for r in rows if r["system"] == ON_DEVICE), None)
    peers = [r for r in rows if r["family"] != "textproj"]
    if ours is None or not peers:
        return ["- goals: not checked (no peers measured)"]
    smallest_peer = min(peers, key=lambda r: r["model_bytes"])
    factor = smallest_peer["model_bytes"] / ours["model_bytes"]
    lines = [
        f"- size: textproj is {_bytes(ours['model_bytes'])}; the smallest peer "
        f"({smallest_peer['system']}) is {factor:.1f}× larger "
        f"({'met' if factor >= 5 else 'NOT met'}: goal ≥ 5×)"
    ]
    small = [r for r in peers if r["model_bytes"] <= SMALL_PEER_BYTES]
    if small:
        best = max(small, key=lambda r: r["accuracy"])
        gap = 100 * (best["accuracy"] - ours["accuracy"])
        verdict = "met" if gap <= 1 else "NOT met"
        where = f"{gap:.1f} points behind" if gap > 0 else f"{-gap:.1f} points ahead"
        lines.append(
            f"- accuracy: best peer ≤ 1 MB is {best['system']} at {best['accuracy']:.3f}; "
            f"textproj {ours['accuracy']:.3f} ({where}; {verdict}: goal ≤ 1 point behind)"
        )
    else:
        lines.append("- accuracy: no peer model is ≤ 1 MB")
    for name in FASTTEXT_QUANTIZED:
        peer = next((r for r in rows if r["system"] == name), None)
        if peer is not None:
            ratio = ours["texts_per_second"] / peer["texts_per_second"]
            lines.append(
                f"- speed: textproj / {name} = {ratio:.2f}× "
                f"({'met' if ratio >= 1 else 'NOT met'}: goal ≥ 1)"
            )
    return lines


def corpus_table(result: dict[str, Any]) -> list[str]:
    """One corpus's Markdown table, textproj first."""
    sizes = result["sizes"]
    lines = [
        f"## {result['corpus']}",
        "",
        f"train {sizes['train']:,} / dev {sizes['dev']:,} / test {sizes['test']:,} texts; "
        f"all systems trained and measured in {result['seconds']:,.0f} s.",
        "",
        "| system | test acc | macro-F1 | model bytes | train s | tuning s | texts/s (1 thread) "
        "| predict peak Δ MiB | process peak MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        lines.append(
            f"| {row['system']} | {row['accuracy']:.3f} | {row['macro_f1']:.3f} "
            f"| {_bytes(row['model_bytes'])} | {row['train_seconds']:,.1f} "
            f"| {row['tune_seconds']:,.1f} | {row['texts_per_second']:,.0f} "
            f"| {row['predict_peak_delta_kib'] / 1024:,.1f} | {row['peak_rss_kib'] / 1024:,.0f} |"
        )
    return [*lines, "", *goal_lines(result["rows"]), ""]


def stage_table(stage_rows: list[dict[str, Any]]) -> list[str]:
    """The per-stage breakdown of textproj's predict."""
    total = sum(r["us_per_text"] for r in stage_rows if r.get("part_of_total", True))
    lines = ["| stage | µs per text | share |", "|---|---:|---:|"]
    for row in stage_rows:
        share = row["us_per_text"] / total if row.get("part_of_total", True) else None
        lines.append(
            f"| {row['stage']} | {row['us_per_text']:.2f} | "
            f"{'' if share is None else f'{100 * share:.0f} %'} |"
        )
    return lines


def params_lines(corpora: list[dict[str, Any]]) -> list[str]:
    """Hyper-parameters of every system on every corpus, compact JSON."""
    lines = ["## Hyper-parameters", ""]
    for result in corpora:
        lines += [f"### {result['corpus']}", ""]
        for row in result["rows"]:
            params = json.dumps(row["params"], ensure_ascii=False, sort_keys=True)
            notes = "; ".join(row["notes"])
            lines.append(f"- **{row['system']}**{f' ({notes})' if notes else ''}: `{params}`")
        lines.append("")
    return lines


def plot(corpora: list[dict[str, Any]], out: Path) -> list[str]:
    """Accuracy against bytes (log x) and throughput per corpus; names of the written files."""
    try:
        import matplotlib
    except ImportError:
        return []
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    systems = sorted({row["system"] for result in corpora for row in result["rows"]})
    markers = dict(zip(systems, "o^svDP*Xhd<>p", strict=False))
    colours = {name: plt.get_cmap("tab20")(i % 20) for i, name in enumerate(systems)}
    n = len(corpora)
    figure, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.2), squeeze=False)
    for ax, result in zip(axes[0], corpora, strict=True):
        for row in result["rows"]:
            ax.scatter(
                row["model_bytes"],
                row["accuracy"],
                marker=markers[row["system"]],
                color=colours[row["system"]],
                s=60,
                label=row["system"],
            )
        ax.set_xscale("log")
        ax.set_xlabel("model bytes on disk (log)")
        ax.set_ylabel("test accuracy")
        ax.set_title(result["corpus"])
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    figure.tight_layout(rect=(0, 0.14, 1, 1))
    figure.savefig(out / ACCURACY_PLOT, dpi=90)
    plt.close(figure)

    figure, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.8), squeeze=False)
    for ax, result in zip(axes[0], corpora, strict=True):
        rows = result["rows"]
        ax.barh(
            [r["system"] for r in rows],
            [r["texts_per_second"] for r in rows],
            color=[colours[r["system"]] for r in rows],
        )
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("texts/s, one thread (log)")
        ax.set_title(result["corpus"])
        ax.invert_yaxis()
        if ax is not axes[0][0]:
            ax.set_yticklabels([])
    figure.tight_layout()
    figure.savefig(out / SPEED_PLOT, dpi=90)
    plt.close(figure)
    return [ACCURACY_PLOT, SPEED_PLOT]


def write(results_dir: Path, out: Path) -> Path:
    """Write ``out/benchmarks.md`` and the plots from the JSON files in ``results_dir``."""
    run, corpora = _load(results_dir)
    order = {name: i for i, name in enumerate(("banking77", "clinc150", "sentiment_sentences"))}
    corpora.sort(key=lambda r: (order.get(r["corpus"], 99), r["corpus"]))
    machine, versions = run["machine"], run["versions"]
    lines = [
        "# Benchmarks: textproj against fastText, scikit-learn and spaCy",
        "",
        "Generated by `benchmarks/compare.py` (do not edit by hand; see benchmarks/README.md).",
        "",
        f"Run: `{run['command']}`, started {run['started']}"
        + (" — **quick mode: tiny slices, not meaningful figures**" if run["quick"] else "")
        + ".",
        f"Machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, {machine['os']}, "
        f"Python {machine['python']}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()) + ".",
        *_caveat_lines(run, corpora),
        "",
        "How it is measured: every system is trained on the train split (the tuned peers pick "
        "their hyper-parameters on dev), then, in a fresh process with every thread pool pinned "
        "to one thread, loads its model, warms up on 32 texts, predicts all test texts once "
        "(those predictions are scored; how far that pass raised the resident set above its "
        "level just before is *predict peak Δ*: on Linux the kernel's peak mark is reset first "
        "through `/proc/self/clear_refs` and VmHWM after minus VmRSS before is taken; *process "
        "peak* is the whole process's peak RSS, model and libraries included), then predicts "
        f"them {run['repeats']} more times; texts/s is the test size over the median CPU time "
        "of a pass (`time.process_time`, so time the shared machine gave to other processes is "
        "not charged; wall-clock figures are in the JSON results). Model bytes are the files a "
        "deployment loads (textproj: `model.tpn`; its trainer: `trainer.npz` + "
        "`trainer.json`; their ensemble: all three; fastText `.bin`/`.ftz`; scikit-learn: the "
        "pickled pipeline; spaCy: the `model-best` folder). Train seconds "
        "time the final model only (fastText with 2 threads, textproj with TrainConfig.threads "
        "unless said above); "
        "tuning seconds the whole search on dev (both wall clock). The CPU was shared with other "
        "work during the run, so training times carry noise of tens of percent and even CPU "
        "times some (shared caches); compare ratios within one table.",
        "",
    ]
    plots = plot(corpora, out)
    lines += [f"![{name}]({name})" for name in plots] + ([""] if plots else [])
    for result in corpora:
        lines += corpus_table(result)
    profiled = [r for r in corpora if "stages" in r]
    if profiled:
        lines += [
            f"## Where textproj's predict time goes ({profiled[0]['corpus']} test)",
            "",
            *profiled[0]["stages"]["notes"],
            "",
            *stage_table(profiled[0]["stages"]["rows"]),
            "",
        ]
    lines += params_lines(corpora)
    path = out / REPORT_NAME
    path.write_text("\n".join(lines).rstrip() + "\n", "utf-8")
    return path
