"""Streaming input: training files of any size, read and featurised a chunk at a time into an
on-disk cache of the networks' inputs that every epoch (and a ``--resume``) memory-maps.

Two passes over the files, each holding one block of text at a time:

1. *scan*: each row's label (as a small integer) and the SHA-256 of each file's decompressed
   bytes: the label set, the stratified dev split (``training.dev_positions``, the in-memory
   run's split) and the cache key (an unlabelled file, the ``transfer`` split: its SHA-256 and
   its count of non-blank texts);
2. *featurise* (skipped when the cache is valid): ``PREPARE_CHUNK`` texts at a time through
   ``inputs.prepare_inputs``, appended to one raw array file per input array and split. It
   takes each file's SHA-256 and row count again as it reads: a file changed since the scan is
   refused by name (``as_scanned``) and leaves no cache.

The cache lives in ``<cache root>/<hash of the files' paths>/``: a manifest (written last) with
the key (data digests, projection, trainer features, labels, dev split) and each array's dtype,
shape and BLAKE2b digest. A cache whose key differs (stale) or whose arrays do not match their
manifest (damaged, half-written) is rebuilt, in a staging directory swapped in as one unit.

Arrays are memory-mapped read-only; epochs visit the training split in shuffle blocks
(``inputs.epoch_order``) and hand mapped pages back every block, so resident memory stays near
one block's inputs plus the dev and test splits' logits, whatever the corpus size.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import warnings
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from textproj import distributed, fsio, inputs
from textproj.config import SMALL_DATA_TEXTS, FeatureConfig, TrainConfig
from textproj.data import DEFAULT_COLUMNS, Dataset, Label, iter_dataset
from textproj.errors import ConfigError, DataError
from textproj.inputs import PREPARE_CHUNK, SHUFFLE_BLOCK, TRANSFER, SplitInputs
from textproj.projector import Projector

CACHE_FORMAT = "textproj-input-cache-1"
MANIFEST = "manifest.json"
FIELDS = ("targets", "words", "word_offsets", "buckets", "bucket_weights", "bucket_offsets")
OFFSET_OF = {"word_offsets": "words", "bucket_offsets": "buckets"}  # ragged offsets -> rows
VERIFY_BYTES = 16 << 20  # read at a time when checking an array's digest
CACHE_ENV = "TEXTPROJ_CACHE"  # the cache root when no cache_dir is given


def default_cache_root() -> Path:
    """``$TEXTPROJ_CACHE``, else ``$XDG_CACHE_HOME/textproj``, else ``~/.cache/textproj``."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "textproj"


class Unread(Sequence):
    """The texts (or training labels) of a streamed split: counted, never held in memory."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: Any) -> Any:
        raise TypeError("a streamed split keeps its texts in the on-disk cache, not in memory")


@dataclass
class Scan:
    """Pass 1 over one file: the SHA-256 of its (decompressed) bytes, each row's label code and
    the distinct labels (none for an unlabelled file)."""

    path: Path
    digest: str
    codes: np.ndarray
    labels: list[Label]


def read_rows(
    path: Path, split: str, multi_label: bool, columns: tuple[str, str], digest: Any
) -> Iterator[tuple[str, Label]]:
    """The (text, label) rows of a split's file, one block at a time, feeding ``digest`` (a
    hashlib object) the decompressed bytes: each pass reads a file this one way. An unlabelled
    ``transfer`` file gives its non-blank texts (``transfer.iter_unlabeled``), label None."""
    if split == TRANSFER:
        from textproj.transfer import iter_unlabeled

        texts = iter_unlabeled(path, text_column=columns[0], digest=digest)
        return ((text, None) for text in texts)
    return iter_dataset(
        path, multi_label=multi_label, digest=digest, text_column=columns[0],
        label_column=columns[1],
    )  # fmt: skip


def scan(path: Path, split: str, multi_label: bool, columns: tuple[str, str]) -> Scan:
    """Read ``path`` (the file of ``split``) once, keeping one small integer per row."""
    digest = hashlib.sha256()
    index: dict[Label, int] = {}
    codes = array("q")
    for _, label in read_rows(path, split, multi_label, columns, digest):
        codes.append(index.setdefault(label, len(index)))
    labels = [] if split == TRANSFER else list(index)
    return Scan(path, digest.hexdigest(), np.frombuffer(codes, dtype=np.int64).copy(), labels)


def as_scanned(scanned: Scan, split: str, key: dict[str, Any]) -> Iterator[tuple[str, Label]]:
    """The rows of ``scanned``'s file read again (the featurise pass), refused by name as soon
    as there are more rows than the scan read, and at the end if fewer or if the bytes differ
    (SHA-256): a file written or edited between the passes would otherwise be featurised with
    other rows than the scan's labels, dev split and cache key describe."""
    digest = hashlib.sha256()
    rows = read_rows(scanned.path, split, key["multi_label"], tuple(key["columns"]), digest)
    n = 0
    for n, row in enumerate(rows, start=1):
        if n > len(scanned.codes):
            break
        yield row
    if n != len(scanned.codes) or digest.hexdigest() != scanned.digest:
        raise DataError(
            f"{scanned.path}: changed during training (the featurise pass read other rows than "
            "the scan); train again once it is complete"
        )


