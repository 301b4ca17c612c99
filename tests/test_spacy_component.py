"""The spaCy component ``textproj``: factory by entry point, inference, serialisation, processes
and threads, trainable and multi-label modes, and ``spacy train`` / ``evaluate`` end to end."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

spacy = pytest.importorskip("spacy")

from spacy.tokens import DocBin  # noqa: E402
from spacy.training import Example  # noqa: E402

import textproj  # noqa: E402
from spacy_component.make_spacy_corpus import convert  # noqa: E402
from textproj.config import FeatureConfig, TrainConfig  # noqa: E402
from textproj.corpora import load_corpus  # noqa: E402
from textproj.errors import ConfigError  # noqa: E402
from textproj.metrics import per_label_scores  # noqa: E402
from textproj.model_file import ModelFormatError, read_model, write_model  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "spacy_component" / "configs" / "textproj.cfg"
TEXTS = [*load_corpus("banking77", "test").texts[:200], "", "   ", "🙂", "x" * 3000]


def _cats(nlp: spacy.Language, texts: list[str], **kwargs: object) -> list[dict[str, float]]:
    return [doc.cats for doc in nlp.pipe(texts, **kwargs)]


@pytest.fixture(scope="module")
def model_file(tiny_models: dict[str, Path]) -> Path:
    return tiny_models["token"] / "model.tpn"


@pytest.fixture(scope="module")
def nlp(model_file: Path) -> spacy.Language:
    nlp = spacy.blank("en")
    nlp.add_pipe("textproj", config={"model": str(model_file)})
    return nlp


@pytest.mark.parametrize("design", ["text", "token"])
def test_cats_are_the_runtime_probabilities(tiny_models: dict[str, Path], design: str) -> None:
    clf = textproj.load(tiny_models[design])
    nlp = spacy.blank("en")
    nlp.add_pipe("textproj", config={"model": str(tiny_models[design])})
    cats = _cats(nlp, TEXTS, batch_size=len(TEXTS))
    expected = clf.predict_proba(TEXTS)
    assert nlp.get_pipe("textproj").labels == tuple(clf.labels)
    for row, doc_cats in zip(expected, cats, strict=True):
        assert list(doc_cats) == clf.labels
        assert np.array_equal(np.float32(list(doc_cats.values())), row)
        assert abs(sum(doc_cats.values()) - 1) < 1e-5
    assert nlp(TEXTS[0]).cats.keys() == cats[0].keys()


def test_saved_pipeline_carries_the_model(model_file: Path, tmp_path: Path) -> None:
    original = tmp_path / "original.tpn"
    shutil.copy(model_file, original)
    nlp = spacy.blank("en")
    nlp.add_pipe("textproj", config={"model": str(original)})
    expected = _cats(nlp, TEXTS)
    nlp.to_disk(tmp_path / "pipeline")
    data = nlp.to_bytes()
    saved = tmp_path / "pipeline" / "textproj" / "model.tpn"
    assert saved.read_bytes() == model_file.read_bytes()
    original.write_bytes(b"damaged")  # the config still names it: the pipeline's own copy loads
    assert _cats(spacy.load(tmp_path / "pipeline"), TEXTS) == expected
    fresh = spacy.blank("en")
    fresh.add_pipe("textproj")  # no model yet: the bytes below bring it
    assert _cats(fresh.from_bytes(data), TEXTS) == expected
    saved.unlink()
    with pytest.raises(ModelFormatError, match=rf"^{saved}: no such file"):
        spacy.load(tmp_path / "pipeline")
    blank = spacy.blank("en")
    blank.add_pipe("textproj")
    with pytest.raises(ValueError, match="'textproj' has no model to save: give config"):
        blank.to_disk(tmp_path / "untrained")


def test_missing_or_damaged_model_names_the_file(model_file: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nowhere\.tpn: no such file"):
        spacy.blank("en").add_pipe("textproj", config={"model": str(tmp_path / "nowhere.tpn")})
    with pytest.raises(ModelFormatError, match=r"holds no model\.tpn"):
        spacy.blank("en").add_pipe("textproj", config={"model": str(tmp_path)})
    damaged = tmp_path / "damaged.tpn"
    damaged.write_bytes(model_file.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelFormatError, match=r"damaged\.tpn: checksum mismatch"):
        spacy.blank("en").add_pipe("textproj", config={"model": str(damaged)})
    with pytest.raises(ValueError, match="has no model"):
        spacy.blank("en").add_pipe("textproj")("text")


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"train_config": {"bottleneck": 32}}, "train_config"),
        ({"features": {"word_ngrams": 1}, "multi_label": True}, "features, multi_label"),
    ],
)
def test_trainable_settings_beside_a_model_file_are_refused(
    model_file: Path, settings: dict, named: str
) -> None:
    message = (
        rf"^textproj component 'textproj': {named} apply in trainable mode only \(no 'model'\)"
    )
    with pytest.raises(ConfigError, match=message):
        spacy.blank("en").add_pipe("textproj", config={"model": str(model_file), **settings})


@pytest.mark.parametrize("threshold", [1.5, -0.1])
def test_a_threshold_out_of_range_is_refused(model_file: Path, threshold: float) -> None:
    config = {"model": str(model_file), "threshold": threshold}
    message = (
        rf"^textproj component 'textproj': threshold must be in \[0, 1\] or null, got {threshold}$"
    )
    with pytest.raises(ConfigError, match=message):
        spacy.blank("en").add_pipe("textproj", config=config)
    component = spacy.blank("en").add_pipe("textproj", config={**config, "threshold": 1.0})
    assert component.threshold == 1.0


def test_an_n_jobs_that_is_no_thread_count_is_refused(model_file: Path) -> None:
    message = (
        "textproj component 'textproj': n_jobs must be a positive int, or -1 for every core; got 0"
    )
    with pytest.raises(ConfigError) as refused:
        spacy.blank("en").add_pipe("textproj", config={"model": str(model_file), "n_jobs": 0})
    assert str(refused.value) == message


def test_one_label_training_examples_are_refused() -> None:
    nlp = spacy.blank("en")
    nlp.add_pipe("textproj")
    examples = _examples(nlp, ["a", "b", "c"], [{"only": 1.0}] * 3)
    with pytest.raises(ValueError, match="carry only the label 'only'; a classifier needs two"):
        nlp.initialize(lambda: examples)


def _initialize_with_labels(labels: object, cats: list[dict], multi_label: bool = False):
    """Initialise a trainable pipeline as spacy train would with
    ``[initialize.components.textproj] labels = <labels>``."""
    nlp = spacy.blank("en")
    nlp.add_pipe("textproj", config={"multi_label": multi_label, "train_config": TINY_TRAIN})
    nlp.config["initialize"]["components"]["textproj"] = {"labels": labels}
    examples = _examples(nlp, [f"text {i}" for i in range(len(cats))], cats)
    nlp.initialize(lambda: examples)
    return nlp


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ("ab", "[initialize.components.textproj] labels: a list of labels, not the string 'ab'"),
        (
            ["a", "b", "a", "c", "c"],
            "[initialize.components.textproj] labels: 'a', 'c' given more than once",
        ),
    ],
)
def test_initialize_refuses_a_string_or_repeated_labels(labels: object, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        _initialize_with_labels(labels, [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}])
    assert str(error.value) == message


SETTING = "[initialize.components.textproj] labels"


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (["a", "b", ""], f"{SETTING}: label '' is blank; labels are non-blank strings"),
        (["a", " ", "b"], f"{SETTING}: label ' ' is blank; labels are non-blank strings"),
        (["a"], f"{SETTING}: only the label 'a'; a classifier needs two"),
        ([], f"{SETTING}: no labels; a classifier needs two"),
    ],
)
def test_initialize_refuses_blank_or_too_few_labels_naming_the_setting(
    labels: list[str], message: str
) -> None:
    """A blank label trained and was written into model.tpn; one or none was blamed on the
    training examples, which carry two."""
    with pytest.raises(ConfigError) as error:
        _initialize_with_labels(labels, [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}])
    assert str(error.value) == message


def test_initialize_refuses_labels_that_are_not_strings() -> None:
    """They trained, then every prediction failed with "model.tpn: 'labels' must be a list of
    strings", naming a file the user never gave."""
    nlp = spacy.blank("en")
    component = nlp.add_pipe("textproj", config={"train_config": TINY_TRAIN})
    examples = _examples(nlp, ["good", "bad"], [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}])
    with pytest.raises(ConfigError) as error:
        component.initialize(lambda: examples, nlp=nlp, labels=[1, 2])
    assert str(error.value) == f"{SETTING}: label 1 is not a string; labels are non-blank strings"
    numbered = _examples(nlp, ["good", "bad"], [{1: 1.0, 2: 0.0}, {1: 0.0, 2: 1.0}])
    with pytest.raises(ConfigError) as error:
        component.initialize(lambda: numbered, nlp=nlp)
    assert str(error.value) == (
        "textproj component 'textproj': doc.cats: label 1 is not a string; "
        "labels are non-blank strings"
    )


