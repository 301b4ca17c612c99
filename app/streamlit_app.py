"""textproj demo: classify, see the projection bits, read the model card, train your own model,
and compare accuracy against bits and bytes. Run ``streamlit run app/streamlit_app.py``.

The model is the bundled Banking77 one (``app/models/banking77``), the one named by the
``TEXTPROJ_MODEL`` environment variable, or a model.tpn picked in the sidebar. Loaded models are
cached once per process and shared by every session (``Classifier`` is thread-safe: its numba
kernels release the GIL and use no numba threading layer); everything a session does — its text
history, uploads, trainings — lives in ``st.session_state`` and a private temporary folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
from demo_bits import BitGrid, bit_grid, compare
from demo_charts import (
    AXIS_PX,
    LABEL_LIMIT,
    chart_height,
    describe,
    explanation_chart,
    grid_chart,
    probability_chart,
    resized_trainer_bytes,
)
from demo_data import (
    UPLOAD_TYPES,
    check_training_set,
    load_uploaded_model,
    read_uploaded_dataset,
)
from demo_form import FORM_LABELS, check_network_shape, in_form_words
from make_bundled_model import (
    BUNDLED_CORPUS,
    BUNDLED_DIR,
    TRAINER_BUCKETS,
    bundled_config,
    make_bundled_model,
)

import textproj
from textproj import (
    Classifier,
    ConfigError,
    DataError,
    Dataset,
    ModelFormatError,
    TextprojError,
    TrainConfig,
)
from textproj.config import DESIGNS, MAX_POOL_MEDIAN_TOKENS, PROJECTION_DEFAULTS
from textproj.corpora import CORPORA, load_corpus
from textproj.data import LABEL_COLUMN, TEXT_COLUMN, is_blank
from textproj.layout import METRICS_NAME, MODEL_NAME, TRAINER_WEIGHTS
from textproj.runtime import load_warnings
from textproj.sweep import read_csv, sample

if TYPE_CHECKING:
    from textproj.trainer_model import TrainerModel

APP_DIR = Path(__file__).resolve().parent
SWEEP_CSV = APP_DIR / "sweep" / "sweep.csv"
SWEEP_COMMAND = "textproj sweep --corpus banking77 --weight-bits 4,8 --output app/sweep"
# fastText's quantized model tuned on dev, banking77 (docs/benchmarks.md; compare.py's run)
FASTTEXT_REFERENCE = ("fastText tuned, quantized (.ftz)", 1_331_167, 0.882)
DEFAULT_TEXT = "I still have not received my new card"
ENTER_A_TEXT = "Enter a text above to classify it."
TOP_LABELS = 5
LATENCY_RUNS = 5
MAX_GRID_ROWS = 40
OWN_DEV_TEXTS = 1000
DEFAULTS = TrainConfig()  # the training form starts at the library's defaults
POOL_CHOICES = {"auto": None, "on": True, "off": False}  # the form's max_pool and mean_pool


@dataclass(frozen=True)
class ActiveModel:
    """The model a session classifies with, and what is known about it."""

    classifier: Classifier
    source: str
    directory: Path | None  # folder of model.tpn, where trainer files and metrics.json may be
    key: str  # identity of the model file: changes whenever the model does


# --- shared, cached resources (one per process, used by every session) -------------------------


@st.cache_resource
def _lock(name: str) -> threading.Lock:
    """One process-wide lock per name: bundled-model building, training."""
    return threading.Lock()


def _stamp(path: Path) -> str:
    stat = path.stat()
    return f"{path.resolve()}:{stat.st_mtime_ns}:{stat.st_size}"


@st.cache_resource(show_spinner="Loading the model…")
def _load_classifier(path: str, stamp: str) -> Classifier:
    return textproj.load(path)


@st.cache_resource(show_spinner="Loading the trainer (torch)…")
def _load_trainer(directory: str, stamp: str) -> TrainerModel:
    from textproj.trainer_model import load_trainer

    return load_trainer(directory)


@st.cache_resource(show_spinner="Loading the uploaded model…")
def _load_uploaded(digest: str, name: str, _data: bytes) -> Classifier:
    return load_uploaded_model(name, _data)


@st.cache_resource(show_spinner=False)
def _corpus(name: str, split: str) -> Dataset:
    return load_corpus(name, split)


# --- per-session state ----------------------------------------------------------------------------


def _session_folder() -> Path:
    """This session's private scratch folder, removed when the session's state is dropped."""
    if "workdir" not in st.session_state:
        st.session_state.workdir = tempfile.TemporaryDirectory(prefix="textproj-session-")
    return Path(st.session_state.workdir.name)


# --- which model ---------------------------------------------------------------------------------


def _ensure_bundled_model() -> Path:
    """The bundled model, trained here (once per process, with a progress bar) if it is missing."""
    model = BUNDLED_DIR / MODEL_NAME
    if model.is_file():
        return model
    with _lock("bundled"):
        if model.is_file():  # another session built it while this one waited
            return model
        epochs = bundled_config().schedule(len(load_corpus(BUNDLED_CORPUS, "train")))[1]
        bar = st.progress(0.0, text=f"No bundled model yet: training one on {BUNDLED_CORPUS}…")

        def step(row: dict[str, Any]) -> None:
            bar.progress(
                min(row["epoch"] / epochs, 1.0),
                text=f"Training the bundled model: epoch {row['epoch']}/{epochs}, "
                f"dev accuracy {row['dev_projection']:.3f}",
            )

        make_bundled_model(on_epoch=step)
        bar.empty()
    return model


def _model_from_path(path: Path, source: str) -> ActiveModel:
    path = path / MODEL_NAME if path.is_dir() else path
    try:
        stamp = _stamp(path)
        classifier = _load_classifier(str(path), stamp)
    except (OSError, ModelFormatError) as error:
        st.error(f"Cannot load the model {path}: {error}")
        st.stop()
    return ActiveModel(classifier, source, path.parent, stamp)


def choose_model() -> ActiveModel:
    """Sidebar: the default model, an uploaded model.tpn, or the model trained in this session."""
    st.sidebar.header("Model")
    upload = st.sidebar.file_uploader("Use another model.tpn", type=["tpn"], key="model_upload")
    own = st.session_state.get("own")
    use_own = own is not None and st.sidebar.toggle("Use the model I trained", key="use_own")
    if use_own:
        if upload is not None:
            st.sidebar.caption(f"{upload.name} is not used while the toggle above is on.")
        return _model_from_path(Path(own["directory"]), "trained in this session")
    if upload is not None:
        data = upload.getvalue()
        digest = hashlib.sha256(data).hexdigest()
        try:
            classifier = _load_uploaded(digest, upload.name, data)
        except ModelFormatError as error:
            st.sidebar.error(str(error))
        else:
            for warning in load_warnings(classifier.header, upload.name):
                st.sidebar.warning(warning)
            return ActiveModel(classifier, f"uploaded {upload.name}", None, digest)
    env_model = os.environ.get("TEXTPROJ_MODEL")
    if env_model:
        return _model_from_path(Path(env_model), f"TEXTPROJ_MODEL={env_model}")
    return _model_from_path(_ensure_bundled_model(), f"bundled ({BUNDLED_CORPUS})")


def _metrics(model: ActiveModel) -> dict[str, Any] | None:
    if model.directory is None or not (model.directory / METRICS_NAME).is_file():
        return None
    return json.loads((model.directory / METRICS_NAME).read_text(encoding="utf-8"))


def _trainer(model: ActiveModel) -> TrainerModel | None:
    from textproj.trainer_model import has_trainer

    if model.directory is None or not has_trainer(model.directory):
        return None
    try:
        return _load_trainer(str(model.directory), _stamp(model.directory / TRAINER_WEIGHTS))
    except ModelFormatError as error:
        st.warning(f"The trainer next to this model cannot be loaded: {error}")
        return None


# --- 1. classify ---------------------------------------------------------------------------------


def _timed_proba(
    predict_proba: Callable[[Sequence[str]], np.ndarray], text: str
) -> tuple[np.ndarray, float]:
    """Probabilities for ``text`` and the median latency in ms of ``LATENCY_RUNS`` warm calls."""
    proba = predict_proba([text])[0]
    times = []
    for _ in range(LATENCY_RUNS):
        start = time.perf_counter()
        predict_proba([text])
        times.append((time.perf_counter() - start) * 1000)
    return proba, statistics.median(times)


def _show_prediction(
    title: str,
    labels: list[str],
    proba: np.ndarray,
    ms: float,
    thresholds: np.ndarray | None = None,
) -> None:
    """The predicted label (multi-label: every label at or above its threshold), the latency,
    and the top probabilities as bars."""
    if thresholds is not None:
        predicted = ", ".join(labels[i] for i in np.flatnonzero(proba >= thresholds))
        predicted = predicted or "(no label)"
    else:
        predicted = labels[int(proba.argmax())]
    st.markdown(f"**{title}**")
    st.markdown(f"Predicted label: `{predicted}`")
    st.caption(f"latency {ms:.2f} ms per text (median of {LATENCY_RUNS} calls)")
    chart, height = probability_chart(labels, proba, TOP_LABELS)
    st.altair_chart(chart, width="stretch", height=height)


def _show_explanation(classifier: Classifier, text: str) -> None:
    """Which tokens drove the on-device model's label (token design: its attention pooling)."""
    if classifier.design != "token":
        st.caption("Token explanations need a token-design model.")
        return
    explanation = classifier.explain(text)
    if not explanation.tokens:
        st.caption("This text has no tokens to explain.")
        return
    st.markdown(f"**Which tokens drove `{explanation.label}`**")
    chart, height = explanation_chart(explanation)
    st.altair_chart(chart, width="stretch", height=height)
    st.caption(
        "Each token's share of the label's score (its logit against the other labels): the "
        "model pools windows of tokens with attention, so the shares add up to the score."
    )


