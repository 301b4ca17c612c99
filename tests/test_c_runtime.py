"""The C runtime against the Python one: normalised text, bits, labels and probabilities on the
bundled corpora and on hostile input, and the same refusals of damaged or hostile model files.

C takes UTF-8 bytes, Python a str: C on ``data`` is compared with Python on
``decode_like_c(data)`` (``textproj.export``). Every batch of texts goes through one process of
``tests/c/driver.c`` built from a ``textproj export`` directory.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import functools
import hashlib
import http.server
import importlib.util
import itertools
import json
import os
import shutil
import struct
import subprocess
import sys
import threading
import unicodedata
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY_CONFIG, need
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_browser import browser  # noqa: F401 (the fixture: Debian's Chromium via Playwright)
from test_damaged_files import DAMAGE

import textproj
from textproj import c_tables, nets, netspec
from textproj.config import FeatureConfig
from textproj.corpora import load_corpus
from textproj.export import WEB_DIR, compile_command, decode_like_c, export_c, export_wasm
from textproj.features import normalize
from textproj.model_file import encode_model
from textproj.projector import Projector

pytestmark = pytest.mark.slow  # builds C programs
DRIVER = Path(__file__).parent / "c" / "driver.c"
BUNDLED = Path(__file__).parents[1] / "app" / "models" / "banking77" / "model.tpn"
CORPORA = ("banking77", "clinc150", "sentiment_sentences", "spamassassin", "udhr_langid")
STRICT = "-std=c99 -Wall -Wextra -Werror"
# Probabilities: C against an exact (float64) evaluation of the same network on the same bits,
# with the first layer as both runtimes compute it (float32, the same floats), within 1e-6; and
# against Python's runtime, which computes in float32 (BLAS sums, float32 exp), within that
# runtime's own rounding: on banking77 it is up to 1.5e-6 from float64, on hostile texts and
# random models with larger logits a few times that.
EXACT_TOLERANCE = 1e-6
PYTHON_TOLERANCE = 1e-5
LABELS = ["alpha", "beta", "gamma", "delta", "epsilon"]


def _random_model(
    path: Path,
    design: str,
    features: FeatureConfig,
    seed: int,
    attention: float = 1.0,
    bits: int = 8,
    network: dict | None = None,
    **header: object,
) -> Path:
    """A model file with random weights (no training) quantized to ``bits`` (4: stored as int4),
    peaked enough to have clear labels; a token model's attention weights are multiplied by
    ``attention``. ``network`` replaces the design's default shape (same n_bits)."""
    rng = np.random.default_rng(seed)
    projector = Projector(4, 16, features=features, seed=seed) if design == "token" else None
    projector = projector or Projector(10, 13, features=features, seed=seed)
    network = network or (
        {"design": "text", "n_bits": 130, "hidden": [24] if seed % 2 else [], "n_labels": 5}
        if design == "text"
        else {
            "design": "token", "n_bits": 64, "bottleneck": 12, "filters": 6,
            "windows": [1, 3], "n_labels": 5,
        }
    )  # fmt: skip
    params = {}
    for prefix, shape in netspec.expected_tensors(network).items():
        params[f"{prefix}.weight"] = rng.standard_normal(shape) * 0.6
        params[f"{prefix}.bias"] = rng.standard_normal(shape[0]) * 0.3
        if prefix.startswith("attention."):
            params[f"{prefix}.weight"] *= attention
    full = {"labels": LABELS, "projector": projector.get_config(), "network": network, **header}
    tensors = netspec.quantize_params(params, bits)
    path.write_bytes(encode_model(full, tensors, int4=netspec.int4_tensors(tensors, bits)))
    return path


def _requantized(model: Path, path: Path, bits: int) -> Path:
    """``model``'s network (its dequantized weights) quantized again to ``bits``."""
    header, tensors = textproj.model_file.read_model(model)
    net = nets.build_projection_net(header["network"], header["train_config"]["weight_bits"])
    net = nets.load_quantized(net, tensors)
    tensors = nets.export_projection_net(net, bits)
    path.write_bytes(encode_model(header, tensors, int4=netspec.int4_tensors(tensors, bits)))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict:
    """Model files of both designs, trained and random, with varied feature settings and caps."""
    root = tmp_path_factory.mktemp("c-models")
    small = FeatureConfig(max_chars=60, max_tokens=7)
    odd = FeatureConfig(word_ngrams=3, skip_grams=2, char_ngram_min=3, char_ngram_max=4,
                        sublinear=True, word_weight=3)  # fmt: skip
    wordy = FeatureConfig(char_ngram_max=0, word_weight=1)
    return {
        "bundled": BUNDLED,
        "tiny-text": tiny_models["text"] / "model.tpn",
        "tiny-token": tiny_models["token"] / "model.tpn",
        "text-caps": _random_model(root / "a.tpn", "text", small, 1),
        "token-caps": _random_model(root / "b.tpn", "token", small, 2),
        "text-odd": _random_model(root / "c.tpn", "text", odd, 4),
        "token-odd": _random_model(root / "d.tpn", "token", odd, 5),
        "text-words": _random_model(root / "e.tpn", "text", wordy, 6),
        "multi-text": _random_model(
            root / "f.tpn", "text", FeatureConfig(), 7, multi_label=True,
            thresholds=[0.5, 0.2, 0.8, 0.5, 0.05],
        ),
        "multi-token": _random_model(root / "g.tpn", "token", small, 9, multi_label=True),
        "token-max": _random_model(root / "h.tpn", "token", odd, 10, network={
            "design": "token", "n_bits": 64, "bottleneck": 12, "filters": 6,
            "windows": [2, 1, 4], "n_labels": 5, "max_pool": True,
        }),
        "token-mean": _random_model(root / "i.tpn", "token", odd, 11, network={
            "design": "token", "n_bits": 64, "bottleneck": 12, "filters": 6,
            "windows": [2, 1, 4], "n_labels": 5, "mean_pool": True,
        }),
        "token-max-mean": _random_model(root / "j.tpn", "token", small, 12, network={
            "design": "token", "n_bits": 64, "bottleneck": 12, "filters": 6,
            "windows": [3, 1], "n_labels": 5, "max_pool": True, "mean_pool": True,
        }),
    }  # fmt: skip


def _build(directory: Path, flags: str) -> Path:
    shutil.copyfile(DRIVER, directory / DRIVER.name)
    sources = ["driver.c", "tp_model.c", "tp_text.c", "tp_unicode.c"]
    cmd = ["cc", *flags.split(), "-I.", "-o", "driver", *sources, "-lm"]
    subprocess.run(cmd, cwd=directory, check=True, capture_output=True)
    return directory / "driver"


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_c(BUNDLED, tmp_path_factory.mktemp("export"))