@dataclass
class Plan:
    """Which split each file's rows go to, the training labels and the cache key."""

    scans: dict[str, Scan]  # "train", and "dev" / "test" / "transfer" (unlabelled) when given
    dev_rows: np.ndarray | None  # rows of the train file carved off as dev (None: a dev file)
    labels: list[str]
    key: dict[str, Any]

    def split_labels(self, split: str) -> list[Label]:
        """The labels of a split's rows, in file order."""
        source = self.scans["train" if self.dev_rows is not None and split == "dev" else split]
        codes = source.codes
        if self.dev_rows is not None and split in ("train", "dev"):
            mask = np.zeros(len(codes), dtype=bool)
            mask[self.dev_rows] = True
            codes = codes[mask] if split == "dev" else codes[~mask]
        return [source.labels[c] for c in codes]

    def sizes(self) -> dict[str, int]:
        n_dev = None if self.dev_rows is None else len(self.dev_rows)
        train = len(self.scans["train"].codes) - (n_dev or 0)
        sizes = {"train": train, "dev": n_dev or len(self.scans["dev"].codes)}
        for split in ("test", TRANSFER):
            if split in self.scans:
                sizes[split] = len(self.scans[split].codes)
        return sizes


def plan(
    files: dict[str, Path],
    projector: Projector,
    config: TrainConfig,
    features: FeatureConfig,
    columns: tuple[str, str] = DEFAULT_COLUMNS,
) -> Plan:
    """Scan the files (their ``columns``: text, label; an unlabelled ``transfer`` file by its
    text column); carve dev from train as the in-memory run does when no dev file."""
    from textproj.training import dev_positions, label_key, label_set, refuse_empty_dev

    scans = {split: scan(path, split, config.multi_label, columns) for split, path in files.items()}
    train = scans["train"]
    dev_rows = None
    if "dev" not in scans:
        if len(train.codes) < 2:
            raise ConfigError(f"{train.path}: {len(train.codes)} training example(s); need 2")
        keys: dict[str, int] = {}
        key_of = np.array([keys.setdefault(label_key(x), len(keys)) for x in train.labels])
        dev_rows = dev_positions(key_of[train.codes], list(keys), config.dev_fraction, config.seed)
        refuse_empty_dev(str(train.path), len(train.codes), len(dev_rows))
    in_train = np.ones(len(train.labels), dtype=bool)
    if dev_rows is not None:
        train_codes = np.delete(train.codes, dev_rows)
        in_train[:] = False
        in_train[np.unique(train_codes)] = True
    distinct = [label for label, kept in zip(train.labels, in_train, strict=True) if kept]
    labels = label_set(Dataset(distinct, distinct, str(train.path)), config.multi_label)
    key = {
        "format": CACHE_FORMAT,
        "files": {split: s.digest for split, s in scans.items()},
        "dev_split": None if dev_rows is None else [config.dev_fraction, config.seed],
        "projector": projector.get_config(),
        "design": config.design,
        "trainer_features": inputs.trainer_features(config, features).to_dict(),
        "trainer_buckets": config.trainer_buckets,
        "multi_label": config.multi_label,
        "columns": list(columns),
        "labels": labels,
    }
    return Plan(scans, dev_rows, labels, key)