def classify_section(model: ActiveModel, text: str) -> None:
    """Predicted label, top probabilities and latency: on-device model beside the trainer, and
    below the trainer the two averaged (the served ensemble, ``textproj.ensemble``)."""
    from textproj.ensemble import average

    device, trainer_col = st.columns(2)
    with device:
        device_proba, device_ms = _timed_proba(model.classifier.predict_proba, text)
        title = f"On-device model — {model.classifier.n_bytes / 1000:.0f} KB, numpy + numba"
        thresholds = model.classifier.thresholds
        _show_prediction(title, model.classifier.labels, device_proba, device_ms, thresholds)
        _show_explanation(model.classifier, text)
    with trainer_col:
        trainer = _trainer(model)
        if trainer is None:
            st.info(
                "No trainer network next to this model (trainer.npz + trainer.json), so only "
                "the on-device model is shown."
            )
        else:
            proba, ms = _timed_proba(trainer.predict_proba, text)
            title = f"Trainer network — {trainer.n_bytes / 1e6:.1f} MB, torch"
            _show_prediction(title, trainer.labels, proba, ms, trainer.thresholds)
            _show_prediction(
                "Both averaged — the served ensemble (`textproj.ensemble`)",
                trainer.labels,
                average(proba, device_proba),
                ms + device_ms,
                trainer.ensemble_thresholds,
            )