@pytest.fixture(scope="module")
def driver(export_dir: Path) -> Path:
    return _build(export_dir, f"{STRICT} -O2")


@pytest.fixture(scope="module")
def sanitized_driver(tmp_path_factory: pytest.TempPathFactory, export_dir: Path) -> Path:
    directory = tmp_path_factory.mktemp("asan")
    for path in export_dir.iterdir():
        shutil.copyfile(path, directory / path.name)
    return _build(directory, f"{STRICT} -O1 -g -fsanitize=address,undefined -fno-sanitize-recover")


def _run(driver: Path, model: Path, mode: str, data: list[bytes]) -> bytes:
    stdin = b"".join(struct.pack("<I", len(d)) + d for d in data)
    done = subprocess.run([str(driver), str(model), mode], input=stdin, capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    return done.stdout


def _records(out: bytes, item: int, per: int | None = None) -> list[bytes]:
    """Split (uint32 count, count * item bytes) records; ``per`` fixes the count instead."""
    pos, records = 0, []
    while pos < len(out):
        (n,) = struct.unpack_from("<I", out, pos)
        size = per * item if per is not None else n * item
        records.append(out[pos : pos + 4 + size])
        pos += 4 + size
    return records


def exact_proba(clf, model: Path, words: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """The network the file defines (its weights dequantized to float32) evaluated in float64 on
    ``words`` (Python's bits), after a first layer computed as both runtimes compute it."""
    tensors = textproj.model_file.read_model(model)[1]

    def layer(prefix: str) -> tuple[np.ndarray, np.ndarray]:
        weight, bias = netspec.dequantize(tensors, prefix)
        return weight.astype(np.float64), bias.astype(np.float64)

    shapes = list(netspec.expected_tensors(clf.header["network"]))
    first = clf._first_layer(words, 0, len(words), relu=clf.design == "token" or len(shapes) > 1)
    h = first.astype(np.float64)
    if clf.design == "text":
        for i, prefix in enumerate(shapes[1:], start=2):
            weight, bias = layer(prefix)
            h = bias + h @ weight.T
            h = np.maximum(h, 0) if i < len(shapes) else h
        logits = h
    else:
        windows = clf.header["network"]["windows"]
        pooled = []
        for lo, hi in itertools.pairwise(offsets):
            rows, parts, largest, means = h[lo:hi], [], [], []
            for j, k in enumerate(windows):
                (vw, vb), (aw, ab) = layer(f"value.{j}"), layer(f"attention.{j}")
                if len(rows) == 0:
                    parts.append(vb)
                    largest.append(vb)
                    means.append(vb)
                    continue
                padded = np.vstack([rows, np.zeros((k - 1, rows.shape[1]))])
                n = len(rows)
                value = vb + sum(padded[i : i + n] @ vw[:, :, i].T for i in range(k))
                score = ab + sum(padded[i : i + n] @ aw[:, :, i].T for i in range(k))
                weight = np.exp(score - score.max(axis=0))
                parts.append((weight * value).sum(axis=0) / weight.sum(axis=0))
                largest.append(value.max(axis=0))
                means.append(value.mean(axis=0))
            if clf.header["network"].get("max_pool"):
                parts += largest
            if clf.header["network"].get("mean_pool"):
                parts += means
            pooled.append(np.concatenate(parts))
        weight, bias = layer("output")
        logits = bias + np.array(pooled) @ weight.T
    if clf.multi_label:
        return 1 / (1 + np.exp(-logits))
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def check_parity(driver: Path, model: Path, data: list[bytes]) -> None:
    """C and Python agree on ``data``: normalised text, bits, labels and probabilities."""
    clf = textproj.load(model, n_jobs=1)
    texts = [decode_like_c(d) for d in data]
    max_chars = clf.projector.features.max_chars
    norm = [r[4:] for r in _records(_run(driver, model, "norm", data), 1)]
    expected = [normalize(t, max_chars).encode("utf-8", "surrogatepass") for t in texts]
    assert norm == expected
    n_words = (clf.projector.n_bits + 63) // 64
    if clf.design == "token":
        words, offsets = clf.projector.transform_tokens_words(texts)
    else:
        words, offsets = clf.projector.transform_words(texts), np.arange(len(texts) + 1)
    bits = _records(_run(driver, model, "bits", data), 8 * n_words)
    for i, record in enumerate(bits):
        got = np.frombuffer(record[4:], dtype="<u8").reshape(-1, n_words)
        assert np.array_equal(got, words[offsets[i] : offsets[i + 1]]), (i, texts[i][:80])
    n_labels = len(clf.labels)
    out = _records(_run(driver, model, "predict", data), 4, per=n_labels)
    probs = np.stack([np.frombuffer(r[4:], dtype="<f4") for r in out])
    best = [struct.unpack_from("<i", r)[0] for r in out]
    proba = clf.predict_proba(texts)
    assert np.abs(probs - proba).max() <= PYTHON_TOLERANCE
    assert np.abs(probs - exact_proba(clf, model, words, offsets)).max() <= EXACT_TOLERANCE
    if clf.multi_label:
        assert [list(np.flatnonzero(p >= clf.thresholds)) for p in probs] == [
            list(np.flatnonzero(p >= clf.thresholds)) for p in proba
        ]
    else:
        assert [clf.labels[j] for j in best] == clf.predict(texts)


@pytest.fixture(scope="module")
def example_dir(tmp_path_factory: pytest.TempPathFactory, export_dir: Path) -> Path:
    """The example program ./classify, built by the documented command, warning-free with
    -pedantic too."""
    out = tmp_path_factory.mktemp("example") / "build"
    shutil.copytree(export_dir, out)
    subprocess.run(compile_command() + " -pedantic -Werror", shell=True, cwd=out, check=True)
    return out


def test_export_builds_with_the_documented_command(example_dir: Path) -> None:
    out = example_dir
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c) != "\n"]
    texts = ["I lost my card", "what is the exchange rate today?", "", "".join(spaces), "\u200b",
             "\ufeff", "\u00a0x", *spaces]  # fmt: skip
    lines = "\n".join(texts) + "\n"
    done = subprocess.run(["./classify"], input=lines.encode(), cwd=out, capture_output=True)
    clf = textproj.load(BUNDLED)
    answers = done.stdout.decode().split("\n")
    assert len(answers) == len(texts) + 1 and answers.pop() == ""
    blank = [not text.strip() for text in texts]  # textproj predict's rule: no label
    assert [answer for answer, b in zip(answers, blank, strict=True) if b] == [""] * sum(blank)
    texts = [text for text, b in zip(texts, blank, strict=True) if not b]
    rows = [answer.split("\t") for answer, b in zip(answers, blank, strict=True) if not b]
    assert [r[0] for r in rows] == clf.predict(texts)
    assert np.allclose([float(r[1]) for r in rows], clf.predict_proba(texts).max(1), atol=1e-5)
    from_file = subprocess.run(["./classify", str(BUNDLED)], input=lines.encode(), cwd=out,
                               capture_output=True)  # fmt: skip
    assert from_file.stdout == done.stdout
    readme = (out / "README.md").read_text()
    assert "cc -std=c99" in readme and "an empty line for a blank text" in " ".join(readme.split())
    assert "output that cannot be written) is one `error:` line" in " ".join(readme.split())
    assert "stops at its next write, silently, with exit status 141" in " ".join(readme.split())
    sizes = c_tables.table_bytes(c_tables.build())
    listed = ", ".join(f"{name} {size:,}" for name, size in sizes.items())
    assert f"Its Unicode tables ({sum(sizes.values()):,} bytes: {listed})" in " ".join(
        readme.split()
    )


