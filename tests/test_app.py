"""The Streamlit demo under ``streamlit.testing``: every section renders and behaves.

Most tests point the app at the shared tiny models (``TEXTPROJ_MODEL``) so they run in seconds;
one checks the bundled default model that ``streamlit run`` uses with no set-up.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import textproj
from textproj.trainer_model import load_trainer

APP_DIR = Path(__file__).resolve().parents[1] / "app"
sys.path.insert(0, str(APP_DIR))

from demo_bits import bit_grid, compare  # noqa: E402

TIMEOUT = 180
TABS = ["Classify", "Projection bits", "Model card", "Train your own", "Bits vs accuracy"]


def _start(monkeypatch: pytest.MonkeyPatch, model: Path | None) -> AppTest:
    if model is None:
        monkeypatch.delenv("TEXTPROJ_MODEL", raising=False)
    else:
        monkeypatch.setenv("TEXTPROJ_MODEL", str(model))
    app = AppTest.from_file(str(APP_DIR / "streamlit_app.py"), default_timeout=TIMEOUT)
    app.run()
    assert not app.exception, app.exception
    return app


def _markdown(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown]


def _predicted(app: AppTest) -> list[str]:
    """The predicted labels shown in the Classify tab: on-device, the trainer, the ensemble."""
    prefix = "Predicted label: `"
    return [m.removeprefix(prefix)[:-1] for m in _markdown(app) if m.startswith(prefix)]


def test_every_section_renders(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    assert [tab.label for tab in app.tabs] == TABS
    assert not app.error
    text = " ".join(_markdown(app))
    assert "On-device model" in text and "Trainer network" in text
    assert "Per-token model" in text
    assert "**Corpus:** banking77-train[:300]" in text
    table = app.dataframe[0].value
    assert list(table["network"]) == ["on-device (int4)", "trainer", "both averaged (ensemble)"]
    assert app.button(key="train").disabled is False
    sweep_csv = APP_DIR / "sweep" / "sweep.csv"
    assert any("textproj sweep" in c.value for c in [*app.caption, *app.info])
    if sweep_csv.is_file():
        assert any(c.value.startswith("Made with `textproj sweep") for c in app.caption)


def test_classification_matches_both_models_and_their_ensemble(monkeypatch, tiny_models) -> None:
    from textproj.ensemble import load_ensemble

    folder = tiny_models["token"]
    app = _start(monkeypatch, folder)
    clf, trainer, ensemble = textproj.load(folder), load_trainer(folder), load_ensemble(folder)
    for text in ("how do I top up my account?", "my card was declined"):
        app.text_input(key="text").input(text).run()
        assert not app.exception
        expected = [model.predict([text])[0] for model in (clf, trainer, ensemble)]
        assert _predicted(app) == expected
    assert any("latency" in c.value and "ms per text" in c.value for c in app.caption)


def test_bits_flip_against_previous_text(monkeypatch, tiny_models) -> None:
    folder = tiny_models["text"]
    app = _start(monkeypatch, folder)
    assert "Whole-text model" in " ".join(_markdown(app))
    assert not app.metric  # no previous text yet
    first = app.text_input(key="text").value
    second = first + " today"
    app.text_input(key="text").input(second).run()
    clf = textproj.load(folder)
    expected = compare(bit_grid(clf, second), bit_grid(clf, first)).hamming
    assert app.metric[0].value == f"{expected} bits"
    assert any(first in c.value for c in app.caption)
    app.run()  # a rerun with the same text keeps the comparison
    assert app.metric[0].value == f"{expected} bits"


def test_bad_upload_shows_an_error(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.radio(key="source").set_value("Upload a file").run()
    assert app.button(key="train").disabled
    app.file_uploader(key="data_upload").upload("mine.tsv", b"text\tlabel\nno label here\n").run()
    assert not app.exception
    assert [e.value for e in app.error] == [
        "Cannot use this file: mine.tsv:2: row has 1 field(s), expected at least 2"
    ]
    assert app.button(key="train").disabled


def test_an_upload_with_other_column_names_reads_once_they_are_named(
    monkeypatch, tiny_models
) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.radio(key="source").set_value("Upload a file").run()
    rows = "".join(f"{label},text number {i}\n" for i, label in enumerate("abab" * 3))
    app.file_uploader(key="data_upload").upload("mine.csv", f"intent,utterance\n{rows}".encode())
    app.run()
    assert [e.value for e in app.error] == [
        "Cannot use this file: mine.csv:1: header has no 'text' column (found: ['intent', "
        "'utterance']; name others in the column fields)"
    ]
    app.text_input(key="own_text_col").set_value("utterance")
    app.text_input(key="own_label_col").set_value("intent").run()
    assert not app.error
    assert any(c.value.startswith("12 examples, 2 labels") for c in app.caption)
    assert not app.button(key="train").disabled


def test_bad_model_upload_shows_an_error(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.sidebar.file_uploader(key="model_upload").upload("broken.tpn", b"not a model").run()
    assert not app.exception
    assert app.sidebar.error[0].value.startswith("broken.tpn")
    good = (tiny_models["text"] / "model.tpn").read_bytes()
    app.sidebar.file_uploader(key="model_upload").clear().upload("mine.tpn", good).run()
    assert not app.sidebar.error
    assert "uploaded mine.tpn" in app.sidebar.caption[0].value
    assert "Whole-text model" in " ".join(_markdown(app))


def test_train_your_own(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.selectbox(key="own_corpus").set_value("sentiment_sentences")
    app.number_input(key="own_limit").set_value(200)
    app.number_input(key="own_t_token").set_value(4)
    app.number_input(key="own_d_token").set_value(8)
    app.number_input(key="own_bottleneck").set_value(8)
    app.number_input(key="own_filters").set_value(8)
    app.radio(key="own_max_pool").set_value("on")
    app.radio(key="own_mean_pool").set_value("on")
    app.slider(key="own_epochs").set_value(2).run()
    app.button(key="train").click().run()
    assert not app.exception and not app.error
    assert app.success[0].value.startswith("Trained on sentiment_sentences: dev accuracy")
    trained = textproj.load(app.session_state.own["directory"])
    assert trained.header["network"]["max_pool"] is trained.header["network"]["mean_pool"] is True
    assert app.get("download_button")
    app.sidebar.toggle(key="use_own").set_value(True).run()
    assert "trained in this session" in app.sidebar.caption[0].value
    assert set(_predicted(app)) <= {"negative", "positive"}


def test_a_network_too_big_to_store_is_refused_before_training(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.selectbox(key="own_design").set_value("text").run()
    app.text_input(key="own_hidden").set_value("100000").run()
    assert not app.exception
    (error,) = [e.value for e in app.error]
    assert error.startswith(
        "Cannot train this network: “Hidden sizes (comma-separated)”, “T (projection "
        "functions)”, “d (bits per function)”: layer 'dense.0' would hold 100000 x "
    )
    assert app.button(key="train").disabled
    app.text_input(key="own_hidden").set_value("64").run()
    assert not app.error and not app.button(key="train").disabled


def test_training_warnings_show_on_the_page(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.selectbox(key="own_corpus").set_value("clinc150")
    app.number_input(key="own_limit").set_value(100)  # 100 texts cannot hold all 150 intents
    app.slider(key="own_epochs").set_value(1).run()
    app.button(key="train").click().run()
    assert not app.exception and not app.error
    (warning,) = [w.value for w in app.warning]
    assert warning.startswith("clinc150/dev (a random 1000): ")
    assert "label(s) never seen in training: " in warning


def test_sessions_do_not_mix(monkeypatch, tiny_models) -> None:
    first = _start(monkeypatch, tiny_models["token"])
    second = AppTest.from_file(str(APP_DIR / "streamlit_app.py"), default_timeout=TIMEOUT)
    second.run()
    first.text_input(key="text").input("cancel my transfer").run()
    second.text_input(key="text").input("what is the exchange rate").run()
    first.run()
    clf = textproj.load(tiny_models["token"])
    assert _predicted(first)[0] == clf.predict(["cancel my transfer"])[0]
    assert _predicted(second)[0] == clf.predict(["what is the exchange rate"])[0]
    assert not any("exchange rate" in c.value for c in first.caption)


def test_bundled_model_out_of_the_box(monkeypatch) -> None:
    app = _start(monkeypatch, None)
    assert "bundled (banking77)" in app.sidebar.caption[0].value
    assert "token design, 77 labels" in app.sidebar.caption[0].value
    assert len(_predicted(app)) == 3  # it ships with its (small) trainer: both and the ensemble
    assert "**Corpus:** banking77" in " ".join(_markdown(app))
    # the default table's trainer.npz, float16 as saved: README's 8.5 MB, not float32's 17 MB
    assert any(c.value.endswith("rows make trainer.npz 8.5 MB.") for c in app.caption)


def test_explanation_view_shows_each_token(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    app.text_input(key="text").input("my card is lost").run()
    label = textproj.load(tiny_models["token"]).predict(["my card is lost"])[0]
    assert f"**Which tokens drove `{label}`**" in _markdown(app)
    caption = app.sidebar.caption[0].value
    assert "Classifier(" not in caption and "token design" in caption
    text_app = _start(monkeypatch, tiny_models["text"])
    assert any("need a token-design model" in c.value for c in text_app.caption)


def test_multi_label_model_shows_the_labels_its_thresholds_give(monkeypatch, tmp_path) -> None:
    from conftest import TINY_CONFIG, tiny_banking

    from textproj import Dataset, TrainConfig
    from textproj.training import train

    data = tiny_banking(200)
    labels = [(label, "any") if i % 2 else (label,) for i, label in enumerate(data.labels)]
    out = tmp_path / "multi"
    config = TrainConfig(**TINY_CONFIG, multi_label=True)
    train(Dataset(data.texts, labels, "multi"), config=config, output_dir=out, progress=False)
    app = _start(monkeypatch, out)
    clf = textproj.load(out)
    text = app.text_input(key="text").value
    assert _predicted(app)[0] == (", ".join(clf.predict([text])[0]) or "(no label)")


def test_a_blank_text_asks_for_a_text_instead_of_a_label(monkeypatch, tiny_models) -> None:
    app = _start(monkeypatch, tiny_models["token"])
    for blank in ("", " \u3000\t"):
        app.text_input(key="text").input(blank).run()
        assert not app.exception
        assert _predicted(app) == [] and "Enter a text above to classify it." in [
            info.value for info in app.info
        ]
    app.text_input(key="text").input("my card was declined").run()
    assert (
        _predicted(app)[0]
        == textproj.load(tiny_models["token"]).predict(["my card was declined"])[0]
    )


def test_the_toggle_wins_over_an_upload_which_leaves_no_folder(
    monkeypatch, tiny_models, tmp_path
) -> None:
    from test_app_helpers import old_unicode_model

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    app = _start(monkeypatch, tiny_models["token"])
    old = old_unicode_model(tiny_models["text"])
    app.sidebar.file_uploader(key="model_upload").upload("old.tpn", old).run()
    assert "uploaded old.tpn" in app.sidebar.caption[-1].value
    (warning,) = app.sidebar.warning  # the load warning is on the page, not only in the log
    assert warning.value.startswith("old.tpn: model written with Unicode '1.1.0'")
    assert list(temporary.iterdir()) == []  # the upload was loaded from its bytes
    row = {"epoch": 1, "loss": 1.0, "dev_projection": 0.5, "dev_trainer": 0.5}
    app.session_state["own"] = {
        "directory": str(tiny_models["token"]), "history": [row], "accuracy": 0.5,
        "trainer_accuracy": 0.5, "bytes": 1000, "name": "mine", "warnings": [],
    }  # fmt: skip
    app.run()
    app.sidebar.toggle(key="use_own").set_value(True).run()
    assert not app.exception
    captions = [caption.value for caption in app.sidebar.caption]
    assert captions[0] == "old.tpn is not used while the toggle above is on."
    assert captions[1].startswith("Using trained in this session")
    assert "Per-token model" in " ".join(_markdown(app))
    app.sidebar.toggle(key="use_own").set_value(False).run()
    assert "uploaded old.tpn" in app.sidebar.caption[-1].value