# --- 2. the projection ---------------------------------------------------------------------------


def _remember(model: ActiveModel, text: str, grid: BitGrid) -> tuple[str, BitGrid] | None:
    """Record ``text`` as this session's latest; return the text before it (same model) if any."""
    history = st.session_state.get("bits_history")
    if history is None or history["model"] != model.key:
        history = {"model": model.key, "last": None, "previous": None}
    if history["last"] is None or history["last"][0] != text:
        history["previous"], history["last"] = history["last"], (text, grid)
    st.session_state.bits_history = history
    return history["previous"]


def projection_section(model: ActiveModel, text: str) -> None:
    """The text's bits as a grid; bits flipped since the previous text, and the Hamming distance."""
    projector = model.classifier.projector
    grid = bit_grid(model.classifier, text)
    previous = _remember(model, text, grid)
    shape = f"{projector.num_projections} × {projector.bits_per_projection}"
    if grid.per_token:
        st.markdown(
            f"Per-token model: each token gets its own {shape} = {projector.n_bits} bits, "
            f"computed from the token's hashed features (no vocabulary). {len(grid.rows)} tokens."
        )
    else:
        st.markdown(
            f"Whole-text model: T × d = {shape} = {projector.n_bits} bits for the whole text."
        )
    if previous is None:
        flips = np.zeros(grid.bits.shape, dtype=np.int8)
        st.caption("Edit the text above to see which bits flip.")
    else:
        change = compare(grid, previous[1])
        flips = change.flips
        st.metric("Hamming distance to the previous text", f"{change.hamming} bits")
        how = (
            "token rows matched by aligning the two token sequences; a row without a "
            "counterpart counts all its 1-bits"
            if grid.per_token
            else f"out of {grid.bits.size}"
        )
        st.caption(f"previous text: “{previous[0]}” ({how})")
    if len(grid.rows) == 0:
        st.info("This text has no tokens: every bit is 0.")
        return
    if len(grid.rows) > MAX_GRID_ROWS:
        st.caption(f"showing the first {MAX_GRID_ROWS} of {len(grid.rows)} rows")
    rows = min(len(grid.rows), MAX_GRID_ROWS)
    chart, height = grid_chart(grid.rows[:rows], grid.bits[:rows], flips[:rows], grid.per_token)
    st.altair_chart(chart, width="stretch", height=height)