def test_generated_sources_are_replaced_whole_or_not_at_all(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c_tables.write_sources(tmp_path)
    tables = c_tables.build()
    written = {
        name: (tmp_path / name).read_text() for name in (c_tables.TABLE_FILE, c_tables.SPEC_FILE)
    }
    assert written == {
        c_tables.TABLE_FILE: c_tables.table_source(tables),
        c_tables.SPEC_FILE: c_tables.spec_source(tables),
    }
    for name in written:
        (tmp_path / name).write_text("old")

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left on device"):
        c_tables.write_sources(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(written)
    assert {name: (tmp_path / name).read_text() for name in written} == dict.fromkeys(
        written, "old"
    )


def test_example_program_errors_name_the_file(example_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "empty.tpn").write_bytes(b"")
    (tmp_path / "cut.tpn").write_bytes(BUNDLED.read_bytes()[:-1])
    cases = {
        ("folder",): "error: folder: cannot read: Is a directory\n",
        ("missing.tpn",): "error: missing.tpn: cannot open: No such file or directory\n",
        ("empty.tpn",): "error: empty.tpn: file is empty, too small to be a textproj model\n",
        ("cut.tpn",): "error: cut.tpn: checksum mismatch",
        ("a.tpn", "b"): "error: give at most one model.tpn (the texts come on stdin)\n",
        ("--halp",): "error: unknown option --halp; usage: classify [model.tpn] < texts",
    }
    for args, message in cases.items():
        done = subprocess.run([str(example_dir / "classify"), *args], input=b"I lost my card\n",
                              cwd=tmp_path, capture_output=True)  # fmt: skip
        assert done.returncode in (1, 2) and done.stdout == b""
        assert done.stderr.decode().startswith(message), (args, done.stderr)
    for flag in ("-h", "--help"):  # was "error: --help: cannot open: No such file or directory"
        done = subprocess.run([str(example_dir / "classify"), flag], capture_output=True)
        assert (done.returncode, done.stderr) == (0, b"")
        assert done.stdout.decode().startswith("usage: classify [model.tpn] < texts")


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("lines", [1, 5000], ids=["at-exit", "mid-stream"])
def test_example_program_fails_when_stdout_cannot_be_written(example_dir: Path, lines: int) -> None:
    """Output to a full disk is an error: one line and status 1, whether it fails when the last
    buffer is flushed at exit or while lines are still coming (not a silent exit 0)."""
    texts = b"I lost my card\n\n" * lines
    with open("/dev/full", "wb") as full:
        done = subprocess.run([str(example_dir / "classify")], input=texts, stdout=full,
                              stderr=subprocess.PIPE)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr == b"error: cannot write to stdout: No space left on device\n"


@pytest.mark.parametrize("sigpipe", ["default", "ignored"])
@pytest.mark.parametrize("lines", [1, 1000], ids=["at-exit", "mid-stream"])
def test_example_program_stops_quietly_when_its_reader_goes(
    example_dir: Path, sigpipe: str, lines: int
) -> None:
    """A reader that has closed the pipe (`| head -1`) ends the program at its next write without
    a word, exit status 141 as a shell reports for a coreutils filter there, whether SIGPIPE was
    inherited as default or ignored (was: killed by SIGPIPE, or "error: cannot write to stdout:
    Broken pipe" and 1). Mid-stream, stdin stays open: only the failed write can end it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    with subprocess.Popen([str(example_dir / "classify")], bufsize=0, stdin=subprocess.PIPE,
                          stdout=write_end, stderr=subprocess.PIPE,
                          restore_signals=sigpipe == "default") as program:  # fmt: skip
        os.close(write_end)
        with contextlib.suppress(BrokenPipeError):  # it may end before reading all 15 KB
            program.stdin.write(b"I lost my card\n" * lines)
        if lines == 1:
            program.stdin.close()
        returncode = program.wait(timeout=60)
        stderr = program.stderr.read()
    assert (returncode, stderr) == (141, b"")


def test_driver_without_memory_exits_with_one_line(driver: Path) -> None:
    """The test driver checks its allocations: a text it has no memory for (4 GiB under a 1 GiB
    address-space limit) is one error line and exit 3, not a write through NULL."""
    import resource

    def limit_memory() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    record = b"\xff\xff\xff\xff"  # a text of 2**32 - 1 bytes
    for mode, size in (("predict", 2**32), ("batch1", 2**32 - 1)):  # predict asks one byte more
        done = subprocess.run([str(driver), str(BUNDLED), mode], input=record,
                              capture_output=True, preexec_fn=limit_memory)  # fmt: skip
        assert done.returncode == 3, mode
        assert done.stderr == f"error: out of memory for {size} bytes\n".encode(), mode


@pytest.mark.parametrize("corpus", CORPORA)
def test_every_corpus_test_text(driver: Path, models: dict, corpus: str) -> None:
    data = [t.encode("utf-8", "surrogatepass") for t in load_corpus(corpus, "test").texts]
    for name in ("bundled", "tiny-text", "text-odd", "token-caps", "token-max", "token-mean"):
        check_parity(driver, models[name], data)


HARD_CASES = [
    "", " ", "\0", "a\0b", "\r\n\t", "e\u0301", "\u1e0b\u0323", "q\u0307\u0323",
    "\u1100\u1161\u11a8", "\u1100\u1161", "\uac00\u11a8", "\u1161\u1161\u1100", "각\u11a8",
    "a" + "\u0301" * 29, "a" + "\u0301" * 30, "a" + "\u0301" * 31, "a" + "\u0316\u0301" * 40,
    "a" + "\u0301" * 61, "\u0f73" * 50, "\u0344" * 40, "\ufdfa" * 30, "ß ẞ ﬃ İ ΣΑΣ ς",
    "ｶﾞｷﾞ ㌀ ① ¼ ﬁ", "\u034f" * 3, "\ud800", "a\udfffb", "\ud83d\ude00", "👩‍👩‍👧 👍🏽 🇫🇷 ❤️",
    "مرحبا بالعالم", "שָׁלוֹם", "日本語のテキスト", "中文文本", "한국어 텍스트",
    "\ufeff\u200b\u200d\u2028", "\U000e0041\U000e0042", "\U0010ffff\U000f0000", "x" * 300,
    "é" * 250, "\u0301" * 250 + "e", "Å" + "\u0327" * 100, "\u0958\u0959", "\u2126 \u212b",
]  # fmt: skip
HARD_BYTES = [
    b"\xff\xfe", b"\xc0\xaf", b"\xe2\x82", b"\xe2\x82A", b"\xed\xa0\x80", b"\xed\xa0",
    b"\xed\xbf\xbfz", b"\xf0\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xf0\x9f\x98", b"\x80abc",
    b"caf\xc3", b"\xc3\xa9\xcc", b"\xe0\xa0\x80\xe0\x80", b"\xf5\xf6\xf7",
]  # fmt: skip


def _hard_data() -> list[bytes]:
    return [t.encode("utf-8", "surrogatepass") for t in HARD_CASES] + HARD_BYTES


@pytest.mark.parametrize(
    "name", ["bundled", "tiny-token", "text-caps", "token-caps", "text-odd", "token-odd",
             "text-words", "multi-text", "multi-token", "token-max", "token-mean",
             "token-max-mean"],
)  # fmt: skip
def test_hard_cases(driver: Path, models: dict, name: str) -> None:
    check_parity(driver, models[name], _hard_data())


_pieces = st.one_of(
    st.text(max_size=12),
    st.text(st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=12),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.lists(st.sampled_from("\u0301\u0316\u0323\u0327\u0344\u0f73\u0f71\u0f72\u3099\u302a"),
             min_size=20, max_size=70).map("".join),
    st.lists(st.sampled_from("\u1100\u1112\u1161\u1175\u11a8\u11c2\uac00\ub098"),
             max_size=12).map("".join),
    st.sampled_from(["👩‍👩‍👧", "👍🏽", "🇫🇷", "❤️", "\u200d", "\ufe0f", "日本", "مرحبا",
                     "שָׁ", "ﷺ", "ﬃ", "ß", "İ", "Σ", "\0", "\r\n", "  "]),
)  # fmt: skip
_texts = st.lists(_pieces, max_size=8).map(lambda p: "".join(p).encode("utf-8", "surrogatepass"))
_hostile = st.lists(st.one_of(_texts, _texts, st.binary(max_size=40)), min_size=40, max_size=40)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_hostile)
def test_hostile_input(driver: Path, models: dict, data: list[bytes]) -> None:
    for name in ("bundled", "text-caps", "token-odd", "multi-text"):
        check_parity(driver, models[name], data)


def _megabyte() -> bytes:
    piece = "Ünïcödé 日本語 👩‍👩‍👧 a\u0301\u0316 ﷺ ß مرحبا card lost " * 10
    return (piece * (2**20 // len(piece.encode()) + 1)).encode()[: 2**20] + b"\xff"


def test_a_megabyte_text(driver: Path, models: dict) -> None:
    data = [_megabyte(), b"x" * 2**20, ("\u0301" * 2**18).encode()]
    for name in ("bundled", "text-odd"):
        check_parity(driver, models[name], data)


def test_sanitizers_find_nothing(sanitized_driver: Path, models: dict) -> None:
    data = [*_hard_data(), _megabyte()]
    data += [t.encode() for t in load_corpus("sentiment_sentences", "test").texts[:100]]
    for name in ("bundled", "text-odd", "multi-token", "text-caps"):
        check_parity(sanitized_driver, models[name], data)


BATCH_SIZES = (1, 7, 4096)  # one text, odd, larger than every corpus's test split


def test_public_functions_take_null_pointers(sanitized_driver: Path) -> None:
    """No public function crashes on a NULL pointer (tp_n_labels(NULL) once did): each answers
    0, NULL or -1, under AddressSanitizer and UBSan."""
    done = subprocess.run([str(sanitized_driver), str(BUNDLED), "null"], capture_output=True)
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-2000:]
    assert done.stdout.decode() == (
        "n_labels 0 label NULL/0 past NULL/0 multi 0 threshold 0/0 workspace 0 batch 0 words 0 "
        "rows 0 predict -1/-1/-1/-1 batch -1 bits 0/0/0/0 normalize 0/0/0/0 load NULL/1 "
        "memory 0\n"
    )


def check_batches(driver: Path, model: Path, data: list[bytes]) -> None:
    """tp_predict_batch gives byte for byte what tp_predict gives, at every batch size (so the
    parity of tp_predict with Python holds for it), and its labels are Python's."""
    expected = _run(driver, model, "predict", data)
    for size in BATCH_SIZES:
        assert _run(driver, model, f"batch{size}", data) == expected, size


@pytest.mark.parametrize("corpus", CORPORA)
def test_batches_on_every_corpus(driver: Path, models: dict, corpus: str) -> None:
    data = [t.encode("utf-8", "surrogatepass") for t in load_corpus(corpus, "test").texts]
    for name in ("bundled", "token-odd", "text-odd"):
        check_batches(driver, models[name], data)
    clf = textproj.load(models["bundled"], n_jobs=1)
    out = _records(_run(driver, models["bundled"], "batch64", data), 4, per=len(clf.labels))
    best = [clf.labels[struct.unpack_from("<i", r)[0]] for r in out]
    assert best == clf.predict([decode_like_c(d) for d in data])


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=_hostile)
def test_batches_on_hostile_input(driver: Path, models: dict, data: list[bytes]) -> None:
    data = [b"", *data, b"", b""]  # empty texts at the ends of a batch and between
    data[len(data) // 2 : len(data) // 2] = [b""]
    for name in ("bundled", "token-caps", "multi-token", "text-caps"):
        check_batches(driver, models[name], data)


def test_batches_under_the_sanitizers(sanitized_driver: Path, models: dict) -> None:
    data = [*_hard_data(), b"", _megabyte(), b""]
    data += [t.encode() for t in load_corpus("sentiment_sentences", "test").texts[:50]]
    for name in ("bundled", "token-odd", "multi-token", "text-odd"):
        check_batches(sanitized_driver, models[name], data)


@pytest.fixture(scope="module")
def small_cache_drivers(tmp_path_factory: pytest.TempPathFactory, export_dir: Path) -> list[Path]:
    """Drivers with the token cache off, and with one set of 4 rows (so that new tokens keep
    replacing rows that the window still reads)."""
    drivers = []
    for entries in (0, 4):
        directory = tmp_path_factory.mktemp(f"cache{entries}")
        for path in export_dir.iterdir():
            shutil.copyfile(path, directory / path.name)
        sizes = f"-DTP_TOKEN_CACHE_ENTRIES={entries} -DTP_BATCH_CACHE_ENTRIES={entries}"
        drivers.append(_build(directory, f"{STRICT} -O2 {sizes}"))
    return drivers


def test_cache_sizes_give_the_same_bytes(
    driver: Path, small_cache_drivers: list[Path], models: dict
) -> None:
    data = [t.encode() for t in load_corpus("sentiment_sentences", "test").texts] + _hard_data()
    for name in ("bundled", "token-odd", "multi-token"):
        expected = _run(driver, models[name], "predict", data)
        for small in small_cache_drivers:
            assert _run(small, models[name], "predict", data) == expected
            assert _run(small, models[name], "batch7", data) == expected


def test_compiler_flags_change_no_bit(driver: Path, export_dir: Path, tmp_path: Path, models):
    """-O3 -march=native (the machine's widest vectors) gives the bytes -O2 gives: ISO C mode
    contracts no multiply-adds and the code sums in a fixed order."""
    for path in export_dir.iterdir():
        shutil.copyfile(path, tmp_path / path.name)
    native = _build(tmp_path, f"{STRICT} -O3 -march=native")
    data = [t.encode() for t in load_corpus("udhr_langid", "test").texts] + _hard_data()
    for name in ("bundled", "token-odd", "text-odd", "multi-text"):
        assert _run(native, models[name], "batch64", data) == _run(
            driver, models[name], "predict", data
        )


@pytest.mark.parametrize(
    ("attention", "max_pool", "mean_pool"),
    [(12.0, False, False), (30.0, False, False), (12.0, True, False), (30.0, True, True)],
)
def test_large_attention_logits(
    driver: Path, attention: float, max_pool: bool, mean_pool: bool, tmp_path: Path
) -> None:
    """Texts with attention logits beyond the fast path's range take the exact path (x12: 88 of
    these 400 texts have such a token, x30: all): the same parity, in batches too."""
    network = {
        "design": "token", "n_bits": 64, "bottleneck": 12, "filters": 6, "windows": [1, 3],
        "n_labels": 5, "max_pool": max_pool, "mean_pool": mean_pool,
    }  # fmt: skip
    model = _random_model(tmp_path / "m.tpn", "token", FeatureConfig(), 3, attention, 8, network)
    data = [t.encode() for t in load_corpus("banking77", "test").texts[:400]] + _hard_data()
    check_parity(driver, model, data)
    check_batches(driver, model, data)


def _refusal(driver: Path, path: Path) -> str:
    done = subprocess.run([str(driver), str(path), "predict"], input=b"", capture_output=True)
    assert done.returncode == 2, done.stderr
    return done.stderr.decode()


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damaged_files_are_refused(driver: Path, kind: str, tmp_path: Path) -> None:
    damage, expected = DAMAGE[kind]
    path = tmp_path / "model.tpn"
    path.write_bytes(damage(BUNDLED.read_bytes()))
    message = _refusal(driver, path)
    assert message.startswith("error ") and expected in message


def _hostile_header(change: str) -> tuple[dict, dict]:
    header, tensors = textproj.model_file.read_model(BUNDLED)
    tensors = dict(tensors)
    network, projector = header["network"], header["projector"]
    if change == "duplicate labels":
        header["labels"] = ["a"] * len(header["labels"])
    elif change == "label count":
        header["labels"] = header["labels"][:-1]
    elif change == "huge bottleneck":
        network["bottleneck"] = 10**9
    elif change == "bool filters":
        network["filters"] = True
    elif change == "no windows":
        network["windows"] = []
    elif change == "unknown design":
        network["design"] = "lstm"
    elif change == "missing tensor":
        del tensors["output.bias"]
    elif change == "non-finite scale":
        tensors["output.scale"] = np.full_like(tensors["output.scale"], np.inf)
    elif change == "unknown feature":
        projector["features"]["colour"] = 1
    elif change == "feature bound":
        projector["features"]["max_chars"] = 10**6
    elif change == "float max_tokens":
        projector["features"]["max_tokens"] = 10.0
    elif change == "negative seed":
        projector["seed"] = -1
    elif change == "bit count":
        projector["num_projections"] = 8
    elif change == "thresholds":
        header.update(multi_label=True, thresholds=[0.5, "x"])
    elif change == "multi_label type":
        header["multi_label"] = 1
    elif change == "max_pool type":
        network["max_pool"] = 1
    elif change == "max_pool width":  # the output layer keeps the width of the other pooling
        network["max_pool"] = not network.get("max_pool", False)
    elif change == "mean_pool type":
        network["mean_pool"] = "yes"
    elif change == "mean_pool width":
        network["mean_pool"] = True
    return header, tensors


HOSTILE_HEADERS = [
    "duplicate labels", "label count", "huge bottleneck", "bool filters", "no windows",
    "unknown design", "missing tensor", "non-finite scale", "unknown feature", "feature bound",
    "float max_tokens", "negative seed", "bit count", "thresholds", "multi_label type",
    "max_pool type", "max_pool width", "mean_pool type", "mean_pool width",
]  # fmt: skip


@pytest.mark.parametrize("change", HOSTILE_HEADERS)
def test_hostile_headers_are_refused_by_both(driver: Path, change: str, tmp_path: Path) -> None:
    path = tmp_path / "model.tpn"
    path.write_bytes(encode_model(*_hostile_header(change)))
    with pytest.raises(textproj.ModelFormatError):
        textproj.load(path)
    assert _refusal(driver, path).startswith("error ")


def _with_header(raw_header: bytes) -> bytes:
    """A model file whose header is ``raw_header`` verbatim (and a correct checksum)."""
    import hashlib

    raw_header += b" " * (-(16 + len(raw_header)) % 8)
    body = b"TEXTPROJ" + struct.pack("<II", 1, len(raw_header)) + raw_header
    return body + hashlib.sha256(body).digest()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b'{"tensors": [], "a": 1, "a": 2}', "duplicate key"),
        (b'{"tensors": [], "\\u0061": 1, "a": 2}', "duplicate key"),
        (b'{"tensors": [], "x": NaN}', "not valid JSON"),
        (b'{"tensors": [], "x": 01}', "not valid JSON"),
        (b'{"tensors": [], "x": "\xff"}', "not valid JSON"),
        (b'{"tensors": [], "x": "\xed\xa0\x80"}', "not valid JSON"),
        (b'{"tensors": [], "x": "a\tb"}', "not valid JSON"),
        (b'{"tensors": [], "x": [1, 2,]}', "not valid JSON"),
        (b'["tensors"]', "not a JSON object"),
        (b'{"tensors": {}}', "'tensors' list"),
        (b'{"tensors": [{"name": "w"}]}', "exactly the keys"),
    ],
)
def test_bad_json_is_refused_by_both(driver: Path, header: bytes, expected: str, tmp_path: Path):
    path = tmp_path / "model.tpn"
    path.write_bytes(_with_header(header))
    with pytest.raises(textproj.ModelFormatError, match=expected):
        textproj.load(path)
    assert expected in _refusal(driver, path)


