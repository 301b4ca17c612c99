"""``Projector``: texts to locality-sensitive bits, whole-text (SGNN) or per token (PRADO).

Parallelism: the numba kernels are single-threaded and release the GIL (``nogil=True``); a
batch large enough to be worth it is cut into chunks that a Python thread pool runs at once.
No numba threading layer is used at all, by choice: numba's default ``workqueue`` layer aborts
when a parallel kernel is entered from two threads at once (Streamlit, web servers), and the
OpenMP layer is not safe to use after ``fork`` (spaCy's ``nlp.pipe(n_process=2)``). The pool is
created lazily per process, so a forked child builds its own.
"""

from __future__ import annotations

import itertools
import numbers
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from textproj._kernels import features as _kf
from textproj._kernels import hashing as _kh
from textproj._kernels import projection as _kp
from textproj.config import PROJECTION_DEFAULTS, FeatureConfig
from textproj.errors import ConfigError
from textproj.features import class_table, encode_checked, kernel_params

PARALLEL_MIN_TEXTS = 1024  # below this, thread hand-off costs more than it saves

_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _thread_pool() -> ThreadPoolExecutor:
    """This process's pool (a child after fork gets a fresh one: threads do not survive fork)."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(max_workers=os.cpu_count() or 1))
        return _pool[1]


def check_n_jobs(n_jobs: object) -> int:
    """``n_jobs`` if it is a thread count (a positive int, or -1: every core), else a
    ConfigError naming it: 0 or -2 mean nothing (they used to run on one thread unsaid)."""
    counts = isinstance(n_jobs, numbers.Integral) and not isinstance(n_jobs, bool)
    if not counts or not (n_jobs >= 1 or n_jobs == -1):
        raise ConfigError(f"n_jobs must be a positive int, or -1 for every core; got {n_jobs!r}")
    return int(n_jobs)


def _run_chunks(n_items: int, n_jobs: int, work: Callable[[int, int], None]) -> None:
    """Call ``work(lo, hi)`` over ``range(n_items)`` cut into chunks, on ``n_jobs`` threads."""
    if n_jobs == 1 or n_items < PARALLEL_MIN_TEXTS:
        work(0, n_items)
        return
    bounds = np.linspace(0, n_items, n_jobs + 1).astype(int)
    futures = [
        _thread_pool().submit(work, int(lo), int(hi)) for lo, hi in itertools.pairwise(bounds)
    ]
    for future in futures:
        future.result()


class Projector:
    """Maps texts to ``num_projections * bits_per_projection`` bits with no vocabulary.

    P_k(x) = sgn(<F(x), R_k>) for k = 1..T, each of d bits, where F(x) holds the text's hashed
    features (see :class:`FeatureConfig`) and every entry of R_k in {-1, +1} is computed from a
    hash of (feature, seed, output word), never stored. Texts sharing most features share most
    bits. An empty or white-space-only text has no features and maps to all-zero bits.

    Parameters
    ----------
    num_projections : int
        T, the number of projection functions.
    bits_per_projection : int
        d, the bits of each function; the output has T * d bits.
    features : FeatureConfig, optional
        Feature kinds, n-gram orders, weights and caps.
    seed : int
        Seeds the random sign rows; a different seed gives unrelated bits.
    n_jobs : int
        Threads for large batches; -1 uses every core (anything else but a positive int is a
        ConfigError). Results never depend on it.
    """

    def __init__(
        self,
        num_projections: int = PROJECTION_DEFAULTS["text"][0],
        bits_per_projection: int = PROJECTION_DEFAULTS["text"][1],
        *,
        features: FeatureConfig | None = None,
        seed: int = 0,
        n_jobs: int = -1,
    ) -> None:
        self.num_projections = num_projections
        self.bits_per_projection = bits_per_projection
        self.features = features
        self.seed = seed
        self.n_jobs = n_jobs

    @property
    def n_jobs(self) -> int:
        """Threads for large batches (-1: every core); checked when set (:func:`check_n_jobs`)."""
        return self._n_jobs

    @n_jobs.setter
    def n_jobs(self, value: int) -> None:
        self._n_jobs = check_n_jobs(value)

    @property
    def n_bits(self) -> int:
        """T * d: the width of one bit vector."""
        return self.num_projections * self.bits_per_projection

    def _prepared(self) -> tuple[FeatureConfig, np.ndarray, np.ndarray, np.uint64, int]:
        """Validated (config, params, keys, last-word mask, thread count), built once."""
        key = (self.num_projections, self.bits_per_projection, self.features, self.seed)
        cached = getattr(self, "_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        if not isinstance(self.num_projections, int) or self.num_projections < 1:
            raise ValueError(
                f"num_projections must be a positive int, got {self.num_projections!r}"
            )
        if not isinstance(self.bits_per_projection, int) or self.bits_per_projection < 1:
            raise ValueError(
                f"bits_per_projection must be a positive int, got {self.bits_per_projection!r}"
            )
        if not isinstance(self.seed, numbers.Integral) or not 0 <= self.seed < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got {self.seed!r}")
        config = self.features or FeatureConfig()
        n_words = (self.n_bits + 63) // 64
        keys = _kh.projection_keys(np.uint64(int(self.seed)), n_words)
        tail = self.n_bits - 64 * (n_words - 1)
        last_mask = np.uint64(2**tail - 1)
        prepared = (config, kernel_params(config), keys, last_mask, n_words)
        self._cache = (key, prepared)
        return prepared

    def _threads(self) -> int:
        return (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs

    def transform_words(self, texts: Sequence[str]) -> np.ndarray:
        """Whole-text bits as uint64 words, shape (n, ceil(T*d / 64)); bit j in word j // 64."""
        config, params, keys, last_mask, n_words = self._prepared()
        buf, offsets = encode_checked(texts, config)
        out = np.zeros((len(offsets) - 1, n_words), dtype=np.uint64)
        table = class_table()

        def work(lo: int, hi: int) -> None:
            _kp.project_texts(buf, offsets, lo, hi, table, params, keys, last_mask, out)

        _run_chunks(len(out), self._threads(), work)
        return out

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        """Whole-text bits: a uint8 array of 0/1, shape (n, T*d)."""
        return _kp.unpack_bits(self.transform_words(texts), self.n_bits)

    def transform_packed(self, texts: Sequence[str]) -> np.ndarray:
        """The bits of :meth:`transform`, 8 to a byte in little bit order: (n, ceil(T*d/8))."""
        words = self.transform_words(texts)
        packed = words.astype("<u8").view(np.uint8).reshape(len(words), 8 * words.shape[1])
        return np.ascontiguousarray(packed[:, : (self.n_bits + 7) // 8])

    def transform_tokens(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Per-token bits: (bits uint8 (total_tokens, T*d), offsets int64 (n + 1,)).

        Token t of text i is row ``offsets[i] + t``, projected from that token's own features
        (the word and its character n-grams). A text without tokens has no rows.
        """
        words, offsets = self.transform_tokens_words(texts)
        return _kp.unpack_bits(words, self.n_bits), offsets

    def transform_tokens_words(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform_tokens` with the bits left packed in uint64 words."""
        config, params, keys, last_mask, n_words = self._prepared()
        buf, offsets = encode_checked(texts, config)
        table = class_table()
        counts = _kf.count_tokens(buf, offsets, table, params)
        rows = np.zeros(len(counts) + 1, dtype=np.int64)
        np.cumsum(counts, out=rows[1:])
        out = np.zeros((int(rows[-1]), n_words), dtype=np.uint64)

        def work(lo: int, hi: int) -> None:
            _kp.project_tokens(buf, offsets, lo, hi, table, params, keys, last_mask, rows, out)

        _run_chunks(len(counts), self._threads(), work)
        return out, rows

    def get_config(self) -> dict[str, Any]:
        """JSON-ready description from which :meth:`from_config` rebuilds an identical projector."""
        return {
            "num_projections": self.num_projections,
            "bits_per_projection": self.bits_per_projection,
            "seed": self.seed,
            "features": (self.features or FeatureConfig()).to_dict(),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], *, n_jobs: int = -1) -> Projector:
        """Inverse of :meth:`get_config`."""
        return cls(
            config["num_projections"],
            config["bits_per_projection"],
            features=FeatureConfig.from_dict(config["features"]),
            seed=config["seed"],
            n_jobs=n_jobs,
        )

    def __repr__(self) -> str:
        return (
            f"Projector(num_projections={self.num_projections}, "
            f"bits_per_projection={self.bits_per_projection}, seed={self.seed})"
        )