# --- 3. model card -------------------------------------------------------------------------------


def _accuracy_table(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    bits = metrics.get("config", {}).get("train", {}).get("weight_bits", 8)
    networks = [("projection", f"on-device (int{bits})"), ("trainer", "trainer")]
    if "ensemble" in metrics:  # runs before the ensemble have none
        networks.append(("ensemble", "both averaged (ensemble)"))
    for network, title in networks:
        scores = metrics.get(network, {})
        dev, test = scores.get("dev", {}), scores.get("test", {})
        rows.append(
            {
                "network": title,
                "dev accuracy": dev.get("accuracy"),
                "test accuracy": test.get("accuracy"),
                "test macro-F1": test.get("macro_f1"),
            }
        )
    return pd.DataFrame(rows)


def _default_table_caption(trainer: TrainerModel) -> None:
    """A trainer with a cut-down embedding table: how big trainer.npz is at the default rows."""
    from textproj.trainer_model import TABLE_DTYPE

    rows, default_rows = trainer.config.trainer_buckets, DEFAULTS.trainer_buckets
    if rows == default_rows:
        return
    size = resized_trainer_bytes(
        trainer.n_bytes,
        rows,
        default_rows,
        trainer.config.trainer_dim,
        np.dtype(TABLE_DTYPE).itemsize,
    )
    st.caption(
        f"This trainer's hashed embedding table has {rows:,} rows; the default {default_rows:,} "
        f"rows make trainer.npz {size / 1e6:.1f} MB."
    )


def model_card_section(model: ActiveModel) -> None:
    """Corpus, labels, accuracies, sizes beside the trainer and fastText, and the config."""
    classifier, metrics = model.classifier, _metrics(model)
    st.markdown(f"**Source:** {model.source}")
    corpus = (metrics or {}).get("corpus", "unknown (no metrics.json next to the model)")
    info = CORPORA.get(corpus)
    st.markdown(f"**Corpus:** {corpus}" + (f" — {info.task}; {info.source}" if info else ""))
    with st.expander(f"{len(classifier.labels)} labels"):
        st.write(", ".join(classifier.labels))
    if metrics is not None:
        st.dataframe(_accuracy_table(metrics), hide_index=True)
    sizes = [("model.tpn (on-device)", classifier.n_bytes)]
    trainer = _trainer(model)
    if trainer is not None:
        sizes.append((TRAINER_WEIGHTS, trainer.n_bytes))
        _default_table_caption(trainer)
    sizes.append(FASTTEXT_REFERENCE[:2])
    frame = pd.DataFrame(sizes, columns=["model", "bytes"])
    frame["KB"] = frame["bytes"] / 1000
    bars = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("KB:Q", title="size (KB)"),
            y=alt.Y(
                "model:N",
                sort=None,
                title=None,
                axis=alt.Axis(labelLimit=LABEL_LIMIT, labelOverlap=False),
            ),
            tooltip=["model", alt.Tooltip("KB:Q", format=",.1f")],
        )
    )
    values = bars.mark_text(align="left", dx=4).encode(text=alt.Text("KB:Q", format=",.0f"))
    height = chart_height(len(frame))
    st.altair_chart(
        (bars + values).properties(height=height - AXIS_PX), width="stretch", height=height
    )
    st.caption(
        f"Reference: {FASTTEXT_REFERENCE[0]} scores {FASTTEXT_REFERENCE[2]} test accuracy on "
        "Banking77 (docs/benchmarks.md)."
    )
    st.markdown("**Config**")
    config = metrics["config"] if metrics else classifier.header.get("train_config", {})
    st.json({"training": config, "projector": classifier.header["projector"]}, expanded=False)
    with st.expander("On a device: C99 and WebAssembly"):
        st.markdown(
            "`textproj export MODEL --wasm site && python -m http.server -d site` serves a static "
            "page that runs this model in WebAssembly in your browser, as you type; `--c DIR` "
            "writes C99 sources and an example program. See docs/device.md."
        )