def test_initialize_warns_of_labels_no_example_carries() -> None:
    cats = [{"a": 1.0, "b": 0.0, "c": 0.0}, {"a": 0.0, "b": 1.0, "c": 0.0}]
    message = (
        r"^textproj component 'textproj': no training example has the label\(s\) 'c', 'd'; "
        "the model will learn never to predict them$"
    )
    with pytest.warns(UserWarning, match=message):
        nlp = _initialize_with_labels(["a", "b", "c", "d"], cats)
    assert nlp.get_pipe("textproj").labels == ("a", "b", "c", "d")


def test_single_label_refuses_a_doc_with_several_positive_cats() -> None:
    cats = [{"a": 1.0, "b": 0.0, "c": 0.0}, {"a": 1.0, "b": 0.0, "c": 1.0}]
    message = (
        "textproj component 'textproj' is single-label, but training example 1 has several "
        "positive cats ('a', 'c'); set [components.textproj] multi_label = true for several "
        "labels per doc"
    )
    with pytest.raises(ConfigError) as error:
        _initialize_with_labels(None, cats)
    assert str(error.value) == message
    nlp = _initialize_with_labels(None, [cats[0], {"a": 0.0, "b": 1.0, "c": 0.0}])
    batch = _examples(nlp, ["x", "y", "z"], [cats[0], cats[0], cats[1]])
    with pytest.raises(ConfigError, match=r"but doc 2 of the batch has several positive cats"):
        nlp.update(batch)


