"""Hostile model files (docs/security.md): loading runs nothing from the file, and claims of huge
sizes are refused before anything large is allocated."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import pickle
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import textproj
from textproj.model_file import MAGIC, ModelFormatError, read_model, write_model

PACKAGE = Path(textproj.__file__).parent


class _Payload:
    """Unpickling this creates the file ``marker``: proof that pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


HUGE_ENTRY = {
    "name": "w",
    "dtype": "float32",
    "shape": [2**31, 2**31],
    "offset": 0,
    "nbytes": 2**64,
}


def _assemble(header: bytes, blob: bytes = b"") -> bytes:
    body = MAGIC + struct.pack("<II", 1, len(header)) + header + blob
    return body + hashlib.sha256(body).digest()


# --- nothing executes --------------------------------------------------------------------------


# The only loaders that may appear, and the keyword that keeps each from unpickling.
_SAFE_LOAD = {"np": ("allow_pickle", False), "torch": ("weights_only", True)}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_package_never_unpickles(path: Path) -> None:
    """No pickle imports; np.load only with allow_pickle=False, torch.load only weights_only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [alias.name for alias in node.names] + [getattr(node, "module", "") or ""]
            assert not any(n.split(".")[0] in ("pickle", "dill", "joblib") for n in names), path
        is_load = isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
        if not (is_load and node.func.attr == "load" and isinstance(node.func.value, ast.Name)):
            continue
        module = node.func.value.id
        if module in _SAFE_LOAD:
            keyword, value = _SAFE_LOAD[module]
            given = {k.arg: k.value for k in node.keywords}
            where = f"{path}:{node.lineno}: {module}.load"
            assert keyword in given, f"{where} without {keyword}={value}"
            assert isinstance(given[keyword], ast.Constant) and given[keyword].value is value, where


def test_pickle_bytes_in_the_blob_are_only_data(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = pickle.dumps(_Payload(marker))
    path = tmp_path / "model.tpn"
    write_model(
        path, {"labels": ["a"], "note": payload.hex()}, {"blob": np.frombuffer(payload, np.uint8)}
    )
    header, tensors = read_model(path)
    assert tensors["blob"].tobytes() == payload and header["note"] == payload.hex()
    assert not marker.exists()


def test_pickle_and_numpy_loaders_are_never_called(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    def use(design: str) -> None:
        clf = textproj.load(tiny_models[design])
        assert clf.predict(["card declined"])[0] in clf.labels
        textproj.runtime.load_bytes((tiny_models[design] / "model.tpn").read_bytes())

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"a loader that can run code was called on {args}")

    for design in ("text", "token"):
        use(design)  # numba unpickles its own compiled-code cache on first use: not the model
    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (np, "load")):
        monkeypatch.setattr(module, name, refuse)
    for design in ("text", "token"):
        use(design)


@pytest.mark.parametrize(
    "table",
    [
        {"name": "w", "dtype": "object", "shape": [1], "offset": 0, "nbytes": 8},
        {"name": "w", "dtype": "|O", "shape": [1], "offset": 0, "nbytes": 8},
        {"name": "w", "dtype": "V8", "shape": [1], "offset": 0, "nbytes": 8},
    ],
)
def test_object_dtypes_in_the_table_are_refused(tmp_path: Path, table: dict) -> None:
    marker = tmp_path / "pwned"
    blob = pickle.dumps(_Payload(marker)).ljust(64, b"\0")
    path = tmp_path / "model.tpn"
    path.write_bytes(_assemble(json.dumps({"tensors": [table]}).encode(), blob))
    with pytest.raises(ModelFormatError, match="dtype"):
        read_model(path)
    assert not marker.exists()


def test_trainer_npz_with_pickled_objects_is_refused(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    from textproj.trainer_model import load_trainer

    marker = tmp_path / "pwned"
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.tpn", "trainer.json"):
        (folder / name).write_bytes((tiny_models["text"] / name).read_bytes())
    with np.load(tiny_models["text"] / "trainer.npz", allow_pickle=False) as arrays:
        weights = {name: arrays[name] for name in arrays.files}
    hostile = np.empty(1, dtype=object)
    hostile[0] = _Payload(marker)
    np.savez(folder / "trainer.npz", **{**weights, "embedding.weight": hostile})
    with pytest.raises(ModelFormatError, match=r"trainer\.npz"):
        load_trainer(folder)
    assert not marker.exists()
    assert load_trainer(tiny_models["text"]).labels == textproj.load(tiny_models["text"]).labels


# --- huge claims -------------------------------------------------------------------------------


def _refused_small(path: Path, expected: str) -> None:
    """``textproj.load`` refuses ``path`` with ``expected`` in the message, allocating < 8 MB."""
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError, match=expected):
            textproj.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 2**20 + 2 * path.stat().st_size, f"allocated {peak} bytes first"


def _tiny_header_and_tensors(tiny_models: dict[str, Path]) -> tuple[dict, dict]:
    return read_model(tiny_models["text"] / "model.tpn")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"features": {"word_ngrams": 10**9}}, "features per text"),
        ({"features": {"char_ngram_max": 10**7}}, "features per text"),
        ({"features": {"max_chars": 10**7}}, "features per text"),
        ({"features": {"max_chars": 10**15}}, "max_chars must be an int below"),
        ({"features": {"max_tokens": 10**30}}, "below 2"),
        ({"features": {"max_chars": 1e4}}, "must be an int"),
        ({"num_projections": 10**12}, "bits"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**80}, "seed"),
    ],
)
def test_hostile_projector_config_is_refused_at_load(
    tiny_models: dict[str, Path], tmp_path: Path, change: dict, expected: str
) -> None:
    header, tensors = _tiny_header_and_tensors(tiny_models)
    projector = header["projector"]
    for key, value in change.items():
        if key == "features":
            projector["features"].update(value)
        else:
            projector[key] = value
    path = tmp_path / "model.tpn"
    write_model(path, header, dict(tensors))
    _refused_small(path, expected)


@pytest.mark.parametrize(("field", "cast"), [("max_chars", float), ("sublinear", int)])
def test_a_config_equal_to_a_loaded_one_but_of_another_type_is_refused(
    tiny_models: dict[str, Path], tmp_path: Path, field: str, cast: type
) -> None:
    """20000.0 == 20000 and 1 == True: a model loaded first must not vouch for a look-alike."""
    textproj.load(tiny_models["text"]).predict(["a text"])
    header, tensors = _tiny_header_and_tensors(tiny_models)
    features = header["projector"]["features"]
    features[field] = cast(features[field])
    path = tmp_path / "model.tpn"
    write_model(path, header, dict(tensors))
    with pytest.raises(ModelFormatError, match=f"FeatureConfig.{field} must be"):
        textproj.load(path)


@pytest.mark.parametrize(
    ("network", "expected"),
    [
        ({"n_labels": 10**12}, "outputs but there are"),
        ({"hidden": [2**40]}, "expected"),
        ({"n_bits": 2**50}, "expected"),
        ({"design": "token", "bottleneck": 2**40, "filters": 2**40, "windows": [2**20]}, "missing"),
    ],
)
def test_hostile_network_claims_are_refused_at_load(
    tiny_models: dict[str, Path], tmp_path: Path, network: dict, expected: str
) -> None:
    header, tensors = _tiny_header_and_tensors(tiny_models)
    header["network"].update(network)
    path = tmp_path / "model.tpn"
    write_model(path, header, dict(tensors))
    _refused_small(path, expected)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "not valid JSON"),
        (json.dumps({"tensors": [HUGE_ENTRY]}).encode(), "elements"),
    ],
)
def test_hostile_headers_are_refused_before_allocating(
    tmp_path: Path, header: bytes, expected: str
) -> None:
    path = tmp_path / "model.tpn"
    path.write_bytes(_assemble(header, bytes(8)))
    _refused_small(path, expected)


def test_header_length_beyond_the_file_is_refused_without_reading(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    path.write_bytes(MAGIC + struct.pack("<II", 1, 2**24 - 1) + b"{}" + bytes(64))
    _refused_small(path, "past the end")
    os.truncate(path, 60)
    _refused_small(path, "past the end")


def test_a_header_listing_many_layers_is_refused_before_allocating(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    header, tensors = _tiny_header_and_tensors(tiny_models)
    header["network"]["hidden"] = [1] * 300_000
    path = tmp_path / "model.tpn"
    write_model(path, header, dict(tensors))
    _refused_small(path, "lists 300000 layers")


def test_a_large_file_that_is_no_model_is_refused_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    with path.open("wb") as f:
        f.write(b"PK\x03\x04 not a model")
        f.truncate(512 * 2**20)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(ModelFormatError, match="wrong magic"):
            textproj.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20