def test_unicode_version_mismatch_is_refused(driver: Path, tmp_path: Path) -> None:
    header, tensors = textproj.model_file.read_model(BUNDLED)
    path = tmp_path / "model.tpn"
    path.write_bytes(encode_model({**header, "unicode_version": "1.1.0"}, dict(tensors)))
    assert "another Unicode version" in _refusal(driver, path)
    assert f'"{unicodedata.unidata_version}"' in (driver.parent / "tp_unicode.c").read_text()


def test_tiny_config_models_are_real(models: dict) -> None:
    """The trained fixtures are the conftest's tiny ones (so the parity covers trained weights)."""
    header = textproj.model_file.read_model(models["tiny-text"])[0]
    assert header["projector"]["num_projections"] == TINY_CONFIG["num_projections"]
    assert dataclasses.asdict(FeatureConfig()) == header["projector"]["features"]


# --- WebAssembly: node and the static page in Chromium ------------------------------------

NODE_SCRIPT = Path(__file__).parent / "c" / "node_predict.js"


@pytest.fixture(scope="module")
def web_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need(importlib.util.find_spec("ziglang") is not None, "ziglang is not installed")
    return export_wasm(BUNDLED, tmp_path_factory.mktemp("web"))


def test_wasm_in_node_matches_python(web_dir: Path) -> None:
    need(shutil.which("node") is not None, "node is not installed")
    data = [t.encode() for t in load_corpus("banking77", "test").texts[:400]] + _hard_data()
    stdin = json.dumps([base64.b64encode(d).decode() for d in data])
    done = subprocess.run(["node", str(NODE_SCRIPT), str(web_dir)], input=stdin.encode(),
                          capture_output=True, check=True)  # fmt: skip
    result = json.loads(done.stdout)
    clf = textproj.load(BUNDLED)
    assert result["labels"] == clf.labels
    probs = np.asarray(result["probabilities"], dtype=np.float32)
    texts = [decode_like_c(d) for d in data]
    assert np.abs(probs - clf.predict_proba(texts)).max() <= PYTHON_TOLERANCE
    assert [clf.labels[j] for j in probs.argmax(1)] == clf.predict(texts)
    assert (web_dir / "textproj.wasm").stat().st_size < 400_000
    readme = (web_dir / "README.md").read_text()
    assert "python -m http.server --directory ." in readme and "Textproj.create(" in readme


