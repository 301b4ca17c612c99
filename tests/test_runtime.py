"""Tests for textproj.runtime: numpy forward passes equal the torch networks, without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from textproj import netspec, runtime  # noqa: E402
from textproj.config import FeatureConfig  # noqa: E402
from textproj.errors import ConfigError, TextprojError  # noqa: E402
from textproj.features import tokens  # noqa: E402
from textproj.model_file import ModelFormatError, describe_model, write_model  # noqa: E402
from textproj.nets import (  # noqa: E402
    TextProjectionNet,
    TokenProjectionNet,
    export_projection_net,
    load_quantized,
    network_config,
)
from textproj.projector import Projector  # noqa: E402

TEXTS = [
    "",
    "   ",
    "\n\t",
    "hi",
    "hello",
    "?",
    "!!!",
    "🙂",
    "日本語",
    "a",
    "I lost my card",
    "i LOST my CARD!!",
    "How do I top up my account using a credit card?",
    "why was my transfer declined",
    "Why was my transfer declined?",
    "can I change my PIN at an ATM",
    "the exchange rate looks wrong on my statement",
    "card payment didn't go through, what happened",
    "refund not showing up",
    "Où est ma carte ? Elle n'est pas arrivée.",
    "¿Dónde está mi tarjeta?",
    "Wo ist meine Karte?",
    "Почему мой перевод отклонён?",
    "私のカードはどこですか",
    "카드가 도착하지 않았어요",
    "لماذا تم رفض التحويل",
    "emoji only 🙂🙂🙂 and text",
    "numbers 12345 and 3.14 and 1,000,000",
    "e-mail: someone@example.com, url: https://example.com/a?b=c",
    "tab\tseparated\twords",
    "line one\nline two\nline three",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "repeat " * 40,
    "one two",
    "one two three",
    "x" * 300,
    "ＦＵＬＬＷＩＤＴＨ text",
    "Straße STRASSE strasse",
    "pending top-up",
    "top up pending",
    "verify my identity",
    "my card was swallowed by the machine",
    "cancel transfer",
    "beneficiary not allowed",
    "what currencies can I hold",
    "disposable virtual card",
    "Is there a fee for that?",
    "contactless not working",
    "I got charged twice for the same thing at the supermarket yesterday evening",
    "lost or stolen phone",
    " ".join(f"word{i}" for i in range(120)),
]
LABELS = ["alpha", "beta", "gamma", "delta", "epsilon"]
FEATURES = FeatureConfig(max_tokens=100)


def _scale_up(net: torch.nn.Module, factor: float) -> torch.nn.Module:
    """Spread the random weights so that probabilities are far from uniform."""
    with torch.no_grad():
        for param in net.parameters():
            param.mul_(factor)
    return net


def _save(
    path: Path,
    net: torch.nn.Module,
    projector: Projector,
    labels: list[str],
    bits: int = 8,
    **extra: object,
) -> dict[str, np.ndarray]:
    net.weight_bits = bits  # its forward then rounds to the grid it is exported on (a no-op)
    tensors = export_projection_net(net)
    header = {
        "labels": labels,
        "projector": projector.get_config(),
        "network": network_config(net),
        **extra,
    }
    write_model(path, header, tensors, int4=netspec.int4_tensors(tensors, bits))
    load_quantized(net, tensors)
    return tensors


def _torch_logits(net: torch.nn.Module, projector: Projector, texts: list[str]) -> np.ndarray:
    with torch.no_grad():
        if isinstance(net, TextProjectionNet):
            bits = projector.transform(texts)
            return net(torch.from_numpy(bits.astype(np.float32))).numpy()
        rows, offsets = projector.transform_tokens(texts)
        lengths = torch.from_numpy(np.diff(offsets))
        return net(torch.from_numpy(rows.astype(np.float32)), lengths).numpy()


def _make(design: str, seed: int, **shape: object) -> tuple[torch.nn.Module, Projector]:
    torch.manual_seed(seed)
    if design == "text":
        projector = Projector(8, 14, features=FEATURES, seed=seed, n_jobs=1)
        net = TextProjectionNet(projector.n_bits, shape.get("hidden", (32, 16)), len(LABELS))
        return _scale_up(net, 6.0), projector
    projector = Projector(2, 32, features=FEATURES, seed=seed, n_jobs=1)
    net = TokenProjectionNet(
        projector.n_bits,
        shape.get("bottleneck", 16),
        shape.get("filters", 8),
        shape.get("windows", (1, 2, 3)),
        len(LABELS),
        max_pool=shape.get("max_pool", False),
        mean_pool=shape.get("mean_pool", False),
    )
    return _scale_up(net, 6.0), projector


CASES = [
    ("text", {"hidden": (32, 16)}),
    ("text", {"hidden": (24,)}),
    ("text", {"hidden": ()}),
    ("token", {"windows": (1, 2, 3)}),
    ("token", {"windows": (3,)}),
    ("token", {"windows": (4, 1), "bottleneck": 12, "filters": 5}),
    ("token", {"windows": (1, 2, 3), "max_pool": True}),
    ("token", {"windows": (4, 1), "bottleneck": 12, "filters": 5, "max_pool": True}),
    ("token", {"windows": (1, 2, 3), "mean_pool": True}),
    ("token", {"windows": (4, 1), "filters": 5, "max_pool": True, "mean_pool": True}),
]


@pytest.mark.parametrize("bits", [8, 4])
@pytest.mark.parametrize(("design", "shape"), CASES)
def test_probabilities_match_torch(tmp_path: Path, design: str, shape: dict, bits: int) -> None:
    net, projector = _make(design, seed=len(str(shape)), **shape)
    _save(tmp_path / "model.tpn", net, projector, LABELS, bits)
    clf = runtime.load(tmp_path / "model.tpn", n_jobs=1)
    dtypes = {t["dtype"] for t in describe_model(tmp_path / "model.tpn")["tensors"]}
    assert dtypes == ({"int4", "float32"} if bits == 4 else {"int8", "float32"})

    expected = torch.softmax(torch.from_numpy(_torch_logits(net, projector, TEXTS)), 1).numpy()
    got = clf.predict_proba(TEXTS)

    assert got.dtype == np.float32
    assert got.shape == (len(TEXTS), len(LABELS))
    assert np.abs(got - expected).max() <= 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()
    assert expected.max(1).mean() > 0.6, "outputs too uniform for the comparison to mean much"
    assert clf.predict(TEXTS) == [LABELS[j] for j in expected.argmax(1)]


@pytest.mark.parametrize("design", ["text", "token"])
def test_batching_does_not_change_results(
    tmp_path: Path, design: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    net, projector = _make(design, seed=7)
    _save(tmp_path / "model.tpn", net, projector, LABELS)
    clf = runtime.load(tmp_path / "model.tpn", n_jobs=1)
    whole = clf.predict_proba(TEXTS)
    # Equal up to float32 rounding: BLAS sums in a different order for other matrix sizes.
    monkeypatch.setattr(runtime, "BATCH_TEXTS", 3)
    monkeypatch.setattr(runtime, "BATCH_TOKEN_ROWS", 20)
    monkeypatch.setattr(runtime, "CHUNK_TOKEN_ROWS", 4)
    monkeypatch.setattr(runtime, "TAPS_BYTES_CAP", 1)  # halve down to single texts
    assert np.abs(clf.predict_proba(TEXTS) - whole).max() <= 1e-5
    single = np.concatenate([clf.predict_proba([text]) for text in TEXTS])
    assert np.abs(single - whole).max() <= 1e-5


def test_unique_rows_and_its_fallback_on_key_collisions(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    words = rng.integers(0, 4, size=(200, 3)).astype(np.uint64)  # many repeated rows
    for multipliers in (runtime.ROW_HASH_MULTIPLIERS, np.zeros(4, dtype=np.uint64)):
        # zero multipliers key a row by its last word alone: collisions force the fallback
        monkeypatch.setattr(runtime, "ROW_HASH_MULTIPLIERS", multipliers)
        first, index = runtime.unique_rows(words)
        assert np.array_equal(words[first[index]], words)
        assert len(first) == len(np.unique(words, axis=0))


@pytest.mark.parametrize("design", ["text", "token"])
def test_multi_label(tmp_path: Path, design: str) -> None:
    net, projector = _make(design, seed=11)
    thresholds = [0.5, 0.2, 0.8, 0.5, 0.05]
    _save(tmp_path / "model.tpn", net, projector, LABELS, multi_label=True, thresholds=thresholds)
    clf = runtime.load(tmp_path / "model.tpn", n_jobs=1)

    expected = torch.sigmoid(torch.from_numpy(_torch_logits(net, projector, TEXTS))).numpy()
    got = clf.predict_proba(TEXTS)
    assert np.abs(got - expected).max() <= 1e-4
    predicted = clf.predict(TEXTS)
    for row, labels in zip(expected, predicted, strict=True):
        clear = [j for j in range(len(LABELS)) if abs(row[j] - thresholds[j]) > 1e-4]
        assert [LABELS[j] for j in clear if row[j] >= thresholds[j]] == [
            label for label in labels if LABELS.index(label) in clear
        ]


def test_empty_input_and_str_input(tmp_path: Path) -> None:
    net, projector = _make("token", seed=3)
    _save(tmp_path / "model.tpn", net, projector, LABELS)
    clf = runtime.load(tmp_path, n_jobs=1)
    assert clf.predict_proba([]).shape == (0, len(LABELS))
    assert clf.predict([]) == []
    with pytest.raises(TypeError, match="wrap it in a list"):
        clf.predict("hello")


def test_projection_bits_and_attributes(tmp_path: Path) -> None:
    for design in ("text", "token"):
        net, projector = _make(design, seed=5)
        path = tmp_path / design / "model.tpn"
        _save(path, net, projector, LABELS)
        clf = runtime.load(path.parent, n_jobs=1)
        assert clf.labels == LABELS
        assert clf.n_bytes == path.stat().st_size
        assert clf.header["network"] == network_config(net)
        bits = clf.projection_bits(["hello world", ""])
        if design == "text":
            assert np.array_equal(bits, projector.transform(["hello world", ""]))
        else:
            rows, offsets = bits
            assert offsets.tolist() == [0, 2, 2]
            assert np.array_equal(rows, projector.transform_tokens(["hello world", ""])[0])


def test_directory_without_model(tmp_path: Path) -> None:
    with pytest.raises(ModelFormatError, match=r"holds no model\.tpn"):
        runtime.load(tmp_path)
    with pytest.raises(ModelFormatError, match="no such file"):
        runtime.load(tmp_path / "missing.tpn")


def test_runtime_does_not_import_torch(tmp_path: Path) -> None:
    net, projector = _make("token", seed=1)
    path = tmp_path / "model.tpn"
    _save(path, net, projector, LABELS)
    code = (
        "import textproj.runtime as r, sys; m = r.load(sys.argv[1]); m.predict(['hi']); "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr


def test_non_str_texts_are_named(tmp_path: Path) -> None:
    net, projector = _make("token", seed=3)
    _save(tmp_path / "model.tpn", net, projector, LABELS)
    clf = runtime.load(tmp_path, n_jobs=1)
    with pytest.raises(TypeError, match=r"texts\[1\] is NoneType, not str"):
        clf.predict(["fine", None])
    with pytest.raises(TypeError, match=r"texts\[0\] is bytes, not str"):
        clf.predict_proba([b"raw"])


def test_missing_model_is_a_file_not_found_error(tmp_path: Path) -> None:
    for missing in (tmp_path / "missing.tpn", tmp_path):
        with pytest.raises(FileNotFoundError) as caught:
            runtime.load(missing)
        assert isinstance(caught.value, ModelFormatError | TextprojError)
        assert str(missing) in str(caught.value)


@pytest.mark.parametrize(
    ("multi_label", "max_pool", "mean_pool"),
    [(False, False, False), (True, False, False), (False, True, False), (True, True, True)],
)
def test_explanation_shares_add_up_to_the_logit(
    tmp_path: Path, multi_label: bool, max_pool: bool, mean_pool: bool
) -> None:
    net, projector = _make("token", seed=7, max_pool=max_pool, mean_pool=mean_pool)
    extra = {"multi_label": True, "thresholds": [0.5] * len(LABELS)} if multi_label else {}
    _save(tmp_path / "model.tpn", net, projector, LABELS, **extra)
    clf = runtime.load(tmp_path, n_jobs=1)
    for text in ["I lost my card", "why was my transfer declined", "hi", "", "日本語 🙂"]:
        proba = clf.predict_proba([text])[0]
        logits = clf._logits([text])[0].astype(np.float64)  # saturated probabilities lose them
        for label in (None, "gamma"):
            explanation = clf.explain(text, label)
            j = LABELS.index(explanation.label)
            assert explanation.label == (label or LABELS[int(proba.argmax())])
            assert explanation.tokens == tokens(text, projector.features)
            assert len(explanation.weights) == len(explanation.tokens)
            logit = logits[j] if multi_label else logits[j] - logits.mean()
            assert explanation.base + explanation.weights.sum() == pytest.approx(logit, abs=1e-3)


def test_explanation_of_a_one_token_text_is_all_that_token(tmp_path: Path) -> None:
    """With one token, every window covers it: its share is the logit minus the base."""
    net, projector = _make("token", seed=2)
    _save(tmp_path / "model.tpn", net, projector, LABELS)
    clf = runtime.load(tmp_path, n_jobs=1)
    explanation = clf.explain("card")
    assert explanation.tokens == ["card"] and explanation.top(3) == [
        ("card", explanation.weights[0])
    ]
    with pytest.raises(
        ValueError, match=f"^unknown label 'nope'; the model's labels: {LABELS[0]}, "
    ):
        clf.explain("card", "nope")
    with pytest.raises(TypeError, match=r"^explain takes one text \(a str\), got list$"):
        clf.explain(["card"])


def test_explanation_top_takes_a_count_of_tokens(tmp_path: Path) -> None:
    """top(n) is the n heaviest tokens; a negative n (a slice end) is refused, not obeyed."""
    net, projector = _make("token", seed=2)
    _save(tmp_path / "model.tpn", net, projector, LABELS)
    explanation = runtime.load(tmp_path, n_jobs=1).explain("my card was declined")
    ranked = explanation.top(len(explanation.tokens))
    assert [weight for _, weight in ranked] == sorted(explanation.weights.tolist(), reverse=True)
    assert explanation.top(0) == [] and explanation.top(2) == ranked[:2]
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match=rf"^top\(n\): n must be an int >= 0, got {bad}$"):
            explanation.top(bad)


def test_explain_needs_a_token_model(tmp_path: Path) -> None:
    net, projector = _make("text", seed=2)
    _save(tmp_path / "model.tpn", net, projector, LABELS)
    with pytest.raises(TypeError, match="token-design model"):
        runtime.load(tmp_path, n_jobs=1).explain("card")


def test_load_refuses_an_n_jobs_that_is_no_thread_count_before_reading(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """The caller's mistake, named as such before the file is read: not as a damaged model,
    nor as a missing one."""
    path = tiny_models["token"] / "model.tpn"
    message = "n_jobs must be a positive int, or -1 for every core; got 0"
    for read in (
        lambda: runtime.load(path, n_jobs=0),
        lambda: runtime.load(tmp_path / "missing.tpn", n_jobs=0),
        lambda: runtime.load_bytes(path.read_bytes(), n_jobs=0),
    ):
        with pytest.raises(ConfigError) as refused:
            read()
        assert str(refused.value) == message
    assert runtime.load(path, n_jobs=1).projector.n_jobs == 1
