"""textproj sweep: the grid, its CSV round trip, the plot, and the command end to end."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from typer.testing import CliRunner

from textproj.cli import app
from textproj.config import TrainConfig
from textproj.corpora import load_corpus
from textproj.data import Dataset, write_dataset
from textproj.errors import ConfigError
from textproj.sweep import (
    COLUMNS,
    default_grid,
    grid_config,
    plot,
    read_csv,
    run_sweep,
    sample,
    write_csv,
)
from textproj.training import train

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _row(
    t: int, d: int, width: int, accuracy: float, test: float | str = "", weight_bits: int = 4
) -> dict:
    return {
        "design": "token",
        "T": t,
        "d": d,
        "n_bits": t * d,
        "width": width,
        "weight_bits": weight_bits,
        "model_bytes": 1000 * t * width,
        "dev_accuracy": accuracy,
        "test_accuracy": test,
        "epochs": 3,
        "train_seconds": 1.5,
    }


def test_sample_is_seeded_ordered_and_complete_when_small() -> None:
    data = Dataset([f"t{i}" for i in range(100)], [str(i % 3) for i in range(100)], "x")
    a, b = sample(data, 10, seed=1), sample(data, 10, seed=1)
    assert a == b and len(a) == 10
    assert a.texts == sorted(a.texts, key=lambda t: int(t[1:]))
    assert all(data.labels[int(t[1:])] == label for t, label in zip(a.texts, a.labels, strict=True))
    assert sample(data, 10, seed=2) != a
    assert sample(data, None) is data and sample(data, 500) is data


def test_grid_config_sets_shape_and_width_per_design() -> None:
    token = grid_config(TrainConfig(design="token"), 4, 8, 32)
    assert (token.projection_shape, token.bottleneck) == ((4, 8), 32)
    text = grid_config(TrainConfig(design="text", epochs=3), 10, 12, 48)
    assert (text.projection_shape, text.hidden, text.epochs) == ((10, 12), (48,), 3)


def test_csv_round_trip_and_plot(tmp_path: Path) -> None:
    rows = [_row(2, 8, 16, 0.7), _row(8, 8, 16, 0.75, 0.74), _row(2, 8, 64, 0.72, "", 8)]
    write_csv(rows, tmp_path / "s.csv")
    header = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert header == ",".join(COLUMNS)
    back = read_csv(tmp_path / "s.csv")
    assert [r["dev_accuracy"] for r in back] == [0.7, 0.75, 0.72]
    assert [r["weight_bits"] for r in back] == [4, 4, 8]
    assert [r["test_accuracy"] for r in back] == [None, 0.74, None]
    assert back[1]["n_bits"] == 64 and back[1]["model_bytes"] == 128_000
    plot(back, tmp_path / "s.png", "title")
    assert (tmp_path / "s.png").read_bytes().startswith(PNG_MAGIC)


def test_csv_without_weight_bits_reads_as_int8(tmp_path: Path) -> None:
    older = [c for c in COLUMNS if c != "weight_bits"]
    row = _row(2, 8, 16, 0.7)
    (tmp_path / "old.csv").write_text(
        ",".join(older) + "\n" + ",".join(str(row[c]) for c in older) + "\n"
    )
    assert read_csv(tmp_path / "old.csv")[0]["weight_bits"] == 8


def test_default_grid_holds_each_designs_default_point() -> None:
    assert default_grid(TrainConfig()) == {
        "projections": (16, 48),
        "bits": (8, 16),
        "widths": (32, 64),
    }
    text = TrainConfig(design="text")
    grid = default_grid(text)
    assert text.projection_shape == (grid["projections"][-1], grid["bits"][-1])
    assert grid["widths"] == (text.hidden[0] // 2, text.hidden[0])


def test_sweep_refuses_unknown_weight_bits() -> None:
    result = CliRunner().invoke(app, ["sweep", "--weight-bits", "4,6"])
    assert result.exit_code == 2
    assert "--weight-bits takes values of (8, 4), not 6" in result.output


@pytest.mark.slow
def test_sweep_command(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["sweep", "--corpus", "sentiment_sentences", "-T", "2,4", "-d", "8", "--widths", "8"]
    args += ["--weight-bits", "4,8"]
    result = CliRunner().invoke(app, [*args, "--epochs", "1", "--limit", "150", "--output", out])
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "sweep.csv")
    assert [(r["T"], r["d"], r["width"], r["n_bits"], r["weight_bits"]) for r in rows] == [
        (2, 8, 8, 16, 4),
        (2, 8, 8, 16, 8),
        (4, 8, 8, 32, 4),
        (4, 8, 8, 32, 8),
    ]
    assert rows[0]["model_bytes"] < rows[1]["model_bytes"]
    for row in rows:
        assert row["test_accuracy"] is not None and row["epochs"] == 1
    # Each row is what training that grid point gives (training is deterministic).
    splits = [load_corpus("sentiment_sentences", split) for split in ("train", "dev", "test")]
    config = grid_config(TrainConfig(epochs=1, threads=1), 2, 8, 8)
    again = train(sample(splits[0], 150), *splits[1:], config=config, progress=False).metrics
    assert rows[0]["dev_accuracy"] == round(again["projection"]["dev"]["accuracy"], 4)
    assert rows[0]["test_accuracy"] == round(again["projection"]["test"]["accuracy"], 4)
    assert rows[0]["model_bytes"] < rows[2]["model_bytes"]  # more bits, a wider bottleneck input
    assert (out / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    assert "T=2 d=8 width=8 int4: dev acc" in result.output


@pytest.mark.slow
def test_sweep_on_your_own_file(tmp_path: Path) -> None:
    data = load_corpus("sentiment_sentences", "train")
    write_dataset(Dataset(data.texts[:160], data.labels[:160], "mine"), tmp_path / "mine.jsonl")
    args = ["sweep", "--train", str(tmp_path / "mine.jsonl"), "-T", "2", "-d", "8"]
    result = CliRunner().invoke(app, [*args, "--epochs", "1", "--output", tmp_path / "out"])
    assert result.exit_code == 0, result.output
    rows = read_csv(tmp_path / "out" / "sweep.csv")
    assert [(r["T"], r["d"], r["width"]) for r in rows] == [
        (2, 8, 32),
        (2, 8, 64),
    ]  # widths: default
    assert all(r["test_accuracy"] is None for r in rows)  # no --test given


def test_sweep_warns_of_blank_texts_in_the_sample_it_trains_on(monkeypatch, tmp_path) -> None:
    data = Dataset(["", " ", "good", "bad"] * 5, list("pnpn") * 5, "mine")
    write_dataset(data, tmp_path / "mine.tsv")
    trained_on = []
    monkeypatch.setattr(
        "textproj.sweep.sweep_to_folder",
        lambda train, *_, **__: trained_on.append(train) or (tmp_path / "a", tmp_path / "b"),
    )
    args = ["sweep", "--train", str(tmp_path / "mine.tsv"), "--limit", "8"]
    result = CliRunner().invoke(app, [*args, "--output", tmp_path / "out"])
    assert result.exit_code == 0, result.output
    picked = sample(Dataset(data.texts, data.labels, "x"), 8)
    assert trained_on[0].texts == picked.texts
    blank = sum(not text.strip() for text in picked.texts)
    source = f"{tmp_path / 'mine.tsv'} (a random 8)"
    expected = f"warning: {source}: {blank} of 8 texts are empty or white space only"
    assert expected in " ".join(result.stderr.split())


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--corpus", "nope"], "unknown corpus 'nope'", 1),
        (["-T", "4,x"], "--projections takes comma-separated positive integers", 2),
        (["-d", "0"], "--bits takes comma-separated positive integers", 2),
        (["-T", "8,16,8"], "--projections lists 8 more than once; give each value once", 2),
        (["-d", "4,4,8,8"], "--bits lists 4 more than once; give each value once", 2),
        (["--design", "cnn"], "'cnn' is not one of 'token', 'text'", 2),
        (["--corpus", "banking77", "--train", "x.tsv"], "either --corpus or --train", 2),
        (["--dev", "x.tsv"], "--dev and --test go with --train", 2),
        (["--train", "missing.tsv"], "missing.tsv: no such file", 1),
        (["-d", "16,8,16"], "--bits lists 16 more than once; give each value once", 2),
        (["--widths", "8,8"], "--widths lists 8 more than once; give each value once", 2),
        (["--weight-bits", "4,4"], "--weight-bits lists 4 more than once", 2),
    ],
)
def test_sweep_errors(args: list[str], message: str, code: int) -> None:
    result = CliRunner().invoke(app, ["sweep", *args])
    assert result.exit_code == code
    assert message in " ".join(result.output.split())


def _sweep_args(data: Path, output: Path) -> list[str]:
    return ["sweep", "--train", str(data), "-T", "2", "-d", "8", "--widths", "8", "--epochs", "1",
            "--output", str(output)]  # fmt: skip


@pytest.mark.parametrize(
    ("texts", "labels", "message"),
    [
        (
            ["good", "fine", "nice"],
            ["p", "p", "p"],
            "training data has only the label 'p'; a classifier needs two",
        ),
        (["good"], ["p"], "1 training example(s); at least 2 are needed"),
    ],
)
def test_sweep_refuses_data_that_cannot_train_with_one_line(
    tmp_path: Path, texts: list[str], labels: list[str], message: str
) -> None:
    write_dataset(Dataset(texts, labels, "mine"), tmp_path / "mine.tsv")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, [*_sweep_args(tmp_path / "mine.tsv", out), "--dev", str(tmp_path / "mine.tsv")]
    )
    assert result.exit_code == 1
    assert result.stderr == f"error: {tmp_path / 'mine.tsv'}: {message}\n"
    assert "Traceback" not in result.output and not out.exists()


def test_sweep_refuses_an_output_it_would_overwrite_before_reading_data(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("mine", encoding="utf-8")
    users = tmp_path / "users"
    users.mkdir()
    (users / "notes.txt").write_text("keep", encoding="utf-8")
    previous = tmp_path / "previous"
    write_csv([_row(2, 8, 16, 0.7)], tmp_path / "previous.csv")
    previous.mkdir()
    (tmp_path / "previous.csv").rename(previous / "sweep.csv")
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    (interrupted / "checkpoint.pt").write_bytes(b"")
    missing = tmp_path / "missing.tsv"  # never read: the output is refused first
    cases = {
        interrupted: "holds an interrupted run's checkpoint.pt, and a sweep replaces its output "
        "directory whole; give another output directory, or replace it with --force",
        tmp_path / "a-file": "exists and is not a directory; give another output",
        tmp_path / "a-file" / "sub": f"{tmp_path / 'a-file'} is a file, not a directory; give "
        "another path",
        users: "holds files that are not a textproj sweep (notes.txt), and a sweep replaces its "
        "output directory whole; give a new or empty directory, or replace it with --force",
        previous: "holds another sweep (sweep.csv); overwrite it with --force, or "
        "give another output directory",
    }
    for output, message in cases.items():
        result = CliRunner().invoke(app, _sweep_args(missing, output))
        assert result.exit_code == 1
        assert " ".join(result.stderr.split()) == f"error: {output}: {message}"
    assert (tmp_path / "a-file").read_text(encoding="utf-8") == "mine"
    assert (users / "notes.txt").read_text(encoding="utf-8") == "keep"
    assert read_csv(previous / "sweep.csv")[0]["dev_accuracy"] == 0.7


def test_sweep_force_replaces_the_output_whole(monkeypatch, tmp_path: Path) -> None:
    write_dataset(Dataset(["good", "bad"] * 4, list("pn") * 4, "mine"), tmp_path / "mine.tsv")
    out = tmp_path / "out"
    out.mkdir()
    (out / "sweep.csv").write_text("an older sweep", encoding="utf-8")
    (out / "stale.txt").write_text("old", encoding="utf-8")
    monkeypatch.setattr("textproj.sweep.run_sweep", lambda *_, **__: [_row(2, 8, 8, 0.9)])
    result = CliRunner().invoke(app, [*_sweep_args(tmp_path / "mine.tsv", out), "--force"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["sweep.csv", "sweep.png"]
    assert [r["dev_accuracy"] for r in read_csv(out / "sweep.csv")] == [0.9]
    assert (out / "sweep.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.tsv", "out"]  # no staging left


def test_sweep_refuses_a_grid_point_a_model_file_cannot_hold_before_any_trains(
    monkeypatch, tmp_path: Path
) -> None:
    write_dataset(Dataset(["good", "bad"] * 4, list("pn") * 4, "mine"), tmp_path / "mine.tsv")
    monkeypatch.setattr("textproj.training.train", lambda *_, **__: pytest.fail("trained"))
    args = _sweep_args(tmp_path / "mine.tsv", tmp_path / "out")
    result = CliRunner().invoke(app, [*args, "--design", "text", "--widths", "8,4194305"])
    assert result.exit_code == 2  # a usage error, as train's, before the output or data
    assert result.stderr == (
        "error: --widths, --projections, --bits: layer 'dense.0' would hold 4194305 x 16 = "
        "67,108,880 weights (2 x 8 input bits, 2 labels), over the 67,108,864 a model file can "
        "hold; make it smaller\n"
    )


def test_sweep_without_matplotlib_is_refused_before_any_point_trains(
    monkeypatch, tmp_path: Path
) -> None:
    """matplotlib is not a dependency of textproj[train]: the plot failed after the whole grid
    had trained, and the staged output with it."""
    write_dataset(Dataset(["good", "bad"] * 4, list("pn") * 4, "mine"), tmp_path / "mine.tsv")
    monkeypatch.setattr("textproj.sweep.run_sweep", lambda *_, **__: pytest.fail("trained"))
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a),
    )
    out = tmp_path / "out"
    result = CliRunner().invoke(app, _sweep_args(tmp_path / "mine.tsv", out))
    assert (result.exit_code, result.stderr) == (
        1,
        f"error: {out / 'sweep.png'}: plotting needs matplotlib (pip install matplotlib)\n",
    )
    assert not out.exists()


def test_run_sweep_refuses_a_value_given_twice_before_any_point_trains(monkeypatch) -> None:
    """A repeated value would train one point twice: two rows, one dot on the plot."""
    monkeypatch.setattr("textproj.training.train", lambda *_, **__: pytest.fail("trained"))
    data = Dataset(["good", "bad"] * 4, list("pn") * 4, "mine")
    grid = {"projections": (2, 3, 2), "bits": (8,), "widths": (8,)}
    with pytest.raises(ConfigError, match=r"^projections lists 2 more than once; give each value"):
        run_sweep(data, None, None, **grid)


def test_sweep_shows_its_runs_warnings_as_train_does_each_once(tmp_path: Path) -> None:
    """Every grid point trains on the same data, so warns the same: one ``warning:`` line (was
    a Python ``file:line: UserWarning`` and its source line, once per grid point)."""
    data = load_corpus("sentiment_sentences", "train")
    write_dataset(Dataset(data.texts[:60], data.labels[:60], "mine"), tmp_path / "mine.tsv")
    dev = Dataset(["good", "bad", "meh"], ["positive", "negative", "neutral"], "dev")
    write_dataset(dev, tmp_path / "dev.tsv")
    args = [*_sweep_args(tmp_path / "mine.tsv", tmp_path / "out"), "--widths", "8,16"]
    result = CliRunner().invoke(app, [*args, "--dev", str(tmp_path / "dev.tsv")])
    assert result.exit_code == 0, result.output
    warning = f"warning: {tmp_path / 'dev.tsv'}: 1 label(s) never seen in training: 'neutral'"
    assert result.stderr.splitlines() == [warning]
    assert len(read_csv(tmp_path / "out" / "sweep.csv")) == 2


def test_sweep_names_the_token_cap_as_a_sweep_user_can_change_it(tmp_path: Path) -> None:
    """sweep has no --max-tokens (train has): its long-texts warning says so (was: it named
    --max-tokens as if sweep took it)."""
    data = load_corpus("sentiment_sentences", "train")
    texts = [*data.texts[:58], " ".join(["word"] * 1100), " ".join(["other"] * 1100)]
    write_dataset(Dataset(texts, data.labels[:60], "mine"), tmp_path / "mine.tsv")
    result = CliRunner().invoke(app, _sweep_args(tmp_path / "mine.tsv", tmp_path / "out"))
    assert result.exit_code == 0, result.output
    (line,) = [line for line in result.stderr.splitlines() if "token cap" in line]
    assert line.endswith(
        "reach the 1024-token cap; no token past it is read (`textproj train --max-tokens` sets "
        "it; sweep keeps the default)"
    )
