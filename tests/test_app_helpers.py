"""The demo's pure helpers: bit grids and their changes, uploaded data and model files."""

from __future__ import annotations

import gzip
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import textproj
from textproj import DataError, ModelFormatError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))

from conftest import old_unicode_model
from demo_bits import bit_grid, compare
from demo_charts import (
    ROW_PX,
    chart_height,
    describe,
    explanation_chart,
    grid_chart,
    probability_chart,
    resized_trainer_bytes,
)
from demo_data import (
    SINGLE_LABEL_ONLY,
    check_training_set,
    load_uploaded_model,
    read_uploaded_dataset,
)
from demo_form import FEATURE_HINTS, FORM_LABELS, check_network_shape, in_form_words

from textproj.runtime import load_warnings


@pytest.fixture(scope="module")
def classifiers(tiny_models: dict[str, Path]) -> dict[str, textproj.Classifier]:
    return {design: textproj.load(folder) for design, folder in tiny_models.items()}


def test_text_grid_is_t_by_d(classifiers) -> None:
    clf = classifiers["text"]
    grid = bit_grid(clf, "I lost my card")
    projector = clf.projector
    assert grid.bits.shape == (projector.num_projections, projector.bits_per_projection)
    assert grid.rows[0] == "P1" and not grid.per_token
    np.testing.assert_array_equal(grid.bits.ravel(), clf.projection_bits(["I lost my card"])[0])


def test_text_change_is_xor(classifiers) -> None:
    clf = classifiers["text"]
    a, b = bit_grid(clf, "I lost my card"), bit_grid(clf, "I lost my cards")
    change = compare(b, a)
    assert change.hamming == int((a.bits != b.bits).sum()) > 0
    np.testing.assert_array_equal(change.flips == 1, (b.bits == 1) & (a.bits == 0))
    np.testing.assert_array_equal(change.flips == -1, (b.bits == 0) & (a.bits == 1))
    assert compare(a, a).hamming == 0


def test_token_grid_has_a_row_per_token(classifiers) -> None:
    grid = bit_grid(classifiers["token"], "Where is my NEW card?")
    assert grid.rows == ["where", "is", "my", "new", "card"]
    assert grid.bits.shape == (5, classifiers["token"].projector.n_bits)
    np.testing.assert_array_equal(grid.bits[3], bit_grid(classifiers["token"], "new").bits[0])


def test_token_change_touches_only_edited_tokens(classifiers) -> None:
    clf = classifiers["token"]
    before = bit_grid(clf, "where is my new card")
    edited = bit_grid(clf, "where is my old card")
    change = compare(edited, before)
    assert change.hamming == int((before.bits[3] != edited.bits[3]).sum()) > 0
    assert not change.flips[[0, 1, 2, 4]].any()
    inserted = bit_grid(clf, "where is my shiny new card")
    change = compare(inserted, before)
    assert change.hamming == int(inserted.bits[3].sum())  # only the new token's 1-bits
    assert (change.flips[3] == inserted.bits[3]).all()
    shorter = compare(bit_grid(clf, "where is my card"), before)
    assert shorter.hamming == int(before.bits[3].sum())  # the deleted token's 1-bits
    assert compare(bit_grid(clf, ""), before).hamming == int(before.bits.sum())


def test_grids_of_different_designs_do_not_compare(classifiers) -> None:
    with pytest.raises(ValueError, match="cannot be compared"):
        compare(bit_grid(classifiers["token"], "a"), bit_grid(classifiers["text"], "a"))


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("mine.tsv", b"text\tlabel\nhello there\tgreet\nbye now\tleave\n"),
        ("mine.csv", b"label,text\ngreet,hello there\nleave,bye now\n"),
        (
            "mine.jsonl",
            b'{"text": "hello there", "label": "greet"}\n{"text": "bye now", "label": "leave"}\n',
        ),
        ("mine.txt", b"__label__greet hello there\n__label__leave bye now\n"),
        ("mine.tsv.gz", gzip.compress(b"text\tlabel\nhello there\tgreet\nbye now\tleave\n")),
    ],
)
def test_uploaded_formats(name: str, data: bytes) -> None:
    dataset = read_uploaded_dataset(name, data)
    assert dataset.texts == ["hello there", "bye now"]
    assert dataset.labels == ["greet", "leave"]
    assert dataset.source == name


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("bad.tsv", b"text\tlabel\nhello\n", r"^bad\.tsv:2: "),
        ("bad.jsonl", b'{"text": "a", "label": "x"}\n{oops\n', r"^bad\.jsonl:2: "),
        ("bad.csv", b"words,tag\na,b\n", r"^bad\.csv"),
        ("bad.tsv", b"", r"^bad\.tsv: file is empty"),
        ("bad.tsv", b"text\tlabel\n\xff\xfe\tx\n", r"^bad\.tsv:2: invalid UTF-8"),
        ("bad.tsv.gz", b"not gzip", r"^bad\.tsv\.gz: corrupt gzip"),
        ("data.xlsx", b"PK\x03\x04", r"^data\.xlsx: unknown file extension"),
        ("noextension", b"text\tlabel\n", r"^noextension: unknown file extension"),
    ],
)
def test_bad_uploads_name_the_uploaded_file(name: str, data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message) as caught:
        read_uploaded_dataset(name, data)
    assert "textproj-upload-" not in str(caught.value)