def test_single_label_warns_of_docs_whose_positive_label_is_not_among_its_labels() -> None:
    """spaCy's textcat trains such a doc towards no label; one softmax cannot, so the docs are
    left out of training, and a warning per initialize or update call says how many and which."""
    a, b = {"a": 1.0, "b": 0.0, "c": 0.0, "d": 0.0}, {"a": 0.0, "b": 1.0, "c": 0.0, "d": 0.0}
    c, d = {"a": 0.0, "b": 0.0, "c": 1.0, "d": 0.0}, {"a": 0.0, "b": 0.0, "c": 0.0, "d": 1.0}

    def message(n: int, which: str, labels: str) -> str:
        return (
            f"textproj component 'textproj': {n} doc(s) of the {which} have a positive label "
            f"not among its labels ({labels}) and are left out of training; add the label(s) "
            "to [initialize.components.textproj] labels to train on them"
        )

    with pytest.warns(UserWarning) as records:
        nlp = _initialize_with_labels(["a", "b"], [a, c, b, d, c])
    assert [str(record.message) for record in records] == [
        message(3, "training examples", "'c', 'd'")
    ]

    def loss(texts: list[str], cats: list[dict]) -> float:
        losses: dict[str, float] = {}
        nlp.update(_examples(nlp, texts, cats), losses=losses)
        return losses["textproj"]

    with pytest.warns(UserWarning) as records:
        with_c = loss(["one", "two", "three"], [a, c, b])
    assert [str(record.message) for record in records] == [message(1, "batch", "'c'")]
    nlp = _initialize_with_labels(["a", "b"], [a, b])
    assert with_c == loss(["one", "three"], [a, b])  # the doc of label 'c' trained nothing


def _no_positive_message(n: int, which: str) -> str:
    return (
        f"textproj component 'textproj': {n} doc(s) of the {which} have no positive label "
        "(spaCy's textcat trains such a doc towards no label, which one softmax cannot) and are "
        "left out of training; give each a positive cat (a label of its own for none of the "
        "others), or set [components.textproj] multi_label = true to train them towards no label"
    )


