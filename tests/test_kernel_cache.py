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


FIRST_TOKEN_RUN = """
from textproj._kernels.cache import compiled, training_kernels
from textproj.config import FeatureConfig, TrainConfig
from textproj.inputs import trainer_bags
from textproj.projector import Projector

assert not compiled(training_kernels("token"))
shape = TrainConfig(design="token").projection_shape
Projector(*shape, features=FeatureConfig(), seed=0).transform_tokens_words(["a text", "another"])
trainer_bags(["a text"], FeatureConfig(), 2**10)
print(compiled(training_kernels("token")), compiled(training_kernels("text")))
"""


@pytest.mark.slow
def test_a_token_design_projection_compiles_exactly_the_token_kernels(tmp_path: Path) -> None:
    """In a fresh numba cache (a fresh install), what a token-design run's inputs compile is
    the token list, and the text design's projection is still to compile."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    done = subprocess.run(
        [sys.executable, "-c", FIRST_TOKEN_RUN], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