def test_wasm_survives_a_failed_allocation(web_dir: Path) -> None:
    """A text too large for the wasm heap is an error, and the classifier goes on as before
    (it once wrote the text at address 0, over C's heap, and answered wrongly ever after)."""
    need(shutil.which("node") is not None, "node is not installed")
    script = Path(__file__).parent / "c" / "node_alloc_failure.js"
    done = subprocess.run(["node", str(script), str(web_dir)], capture_output=True, check=True)
    result = json.loads(done.stdout)
    size = 64 << 20
    assert result["error"] == f"textproj: cannot allocate {size} bytes for a text of {size} bytes"
    assert result["after"] == result["before"]
    assert result["before"][0] == textproj.load(BUNDLED).predict(["I lost my card"])[0]


def test_wasm_page_and_python_agree_on_blank_texts() -> None:
    """Textproj.isBlank, by which the page asks for a text, is Python's ``not text.strip()``."""
    need(shutil.which("node") is not None, "node is not installed")
    spaces = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    texts = ["", "".join(spaces), "\u200b", "\ufeff", "\u00a0x", " a ", "\x1b", *spaces]
    script = "const T = require(process.argv[1]); process.stdout.write(JSON.stringify("
    script += "JSON.parse(require('fs').readFileSync(0, 'utf8')).map(T.isBlank)))"
    command = ["node", "-e", script, str(WEB_DIR / "textproj.js")]
    done = subprocess.run(
        command, input=json.dumps(texts).encode(), capture_output=True, check=True
    )
    assert json.loads(done.stdout) == [not text.strip() for text in texts]