# --- 4. train your own ---------------------------------------------------------------------------


def _own_data() -> tuple[Dataset, Dataset | None, str] | None:
    """The training data the user picked (train, dev or None, name); None after showing why not."""
    choice = st.radio("Data", ["Bundled corpus", "Upload a file"], horizontal=True, key="source")
    if choice == "Bundled corpus":
        corpus = st.selectbox("Corpus", list(CORPORA), key="own_corpus")
        limit = st.number_input(
            "Training texts (random sample)", 100, 100_000, 2000, 100, key="own_limit"
        )
        train = sample(_corpus(corpus, "train"), int(limit))
        try:
            dev = sample(_corpus(corpus, "dev"), OWN_DEV_TEXTS)
        except FileNotFoundError:
            dev = None
        return train, dev, corpus
    upload = st.file_uploader(
        "Labelled texts: .tsv/.csv with text and label columns, .jsonl, or fastText .txt",
        type=list(UPLOAD_TYPES),
        key="data_upload",
    )
    if upload is None:
        return None
    left, right = st.columns(2)
    text_column = left.text_input("Text column (TSV/CSV/JSONL)", TEXT_COLUMN, key="own_text_col")
    label_column = right.text_input("Label column", LABEL_COLUMN, key="own_label_col")
    try:
        data = read_uploaded_dataset(upload.name, upload.getvalue(), text_column, label_column)
        check_training_set(data)
    except DataError as error:
        st.error(f"Cannot use this file: {error}")
        return None
    st.caption(f"{len(data)} examples, {len(set(data.labels))} labels (dev carved from them)")
    return data, None, upload.name


def _own_config() -> TrainConfig | None:
    """Network settings from the form; None after an error message."""
    design = st.selectbox(FORM_LABELS["design"], list(DESIGNS), key="own_design")
    default_t, default_d = PROJECTION_DEFAULTS[design]
    left, right = st.columns(2)
    t = left.number_input(FORM_LABELS["num_projections"], 1, 256, default_t, key=f"own_t_{design}")
    d = right.number_input(
        FORM_LABELS["bits_per_projection"], 1, 64, default_d, key=f"own_d_{design}"
    )
    if design == "text":
        hidden = st.text_input(
            FORM_LABELS["hidden"],
            ",".join(map(str, DEFAULTS.hidden)),
            key="own_hidden",
        )
        try:
            widths = tuple(int(part) for part in hidden.split(","))
            if min(widths) < 1:
                raise ValueError
        except ValueError:
            st.error(f"Hidden sizes must be positive integers separated by commas, not {hidden!r}")
            return None
        shape: dict[str, Any] = {"hidden": widths}
    else:
        bottleneck = left.number_input(
            FORM_LABELS["bottleneck"], 4, 512, DEFAULTS.bottleneck, key="own_bottleneck"
        )
        filters = right.number_input(
            FORM_LABELS["filters"], 4, 512, DEFAULTS.filters, key="own_filters"
        )
        pools = {
            "max_pool": ("largest", f"at most {MAX_POOL_MEDIAN_TOKENS}"),
            "mean_pool": ("mean", f"over {MAX_POOL_MEDIAN_TOKENS}"),
        }  # TrainConfig field -> its radio's words
        shape = {"bottleneck": int(bottleneck), "filters": int(filters)}
        for field, (value, when) in pools.items():
            choice = st.radio(
                f"{FORM_LABELS[field]} too (each filter's {value} window value; "
                "a wider output layer)",
                list(POOL_CHOICES),
                index=list(POOL_CHOICES.values()).index(getattr(DEFAULTS, field)),
                key=f"own_{field}",
                horizontal=True,
                help=f"auto: on when the texts' median is {when} tokens",
            )
            shape[field] = POOL_CHOICES[choice]
    epochs = st.slider(FORM_LABELS["epochs"], 1, 30, 5, key="own_epochs")
    return TrainConfig(
        design=design,
        num_projections=int(t),
        bits_per_projection=int(d),
        epochs=int(epochs),
        trainer_buckets=TRAINER_BUCKETS,
        threads=1,  # one torch thread per training: the server is shared
        **shape,
    )