class _SplitWriter:
    """Appends a split's inputs, chunk by chunk, to one raw file per array."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir()
        self.folder = folder
        self.files: dict[str, Any] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.digests: dict[str, Any] = {}

    def _write(self, name: str, values: np.ndarray) -> None:
        if name not in self.files:
            self.files[name] = (self.folder / name).open("wb")
            self.digests[name] = hashlib.blake2b()
            self.meta[name] = {"dtype": values.dtype.str, "shape": [0, *values.shape[1:]]}
        data = np.ascontiguousarray(values).tobytes()
        self.files[name].write(data)
        self.digests[name].update(data)
        self.meta[name]["shape"][0] += len(values)

    def append(self, part: SplitInputs) -> None:
        rows = {name: self.meta[name]["shape"][0] if name in self.meta else 0 for name in FIELDS}
        for name in FIELDS:
            values = getattr(part, name)
            if values is None:
                continue
            if name in OFFSET_OF:  # ragged offsets continue from the rows already written
                base = rows[OFFSET_OF[name]]
                values = values + base if name not in self.files else values[1:] + base
            self._write(name, values)

    def close(self, n_bits: int) -> dict[str, Any]:
        for name, f in self.files.items():
            f.flush()
            os.fsync(f.fileno())
            f.close()
            self.meta[name]["digest"] = self.digests[name].hexdigest()
        return {"n_bits": n_bits, "arrays": self.meta}


def _rows(plan_: Plan) -> Iterator[tuple[str, str, Label]]:
    """(split, text, label) of every row of every file, in file order, as the scan read them."""
    for source, scanned in plan_.scans.items():
        is_dev = None
        if source == "train" and plan_.dev_rows is not None:
            is_dev = np.zeros(len(scanned.codes), dtype=bool)
            is_dev[plan_.dev_rows] = True
        for i, (text, label) in enumerate(as_scanned(scanned, source, plan_.key)):
            yield ("dev" if is_dev is not None and is_dev[i] else source), text, label


def build(
    directory: Path,
    plan_: Plan,
    projector: Projector,
    config: TrainConfig,
    on_progress: inputs.Progress | None,
) -> None:
    """Featurise every row into a new cache at ``directory`` (replacing what is there)."""
    staging = fsio.staging_directory(directory)
    try:
        label_index = {label: i for i, label in enumerate(plan_.labels)}
        writers = {split: _SplitWriter(staging / split) for split in plan_.sizes()}
        pending: dict[str, tuple[list[str], list[Label]]] = {s: ([], []) for s in writers}
        total, done = sum(plan_.sizes().values()), 0

        def flush(split: str) -> None:
            nonlocal done
            texts, labels = pending[split]
            if texts:
                targets = (
                    np.full(len(texts), -1, dtype=np.int64)  # as training.prepare's transfer
                    if split == TRANSFER
                    else inputs.encode_targets(labels, label_index, config.multi_label)
                )
                writers[split].append(inputs.prepare_inputs(texts, targets, projector, config))
                done += len(texts)
                if on_progress is not None:
                    on_progress(done, total)
            pending[split] = ([], [])

        for split, text, label in _rows(plan_):
            pending[split][0].append(text)
            pending[split][1].append(label)
            if len(pending[split][0]) == PREPARE_CHUNK:
                flush(split)
        for split in writers:
            flush(split)
        manifest = {
            "key": plan_.key,
            "splits": {s: w.close(projector.n_bits) for s, w in writers.items()},
        }
        fsio.write_json(staging / MANIFEST, manifest)
        fsio.replace_directory(staging, directory)
    except BaseException:
        fsio.remove_stale_staging(directory)
        raise


@dataclass
class Mapped:
    """A cache's splits as memory-mapped ``SplitInputs``, and the maps to hand pages back."""

    splits: dict[str, SplitInputs]
    maps: list[mmap.mmap]

    def release(self) -> None:
        """Drop the mapped pages from this process's resident set (they stay in the page
        cache, so the next read is fast)."""
        for m in self.maps:
            m.madvise(mmap.MADV_DONTNEED)


