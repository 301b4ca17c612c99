"""One loaded model shared by eight threads, and used from forked and spawned processes, gives
exactly the answers of one thread, for batches on the parallel path and small ones."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import textproj
from textproj.corpora import load_corpus
from textproj.projector import PARALLEL_MIN_TEXTS

N_THREADS = 8


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Enough texts for the projector's threaded path, plus awkward ones."""
    data = load_corpus("banking77", "test").texts[: PARALLEL_MIN_TEXTS + 476]
    odd = ["", "   ", "🙂", "日本語のテキスト", "a\u0301" * 50, "x" * 30_000, "\udc80 lone"]
    return [*data, *odd]


def _batches(texts: list[str]) -> list[list[str]]:
    """One batch on the parallel path, then small ones of 1, 7 and 64 texts."""
    assert len(texts) >= PARALLEL_MIN_TEXTS
    return [texts, texts[:1], texts[-7:], texts[100:164]]


def _answers(clf: textproj.Classifier, texts: list[str]) -> list[tuple[np.ndarray, list]]:
    """Probabilities of every batch, and labels of the small ones (``predict`` repeats the
    forward pass, so the large batch's labels would only add time)."""
    big, *small = _batches(texts)
    return [(clf.predict_proba(big), [])] + [
        (clf.predict_proba(batch), clf.predict(batch)) for batch in small
    ]


def _assert_same(got: list[tuple[np.ndarray, list]], expected: list[tuple[np.ndarray, list]]):
    assert len(got) == len(expected)
    for (proba, labels), (proba_ref, labels_ref) in zip(got, expected, strict=True):
        np.testing.assert_array_equal(proba, proba_ref)
        assert labels == labels_ref


@pytest.mark.parametrize("design", ["text", "token"])
def test_eight_threads_share_one_model(
    design: str, tiny_models: dict[str, Path], texts: list[str]
) -> None:
    expected = _answers(textproj.load(tiny_models[design], n_jobs=1), texts)
    shared = textproj.load(tiny_models[design])  # every core for large batches
    _assert_same(_answers(shared, texts), expected)  # threaded projection == serial
    start = threading.Barrier(N_THREADS)

    def work(worker: int) -> list[tuple[np.ndarray, list]]:
        start.wait(timeout=120)
        return _answers(shared, texts)

    with ThreadPoolExecutor(max_workers=N_THREADS) as pool:
        results = list(pool.map(work, range(N_THREADS), timeout=600))
    for got in results:
        _assert_same(got, expected)


def _child_answers(args: tuple[str, list[str]]) -> list[tuple[np.ndarray, list]]:
    path, texts = args
    return _answers(textproj.load(path), texts)


_inherited: textproj.Classifier | None = None


def _inherited_answers(texts: list[str]) -> list[tuple[np.ndarray, list]]:
    assert _inherited is not None, "the forked child should inherit the loaded model"
    return _answers(_inherited, texts)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_processes_give_the_same_answers(
    method: str, tiny_models: dict[str, Path], texts: list[str]
) -> None:
    global _inherited
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} start method here")
    path = tiny_models["token"]
    _inherited = textproj.load(path)
    expected = _answers(_inherited, texts)  # the parent's thread pool exists before the fork
    context = multiprocessing.get_context(method)
    with context.Pool(2) as pool:
        loaded = pool.map_async(_child_answers, [(str(path), texts)] * 3)
        inherited = pool.map_async(_inherited_answers, [texts] * 2) if method == "fork" else None
        results = loaded.get(timeout=600) + (inherited.get(timeout=600) if inherited else [])
    for got in results:
        _assert_same(got, expected)
    _assert_same(_answers(_inherited, texts), expected)  # the parent still works after forking