def test_single_label_warns_of_docs_with_no_positive_label_and_leaves_them_out() -> None:
    """A doc whose cats are all 0.0, or empty, has no single-label target: it is left out of
    training (as before), now with a warning saying how many, at initialize and at update."""
    a, b, zeros = {"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}, {"a": 0.0, "b": 0.0}
    with pytest.warns(UserWarning) as records:
        nlp = _initialize_with_labels(None, [a, zeros, b, {}, zeros])
    assert [str(record.message) for record in records] == [
        _no_positive_message(3, "training examples")
    ]

    def loss(texts: list[str], cats: list[dict]) -> float:
        losses: dict[str, float] = {}
        nlp.update(_examples(nlp, texts, cats), losses=losses)
        return losses["textproj"]

    with pytest.warns(UserWarning) as records:
        with_none = loss(["one", "two", "three", "four"], [a, zeros, b, {}])
    assert [str(record.message) for record in records] == [_no_positive_message(2, "batch")]
    nlp = _initialize_with_labels(None, [a, b])
    assert with_none == loss(["one", "three"], [a, b])  # the docs of no label trained nothing


def test_update_warns_of_each_left_out_reason_and_label_once_per_training_run(
    recwarn: pytest.WarningsRecorder,
) -> None:
    """spacy train's batches would repeat the same warnings: update gives each (no positive
    label; each label not among the component's) once, until initialize starts a new run."""
    a, b, zeros = {"a": 1.0, "b": 0.0, "c": 0.0}, {"a": 0.0, "b": 1.0, "c": 0.0}, {"a": 0.0}
    c, d = {"a": 0.0, "c": 1.0}, {"a": 0.0, "d": 1.0}
    outside = (
        "textproj component 'textproj': {} doc(s) of the batch have a positive label not among "
        "its labels ({}) and are left out of training; add the label(s) to "
        "[initialize.components.textproj] labels to train on them"
    )
    nlp = _initialize_with_labels(["a", "b"], [a, b])

    def warned(cats: list[dict]) -> list[str]:
        recwarn.clear()
        warnings.simplefilter("always")  # recwarn's "default" would hide a repeat by itself
        nlp.update(_examples(nlp, [f"doc {i}" for i in range(len(cats))], cats))
        return [str(record.message) for record in recwarn]

    assert warned([a, b]) == []
    first = [outside.format(2, "'c'"), _no_positive_message(1, "batch")]
    assert warned([a, c, zeros, c]) == first
    assert warned([a, c, zeros, c]) == []  # the same batch again: the same messages, unsaid
    assert warned([c, zeros, b, zeros]) == []
    assert warned([a, c, d, d, zeros]) == [outside.format(2, "'d'")]
    assert warned([d, c, zeros]) == []
    nlp.initialize(lambda: _examples(nlp, ["x", "y"], [a, b]))  # a new run warns again
    assert warned([a, c, zeros, c]) == first


@pytest.mark.parametrize("multi_label", [False, True])
def test_positive_cats_are_worked_out_once_per_example_of_a_call(
    monkeypatch: pytest.MonkeyPatch, multi_label: bool
) -> None:
    """initialize and update read each example's positive cats once and pass them along (to
    the checks, the warnings, the targets), rather than working them out again in each."""
    from spacy_component import component

    calls: list[dict] = []

    def counted(cats: dict[str, float]) -> list[str]:
        calls.append(cats)
        return positive(cats)

    positive = component._positive
    monkeypatch.setattr(component, "_positive", counted)
    cats = [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}, {"a": 0.0, "b": 1.0}]
    nlp = _initialize_with_labels(None, cats, multi_label)
    assert calls == cats
    calls.clear()
    nlp.update(_examples(nlp, ["x", "y"], cats[:2]))
    assert calls == cats[:2]


@pytest.mark.parametrize("multi_label", [False, True])
def test_cats_other_than_0_and_1_are_refused_like_spacy_textcat(multi_label: bool) -> None:
    """As spaCy's textcat and textcat_multilabel (E851): a cat is exactly 1.0 or 0.0."""
    good = [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}]
    rule = "a cat is 1.0 (the doc has the label) or 0.0 (it has not)"
    with pytest.raises(ConfigError) as error:
        _initialize_with_labels(None, [good[0], {"a": 0.7, "b": 0.3}], multi_label)
    assert str(error.value) == (
        f"textproj component 'textproj': training example 1 has cats['a'] = 0.7; {rule}"
    )
    nlp = _initialize_with_labels(None, good, multi_label)
    batch = _examples(nlp, ["x", "y", "z"], [*good, {"a": 1.0, "b": 2.0}])
    with pytest.raises(ConfigError) as error:
        nlp.update(batch)
    assert str(error.value) == (
        f"textproj component 'textproj': doc 2 of the batch has cats['b'] = 2.0; {rule}"
    )


def test_multi_label_leaves_labels_a_doc_omits_out_of_its_loss() -> None:
    """As spaCy's textcat_multilabel: a label missing from a doc's cats is unknown, not a
    negative, so the doc gives that label no loss."""
    cats = [{"a": 1.0, "b": 0.0}, {"a": 0.0, "b": 1.0}]
    texts = ["text 0", "text 1", "text 2"]

    def loss(third: dict[str, float]) -> float:
        nlp = _initialize_with_labels(None, cats, multi_label=True)
        losses: dict[str, float] = {}
        nlp.update(_examples(nlp, texts, [*cats, third]), losses=losses)
        return losses["textproj"]

    assert loss({"a": 1.0}) != loss({"a": 1.0, "b": 0.0})  # once the same: b counted negative
    import torch

    from textproj.objective import label_loss

    logits = torch.tensor([[0.3, -1.2], [2.0, 0.5]])
    targets = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    known = bce(logits[0, :1], targets[0, :1], reduction="sum")
    expected = (known + bce(logits[1], targets[1], reduction="sum")) / 2
    assert label_loss(logits, targets, multi_label=True).item() == pytest.approx(expected.item())