def _digest(path: Path) -> str:
    digest = hashlib.blake2b()
    with path.open("rb") as f:
        while chunk := f.read(VERIFY_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def check(directory: Path, key: dict[str, Any]) -> str | None:
    """Why the cache at ``directory`` cannot be used for ``key`` (None: it can)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no complete cache" if not directory.exists() else "damaged (no manifest)"
    if manifest.get("key") != key:
        return "stale (data or settings changed)"
    for split, entry in manifest["splits"].items():
        for name, meta in entry["arrays"].items():
            path = directory / split / name
            size = int(np.prod(meta["shape"])) * np.dtype(meta["dtype"]).itemsize
            if not path.is_file() or path.stat().st_size != size or _digest(path) != meta["digest"]:
                return f"damaged ({split}/{name} does not match its manifest)"
    return None


def open_cache(directory: Path) -> Mapped:
    """The (checked) cache's splits, memory-mapped read-only."""
    manifest = json.loads((directory / MANIFEST).read_text(encoding="utf-8"))
    splits, maps = {}, []
    for split, entry in manifest["splits"].items():
        arrays: dict[str, np.ndarray | None] = dict.fromkeys(FIELDS)
        for name, meta in entry["arrays"].items():
            dtype, shape = np.dtype(meta["dtype"]), tuple(meta["shape"])
            if int(np.prod(shape)) == 0:
                arrays[name] = np.zeros(shape, dtype)
                continue
            with (directory / split / name).open("rb") as f:
                mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
            maps.append(mapped)
            arrays[name] = np.frombuffer(mapped, dtype=dtype).reshape(shape)
        splits[split] = SplitInputs(n_bits=entry["n_bits"], **arrays)  # type: ignore[arg-type]
    return Mapped(splits, maps)


def cache_directory(root: Path, files: dict[str, Path]) -> Path:
    """One cache per set of input files (a changed file makes it stale, then it is rebuilt)."""
    named = json.dumps({s: str(p.resolve()) for s, p in sorted(files.items())})
    return root / hashlib.sha256(named.encode("utf-8")).hexdigest()[:16]


def prepare(
    files: dict[str, Path],
    projector: Projector,
    config: TrainConfig,
    features: FeatureConfig,
    cache_root: Path,
    on_progress: inputs.Progress | None = None,
    columns: tuple[str, str] = DEFAULT_COLUMNS,
    check_fingerprint: Callable[[str], None] | None = None,
) -> Any:
    """``training.Prepared`` from the files' cache (their ``columns``: text, label), reused or
    (re)built, memory-mapped. In a data-parallel run the first process of each machine builds;
    the others wait, then map it. ``check_fingerprint`` gets the data's fingerprint after the
    scan, before any featurising (a resume refuses changed files there)."""
    from textproj.training import Prepared, warn_unseen_labels

    the_plan = plan(files, projector, config, features, columns)
    fingerprint = hashlib.sha256(json.dumps(the_plan.key).encode("utf-8")).hexdigest()
    if check_fingerprint is not None:
        check_fingerprint(fingerprint)
    check_no_copies(files["train"], the_plan.sizes()["train"], config)
    directory = cache_directory(cache_root, files)
    builder = int(os.environ.get("LOCAL_RANK", distributed.world()[0])) == 0
    if builder:
        problem = check(directory, the_plan.key)
        if problem is not None:
            if problem != "no complete cache":
                warnings.warn(f"{directory}: input cache {problem}; rebuilding it", stacklevel=2)
            build(directory, the_plan, projector, config, on_progress)
    distributed.barrier()
    if not builder and (problem := check(directory, the_plan.key)) is not None:
        raise ConfigError(f"{directory}: input cache {problem} after it was built")
    mapped = open_cache(directory)
    carved = the_plan.dev_rows is not None
    splits = {}
    for split, split_inputs in mapped.splits.items():
        if split == TRANSFER:  # inputs only: the distillation term's texts
            continue
        n = len(split_inputs)
        labels = Unread(n) if split == "train" else the_plan.split_labels(split)
        carved_here = carved and split in ("train", "dev")
        source = f"{files['train']}:{split}" if carved_here else str(files[split])
        splits[split] = Dataset(Unread(n), labels, source)  # type: ignore[arg-type]
    for split in ("dev", "test"):
        if split in splits:
            warn_unseen_labels(splits[split], the_plan.labels, config.multi_label)
    return Prepared(splits, the_plan.labels, projector, mapped.splits, fingerprint, mapped.release)


def check_no_copies(train_file: Path, n_train: int, config: TrainConfig) -> None:
    """A streamed run has no transfer texts: asked-for augmented copies are an error, and the
    copies an in-memory run of so small a set makes by default are left out with a warning."""
    copies = config.copies_for(n_train)
    if copies and config.augment_copies is not None:
        raise ConfigError(f"augment_copies={copies}: a streamed run makes no augmented copies")
    if copies:
        warnings.warn(
            f"{train_file}: streamed, so its {n_train} training texts get none of the "
            f"{copies} augmented copies an in-memory run makes below {SMALL_DATA_TEXTS} texts",
            stacklevel=3,
        )


def release_pages(hooks: Any, release: Callable[[], None], batch_size: int) -> None:
    """Chain ``release`` into the loop's callbacks ``hooks``: once per shuffle block of steps,
    and after each epoch's dev scoring."""
    every = max(1, SHUFFLE_BLOCK // batch_size)
    on_step, on_epoch = hooks.on_step, hooks.on_epoch

    def step_hook(step: int, loss: float) -> None:
        if step % every == 0:
            release()
        if on_step is not None:
            on_step(step, loss)

    def epoch_hook(row: dict[str, Any]) -> None:
        release()
        if on_epoch is not None:
            on_epoch(row)

    hooks.on_step, hooks.on_epoch = step_hook, epoch_hook
