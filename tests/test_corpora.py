"""Tests for textproj.corpora and the ``textproj corpora`` command, on the bundled data."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textproj import corpora
from textproj.cli import app
from textproj.corpora import (
    CORPORA,
    DEFAULT_CORPUS,
    ENV_VAR,
    corpora_root,
    corpus_path,
    corpus_table,
    load_corpus,
)

# Rows per split, counted with the csv module when the corpora were added.
SPLIT_SIZES = {
    "banking77": {"train": 9003, "dev": 1000, "test": 3080},
    "clinc150": {"train": 18000, "dev": 2250, "test": 2250},
    "sentiment_sentences": {"train": 2375, "dev": 314, "test": 314},
    "spamassassin": {"train": 4769, "dev": 554, "test": 723},
    "udhr_langid": {"train": 3175, "dev": 395, "test": 384},
}


@pytest.fixture(autouse=True)
def _no_env_override(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every test find the corpora bundled with the code, whatever the shell sets."""
    monkeypatch.delenv(ENV_VAR, raising=False)


def test_registry_matches_bundled_folders() -> None:
    assert set(CORPORA) == set(SPLIT_SIZES)
    assert DEFAULT_CORPUS in CORPORA
    bundled = {path.name for path in corpora_root().iterdir() if path.is_dir()}
    assert set(CORPORA) <= bundled
    for name, info in CORPORA.items():
        assert info.name == name
        assert info.task and info.source and info.licence


@pytest.mark.parametrize("name", sorted(SPLIT_SIZES))
def test_corpus_splits_load_with_expected_sizes(name: str) -> None:
    all_labels: set[str] = set()
    for split, size in SPLIT_SIZES[name].items():
        dataset = load_corpus(name, split)
        assert len(dataset) == size
        assert len(dataset.labels) == size
        assert all(label.strip() for label in dataset.labels)
        assert dataset.source == f"{name}/{split}"
        all_labels |= set(dataset.labels)
    assert len(all_labels) == CORPORA[name].n_labels


def test_banking77_has_77_labels_in_train() -> None:
    assert len(set(load_corpus("banking77", "train").labels)) == 77


def test_multiline_texts_survive_loading() -> None:
    texts = load_corpus("spamassassin", "dev").texts
    # Every message is "Subject\nbody"; a line-based reader would split them apart.
    assert sum("\n" in text for text in texts) > len(texts) // 2


def test_corpus_path_finds_plain_and_gzipped_files() -> None:
    assert corpus_path("banking77", "train").name == "train.tsv"
    assert corpus_path("spamassassin", "test").name == "test.tsv.gz"


def test_unknown_corpus_lists_known_names() -> None:
    with pytest.raises(ValueError, match="unknown corpus 'nope'") as caught:
        load_corpus("nope", "train")
    for name in CORPORA:
        assert name in str(caught.value)


def test_unknown_split_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown split 'validation'"):
        corpus_path("banking77", "validation")


def test_env_var_overrides_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "banking77"
    folder.mkdir()
    (folder / "train.tsv").write_text("text\tlabel\nhello\tgreet\n", encoding="utf-8")
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    assert corpora_root() == tmp_path
    assert load_corpus("banking77", "train").texts == ["hello"]


def test_env_var_pointing_nowhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match=ENV_VAR):
        corpora_root()


def test_wheel_layout_is_preferred(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An installed wheel keeps the corpora in textproj/_corpora, next to the modules."""
    package = tmp_path / "site-packages" / "textproj"
    shutil.copytree(corpora_root() / "banking77", package / "_corpora" / "banking77")
    monkeypatch.setattr(corpora, "_PACKAGE_DIR", package)
    assert corpora_root() == package / "_corpora"
    assert len(load_corpus("banking77", "dev")) == SPLIT_SIZES["banking77"]["dev"]


def test_checkout_layout_is_the_fallback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "textproj").mkdir()
    (tmp_path / "corpora" / DEFAULT_CORPUS).mkdir(parents=True)
    monkeypatch.setattr(corpora, "_PACKAGE_DIR", tmp_path / "textproj")
    assert corpora_root() == tmp_path / "corpora"


def test_missing_corpora_give_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(corpora, "_PACKAGE_DIR", tmp_path / "textproj")
    with pytest.raises(FileNotFoundError, match=f"bundled corpora not found.*{ENV_VAR}"):
        corpora_root()


def test_corpus_table() -> None:
    table = corpus_table()
    assert [row["name"] for row in table] == list(CORPORA)
    for row in table:
        name = str(row["name"])
        assert row["n_labels"] == CORPORA[name].n_labels
        assert row["task"] == CORPORA[name].task
        for split, size in SPLIT_SIZES[name].items():
            assert row[split] == size


def test_cli_corpora_lists_every_corpus() -> None:
    result = CliRunner().invoke(app, ["corpora"])
    assert result.exit_code == 0, result.output
    for name, sizes in SPLIT_SIZES.items():
        assert name in result.output
        assert str(sizes["train"]) in result.output
    assert "77" in result.output


def test_cli_without_arguments_shows_help() -> None:
    result = CliRunner().invoke(app, [])
    assert "corpora" in result.output
