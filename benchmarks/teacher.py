"""Which trainer (teacher) network to distil from: dev accuracy, train seconds and bytes of
candidate hashed-feature-bag trainers beside TF-IDF (word 1-2 + char 2-5) + LinearSVC, on the
dev split of every bundled corpus and on few-shot subsets of banking77.

    python benchmarks/teacher.py                       # every candidate, every corpus
    python benchmarks/teacher.py --quick               # the chosen design and its runners-up
    python benchmarks/teacher.py --corpora banking77 banking77@10 --candidates chosen svm

Every candidate trains on one thread (``torch.set_num_threads(1)``) for a fixed number of epochs
with the learning rate decaying linearly to 0, is scored on dev after its last epoch (no early
stopping, so no choice is made on dev per corpus), and is also scored with its tables rounded
to float16 (the storage the byte column assumes). ``corpus@k`` is the train split cut to the
first k texts of each label in a seeded shuffle (dev is the full dev split). The SVM picks its
C on dev from SVC_CS, which favours it. Train seconds are the epochs' wall time on a machine
shared with other work (compare within one run); featurisation, shared with the projection
network's inputs in the joint loop, is timed apart. Writes docs/teacher.md and docs/teacher.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import teacher_nets as tn

from textproj.corpora import load_corpus

ROOT = Path(__file__).resolve().parent.parent
CORPORA = [
    "banking77", "clinc150", "sentiment_sentences", "spamassassin", "udhr_langid",
    "banking77@10", "banking77@25",
]  # fmt: skip
QUICK = ["chosen", "batch 256", "epochs 5", "today"]
SVC_CS = [0.1, 0.3, 1.0, 3.0]
EVAL_BATCH = 1024


@dataclass(frozen=True)
class Spec:
    """One trainer design and its training recipe."""

    views: tuple[str, ...] = ("w", "c")
    shared_table: bool = False  # one table for all views (bags merged, each view normalised)
    buckets: int = 2**15  # rows per table
    dim: int = 64
    tf: str = "log"  # count | log | sqrt | bin
    idf: bool = True
    norm: bool = True  # L2 per text and view
    view_scale: tuple[float, ...] | None = None  # weight of each view's normalised bag
    combine: str = "concat"  # concat | sum (separate tables)
    ensemble: bool = True  # a head and a loss per view; predict the mean log-probability
    joint_head: bool = False  # with ensemble: one more head on the concatenated bags
    hidden: int = 0
    direct: bool = False  # the table's rows are the logits (dim = labels, a bias, no head)
    layer_norm: bool = False
    dropout: float = 0.3  # on each bag (and after the hidden layer)
    feature_drop: float = 0.0  # drop each (bucket, weight) pair of a training batch
    init: str = "normal"  # normal (torch's N(0, 1)) | scaled N(0, 1/dim) | small U(±1/dim)
    table_opt: str = "sparseadam"  # sparseadam | adam (dense) | sgd | adagrad
    table_lr: float = 1e-1
    dense_lr: float = 5e-3
    weight_decay: float = 0.0  # AdamW on the head
    batch: int = 0  # 0: adaptive, n_train / 64 rounded to a power of two in [32, 256]
    epochs: int = 10
    min_steps: int = 0  # more epochs on small corpora: at least this many steps in all
    smoothing: float = 0.0
    loss: str = "ce"  # ce (softmax) | ovr (one sigmoid per label) | sqhinge (one-vs-rest, as SVC)
    schedule: str = "linear"  # linear decay to 0 | const
    word_weight: float = 1.0  # count multiplier of word-view features ("all" view only)


CHOSEN = Spec()
CANDIDATES: dict[str, Spec] = {"chosen": CHOSEN}


def add(name: str, **changes: object) -> None:
    CANDIDATES[name] = dataclasses.replace(CHOSEN, **changes)


# one change at a time from the chosen design
add("batch 256", batch=256)
add("batch 64", batch=64)
add("epochs 5", epochs=5)
add("no ensemble (concat, one head)", ensemble=False)
add("hidden 256", hidden=256)
add("hidden 256, epochs 5", hidden=256, epochs=5)
add("dim 48, 2^16", dim=48, buckets=2**16)
add("buckets 2^14", buckets=2**14)
add("no idf, no norm, layer norm", idf=False, norm=False, layer_norm=True)
add("one bag of all features", ensemble=False, views=("all",), buckets=2**16)
add("today", **dataclasses.asdict(Spec(
    views=("all",), buckets=2**18, dim=128, tf="count", idf=False, norm=False, ensemble=False,
    word_weight=2.0, hidden=256, layer_norm=True, dropout=0.4, table_lr=5e-3, dense_lr=5e-3,
    weight_decay=0.05, batch=64, epochs=10,
)))  # fmt: skip
# measured on three corpora while choosing (benchmarks/teacher.py --candidates NAME ...)
for tf in ("count", "sqrt", "bin"):
    add(f"tf {tf}", tf=tf)
add("no idf", idf=False)
add("views ws+c (skip-grams)", views=("ws", "c"))
add("views w+c 2-6", views=("w", "c6"))
add("views with punctuation tokens", views=("wp", "cp"))
add("joint head", joint_head=True)
add("layer norm", layer_norm=True)
for p in (0.0, 0.5):
    add(f"dropout {p}", dropout=p)
add("feature drop 0.2", feature_drop=0.2)
add("smoothing 0.1", smoothing=0.1)
add("loss sqhinge", loss="sqhinge")
add("direct (dim = labels, no head)", direct=True)
for lr in (3e-2, 3e-1):
    add(f"table lr {lr:g}", table_lr=lr)
add("RowAdam (same as SparseAdam)", table_opt="rowadam")
add("dense Adam table, lr 1e-2", table_opt="adam", table_lr=1e-2)
add("SGD table, lr 100", table_opt="sgd", table_lr=100.0)
add("Adagrad table, lr 0.3", table_opt="adagrad", table_lr=0.3)
add("epochs 20", epochs=20)
add("min steps 1000", min_steps=1000)
add("const lr", schedule="const")
MAIN = ["chosen", "batch 256", "epochs 5", "no ensemble (concat, one head)", "hidden 256", "today"]


def subset(data, per_label: int, seed: int = 0):
    """The first ``per_label`` texts of each label in a seeded shuffle of ``data``."""
    order = np.random.default_rng(seed).permutation(len(data))
    taken: dict[str, int] = {}
    keep = []
    for i in order:
        label = data.labels[i]
        if taken.get(label, 0) < per_label:
            taken[label] = taken.get(label, 0) + 1
            keep.append(i)
    keep.sort()
    return type(data)([data.texts[i] for i in keep], [data.labels[i] for i in keep], data.source)


class Corpus:
    """Train and dev texts of one corpus (or subset), and their bags per view, made once."""

    def __init__(self, name: str) -> None:
        base, _, k = name.partition("@")
        self.name = name
        self.train = load_corpus(base, "train")
        if k:
            self.train = subset(self.train, int(k))
        self.dev = load_corpus(base, "dev")
        self.labels = sorted(set(self.train.labels))
        index = {label: i for i, label in enumerate(self.labels)}
        self.y_train = np.array([index[y] for y in self.train.labels], dtype=np.int64)
        self.y_dev = np.array([index.get(y, -1) for y in self.dev.labels], dtype=np.int64)
        self._bags: dict[tuple[str, str], tn.Bags] = {}
        self.featurise_seconds: dict[str, float] = {}

    def bags(self, split: str, view: str) -> tn.Bags:
        key = (split, view)
        if key not in self._bags:
            started = time.perf_counter()
            texts = self.train.texts if split == "train" else self.dev.texts
            self._bags[key] = tn.view_bags(texts, view)
            self.featurise_seconds[view] = self.featurise_seconds.get(view, 0.0) + (
                time.perf_counter() - started
            )
        return self._bags[key]


def view_inputs(corpus: Corpus, spec: Spec) -> dict[str, list[tn.ViewInputs]]:
    """Weighted inputs per split: one ViewInputs per table."""
    out: dict[str, list[tn.ViewInputs]] = {}
    scales = spec.view_scale or (1.0,) * len(spec.views)
    idfs = {
        v: tn.idf_vector(corpus.bags("train", v), spec.buckets) if spec.idf else None
        for v in spec.views
    }
    for split in ("train", "dev"):
        per_view = []
        for v, scale in zip(spec.views, scales, strict=True):
            bags = tn.fold(corpus.bags(split, v), spec.buckets)
            base = spec.word_weight if v == "all" else 1.0
            if v == "all" and spec.word_weight != 1.0:
                bags = _word_weighted(corpus, split, spec.buckets, spec.word_weight)
                base = 1.0
            w = tn.bag_weights(bags, spec.tf, idfs[v], spec.norm, base) * scale
            per_view.append(tn.ViewInputs(bags.buckets, w, bags.offsets))
        if spec.shared_table and len(per_view) > 1:
            per_view = [_merge(per_view)]
        out[split] = per_view
    return out


def _word_weighted(corpus: Corpus, split: str, n_buckets: int, word_weight: float) -> tn.Bags:
    """The "all" view with word features counted ``word_weight`` times (today's weights 2, 1)."""
    words = tn.fold(corpus.bags(split, "ws"), n_buckets)
    chars = tn.fold(corpus.bags(split, "c"), n_buckets)
    merged = _merge(
        [
            tn.ViewInputs(words.buckets, words.counts * word_weight, words.offsets),
            tn.ViewInputs(chars.buckets, chars.counts, chars.offsets),
        ]
    )
    return tn.Bags(merged.buckets, merged.weights, merged.offsets)


def _merge(views: list[tn.ViewInputs]) -> tn.ViewInputs:
    """Per text, the pairs of every view one after another (for one shared table)."""
    n = len(views[0].offsets) - 1
    ids = np.concatenate([np.repeat(np.arange(n), np.diff(v.offsets)) for v in views])
    order = np.argsort(ids, kind="stable")
    buckets = np.concatenate([v.buckets for v in views])[order]
    weights = np.concatenate([v.weights for v in views])[order]
    offsets = np.searchsorted(ids[order], np.arange(n + 1)).astype(np.int64)
    return tn.ViewInputs(buckets, weights, offsets)


def build(spec: Spec, n_tables: int, n_labels: int) -> tn.BagNet:
    """The network of ``spec`` with ``n_tables`` embedding tables."""
    return tn.BagNet(
        n_tables, spec.buckets, n_labels if spec.direct else spec.dim, n_labels,
        hidden=spec.hidden, combine=spec.combine, layer_norm=spec.layer_norm,
        dropout=spec.dropout, sparse=spec.table_opt != "adam", init=spec.init,
        ensemble=spec.ensemble, direct=spec.direct, joint_head=spec.joint_head,
    )  # fmt: skip


def optimisers(net: tn.BagNet, spec: Spec) -> list[torch.optim.Optimizer]:
    tables = net.table_params()
    table_opt = {
        "sparseadam": lambda: torch.optim.SparseAdam(tables, lr=spec.table_lr),
        "rowadam": lambda: tn.RowAdam(tables, lr=spec.table_lr),
        "adam": lambda: torch.optim.Adam(tables, lr=spec.table_lr),
        "sgd": lambda: torch.optim.SGD(tables, lr=spec.table_lr),
        "adagrad": lambda: torch.optim.Adagrad(tables, lr=spec.table_lr),
    }[spec.table_opt]()
    dense = torch.optim.AdamW(net.dense_params(), lr=spec.dense_lr, weight_decay=spec.weight_decay)
    return [table_opt, dense]


@torch.no_grad()
def predict(net: tn.BagNet, views: list[tn.ViewInputs]) -> np.ndarray:
    net.eval()
    n = len(views[0].offsets) - 1
    out = []
    for lo in range(0, n, EVAL_BATCH):
        index = np.arange(lo, min(lo + EVAL_BATCH, n))
        logits = net([v.batch(index) for v in views])
        out.append(torch.log_softmax(logits, -1).mean(0).argmax(1).numpy())
    net.train()
    return np.concatenate(out)


def fp16_accuracy(net: tn.BagNet, views: list[tn.ViewInputs], y: np.ndarray) -> float:
    """Dev accuracy with every table rounded to float16 (restored afterwards)."""
    saved = [t.detach().clone() for t in net.table_params()]
    with torch.no_grad():
        for t in net.table_params():
            t.copy_(t.half().float())
    acc = float((predict(net, views) == y).mean())
    with torch.no_grad():
        for t, s in zip(net.table_params(), saved, strict=True):
            t.copy_(s)
    return acc


def trainer_bytes(spec: Spec, net: tn.BagNet, n_views: int, table_bytes: int) -> int:
    tables = sum(t.numel() for t in net.table_params()) * table_bytes
    heads = sum(p.numel() for p in net.dense_params()) * 4
    idf = spec.buckets * n_views * 2 if spec.idf else 0  # float16 idf per bucket and view
    return tables + heads + idf


def adaptive_batch(n_train: int) -> int:
    """Smaller batches for small corpora (more, noisier steps; measured better few-shot)."""
    return int(np.clip(2 ** round(np.log2(max(n_train, 1) / 64)), 32, 256))


def label_loss(logits: torch.Tensor, target: torch.Tensor, spec: Spec) -> torch.Tensor:
    if spec.loss == "ce":
        return F.cross_entropy(logits, target, label_smoothing=spec.smoothing)
    sign = 2 * F.one_hot(target, logits.shape[1]).float() - 1
    if spec.loss == "ovr":
        return F.softplus(-sign * logits).sum(1).mean()
    return F.relu(1 - sign * logits).pow(2).sum(1).mean()


def fit(corpus: Corpus, spec: Spec, seed: int) -> dict[str, object]:
    """Train ``spec`` on ``corpus``'s train split; dev scores, seconds and bytes."""
    started = time.perf_counter()
    inputs = view_inputs(corpus, spec)
    prep_seconds = time.perf_counter() - started
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = build(spec, len(inputs["train"]), len(corpus.labels))
    opts = optimisers(net, spec)
    n = len(corpus.y_train)
    batch = spec.batch or adaptive_batch(n)
    per_epoch = (n + batch - 1) // batch
    epochs = max(spec.epochs, -(-spec.min_steps // per_epoch))
    steps = epochs * per_epoch
    rule = (lambda s: 1.0 - s / steps) if spec.schedule == "linear" else (lambda s: 1.0)
    scheds = [torch.optim.lr_scheduler.LambdaLR(o, rule) for o in opts]
    y = torch.from_numpy(corpus.y_train)
    curve = []
    train_seconds = 0.0
    for _ in range(epochs):
        epoch_started = time.perf_counter()
        order = rng.permutation(n)
        for lo in range(0, n, batch):
            index = order[lo : lo + batch]
            logits = net([v.batch(index, spec.feature_drop, rng) for v in inputs["train"]])
            target = y[index]
            loss = sum(label_loss(head, target, spec) for head in logits) / len(logits)
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            for s in scheds:
                s.step()
        train_seconds += time.perf_counter() - epoch_started
        curve.append(round(float((predict(net, inputs["dev"]) == corpus.y_dev).mean()), 4))
    views_n = len(spec.views)
    return {
        "dev": curve[-1],
        "dev_fp16": round(fp16_accuracy(net, inputs["dev"], corpus.y_dev), 4),
        "curve": curve,
        "batch": batch,
        "epochs": epochs,
        "train_s": round(train_seconds, 2),
        "prep_s": round(prep_seconds, 2),
        "bytes_fp32": trainer_bytes(spec, net, views_n, 4),
        "bytes_fp16": trainer_bytes(spec, net, views_n, 2),
    }


def svm(corpus: Corpus) -> dict[str, object]:
    """TF-IDF word 1-2 + char_wb 2-5 (sublinear tf) + LinearSVC, C chosen on dev."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion
    from sklearn.svm import LinearSVC

    started = time.perf_counter()
    features = FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )
    x_train = features.fit_transform(corpus.train.texts)
    feature_seconds = time.perf_counter() - started
    x_dev = features.transform(corpus.dev.texts)
    tried = {}
    best = (-1.0, 0.0, 0.0)
    for c in SVC_CS:
        fit_started = time.perf_counter()
        classifier = LinearSVC(C=c).fit(x_train, corpus.train.labels)
        seconds = time.perf_counter() - fit_started
        acc = float((classifier.predict(x_dev) == np.asarray(corpus.dev.labels)).mean())
        tried[str(c)] = round(acc, 4)
        if acc > best[0]:
            best = (acc, c, seconds)
    return {
        "dev": round(best[0], 4),
        "C": best[1],
        "tried": tried,
        "train_s": round(feature_seconds + best[2], 2),
        "n_features": x_train.shape[1],
    }


def mib(n: int) -> str:
    return f"{n / 2**20:.1f}"


def write_report(results: dict, corpora: list[str], names: list[str], args, out: Path) -> str:
    svm_row = results["svm"]
    lines = [
        "# Trainer (teacher) candidates against TF-IDF + LinearSVC",
        "",
        "Generated by `benchmarks/teacher.py` (do not edit by hand).",
        "",
        f"Run: `{args.command}`, started {results['started']}.",
        f"Machine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, torch {torch.__version__}; one torch thread; shared with "
        "other work, so compare seconds within this table only.",
        "",
        (sys.modules[__name__].__doc__ or "").split("\n\n")[2].replace("\n", " "),
        "",
        "Dev accuracy after the last epoch (mean over seeds "
        f"{', '.join(map(str, args.seeds))}); Δ = candidate − SVM in points; *fp16* = the same "
        "network with its tables rounded to float16; MiB = tables in float16 + heads in float32 "
        "+ float16 idf; seconds = training epochs on banking77 (9,003 texts) and on all corpora.",
        "",
        "| candidate | " + " | ".join(corpora) + " | mean Δ | min Δ | min Δ fp16 | MiB | "
        "banking77 s | all s |",
        "|---" + "|---:" * (len(corpora) + 6) + "|",
        "| TF-IDF + LinearSVC (C on dev) | "
        + " | ".join(f"{svm_row[c]['dev']:.3f}" for c in corpora)
        + " | 0 | 0 | 0 | | "
        + (f"{svm_row['banking77']['train_s']:.1f}" if "banking77" in svm_row else "")
        + f" | {sum(svm_row[c]['train_s'] for c in corpora):.1f} |",
    ]
    for name in names:
        rows = results["candidates"][name]
        mean = {c: float(np.mean([r["dev"] for r in rows[c]])) for c in corpora}
        mean16 = {c: float(np.mean([r["dev_fp16"] for r in rows[c]])) for c in corpora}
        delta = [100 * (mean[c] - svm_row[c]["dev"]) for c in corpora]
        delta16 = [100 * (mean16[c] - svm_row[c]["dev"]) for c in corpora]
        seconds = {c: float(np.mean([r["train_s"] for r in rows[c]])) for c in corpora}
        size = rows[corpora[0]][0]["bytes_fp16"]
        cells = " | ".join(
            f"{mean[c]:.3f}" + (" **" if mean[c] >= svm_row[c]["dev"] else "") for c in corpora
        )
        cells = cells.replace(" **", "*")
        lines.append(
            f"| {name} | {cells} | {np.mean(delta):+.1f} | {min(delta):+.1f} | "
            f"{min(delta16):+.1f} | {mib(size)} | "
            + (f"{seconds['banking77']:.1f}" if "banking77" in seconds else "")
            + f" | {sum(seconds.values()):.1f} |"
        )
    lines += [
        "",
        "\\* at or above the SVM on that corpus. MiB is for the first corpus's label count "
        "(the head grows with labels; the tables do not).",
        "",
        "Candidates (changes from `chosen`):",
        "",
    ]
    for name in names:
        spec = CANDIDATES[name]
        if name == "chosen":
            text = ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(spec).items())
        else:
            text = ", ".join(
                f"{k}={v}" for k, v in dataclasses.asdict(spec).items() if v != getattr(CHOSEN, k)
            )
        lines.append(f"- `{name}`: {text}")
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpora", nargs="+", default=CORPORA)
    parser.add_argument(
        "--candidates", nargs="+", default=None, help="names (default: MAIN); svm always runs"
    )
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "teacher.md")
    parser.add_argument("--json", type=Path, default=None, help="default: --out with .json")
    args = parser.parse_args()
    args.command = "python benchmarks/teacher.py " + " ".join(sys.argv[1:])
    names = args.candidates or (QUICK if args.quick else MAIN)
    unknown = [n for n in names if n not in CANDIDATES]
    if unknown:
        parser.error(f"unknown candidates {unknown}; known: {list(CANDIDATES)}")
    torch.set_num_threads(1)
    results: dict = {
        "started": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "svm": {},
        "candidates": {n: {} for n in names},
        "featurise_s": {},
    }
    for cname in args.corpora:
        corpus = Corpus(cname)
        results["svm"][cname] = svm(corpus)
        print(f"{cname}: SVM dev {results['svm'][cname]['dev']:.3f}", flush=True)
        for name in names:
            rows = [fit(corpus, CANDIDATES[name], seed) for seed in args.seeds]
            results["candidates"][name][cname] = rows
            print(
                f"  {name:32s} dev {np.mean([r['dev'] for r in rows]):.3f} "
                f"fp16 {np.mean([r['dev_fp16'] for r in rows]):.3f} "
                f"train {np.mean([r['train_s'] for r in rows]):6.2f}s "
                f"{mib(rows[0]['bytes_fp16'])} MiB curve {rows[0]['curve']}",
                flush=True,
            )
        results["featurise_s"][cname] = {
            k: round(v, 2) for k, v in corpus.featurise_seconds.items()
        }
    report = write_report(results, args.corpora, names, args, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report)
    json_path = args.json or args.out.with_suffix(".json")
    json_path.write_text(json.dumps(results, indent=1))
    print(report)


if __name__ == "__main__":
    main()