def test_uploads_with_named_columns() -> None:
    data = b"utterance,intent\nhello there,greet\nbye now,leave\n"
    dataset = read_uploaded_dataset("mine.csv", data, "utterance", "intent")
    assert (dataset.texts, dataset.labels) == (["hello there", "bye now"], ["greet", "leave"])
    with pytest.raises(DataError) as caught:
        read_uploaded_dataset("mine.csv", data)
    assert str(caught.value) == (
        "mine.csv:1: header has no 'text' column (found: ['utterance', 'intent']; "
        "name others in the column fields)"
    )


def test_training_set_checks() -> None:
    one_label = read_uploaded_dataset("one.tsv", b"text\tlabel\na\tx\nb\tx\nc\tx\nd\tx\n")
    with pytest.raises(DataError, match="at least 2 different labels"):
        check_training_set(one_label)
    few = read_uploaded_dataset("few.tsv", b"text\tlabel\na\tx\nb\ty\n")
    with pytest.raises(DataError, match="too few"):
        check_training_set(few)
    check_training_set(read_uploaded_dataset("ok.tsv", b"text\tlabel\na\tx\nb\ty\nc\tx\nd\ty\n"))


def test_uploaded_model(tiny_models: dict[str, Path]) -> None:
    data = (tiny_models["text"] / "model.tpn").read_bytes()
    clf = load_uploaded_model("mine.tpn", data)
    assert clf.predict(["I lost my card"]) == textproj.load(tiny_models["text"]).predict(
        ["I lost my card"]
    )
    assert load_warnings(clf.header, "mine.tpn") == []
    with pytest.raises(ModelFormatError, match=r"^mine\.tpn: ") as caught:
        load_uploaded_model("mine.tpn", data[: len(data) // 2])
    assert "tmp" not in str(caught.value)


def test_uploaded_model_load_warnings_are_for_the_page(tiny_models: dict[str, Path]) -> None:
    with pytest.warns(UserWarning, match=r"^old\.tpn: model written with Unicode '1\.1\.0'"):
        clf = load_uploaded_model("old.tpn", old_unicode_model(tiny_models["text"]))
    (warning,) = load_warnings(clf.header, "old.tpn")
    assert warning.startswith("old.tpn: model written with Unicode '1.1.0', this reader has")


def test_a_multi_label_upload_says_what_the_demo_can_do() -> None:
    with pytest.raises(DataError) as caught:
        read_uploaded_dataset("multi.txt", b"__label__a __label__b both\n__label__a one\n")
    assert str(caught.value) == f"multi.txt:1: row has 2 labels; {SINGLE_LABEL_ONLY}"
    assert "--multi-label`" in SINGLE_LABEL_ONLY and "read it as" not in SINGLE_LABEL_ONLY


def test_shared_models_answer_concurrent_sessions(classifiers, tiny_models) -> None:
    """The app shares one Classifier (and trainer) between sessions: threads must not mix."""
    from textproj.corpora import load_corpus
    from textproj.trainer_model import load_trainer

    texts = load_corpus("banking77", "dev").texts[:160]
    models = [classifiers["token"], classifiers["text"], load_trainer(tiny_models["token"])]
    for model in models:
        expected = model.predict_proba(texts)
        with ThreadPoolExecutor(8) as pool:
            parts = list(pool.map(lambda i, m=model: m.predict_proba(texts[i::8]), range(8)))
        for i, part in enumerate(parts):
            np.testing.assert_allclose(part, expected[i::8], rtol=1e-6, atol=1e-7)


# --- charts: every bar and row keeps its label; the sidebar describes the model in words ---


def _y_axis(chart) -> dict:
    return chart.to_dict()["encoding"]["y"]


def test_probability_chart_names_every_bar(classifiers) -> None:
    labels = ["refund", "activate", "age"]
    chart, height = probability_chart(labels, np.array([0.2, 0.5, 0.3], dtype=np.float32), 5)
    y = _y_axis(chart)
    assert y["sort"] == ["activate", "age", "refund"]  # most probable first, all three
    assert y["axis"]["labelOverlap"] is False
    assert height == chart_height(3) >= 3 * ROW_PX
    assert chart.to_dict()["height"] == 3 * ROW_PX
    many, _ = probability_chart([f"l{i}" for i in range(77)], np.linspace(0, 1, 77), 5)
    assert len(_y_axis(many)["sort"]) == 5


def test_grid_chart_names_every_token_row(classifiers) -> None:
    grid = bit_grid(classifiers["token"], "I still have not received my new card")
    chart, height = grid_chart(grid.rows, grid.bits, np.zeros_like(grid.bits), True)
    y = _y_axis(chart)
    assert y["sort"] == [f"{i + 1}: {token}" for i, token in enumerate(grid.rows)]
    assert y["axis"]["labelOverlap"] is False
    assert chart.to_dict()["height"] == len(grid.rows) * ROW_PX and height > len(grid.rows) * ROW_PX
    text = bit_grid(classifiers["text"], "I lost my card")
    wide, _ = grid_chart(text.rows, text.bits, np.zeros_like(text.bits), False)
    assert wide.to_dict()["height"] == classifiers["text"].projector.bits_per_projection * ROW_PX


def test_explanation_chart_has_a_bar_per_token(classifiers) -> None:
    explanation = classifiers["token"].explain("where is my new card")
    chart, _ = explanation_chart(explanation)
    assert _y_axis(chart)["sort"] == ["1: where", "2: is", "3: my", "4: new", "5: card"]
    data = next(iter(chart.to_dict()["datasets"].values()))
    assert [row["share"] for row in data] == pytest.approx(explanation.weights.tolist())


def test_describe_is_words_not_a_repr(classifiers) -> None:
    clf = classifiers["token"]
    words = describe(clf)
    p = clf.projector
    assert words.startswith(f"token design, {len(clf.labels)} labels, ")
    assert f"{p.num_projections} × {p.bits_per_projection} bits per token" in words
    assert "Classifier(" not in words and words.endswith(f"{clf.n_bytes / 1000:.1f} KB")


def test_resized_trainer_bytes_is_the_size_of_a_trainer_with_those_rows(tmp_path) -> None:
    from textproj import FeatureConfig, TrainConfig
    from textproj.trainer_model import TABLE_DTYPE, build_trainer, save_trainer

    sizes = {}
    for rows in (2**8, 2**12):
        config = TrainConfig(trainer_buckets=rows)
        folder = tmp_path / str(rows)
        folder.mkdir()
        trainer = build_trainer(config, 3)
        sizes[rows] = save_trainer(trainer, folder, ["a", "b", "c"], config, FeatureConfig())
    dim = TrainConfig().trainer_dim
    itemsize = np.dtype(TABLE_DTYPE).itemsize
    assert resized_trainer_bytes(sizes[2**8], 2**8, 2**12, dim, itemsize) == sizes[2**12]


def test_a_network_too_big_for_a_model_file_names_the_forms_widgets() -> None:
    from textproj import ConfigError, TrainConfig

    config = TrainConfig(design="text", hidden=(64, 10_000, 10_000))
    with pytest.raises(ConfigError) as caught:
        check_network_shape(config, 77)
    assert str(caught.value).startswith(
        f"“{FORM_LABELS['hidden']}”: layer 'dense.2' would hold 10000 x 10000 = 100,000,000 weights"
    )
    assert "TrainConfig" not in str(caught.value)
    check_network_shape(TrainConfig(design="text"), 77)  # the defaults fit


def test_in_form_words_keeps_fields_the_form_has_no_widget_for() -> None:
    message = "TrainConfig.bottleneck, TrainConfig.seed: bad"
    assert in_form_words(message) == f"“{FORM_LABELS['bottleneck']}”, TrainConfig.seed: bad"


def test_in_form_words_says_where_a_feature_without_a_widget_is_set() -> None:
    message = "cap; no token past it is read (FeatureConfig.max_tokens)"
    assert (
        in_form_words(message) == f"cap; no token past it is read ({FEATURE_HINTS['max_tokens']})"
    )