def test_entry_point_and_saved_pipeline_need_no_import_and_no_torch(
    nlp: spacy.Language, model_file: Path, tmp_path: Path
) -> None:
    nlp.to_disk(tmp_path / "pipeline")
    script = (
        "import json, sys\n"
        "sys.modules['torch'] = None  # any import of torch now fails\n"
        "import spacy\n"
        "blank = spacy.blank('en')\n"
        f"blank.add_pipe('textproj', config={{'model': {str(model_file)!r}}})\n"
        f"loaded = spacy.load({str(tmp_path / 'pipeline')!r})\n"
        "print(json.dumps([blank('I lost my card').cats, loaded('I lost my card').cats]))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    from_blank, from_saved = json.loads(run.stdout)
    assert from_blank == from_saved == nlp("I lost my card").cats


def test_two_processes_give_the_same_cats(nlp: spacy.Language) -> None:
    texts = TEXTS * 3
    assert _cats(nlp, texts, batch_size=50, n_process=2) == _cats(nlp, texts, batch_size=50)


def test_threads_sharing_one_pipeline_give_the_same_cats(nlp: spacy.Language) -> None:
    expected = [nlp(text).cats for text in TEXTS]
    expected_batched = _cats(nlp, TEXTS, batch_size=32)
    results: dict[int, tuple[list, list]] = {}

    def work(i: int) -> None:
        results[i] = ([nlp(text).cats for text in TEXTS], _cats(nlp, TEXTS, batch_size=32))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(result == (expected, expected_batched) for result in results.values())


def _examples(nlp: spacy.Language, texts: list[str], cats: list[dict]) -> list[Example]:
    return [
        Example.from_dict(nlp.make_doc(t), {"cats": c}) for t, c in zip(texts, cats, strict=True)
    ]


def _train(nlp: spacy.Language, examples: list[Example], epochs: int) -> list[float]:
    """Summed loss of each of ``epochs`` passes in batches of 24."""
    optimizer = nlp.initialize(lambda: examples)
    optimizer.learn_rate = 0.005
    history = []
    for _ in range(epochs):
        losses: dict[str, float] = {}
        for batch in spacy.util.minibatch(examples, size=24):
            nlp.update(batch, sgd=optimizer, losses=losses)
        history.append(losses["textproj"])
    return history


TINY_TRAIN = {
    "bottleneck": 16,
    "filters": 16,
    "trainer_buckets": 4096,
    "trainer_dim": 16,
    "threads": 1,
}


def test_trainable_mode_learns_scores_and_saves_an_int8_model(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = {"card": "card lost stolen", "cash": "cash atm withdraw", "rate": "exchange rate fee"}
    labels = sorted(words)
    gold = [labels[i] for i in rng.integers(0, 3, size=120)]
    texts = [f"my {' '.join(rng.permutation(words[label].split()))} please" for label in gold]
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("textproj", config={"train_config": TINY_TRAIN})
    examples = _examples(nlp, texts, [{k: float(k == g) for k in labels} for g in gold])
    history = _train(nlp, examples, epochs=3)
    assert pipe.labels == tuple(labels) and pipe.is_trainable
    assert history[-1] < history[0] / 2
    scores = nlp.evaluate(examples)
    assert scores["cats_score_desc"] == "macro F" and scores["cats_macro_f"] > 0.9
    assert (
        max(nlp("the atm would not let me withdraw").cats.items(), key=lambda x: x[1])[0] == "cash"
    )
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert not loaded.get_pipe("textproj").is_trainable
    assert _cats(loaded, texts) == _cats(nlp, texts)
    clf = textproj.load(tmp_path / "pipeline" / "textproj")
    assert clf.labels == labels and not clf.multi_label


def test_multi_label_mode_trains_sigmoids_and_scores_like_textcat_multilabel(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(0)
    words = {"billing": "invoice payment charge", "login": "password account sign"}
    texts, cats = [], []
    for _ in range(120):
        chosen = [label for label in words if rng.random() < 0.5]
        texts.append(" ".join(f"the {words[label]}" for label in chosen) or "hello there")
        cats.append({label: float(label in chosen) for label in words})
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("textproj", config={"multi_label": True, "train_config": TINY_TRAIN})
    examples = _examples(nlp, texts, cats)
    _train(nlp, examples, epochs=4)
    assert pipe.multi_label
    both = nlp("the invoice payment charge the password account sign").cats
    neither = nlp("hello there").cats
    assert min(both.values()) > 0.5 > max(neither.values())
    scores = nlp.evaluate(examples)
    assert scores["cats_macro_f"] > 0.9
    assert scores["cats_score_desc"] == "macro AUC"  # spaCy's multi-label cats_score
    assert scores["cats_score"] == scores["cats_macro_auc"]
    assert "cats_micro_f" in scores
    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    assert loaded.get_pipe("textproj").multi_label
    assert loaded("hello there").cats == neither
    assert textproj.load(tmp_path / "pipeline" / "textproj").multi_label
    _scores_at_the_model_thresholds(tmp_path / "pipeline" / "textproj" / "model.tpn", texts, cats)


def _scores_at_the_model_thresholds(model: Path, texts: list[str], cats: list[dict]) -> None:
    """A multi-label model file's stored thresholds decide spaCy's scores as they decide the
    runtime's (and the CLI's) labels, unless the config gives one threshold."""
    header, tensors = read_model(model)
    header["thresholds"] = [0.97, 0.03]  # far from 0.5, so a fixed 0.5 would score otherwise
    write_model(model.with_name("odd.tpn"), header, tensors)
    clf = textproj.load(model.with_name("odd.tpn"))
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("textproj", config={"model": str(model.with_name("odd.tpn"))})
    assert pipe.thresholds.tolist() == pytest.approx([0.97, 0.03])
    gold = [tuple(label for label, value in c.items() if value) for c in cats]
    expected = per_label_scores(gold, clf.predict(texts), clf.labels)
    scores = nlp.evaluate(_examples(nlp, texts, cats))
    for label in clf.labels:
        assert scores["cats_f_per_type"][label]["f"] == pytest.approx(expected[label]["f1"])
    for doc, labels in zip(nlp.pipe(texts), clf.predict(texts), strict=True):
        assert [
            k for k, v in doc.cats.items() if v >= pipe.thresholds[clf.labels.index(k)]
        ] == labels
    fixed = spacy.blank("en")
    fixed.add_pipe("textproj", config={"model": str(model.with_name("odd.tpn")), "threshold": 0.5})
    assert fixed.get_pipe("textproj").thresholds.tolist() == [0.5, 0.5]


def test_corpus_converter_writes_every_label_per_doc(tmp_path: Path) -> None:
    written = convert(["banking77"], tmp_path, limit=50)
    assert sorted(written) == ["dev", "test", "train"]
    nlp = spacy.blank("en")
    docs = list(DocBin().from_disk(written["train"]).get_docs(nlp.vocab))
    assert len(docs) == 50
    labels = set(docs[0].cats)
    assert all(set(doc.cats) == labels and sum(doc.cats.values()) == 1 for doc in docs)
    sample = load_corpus("banking77", "train")
    gold = dict(zip(sample.texts, sample.labels, strict=False))
    assert all(doc.cats[gold[doc.text]] == 1.0 for doc in docs)


def test_a_trainer_share_is_refused_naming_the_section() -> None:
    message = r"^\[components.textproj.train_config\] trainer_share: spaCy's training loop"
    with pytest.raises(ConfigError, match=message):
        spacy.blank("en").add_pipe("textproj", config={"train_config": {"trainer_share": 0.5}})
    component = spacy.blank("en").add_pipe("textproj")  # trains its trainer over every step
    assert component.train_config.trainer_share == 1


@pytest.mark.parametrize(
    ("train_config", "message"),
    [
        (
            {"epochs": 3, "batch_size": 32},
            "[components.textproj.train_config] epochs, batch_size: not used by spaCy's training "
            "loop (epochs: [training] max_epochs; batch_size: [training.batcher] size)",
        ),
        (
            {"multi_label": True},
            "[components.textproj.train_config] multi_label: not used by spaCy's training loop "
            "(multi_label: [components.textproj] multi_label)",
        ),
        (
            {"dropout": 3},
            "[components.textproj.train_config] TrainConfig.dropout must be in [0, 1), got 3",
        ),
        ({"bogus": 1}, "[components.textproj.train_config] unknown TrainConfig keys: bogus"),
    ],
)
def test_train_config_keys_spacy_would_not_use_are_refused(train_config: dict, message: str):
    with pytest.raises(ConfigError) as error:
        spacy.blank("en").add_pipe("textproj", config={"train_config": train_config})
    assert str(error.value) == message


def test_a_bad_features_setting_names_its_section() -> None:
    with pytest.raises(ConfigError, match=r"^\[components.textproj.features\] unknown Feature"):
        spacy.blank("en").add_pipe("textproj", config={"features": {"bogus": 1}})


def test_the_learner_takes_r_drop_only_when_asked() -> None:
    from spacy_component.learner import Learner

    tiny = TrainConfig(**{**TINY_TRAIN, "trainer_share": 1})
    assert Learner(["a", "b"], tiny, FeatureConfig()).joint.consistency == 0  # size unknown
    asked = dataclasses.replace(tiny, consistency=0.5)
    assert Learner(["a", "b"], asked, FeatureConfig()).joint.consistency == 0.5


@pytest.mark.parametrize(("words", "short"), [(3, True), (40, False)])
def test_initialize_max_pools_short_texts_and_mean_pools_long_ones(words: int, short: bool) -> None:
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("textproj", config={"train_config": TINY_TRAIN})
    texts = [" ".join([label] * words) for label in ("yes", "no") * 4]
    nlp.initialize(lambda: _examples(nlp, texts, [{"yes": 1.0, "no": 0.0}] * len(texts)))
    assert pipe._learner.projection.max_pool is short
    assert pipe._learner.projection.mean_pool is not short
    assert pipe.train_config.max_pool is pipe.train_config.mean_pool is None  # still the rule


def test_corpus_converter_reads_named_columns(tmp_path: Path) -> None:
    from spacy_component.make_spacy_corpus import main

    (tmp_path / "mine.csv").write_text("intent,utterance\ngreet,hello there\nleave,bye\n")
    main([str(tmp_path / "mine.csv"), str(tmp_path / "out"), "--text-column", "utterance",
          "--label-column", "intent"])  # fmt: skip
    docs = list(
        DocBin().from_disk(tmp_path / "out" / "mine.spacy").get_docs(spacy.blank("en").vocab)
    )
    assert [(doc.text, doc.cats) for doc in docs] == [
        ("hello there", {"greet": 1.0, "leave": 0.0}),
        ("bye", {"greet": 0.0, "leave": 1.0}),
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{d}/x.tsv", "{d}/sub/x.tsv", "{d}/out"], "{d}/sub/x.tsv: would write x.spacy, as "
         "{d}/x.tsv does; rename one of them"),
        (["{d}/x.tsv", "{d}/out", "--limit", "0"], "--limit: must be at least 1 row per split, "
         "got 0"),
        (["{d}/x.tsv", "{d}/out", "--limit", "-5"], "--limit: must be at least 1 row per split, "
         "got -5"),
        (["{d}/nowhere.tsv", "{d}/out"], "{d}/nowhere.tsv: no such file"),
        (["banking77", "{d}/x.tsv", "{d}/out"], "banking77: a bundled corpus is converted alone "
         "(into its train, dev, test splits); give it without data files"),
        (["{d}/x.tsv", "{d}/x.tsv"], "{d}/x.tsv: exists and is not a directory; give another "
         "output"),
        (["banking7", "{d}/out"], "banking7: neither a bundled corpus (banking77, clinc150, "
         "sentiment_sentences, spamassassin, udhr_langid) nor a data file"),
        (["{d}/x.tsv", "{d}/out", "--lang", "zz"], "--lang: spaCy has no language 'zz'"),
        (["sentiment_sentences", "{d}/out", "--text-column", "sentence"], "--text-column: name "
         "columns of data files; the bundled corpus sentiment_sentences keeps its own"),
        (["banking77", "{d}/out", "--text-column", "t", "--label-column", "l"], "--text-column "
         "and --label-column: name columns of data files; the bundled corpus banking77 keeps "
         "its own"),
    ],
)  # fmt: skip
def test_corpus_converter_refuses_bad_input_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], message: str
) -> None:
    from spacy_component.make_spacy_corpus import main

    (tmp_path / "sub").mkdir()
    for path in (tmp_path / "x.tsv", tmp_path / "sub" / "x.tsv"):
        path.write_text("text\tlabel\nhello\tgreet\nbye\tleave\n")
    with pytest.raises(SystemExit) as exit_:
        main([arg.format(d=tmp_path) for arg in args])
    assert exit_.value.code == 1
    assert capsys.readouterr().err == f"error: {message.format(d=tmp_path)}\n"
    assert not (tmp_path / "out").exists()


