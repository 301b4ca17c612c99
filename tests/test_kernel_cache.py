"""numba's on-disk cache: the check behind the CLI's note on a first compile."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from textproj._kernels.cache import compiled

KERNEL = """
from numba import njit


@njit(cache=True)
def double(x):
    return 2 * x
"""


def test_a_kernel_counts_as_compiled_once_its_cache_is_written(tmp_path: Path) -> None:
    source = tmp_path / "fresh_kernel.py"
    source.write_text(KERNEL)
    spec = importlib.util.spec_from_file_location("fresh_kernel", source)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fresh_kernel"] = module
    try:
        spec.loader.exec_module(module)
        assert not compiled([module.double])  # nothing on disk yet: its first call compiles
        assert module.double(np.int64(3)) == 6
        assert compiled([module.double])
    finally:
        del sys.modules["fresh_kernel"]


FIRST_RUN = """
import sys

import textproj
from textproj._kernels.cache import compiled, runtime_kernels, training_kernels
from textproj.config import FeatureConfig, TrainConfig
from textproj.inputs import trainer_bags
from textproj.projector import Projector

design = sys.argv[1]
assert not compiled(training_kernels(design)) and not compiled(runtime_kernels(design))
shape = TrainConfig(design=design).projection_shape
projector = Projector(*shape, features=FeatureConfig(), seed=0)
texts = ["a text", "another one"]
projector.transform_tokens_words(texts) if design == "token" else projector.transform_words(texts)
trainer_bags(texts, FeatureConfig(), 2**10)
print(compiled(training_kernels(design)), compiled(runtime_kernels(design)))
textproj.load(sys.argv[2]).predict(texts)
print(compiled(runtime_kernels(design)))
"""


@pytest.mark.slow
@pytest.mark.parametrize("design", ["token", "text"])
def test_a_first_run_compiles_exactly_the_kernels_listed(
    tmp_path: Path, tiny_models: dict[str, Path], design: str
) -> None:
    """In a fresh numba cache (a fresh install) a run's inputs compile the training list, and a
    prediction then the runtime list: each names only kernels that a run of its kind calls."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    model = tiny_models[design]
    done = subprocess.run(
        [sys.executable, "-c", FIRST_RUN, design, str(model)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False", "True"]
