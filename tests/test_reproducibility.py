"""The same data, configuration and seed give a byte-identical model.tpn and trainer, and the
same metrics apart from the time taken, in this process or another one with another hash seed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import TINY_CONFIG, tiny_banking

from textproj.config import TrainConfig

TESTS = Path(__file__).parent


def _metrics(folder: Path) -> dict:
    metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
    assert metrics.pop("train_seconds") >= sum(metrics.pop("seconds").values()) - 0.05
    return metrics


def _assert_same_outputs(first: Path, second: Path) -> None:
    assert (first / "model.tpn").read_bytes() == (second / "model.tpn").read_bytes()
    with (
        np.load(first / "trainer.npz", allow_pickle=False) as a,
        np.load(second / "trainer.npz", allow_pickle=False) as b,
    ):
        assert a.files == b.files
        for name in a.files:
            np.testing.assert_array_equal(a[name], b[name])
    assert (first / "trainer.json").read_bytes() == (second / "trainer.json").read_bytes()
    assert _metrics(first) == _metrics(second)


def test_same_seed_same_bytes_in_this_process(tiny_models: dict[str, Path], tmp_path: Path):
    from textproj.training import train

    config = TrainConfig(design="text", **TINY_CONFIG)
    train(tiny_banking(), config=config, output_dir=tmp_path, progress=False)
    _assert_same_outputs(tiny_models["text"], tmp_path)


def test_same_seed_same_bytes_in_another_process(tiny_models: dict[str, Path], tmp_path: Path):
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "from conftest import TINY_CONFIG, tiny_banking; "
        "from textproj.config import TrainConfig; from textproj.training import train; "
        "train(tiny_banking(), config=TrainConfig(design='token', **TINY_CONFIG), "
        "output_dir=sys.argv[2], progress=False)"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(TESTS), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    _assert_same_outputs(tiny_models["token"], tmp_path)