@pytest.fixture(scope="module")
def web_server(web_dir: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(web_dir))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_page_classifies_as_you_type(web_server: str, browser) -> None:  # noqa: F811
    from playwright.sync_api import expect

    clf = textproj.load(BUNDLED)
    page = browser.new_page()
    page.goto(f"{web_server}/index.html")
    default = page.locator("#text").input_value()
    first = page.locator("#labels .row").first
    expect(first).to_have_attribute("data-label", clf.predict([default])[0], timeout=30_000)
    for text in ("what is the exchange rate for euros?", "my top up did not go through"):
        page.locator("#text").fill(text)
        expect(first).to_have_attribute("data-label", clf.predict([text])[0], timeout=30_000)
        shown = float(first.locator("span").nth(2).inner_text())
        assert abs(shown - clf.predict_proba([text]).max()) < 1e-3
    expect(page.locator("#labels .row")).to_have_count(5)
    assert "77 labels" in page.locator("#status").inner_text()
    page.locator("#text").fill(" \u3000\n")  # a blank text: the page asks for one, no label
    expect(page.locator("#labels .hint")).to_have_text("Enter a text to classify.")
    expect(page.locator("#labels .row")).to_have_count(0)
    page.locator("#text").fill("my top up did not go through")
    expect(first).to_have_attribute("data-label", clf.predict(["my top up did not go through"])[0])
    page.close()