def _curves(history: list[dict[str, Any]]) -> alt.HConcatChart:
    frame = pd.DataFrame(history)
    loss = alt.Chart(frame).mark_line(point=True).encode(x="epoch:Q", y="loss:Q")
    accuracy = frame.melt("epoch", ["dev_projection", "dev_trainer"], "network", "dev accuracy")
    dev = (
        alt.Chart(accuracy)
        .mark_line(point=True)
        .encode(x="epoch:Q", y=alt.Y("dev accuracy:Q"), color="network:N")
    )
    return alt.hconcat(loss.properties(width=250), dev.properties(width=250))


def _train(data: tuple[Dataset, Dataset | None, str], config: TrainConfig) -> None:
    """Train with a progress bar and live curves; keep the result in this session's state."""
    train, dev, name = data
    carved = 0 if dev is not None else round(config.dev_fraction * len(train))
    n_train = len(train) - carved
    epochs = config.schedule(n_train)[1]
    output = _session_folder() / f"model-{int(time.time() * 1000)}"
    lock = _lock("training")
    if not lock.acquire(blocking=False):
        with st.spinner("Another session is training (the machine has 2 cores); waiting…"):
            lock.acquire()
    try:
        bar = st.progress(0.0, text="Projecting the texts…")
        chart = st.empty()
        history: list[dict[str, Any]] = []

        def step(row: dict[str, Any]) -> None:
            history.append(row)
            bar.progress(
                min(row["epoch"] / epochs, 1.0),
                text=f"epoch {row['epoch']}/{epochs}: loss {row['loss']:.3f}, "
                f"dev accuracy {row['dev_projection']:.3f}",
            )
            chart.altair_chart(_curves(history))

        with warnings.catch_warnings(record=True) as caught:  # shown on the page, not the log
            warnings.simplefilter("always")
            result = textproj.train(
                train, dev, config=config, output_dir=output, corpus=name, progress=False,
                on_epoch=step,
            )  # fmt: skip
        bar.progress(1.0, text=f"done in {result.metrics['train_seconds']:.1f} s")
        chart.empty()
    except TextprojError as error:
        st.error(f"Training failed: {in_form_words(str(error))}")
        return
    finally:
        lock.release()
    st.session_state.own = {
        "directory": str(output),
        "history": history,
        "accuracy": result.metrics["projection"]["dev"]["accuracy"],
        "trainer_accuracy": result.metrics["trainer"]["dev"]["accuracy"],
        "bytes": result.metrics["model_bytes"],
        "name": name,
        "warnings": [in_form_words(str(warning.message)) for warning in caught],
    }
    st.rerun()  # show the result, and the sidebar toggle to use the new model


def _trainable(train: Dataset, config: TrainConfig) -> bool:
    """Whether the form's network fits a model file for ``train``'s labels; if not, say which
    widgets to change, before the Train button (the library finds out only once training runs)."""
    try:
        check_network_shape(config, len(set(train.labels)))
    except ConfigError as error:
        st.error(f"Cannot train this network: {error}")
        return False
    return True


