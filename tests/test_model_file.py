"""Tests for textproj.model_file: round trips, determinism, atomic writes, and every damage."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
import tracemalloc
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textproj import netspec, runtime
from textproj.model_file import (
    FORMAT_VERSION,
    MAGIC,
    MAX_LABELS,
    ModelFormatError,
    describe_model,
    encode_model,
    pack_int4,
    read_model,
    read_model_bytes,
    unicode_mismatch,
    unpack_int4,
    write_model,
)
from textproj.projector import Projector


def _tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "layer.weight": rng.integers(-127, 128, size=(5, 7), dtype=np.int8),
        "layer.scale": rng.random(5, dtype=np.float32),
        "layer.bias": rng.standard_normal(3).astype(">f4"),  # big-endian input is stored LE
        "counts": np.arange(6, dtype=np.int32).reshape(2, 3),
        "flags": np.array([1, 0, 1], dtype=np.uint8),
        "scalar": np.array(2.5, dtype=np.float32),
        "empty": np.zeros((0, 4), dtype=np.float32),
        "conv": rng.integers(-127, 128, size=(2, 3, 4), dtype=np.int8),
    }


HEADER = {"labels": ["yes", "no", "maybe"], "note": "ünïcode ✓", "nested": {"b": 1, "a": [1.5]}}


def _assemble(header: dict | bytes, blob: bytes, *, version: int = FORMAT_VERSION) -> bytes:
    """A model file built by hand from the documented layout, with a valid checksum."""
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    body = MAGIC + struct.pack("<II", version, len(text)) + text + blob
    return body + hashlib.sha256(body).digest()


def _runtime_model() -> tuple[dict, dict[str, np.ndarray]]:
    """A valid text-design model (16 bits -> 4 hidden -> 2 labels), built with numpy only."""
    rng = np.random.default_rng(1)
    tensors = {}
    for i, (rows, cols) in enumerate([(4, 16), (2, 4)]):
        tensors[f"dense.{i}.weight"] = rng.integers(-127, 128, size=(rows, cols), dtype=np.int8)
        tensors[f"dense.{i}.scale"] = rng.random(rows, dtype=np.float32) / 50
        tensors[f"dense.{i}.bias"] = rng.standard_normal(rows).astype(np.float32)
    header = {
        "labels": ["neg", "pos"],
        "projector": Projector(2, 8).get_config(),
        "network": {"design": "text", "n_bits": 16, "hidden": [4], "n_labels": 2},
    }
    return header, tensors


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    tensors = _tensors()
    n_bytes = write_model(path, HEADER, tensors)
    assert n_bytes == path.stat().st_size
    header, loaded = read_model(path)
    assert header == {**HEADER, "unicode_version": unicodedata.unidata_version}
    assert list(loaded) == list(tensors)
    for name, array in tensors.items():
        assert loaded[name].dtype == array.dtype.newbyteorder("=")
        assert loaded[name].shape == array.shape
        assert np.array_equal(loaded[name], array)
        assert not loaded[name].flags.writeable


def test_layout_is_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    write_model(path, HEADER, _tensors())
    data = path.read_bytes()
    assert data[:8] == b"TEXTPROJ"
    version, header_len = struct.unpack("<II", data[8:16])
    assert version == FORMAT_VERSION == 1
    assert (16 + header_len) % 8 == 0  # the header is padded so the blob is aligned in the file
    header = json.loads(data[16 : 16 + header_len])
    blob = data[16 + header_len : -32]
    assert hashlib.sha256(data[:-32]).digest() == data[-32:]
    for entry in header["tensors"]:
        assert entry["offset"] % 8 == 0
        assert entry["offset"] + entry["nbytes"] <= len(blob)
    bias = next(e for e in header["tensors"] if e["name"] == "layer.bias")
    raw = blob[bias["offset"] : bias["offset"] + bias["nbytes"]]
    assert np.array_equal(np.frombuffer(raw, "<f4"), _tensors()["layer.bias"])


def test_same_input_gives_identical_bytes(tmp_path: Path) -> None:
    write_model(tmp_path / "a.tpn", HEADER, _tensors())
    reordered = dict(reversed(list(HEADER.items())))
    write_model(tmp_path / "b.tpn", reordered, _tensors())
    assert (tmp_path / "a.tpn").read_bytes() == (tmp_path / "b.tpn").read_bytes()


def test_write_is_atomic_and_leaves_no_temp_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "deep" / "dir" / "model.tpn"
    write_model(path, HEADER, _tensors())
    write_model(path, {"labels": ["only"]}, {"x": np.ones(2, np.float32)})  # overwrite
    assert os.listdir(path.parent) == ["model.tpn"]
    before = path.read_bytes()

    def failing_replace(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_model(path, HEADER, _tensors())
    assert os.listdir(path.parent) == ["model.tpn"]
    assert path.read_bytes() == before


def test_write_refuses_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    for bad in (np.zeros(2, np.float64), np.zeros(2, bool), np.zeros(2, np.int64)):
        with pytest.raises(ValueError, match="dtype"):
            write_model(path, {}, {"t": bad})
    with pytest.raises(ValueError, match="tensors"):
        write_model(path, {"tensors": []}, {})
    with pytest.raises(ValueError):
        write_model(path, {"x": float("nan")}, {})
    assert not path.exists()


def test_describe_model(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    write_model(path, HEADER, _tensors())
    (tmp_path / "deep").mkdir()
    info = describe_model(path)
    assert info["labels"] == HEADER["labels"]
    assert info["format_version"] == FORMAT_VERSION
    assert info["file_bytes"] == path.stat().st_size
    first = {"name": "layer.weight", "dtype": "int8", "shape": [5, 7], "bytes": 35}
    assert info["tensors"][0] == first
    assert sum(t["bytes"] for t in info["tensors"]) == sum(a.nbytes for a in _tensors().values())
    assert describe_model(tmp_path) == info
    with pytest.raises(ModelFormatError, match=r"holds no model\.tpn"):
        describe_model(tmp_path / "deep")


# --- damaged files --------------------------------------------------------------------------


def _error(path: Path) -> str:
    with pytest.raises(ModelFormatError) as caught:
        read_model(path)
    message = str(caught.value)
    assert message.startswith(str(path)), message
    return message


def test_missing_and_empty_file(tmp_path: Path) -> None:
    assert "no such file" in _error(tmp_path / "nothing.tpn")
    (tmp_path / "empty.tpn").write_bytes(b"")
    assert "empty" in _error(tmp_path / "empty.tpn")
    assert "directory" in _error(tmp_path)


def test_truncated(tmp_path: Path) -> None:
    good = tmp_path / "model.tpn"
    size = write_model(good, HEADER, _tensors())
    header_end = 16 + struct.unpack("<I", good.read_bytes()[12:16])[0]
    bad = tmp_path / "cut.tpn"
    cuts = (1, 7, 8, 12, 16, 20, header_end - 1, header_end, header_end + 5, size - 33, size - 1)
    for cut in cuts:
        bad.write_bytes(good.read_bytes()[:cut])
        message = _error(bad)
        assert any(word in message for word in ("too small", "truncated", "past the end")), message


def test_every_flipped_byte_is_caught(tmp_path: Path) -> None:
    good = tmp_path / "model.tpn"
    write_model(good, HEADER, _tensors())
    data = good.read_bytes()
    bad = tmp_path / "bad.tpn"
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 1 << (position % 8)
        bad.write_bytes(damaged)
        _error(bad)
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 0x10
    bad.write_bytes(damaged)
    assert "checksum mismatch" in _error(bad)


def test_wrong_magic(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    path.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    assert "not a textproj model" in _error(path)


def test_versions(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    path.write_bytes(_assemble({"tensors": []}, b"", version=FORMAT_VERSION + 1))
    assert "needs a newer textproj" in _error(path)
    path.write_bytes(_assemble({"tensors": []}, b"", version=0))
    assert "unknown model format version 0" in _error(path)
    path.write_bytes(_assemble({"tensors": []}, b""))
    assert read_model(path) == ({}, {})


def test_bad_header(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    cases = {
        b"{not json": "not valid JSON",
        b"[1, 2]": "not a JSON object",
        b'{"tensors": [], "x": NaN}': "not valid JSON",
        b'{"tensors": [], "tensors": []}': "not valid JSON",
        b"\xff\xfe{}": "not valid JSON",
        b"{}": "no 'tensors' list",
        b'{"tensors": [], "labels": "abc"}': "'labels' must be a list",
    }
    for text, expected in cases.items():
        path.write_bytes(_assemble(text, b""))
        assert expected in _error(path)
    data = _assemble({"tensors": []}, b"")
    path.write_bytes(data[:12] + struct.pack("<I", 2**31) + data[16:])
    assert "exceeds the limit" in _error(path)


def _entry(**changes: object) -> dict:
    return {"name": "w", "dtype": "float32", "shape": [2], "offset": 0, "nbytes": 8, **changes}


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        ([_entry(dtype="float64", nbytes=16)], "dtype 'float64'"),
        ([_entry(dtype="object")], "dtype 'object'"),
        ([_entry(shape=[-2])], "non-negative ints"),
        ([_entry(shape=[True, 2])], "non-negative ints"),
        ([_entry(shape="2")], "non-negative ints"),
        ([_entry(shape=[1] * 9, nbytes=4)], "non-negative ints"),
        ([_entry(nbytes=4)], "needs 8"),
        ([_entry(offset=4, shape=[1], nbytes=4)], "misaligned"),
        ([_entry(offset=16)], "outside"),
        ([_entry(offset=-8)], "outside"),
        ([_entry(offset=0.0)], "must be ints"),
        ([_entry(), _entry()], "appears twice"),
        ([_entry(), _entry(name="v", shape=[1], nbytes=4)], "overlap"),
        ([{**_entry(), "extra": 1}], "exactly the keys"),
        ([_entry(name="")], "no valid name"),
        ([_entry(dtype="int4", shape=[3], nbytes=1)], "needs 2"),
        ([_entry(dtype="int4", shape=[4], nbytes=4)], "needs 2"),
        ([_entry(dtype="int4", shape=[2, 3], nbytes=6)], "needs 3"),
    ],
)
def test_bad_tensor_table(tmp_path: Path, table: list, expected: str) -> None:
    path = tmp_path / "model.tpn"
    path.write_bytes(_assemble({"tensors": table}, bytes(16)))
    assert expected in _error(path)


def _assert_refused_fast(path: Path, expected: str) -> None:
    tracemalloc.start()
    start = time.perf_counter()
    try:
        message = _error(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert expected in message
    assert time.perf_counter() - start < 2.0
    assert peak < 20 * 2**20, f"allocated {peak} bytes before refusing"


def test_huge_claims_are_refused_before_allocating(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    huge = _entry(shape=[10**6, 10**6], nbytes=4 * 10**12)
    path.write_bytes(_assemble({"tensors": [huge]}, bytes(8)))
    _assert_refused_fast(path, "elements (limit")
    big = _entry(shape=[2**26], nbytes=4 * 2**26)  # within the element limit, not in the file
    path.write_bytes(_assemble({"tensors": [big]}, bytes(8)))
    _assert_refused_fast(path, "outside")
    labels = json.dumps({"tensors": [], "labels": [""] * (MAX_LABELS + 1)}).encode()
    path.write_bytes(_assemble(labels, b""))
    _assert_refused_fast(path, f"{MAX_LABELS + 1} labels")


def test_runtime_refuses_huge_network_claims(tmp_path: Path) -> None:
    header, tensors = _runtime_model()
    path = tmp_path / "model.tpn"
    header["network"]["n_labels"] = 10**9
    write_model(path, header, tensors)
    with pytest.raises(ModelFormatError, match="1000000000 outputs but there are 2 labels"):
        runtime.load(path)
    header["labels"] = [str(i) for i in range(10)]
    header["network"].update(n_labels=10, hidden=[10**9])
    write_model(path, header, tensors)
    with pytest.raises(ModelFormatError, match=r"'dense.0.weight' is int8 \[4, 16\], expected"):
        runtime.load(path)


def test_runtime_model_loads(tmp_path: Path) -> None:
    header, tensors = _runtime_model()
    write_model(tmp_path / "model.tpn", header, tensors)
    clf = runtime.load(tmp_path / "model.tpn")
    assert clf.predict(["good", "bad", ""]) == [
        clf.labels[j] for j in clf.predict_proba(["good", "bad", ""]).argmax(1)
    ]


@pytest.mark.parametrize("name", ["dense.0.weight", "dense.1.scale", "dense.1.bias"])
def test_runtime_refuses_missing_tensor(tmp_path: Path, name: str) -> None:
    header, tensors = _runtime_model()
    del tensors[name]
    write_model(tmp_path / "model.tpn", header, tensors)
    with pytest.raises(ModelFormatError, match=f"tensor '{name}' is missing"):
        runtime.load(tmp_path / "model.tpn")


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("dense.0.weight", np.zeros((4, 15), np.int8), r"int8 \[4, 15\], expected int8 \[4, 16\]"),
        ("dense.1.weight", np.zeros((2, 4), np.float32), "expected int8"),
        ("dense.0.scale", np.ones(5, np.float32), r"expected float32 \[4\]"),
        ("dense.1.bias", np.full(2, np.inf, np.float32), "non-finite"),
    ],
)
def test_runtime_refuses_wrong_tensor(
    tmp_path: Path, name: str, value: np.ndarray, expected: str
) -> None:
    header, tensors = _runtime_model()
    tensors[name] = value
    write_model(tmp_path / "model.tpn", header, tensors)
    with pytest.raises(ModelFormatError, match=f"'{name}'.*{expected}"):
        runtime.load(tmp_path / "model.tpn")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"labels": None}, "non-empty 'labels'"),
        ({"labels": ["a", "a"]}, "distinct"),
        ({"network": {"design": "rnn"}}, "unknown network design"),
        ({"network": {"design": "text", "n_bits": 16, "hidden": [0], "n_labels": 2}}, "'hidden'"),
        ({"network": {"design": "text", "n_bits": "16", "hidden": [], "n_labels": 2}}, "'n_bits'"),
        ({"projector": {"num_projections": 2}}, "bad 'projector'"),
        ({"projector": {**Projector(3, 8).get_config()}}, "24 bits"),
        ({"projector": {**Projector(2, 8).get_config(), "seed": -1}}, "seed"),
        ({"multi_label": "yes"}, "'multi_label'"),
        ({"multi_label": True, "thresholds": [0.5]}, "'thresholds'"),
    ],
)
def test_runtime_refuses_bad_header(tmp_path: Path, change: dict, expected: str) -> None:
    header, tensors = _runtime_model()
    header.update(change)
    header = {key: value for key, value in header.items() if value is not None}
    write_model(tmp_path / "model.tpn", header, tensors)
    with pytest.raises(ModelFormatError, match=expected):
        runtime.load(tmp_path / "model.tpn")


def test_bytes_round_trip_matches_the_file(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    header, tensors = _runtime_model()
    write_model(path, header, tensors)
    data = encode_model(header, tensors)
    assert data == path.read_bytes()
    from_bytes, loaded = read_model_bytes(data)
    assert from_bytes == read_model(path)[0]
    assert all(np.array_equal(loaded[name], tensors[name]) for name in tensors)
    texts = ["a short text", "another one", ""]
    clf = runtime.load_bytes(data)
    assert clf.n_bytes == len(data)
    assert np.array_equal(clf.predict_proba(texts), runtime.load(path).predict_proba(texts))


def test_damaged_bytes_are_refused_with_their_name() -> None:
    data = bytearray(encode_model(*_runtime_model()))
    data[-1] ^= 1
    with pytest.raises(ModelFormatError, match=r"^pipe/model\.tpn: checksum mismatch"):
        read_model_bytes(bytes(data), "pipe/model.tpn")
    with pytest.raises(ModelFormatError, match="too small"):
        runtime.load_bytes(b"TEXTPROJ")


def test_unicode_version_is_stored_and_a_mismatch_warns(tmp_path: Path) -> None:
    header, tensors = _runtime_model()
    write_model(tmp_path / "new.tpn", header, tensors)
    assert read_model(tmp_path / "new.tpn")[0]["unicode_version"] == unicodedata.unidata_version
    write_model(tmp_path / "old.tpn", {**header, "unicode_version": "1.1.0"}, tensors)
    with pytest.warns(UserWarning, match=r"Unicode '1\.1\.0'.*this reader has Unicode"):
        runtime.load(tmp_path / "old.tpn")
    assert unicode_mismatch({"labels": []}, "15.0.0") is None  # an old header, without the key


# --- int4 tensors ---------------------------------------------------------------------------


def test_int4_bytes_are_as_documented() -> None:
    """Element 2i in the low nibble of byte i, 2i + 1 in the high one, two's complement; an odd
    count ends in a zero nibble."""
    values = np.array([-8, 7, -1, 0, 1, -2, 5], dtype=np.int8)
    assert pack_int4(values) == bytes([0x78, 0x0F, 0xE1, 0x05])
    assert pack_int4(values.reshape(1, 7)) == pack_int4(values)
    assert pack_int4(np.zeros(0, dtype=np.int8)) == b""
    assert unpack_int4(bytes([0x78, 0x0F, 0xE1, 0x05]), (7,)).tolist() == values.tolist()


@pytest.mark.parametrize("shape", [(1,), (2,), (3,), (7, 5), (4, 6), (3, 5, 3), (0, 4), ()])
def test_int4_round_trip(tmp_path: Path, shape: tuple) -> None:
    rng = np.random.default_rng(len(shape))
    values = rng.integers(-8, 8, size=shape, dtype=np.int8)
    if values.size >= 2:
        values.flat[:2] = (-8, 7)  # both extremes
    tensors = {"q.weight": values, "q.scale": np.ones(3, np.float32), "other": values.copy()}
    path = tmp_path / "model.tpn"
    write_model(path, HEADER, tensors, int4={"q.weight"})
    back = read_model(path)[1]
    assert back["q.weight"].dtype == np.int8 and back["q.weight"].shape == shape
    assert np.array_equal(back["q.weight"], values)
    assert not back["q.weight"].flags.writeable
    assert np.array_equal(back["other"], values)  # not named: stays int8
    table = {t["name"]: t for t in describe_model(path)["tensors"]}
    assert table["q.weight"]["dtype"] == "int4" and table["other"]["dtype"] == "int8"
    assert table["q.weight"]["bytes"] == -(-values.size // 2)
    assert table["other"]["bytes"] == values.size


def test_int4_halves_the_weight_bytes(tmp_path: Path) -> None:
    weights = np.random.default_rng(3).integers(-7, 8, size=(64, 257), dtype=np.int8)
    eight = write_model(tmp_path / "a.tpn", {}, {"w": weights})
    four = write_model(tmp_path / "b.tpn", {}, {"w": weights}, int4={"w"})
    stored = [describe_model(tmp_path / n)["tensors"][0]["bytes"] for n in ("a.tpn", "b.tpn")]
    assert stored == [64 * 257, (64 * 257 + 1) // 2]
    assert eight - four == stored[0] - stored[1]  # the two headers are as long
    assert np.array_equal(read_model(tmp_path / "b.tpn")[1]["w"], weights)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.array([0, 8], dtype=np.int8), "values in 0..8, outside int4's -8..7"),
        (np.array([-9, 1], dtype=np.int8), "values in -9..1, outside int4's -8..7"),
        (np.array([1.0, 2.0], dtype=np.float32), "only int8 tensors can be int4"),
        (np.array([1, 2], dtype=np.int32), "only int8 tensors can be int4"),
    ],
)
def test_int4_writer_refuses_what_does_not_fit(array: np.ndarray, expected: str) -> None:
    with pytest.raises(ValueError, match=expected):
        encode_model({}, {"w": array}, int4={"w"})


def test_int4_writer_refuses_unknown_names() -> None:
    with pytest.raises(ValueError, match="not given: nope"):
        encode_model({}, {"w": np.zeros(2, np.int8)}, int4={"nope"})


def test_int4_padding_nibble_must_be_zero(tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    entry = _entry(dtype="int4", shape=[3], nbytes=2)
    path.write_bytes(_assemble({"tensors": [entry]}, bytes([0x21, 0x03]) + bytes(6)))
    assert read_model(path)[1]["w"].tolist() == [1, 2, 3]
    path.write_bytes(_assemble({"tensors": [entry]}, bytes([0x21, 0x13]) + bytes(6)))
    message = _error(path)
    assert "'w' (int4, 3 elements) has a nonzero padding nibble" in message
    with pytest.raises(ModelFormatError, match="padding nibble"):
        describe_model(path)
    even = _entry(dtype="int4", shape=[4], nbytes=2)  # no padding: every nibble is a value
    path.write_bytes(_assemble({"tensors": [even]}, bytes([0x21, 0xF3]) + bytes(6)))
    assert read_model(path)[1]["w"].tolist() == [1, 2, 3, -1]


@pytest.mark.parametrize("bits", [8, 4])
def test_int4_runtime_model(tmp_path: Path, bits: int) -> None:
    """A 4-bit model (netspec's quantizer, its weights stored as int4) loads and predicts as its
    int8-stored copy: the storage changes bytes, never values."""
    header, tensors = _runtime_model()
    params = {}
    for name, value in tensors.items():
        if name.endswith(".weight"):
            params[name] = netspec.dequantize(tensors, name.rpartition(".")[0])[0]
        elif name.endswith(".bias"):
            params[name] = value
    quantized = netspec.quantize_params(params, bits)
    int4 = netspec.int4_tensors(quantized, bits)
    assert int4 == ({"dense.0.weight", "dense.1.weight"} if bits == 4 else set())
    assert max(np.abs(quantized[n]).max() for n in ("dense.0.weight", "dense.1.weight")) == (
        7 if bits == 4 else 127
    )
    write_model(tmp_path / "packed.tpn", header, quantized, int4=int4)
    write_model(tmp_path / "plain.tpn", header, quantized)
    texts = ["good", "bad", "", "a longer text here"]
    packed = runtime.load(tmp_path / "packed.tpn", n_jobs=1)
    plain = runtime.load(tmp_path / "plain.tpn", n_jobs=1)
    assert np.array_equal(packed.predict_proba(texts), plain.predict_proba(texts))
    sizes = [(tmp_path / f"{n}.tpn").stat().st_size for n in ("packed", "plain")]
    assert (sizes[0] < sizes[1]) == (bits == 4)


@settings(max_examples=200, deadline=None)
@given(
    shape=st.lists(st.integers(0, 9), max_size=3),
    seed=st.integers(0, 2**32 - 1),
)
def test_int4_round_trip_of_any_shape(shape: list[int], seed: int) -> None:
    values = np.random.default_rng(seed).integers(-8, 8, size=shape, dtype=np.int8)
    data = encode_model({}, {"a": values, "b": np.ones(1, np.float32)}, int4={"a"})
    back = read_model_bytes(data)[1]["a"]
    assert back.shape == tuple(shape) and np.array_equal(back, values)
    assert unpack_int4(pack_int4(values), shape).tolist() == values.tolist()


@settings(max_examples=200, deadline=None)
@given(raw=st.binary(max_size=40))
def test_int4_unpack_then_pack_gives_the_bytes_back(raw: bytes) -> None:
    assert pack_int4(unpack_int4(raw, (2 * len(raw),))) == raw