def test_cli_export(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from textproj.cli import app

    runner = CliRunner()
    done = runner.invoke(app, ["export", str(BUNDLED), "--c", str(tmp_path / "c")])
    assert done.exit_code == 0, done.output
    assert {"textproj.h", "tp_unicode.c", "model_data.c", "Makefile"} <= {
        p.name for p in (tmp_path / "c").iterdir()
    }
    assert runner.invoke(app, ["export", str(BUNDLED)]).exit_code == 2  # no --c, no --wasm
    damaged = tmp_path / "model.tpn"
    damaged.write_bytes(BUNDLED.read_bytes()[:-1])
    refused = runner.invoke(app, ["export", str(damaged), "--c", str(tmp_path / "d")])
    assert refused.exit_code == 1 and "checksum" in refused.output
    assert not (tmp_path / "d").exists()
    for option in ("--c", "--wasm"):
        a_file = runner.invoke(app, ["export", str(BUNDLED), option, str(damaged)])
        assert a_file.exit_code == 1
        assert f"error: {option} {damaged}: exists and is not a directory" in a_file.output


def test_cli_export_without_zig_writes_no_c_export_either(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--wasm's compiler is checked before --c's export is written (was: the C export written,
    then the missing compiler refused)."""
    from typer.testing import CliRunner

    from textproj.cli import app

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "ziglang" else find_spec(name, *a),
    )
    args = ["export", str(BUNDLED), "--c", str(tmp_path / "c"), "--wasm", str(tmp_path / "w")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert (
        result.stderr == "error: textproj export --wasm needs zig's compiler: pip install ziglang\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "c").exists() and not (tmp_path / "w").exists()


def test_cli_export_refuses_what_it_would_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from textproj.cli import app

    runner = CliRunner()
    users = tmp_path / "users"
    users.mkdir()
    for name in ("README.md", "Makefile", "index.html"):
        (users / name).write_text(f"my {name}", encoding="utf-8")
    other_run = tmp_path / "other-run"
    other_run.mkdir()
    (other_run / "model.tpn").write_bytes(b"another run's model")
    run = tmp_path / "run"
    run.mkdir()
    (run / "model.tpn").write_bytes(BUNDLED.read_bytes())
    (tmp_path / "a-file").write_text("mine", encoding="utf-8")
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / "checkpoint.pt").write_bytes(b"an interrupted run's checkpoint")
    not_users = "holds files that are not a textproj {kind} export ({files}), and a {kind} " \
        "export replaces its output directory whole; give a new or empty directory, or " \
        "replace it with --force"  # fmt: skip
    cases = [
        (["--c", users], not_users.format(kind="C", files="Makefile, README.md, index.html")),
        (
            ["--wasm", users],
            not_users.format(kind="WebAssembly", files="Makefile, README.md, index.html"),
        ),
        (["--wasm", other_run], not_users.format(kind="WebAssembly", files="model.tpn")),
        (
            ["--c", tmp_path / "a-file" / "c"],
            f"{tmp_path / 'a-file'} is a file, not a directory; give another path",
        ),
        (
            ["--c", interrupted],
            "holds an interrupted run's checkpoint.pt, and a C export replaces its output "
            "directory whole; give another output directory, or replace it with --force",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, ["export", str(BUNDLED), *map(str, args)])
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()) == f"error: {args[0]} {args[1]}: {message}"
    for option, kind in (("--c", "C"), ("--wasm", "WebAssembly")):
        into_the_run = runner.invoke(app, ["export", str(run), option, str(run), "--force"])
        assert into_the_run.exit_code == 1
        assert " ".join(into_the_run.stderr.split()) == (
            f"error: {option} {run}: holds the input {run / 'model.tpn'}, and a {kind} export "
            "replaces its output directory whole; give another output directory"
        )
    monkeypatch.chdir(tmp_path)  # for ".": were the check to fail, only tmp_path is lost
    here = runner.invoke(app, ["export", str(BUNDLED), "--c", "."])
    assert here.exit_code == 1
    assert " ".join(here.stderr.split()) == (
        "error: --c .: is the current directory or holds it, and a C export replaces its output "
        "directory whole; give a new or empty directory"
    )
    assert (interrupted / "checkpoint.pt").read_bytes() == b"an interrupted run's checkpoint"
    same = runner.invoke(app, ["export", str(BUNDLED), "--c", "x", "--wasm", "./x"])
    assert same.exit_code == 2
    assert same.stderr == "error: --c and --wasm name the same directory (x); give each its own\n"
    for name in ("README.md", "Makefile", "index.html"):
        assert (users / name).read_text(encoding="utf-8") == f"my {name}"
    assert (other_run / "model.tpn").read_bytes() == b"another run's model"
    assert (run / "model.tpn").read_bytes() == BUNDLED.read_bytes()
    assert not (tmp_path / "x").exists()


def test_cli_export_replaces_its_own_export_and_with_force_any_directory(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from textproj.cli import app

    runner = CliRunner()
    c = tmp_path / "c"
    assert runner.invoke(app, ["export", str(BUNDLED), "--c", str(c)]).exit_code == 0
    exported = sorted(p.name for p in c.iterdir())
    (c / "classify").write_bytes(b"a build of the previous export")
    again = runner.invoke(app, ["export", str(BUNDLED), "--c", str(c)])  # no --force needed
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in c.iterdir()) == exported  # replaced whole
    users = tmp_path / "users"
    users.mkdir()
    (users / "README.md").write_text("mine", encoding="utf-8")
    forced = runner.invoke(app, ["export", str(BUNDLED), "--c", str(users), "--force"])
    assert forced.exit_code == 0, forced.output
    assert sorted(p.name for p in users.iterdir()) == exported
    assert (users / "model_data.c").read_text() == (c / "model_data.c").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c", "users"]  # no staging left


def _reseal(raw: bytes) -> bytes:
    """``raw`` with its checksum recomputed, so that the damage reaches the header checks."""
    import hashlib

    return raw[:-32] + hashlib.sha256(raw[:-32]).digest()


@settings(max_examples=150, deadline=None)
@given(flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
                      min_size=1, max_size=4))  # fmt: skip
def test_mangled_headers_get_the_same_verdict(sanitized_driver: Path, flips: list) -> None:
    raw = bytearray(BUNDLED.read_bytes())
    header_end = 16 + struct.unpack("<I", raw[12:16])[0]
    for where, xor in flips:
        raw[16 + int(where * (header_end - 16))] ^= xor
    path = sanitized_driver.parent / "mangled.tpn"
    path.write_bytes(_reseal(bytes(raw)))
    done = subprocess.run([str(sanitized_driver), str(path), "predict"], input=b"\0\0\0\0",
                          capture_output=True)  # fmt: skip
    assert done.returncode in (0, 2), done.stderr.decode(errors="replace")[-3000:]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            textproj.load(path)
        python_accepts = True
    except textproj.ModelFormatError:
        python_accepts = False
    if python_accepts and any("written with Unicode" in str(w.message) for w in caught):
        # another unicode_version: Python warns, C refuses (docs/model-format.md says so)
        assert done.stderr.startswith(b"error 11: model written with another Unicode version")
        return
    assert (done.returncode == 0) == python_accepts, done.stderr


@pytest.mark.parametrize("change", HOSTILE_HEADERS)
def test_hostile_headers_under_the_sanitizers(sanitized_driver: Path, change: str, tmp_path):
    path = tmp_path / "model.tpn"
    path.write_bytes(encode_model(*_hostile_header(change)))
    assert _refusal(sanitized_driver, path).startswith("error ")


# --- int4 weights -------------------------------------------------------------------------

# Shapes whose weights have odd entry counts (23 * 5, 13 * 5 * 3): the padding nibble is used.
ODD_NETWORKS = {
    "text": {"design": "text", "n_bits": 130, "hidden": [23], "n_labels": 5},
    "token": {
        "design": "token", "n_bits": 64, "bottleneck": 13, "filters": 5, "windows": [3, 2],
        "n_labels": 5,
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def bit_models(tmp_path_factory: pytest.TempPathFactory, tiny_models: dict[str, Path]) -> dict:
    """(name, bits) -> a model file whose layer weights have ``bits`` bits (4: stored as int4):
    the bundled and tiny trained models quantized again, and random ones of odd shapes."""
    root = tmp_path_factory.mktemp("bit-models")
    trained = {
        "bundled": BUNDLED,
        "tiny-text": tiny_models["text"] / "model.tpn",
        "tiny-token": tiny_models["token"] / "model.tpn",
    }
    out = {}
    for bits in (8, 4):
        for name, model in trained.items():
            out[name, bits] = _requantized(model, root / f"{name}-{bits}.tpn", bits)
        for seed, design in enumerate(ODD_NETWORKS):
            out[f"odd-{design}", bits] = _random_model(
                root / f"odd-{design}-{bits}.tpn", design, FeatureConfig(), 20 + seed,
                bits=bits, network=ODD_NETWORKS[design],
            )  # fmt: skip
    return out


def _weight_dtypes(model: Path) -> set[str]:
    table = textproj.model_file.describe_model(model)["tensors"]
    return {t["dtype"] for t in table if t["name"].endswith(".weight")}


@pytest.mark.parametrize("bits", [8, 4])
def test_parity_at_both_weight_widths(driver: Path, bit_models: dict, bits: int) -> None:
    data = [t.encode() for t in load_corpus("banking77", "test").texts[:300]] + _hard_data()
    names = sorted({name for name, b in bit_models if b == bits})
    for name in names:
        model = bit_models[name, bits]
        assert _weight_dtypes(model) == {"int4" if bits == 4 else "int8"}
        check_parity(driver, model, data)
        check_batches(driver, model, data)


def test_int4_halves_the_bundled_weights(bit_models: dict) -> None:
    def weight_bytes(model: Path) -> int:
        table = textproj.model_file.describe_model(model)["tensors"]
        return sum(t["bytes"] for t in table if t["name"].endswith(".weight"))

    eight, four = (weight_bytes(bit_models["bundled", bits]) for bits in (8, 4))
    assert weight_bytes(BUNDLED) == four  # the bundled model has the default int4 weights
    assert four == eight // 2  # every bundled weight has an even entry count
    assert bit_models["bundled", 8].stat().st_size - BUNDLED.stat().st_size > 0.45 * eight


def _edit(raw: bytes, header_change=None, blob_change=None) -> bytes:
    """``raw`` with its header JSON and/or blob changed, re-padded and resealed."""
    header_len = struct.unpack("<I", raw[12:16])[0]
    header = json.loads(raw[16 : 16 + header_len])
    blob = bytearray(raw[16 + header_len : -32])
    if header_change:
        header_change(header)
    if blob_change:
        blob_change(header, blob)
    text = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-(16 + len(text)) % 8)
    body = raw[:12] + struct.pack("<I", len(text)) + text + bytes(blob)
    return body + hashlib.sha256(body).digest()


def _entry(header: dict, name: str) -> dict:
    return next(e for e in header["tensors"] if e["name"] == name)


def _set_padding(header: dict, blob: bytearray) -> None:
    entry = _entry(header, "dense.1.weight")  # 5 x 23 = 115 entries
    blob[entry["offset"] + entry["nbytes"] - 1] |= 0x10


INT4_DAMAGE = {
    "padding nibble": (None, _set_padding, "padding nibble"),
    "int8 nbytes": (lambda h: _entry(h, "dense.1.weight").update(nbytes=115), None, "nbytes"),
    "one byte short": (lambda h: _entry(h, "dense.0.weight").update(nbytes=1494), None, "nbytes"),
    "unknown dtype": (lambda h: _entry(h, "dense.0.weight").update(dtype="int2"), None, "dtype"),
}


@pytest.mark.parametrize("kind", list(INT4_DAMAGE))
def test_damaged_int4_is_refused_by_both(
    sanitized_driver: Path, bit_models: dict, kind: str, tmp_path: Path
) -> None:
    header_change, blob_change, expected = INT4_DAMAGE[kind]
    path = tmp_path / "model.tpn"
    path.write_bytes(_edit(bit_models["odd-text", 4].read_bytes(), header_change, blob_change))
    with pytest.raises(textproj.ModelFormatError, match=expected):
        textproj.load(path)
    message = _refusal(sanitized_driver, path)
    assert message.startswith("error 8: ") and expected in message


def test_int4_spelled_with_escapes_loads_in_both(
    sanitized_driver: Path, bit_models: dict, tmp_path: Path
) -> None:
    """A header may spell "int4" with JSON escapes: the C loader's memory bound allows for it."""
    raw = _edit(bit_models["bundled", 4].read_bytes())
    header_len = struct.unpack("<I", raw[12:16])[0]
    text = raw[16 : 16 + header_len].replace(b'"int4"', b'"\\u0069nt4"')
    assert b"int4" not in text
    text += b" " * (-(16 + len(text)) % 8)
    body = raw[:12] + struct.pack("<I", len(text)) + text + raw[16 + header_len : -32]
    path = tmp_path / "model.tpn"
    path.write_bytes(body + hashlib.sha256(body).digest())
    data = [t.encode() for t in load_corpus("banking77", "test").texts[:50]] + _hard_data()
    check_parity(sanitized_driver, path, data)
    expected = _run(sanitized_driver, bit_models["bundled", 4], "predict", data)
    assert _run(sanitized_driver, path, "predict", data) == expected


def test_int4_under_the_sanitizers(sanitized_driver: Path, bit_models: dict) -> None:
    data = [*_hard_data(), _megabyte()]
    for name in ("bundled", "tiny-text", "odd-text", "odd-token"):
        check_parity(sanitized_driver, bit_models[name, 4], data)
        check_batches(sanitized_driver, bit_models[name, 4], data)


def test_int4_wasm_in_node_matches_python(bit_models: dict, tmp_path: Path) -> None:
    need(importlib.util.find_spec("ziglang") is not None, "ziglang is not installed")
    need(shutil.which("node") is not None, "node is not installed")
    model = bit_models["bundled", 4]
    web = export_wasm(model, tmp_path / "web")
    data = [t.encode() for t in load_corpus("banking77", "test").texts[:200]] + _hard_data()
    stdin = json.dumps([base64.b64encode(d).decode() for d in data])
    done = subprocess.run(["node", str(NODE_SCRIPT), str(web)], input=stdin.encode(),
                          capture_output=True, check=True)  # fmt: skip
    probs = np.asarray(json.loads(done.stdout)["probabilities"], dtype=np.float32)
    clf = textproj.load(model)
    texts = [decode_like_c(d) for d in data]
    assert np.abs(probs - clf.predict_proba(texts)).max() <= PYTHON_TOLERANCE
    assert [clf.labels[j] for j in probs.argmax(1)] == clf.predict(texts)