def test_corpus_converter_replaces_spacy_files_only_with_force(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from spacy_component.make_spacy_corpus import main

    (tmp_path / "x.tsv").write_text("text\tlabel\nhello\tgreet\nbye\tleave\n")
    (tmp_path / "y.tsv").write_text("text\tlabel\nhi\tgreet\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "y.spacy").write_bytes(b"the user's own corpus")
    args = [str(tmp_path / "x.tsv"), str(tmp_path / "y.tsv"), str(out)]
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code == 1
    assert capsys.readouterr().err == (
        f"error: {out}/y.spacy: already there; replace with --force (force=True), or give "
        "another output folder\n"
    )
    assert (out / "y.spacy").read_bytes() == b"the user's own corpus"
    assert sorted(path.name for path in out.iterdir()) == ["y.spacy"]  # nothing written
    (out / "dev.spacy").write_bytes(b"")
    with pytest.raises(ConfigError, match=rf"^{out}/dev.spacy: already there; replace with"):
        convert(["banking77"], out)
    main([*args, "--force"])
    vocab = spacy.blank("en").vocab
    docs = list(DocBin().from_disk(out / "y.spacy").get_docs(vocab))
    assert [(doc.text, doc.cats) for doc in docs] == [("hi", {"greet": 1.0, "leave": 0.0})]


@pytest.mark.slow
def test_spacy_train_evaluate_and_load(tmp_path: Path) -> None:
    corpus = convert(["sentiment_sentences"], tmp_path / "corpus", limit=300)
    spacy_cli = [sys.executable, "-m", "spacy"]
    train = subprocess.run(
        [
            *spacy_cli,
            "train",
            str(CONFIG),
            "--output",
            str(tmp_path / "out"),
            "--paths.train",
            str(corpus["train"]),
            "--paths.dev",
            str(corpus["dev"]),
            "--training.max_epochs",
            "2",
            "--training.eval_frequency",
            "4",
            "--components.textproj.train_config.bottleneck",
            "16",
            "--components.textproj.train_config.trainer_buckets",
            "4096",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert train.returncode == 0, train.stdout + train.stderr
    best = tmp_path / "out" / "model-best"
    assert (best / "textproj" / "model.tpn").is_file()
    evaluate = subprocess.run(
        [
            *spacy_cli,
            "evaluate",
            str(best),
            str(corpus["test"]),
            "--output",
            str(tmp_path / "m.json"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert evaluate.returncode == 0, evaluate.stdout + evaluate.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["cats_score_desc"] == "macro F"
    assert {"cats_macro_p", "cats_macro_r", "cats_macro_f"} <= metrics.keys()
    loaded = spacy.load(best)
    assert set(loaded("what a great phone").cats) == {"negative", "positive"}
    # spacy evaluate's macro F is the runtime's on the same docs (labels by arg-max).
    docs = list(DocBin().from_disk(corpus["test"]).get_docs(loaded.vocab))
    gold = [max(doc.cats, key=doc.cats.get) for doc in docs]
    clf = textproj.load(best / "textproj")
    per_label = per_label_scores(
        [[g] for g in gold], [[p] for p in clf.predict([d.text for d in docs])], clf.labels
    )
    macro_f = np.mean([per_label[label]["f1"] for label in clf.labels])
    assert metrics["cats_score"] == pytest.approx(macro_f, abs=1e-6)


def test_the_shipped_config_keeps_the_factorys_scoring_defaults() -> None:
    """The example config's component settings outside train_config are the factory's own
    defaults: a threshold of 0.5 there overrode a multi-label model's stored thresholds, where
    docs/spacy.md gives null (use them) as the default."""
    from thinc.api import Config

    from spacy_component.component import DEFAULT_CONFIG

    section = Config().from_disk(CONFIG)["components"]["textproj"]
    for key in ("model", "multi_label", "threshold", "n_jobs"):
        assert section[key] == DEFAULT_CONFIG[key], key


def test_the_shipped_config_repeats_no_textproj_default() -> None:
    """train_config and features in the example config set no field to textproj's own default
    (textproj.config stays their one home: a copy there went stale, dropout 0.2 against 0.4),
    and both sections exist, so spacy train's --components.textproj.train_config.FIELD
    overrides have a section to go into."""
    from thinc.api import Config

    section = Config().from_disk(CONFIG)["components"]["textproj"]
    for key, cls in (("train_config", TrainConfig), ("features", FeatureConfig)):
        defaults = {field.name: field.default for field in dataclasses.fields(cls)}
        repeated = [name for name, value in section[key].items() if value == defaults[name]]
        assert repeated == [], key
