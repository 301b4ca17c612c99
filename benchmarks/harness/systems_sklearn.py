"""scikit-learn: hashed word n-grams + SGDClassifier, and TF-IDF word + char n-grams + LinearSVC.

Each pipeline's regularisation is chosen on dev (features fitted once on train, one classifier
per grid value); the chosen pipeline, trained on train only, is pickled. Its bytes are that
pickle's size.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.common import Splits, Trained

SGD_ALPHAS = [1e-5, 3e-5, 1e-4, 3e-4]
SVC_CS = [0.1, 0.3, 1.0, 3.0]
HASH_FEATURES = 2**18


def _hashing_features() -> Any:
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(ngram_range=(1, 2), n_features=HASH_FEATURES, alternate_sign=False)


def _tfidf_features() -> Any:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import FeatureUnion

    return FeatureUnion(
        [
            ("word", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)),
            ("char", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True)),
        ]
    )


def _tuned(
    splits: Splits,
    features: Any,
    make_classifier: Callable[[float], Any],
    grid: list[float],
) -> tuple[Any, float, float, float, list[dict[str, float]]]:
    """(pipeline, chosen value, train seconds of the chosen pipeline, search seconds, tried)."""
    import numpy as np
    from sklearn.pipeline import Pipeline

    started = time.perf_counter()
    x_train = features.fit_transform(splits.train.texts)
    feature_seconds = time.perf_counter() - started
    x_dev = features.transform(splits.dev.texts)
    best = None
    tried = []
    for value in grid:
        fit_started = time.perf_counter()
        classifier = make_classifier(value).fit(x_train, splits.train.labels)
        fit_seconds = time.perf_counter() - fit_started
        dev_accuracy = float((classifier.predict(x_dev) == np.asarray(splits.dev.labels)).mean())
        tried.append({"value": value, "dev_accuracy": round(dev_accuracy, 4)})
        if best is None or dev_accuracy > best[0]:
            best = (dev_accuracy, value, classifier, fit_seconds)
    assert best is not None
    _, value, classifier, fit_seconds = best
    pipeline = Pipeline([("features", features), ("classifier", classifier)])
    search_seconds = time.perf_counter() - started
    return pipeline, value, feature_seconds + fit_seconds, search_seconds, tried


def _save(pipeline: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        pickle.dump(pipeline, f, protocol=pickle.HIGHEST_PROTOCOL)
    return path


def train_sklearn(splits: Splits, workdir: Path) -> list[Trained]:
    """Both pipelines, regularisation tuned on dev."""
    from sklearn.linear_model import SGDClassifier
    from sklearn.svm import LinearSVC

    candidates = [
        (
            "HashingVectorizer + SGDClassifier",
            "sgd",
            _hashing_features(),
            lambda alpha: SGDClassifier(loss="modified_huber", alpha=alpha, random_state=0),
            "alpha",
            SGD_ALPHAS,
        ),
        (
            "TF-IDF word + char n-grams + LinearSVC",
            "svc",
            _tfidf_features(),
            lambda c: LinearSVC(C=c),
            "C",
            SVC_CS,
        ),
    ]
    results = []
    for name, slug, features, make, param, grid in candidates:
        pipeline, value, seconds, search, tried = _tuned(splits, features, make, grid)
        path = _save(pipeline, workdir / slug / "model.pkl")
        params = {"pipeline": str(pipeline), param: value, "dev_accuracy": tried}
        results.append(Trained(name, "scikit-learn", "sklearn", path, seconds, params, search))
    return results
