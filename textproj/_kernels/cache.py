"""Whether numba's on-disk cache already holds compiled kernels (``cache=True``)."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any


def compiled(dispatchers: Iterable[Any]) -> bool:
    """Whether every ``cache=True`` dispatcher has its cache index on disk, so its first call
    loads machine code instead of compiling it (a fresh install compiles for about 15 s).

    Reads a numba internal; with another numba whose internals differ it answers True, so the
    worst case is a note not shown (as after an update of a kernel's source, whose stale index
    numba replaces when it recompiles)."""
    try:
        return all(os.path.exists(d._cache._cache_file._index_path) for d in dispatchers)
    except AttributeError:
        return True


def training_kernels(design: str) -> tuple[Any, ...]:
    """The kernels every training run of ``design`` ("token" or "text") calls on its first
    texts, slowest to compile first."""
    from textproj._kernels import bags, features, hashing, projection

    projecting = (
        (projection.project_tokens, features.count_tokens)
        if design == "token"
        else (projection.project_texts,)
    )
    return (*projecting, features.featurize_batch, bags.merge_repeats, hashing.projection_keys)


def runtime_kernels(design: str) -> tuple[Any, ...]:
    """The kernels ``textproj.load(...).predict`` calls for a model of ``design``."""
    from textproj._kernels import features, hashing, network, projection

    if design == "token":
        return (
            projection.project_tokens,
            features.count_tokens,
            network.packed_linear,
            network.window_scores,
            network.attention_pool,
            hashing.projection_keys,
        )
    return (projection.project_texts, network.packed_linear, hashing.projection_keys)