def train_section() -> None:
    """Pick data and network shape, train with live curves, download model.tpn."""
    data = _own_data()
    config = _own_config()
    ready = data is not None and config is not None and _trainable(data[0], config)
    if st.button("Train", type="primary", disabled=not ready, key="train") and ready:
        _train(data, config)
    own = st.session_state.get("own")
    if own is None:
        return
    st.success(
        f"Trained on {own['name']}: dev accuracy {own['accuracy']:.3f} on-device "
        f"(trainer {own['trainer_accuracy']:.3f}), model.tpn {own['bytes'] / 1000:.1f} KB."
    )
    for warning in own["warnings"]:
        st.warning(warning)
    st.altair_chart(_curves(own["history"]))
    model_file = Path(own["directory"]) / MODEL_NAME
    st.download_button(
        f"Download {MODEL_NAME}", model_file.read_bytes(), MODEL_NAME, key="download"
    )
    st.caption("Switch the other tabs to this model with the toggle in the sidebar.")


# --- 5. bits against accuracy ---------------------------------------------------------------------


def sweep_section() -> None:
    """Curves of a committed ``textproj sweep`` run: accuracy against bits and model bytes."""
    if not SWEEP_CSV.is_file():
        st.info(f"No sweep results yet; make them with `{SWEEP_COMMAND}`.")
        return
    frame = pd.DataFrame(read_csv(SWEEP_CSV))
    frame["model KB"] = frame["model_bytes"] / 1000
    frame["series"] = (
        "width " + frame["width"].astype(str) + ", int" + frame["weight_bits"].astype(str)
    )
    design = frame["design"].iloc[0]
    st.markdown(
        f"Dev accuracy of the on-device model ({design} design) for a grid of T, d, width "
        "(token design: bottleneck width; text design: hidden width) and weight bits (int8 or "
        "int4)."
    )
    base = alt.Chart(frame).mark_line(point=True)
    tooltip = ["T", "d", "width", "weight_bits", "dev_accuracy", "model_bytes"]
    by_bits = base.encode(
        x=alt.X("n_bits:Q", scale=alt.Scale(type="log", base=2), title="bits (T·d)"),
        y=alt.Y("dev_accuracy:Q", scale=alt.Scale(zero=False), title="dev accuracy"),
        color="series:N",
        tooltip=tooltip,
    )
    by_bytes = base.encode(
        x=alt.X("model KB:Q", scale=alt.Scale(type="log"), title="model.tpn (KB)"),
        y=alt.Y("dev_accuracy:Q", scale=alt.Scale(zero=False), title="dev accuracy"),
        color="series:N",
        tooltip=tooltip,
    )
    left, right = st.columns(2)
    left.altair_chart(by_bits, width="stretch")
    right.altair_chart(by_bytes, width="stretch")
    st.caption(f"Made with `{SWEEP_COMMAND}`.")
    with st.expander("All runs"):
        st.dataframe(frame, hide_index=True)


# --- page ----------------------------------------------------------------------------------------


def main() -> None:
    """The page: model choice in the sidebar, one text box, five tabs."""
    st.set_page_config(page_title="textproj demo", page_icon="🔢", layout="wide")
    st.title("textproj: tiny text classifiers without a vocabulary")
    model = choose_model()
    st.sidebar.caption(f"Using {model.source}: {describe(model.classifier)}")
    text = st.text_input("Text", DEFAULT_TEXT, key="text")
    tabs = st.tabs(
        ["Classify", "Projection bits", "Model card", "Train your own", "Bits vs accuracy"]
    )
    with tabs[0]:
        if is_blank(text):  # no text, no label: as textproj predict, not the model's prior
            st.info(ENTER_A_TEXT)
        else:
            classify_section(model, text)
    with tabs[1]:
        projection_section(model, text)
    with tabs[2]:
        model_card_section(model)
    with tabs[3]:
        train_section()
    with tabs[4]:
        sweep_section()


main()
