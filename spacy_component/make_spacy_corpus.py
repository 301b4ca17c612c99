"""Turn a bundled corpus (or data files) into spaCy ``.spacy`` files for ``spacy train``.

    python -m spacy_component.make_spacy_corpus banking77 corpus/   # train/dev/test.spacy
    python -m spacy_component.make_spacy_corpus a.tsv b.tsv corpus/  # a.spacy, b.spacy
    python -m spacy_component.make_spacy_corpus banking77 corpus/ --limit 300  # random slices
    python -m spacy_component.make_spacy_corpus a.csv corpus/ --text-column sentence \
        --label-column intent                                        # other column names

Every doc's ``cats`` holds every label of the corpus (1.0 for its labels, 0.0 for the others),
as spaCy's textcat scorer expects. ``--multi-label`` reads files whose rows carry several labels.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import spacy
from spacy.tokens import DocBin

from textproj import fsio
from textproj.corpora import CORPORA, SPLITS, load_corpus
from textproj.data import (
    LABEL_COLUMN,
    SUPPORTED_EXTENSIONS,
    TEXT_COLUMN,
    Dataset,
    name_parts,
    read_dataset,
)
from textproj.errors import ConfigError, TextprojError
from textproj.rundir import refuse_a_file


def _label_set(label: str | tuple[str, ...]) -> tuple[str, ...]:
    return (label,) if isinstance(label, str) else tuple(label)


def _output_name(path: str) -> str:
    """The name of a data file's ``.spacy`` file: its name up to the first dot."""
    return Path(path).name.split(".")[0]


def _refuse_shared_names(sources: Sequence[str]) -> None:
    """ConfigError if two data files would write the same ``<name>.spacy`` (one would be lost)."""
    seen: dict[str, str] = {}
    for path in sources:
        name = _output_name(path)
        if name in seen:
            raise ConfigError(
                f"{path}: would write {name}.spacy, as {seen[name]} does; rename one of them"
            )
        seen[name] = path


def _refuse_existing(output_dir: str | Path, names: Sequence[str]) -> None:
    """ConfigError naming the ``<name>.spacy`` files already in ``output_dir`` (a user's earlier
    corpus is not replaced unasked)."""
    existing = [
        str(path) for name in names if (path := Path(output_dir) / f"{name}.spacy").exists()
    ]
    if existing:
        raise ConfigError(
            f"{', '.join(existing)}: already there; replace with --force (force=True), or give "
            "another output folder"
        )


def _refuse_unknown_language(lang: str) -> None:
    """ConfigError naming ``--lang`` if spaCy has no such language (its ImportError otherwise
    ends the run with a traceback, after every input was read)."""
    try:
        spacy.util.get_lang_class(lang)
    except ImportError:
        raise ConfigError(f"--lang: spaCy has no language {lang!r}") from None


def _refuse_unknown_sources(sources: Sequence[str]) -> None:
    """ConfigError naming a source that is no bundled corpus, no file and has no data file's
    extension: a misspelt corpus name, which the data reader would call an unknown extension."""
    for source in sources:
        path = Path(source)
        known = source in CORPORA or path.exists()
        if not known and name_parts(path)[0] not in SUPPORTED_EXTENSIONS:
            raise ConfigError(
                f"{source}: neither a bundled corpus ({', '.join(CORPORA)}) nor a data file"
            )


def sample(data: Dataset, limit: int | None, seed: int) -> Dataset:
    """At most ``limit`` rows of ``data`` drawn at random (seeded), in their original order."""
    if limit is None or limit >= len(data):
        return data
    index = np.sort(np.random.default_rng(seed).permutation(len(data))[:limit])
    return dataclasses.replace(
        data, texts=[data.texts[i] for i in index], labels=[data.labels[i] for i in index]
    )


def to_docbin(data: Dataset, labels: Sequence[str], lang: str = "en") -> DocBin:
    """One doc per text, its ``cats`` 1.0 for the text's labels and 0.0 for every other label."""
    nlp = spacy.blank(lang)
    docs = DocBin(store_user_data=False)
    for doc, label in zip(nlp.tokenizer.pipe(data.texts), data.labels, strict=True):
        positive = set(_label_set(label))
        doc.cats = {name: float(name in positive) for name in labels}
        docs.add(doc)
    return docs


def convert(
    sources: Sequence[str],
    output_dir: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    multi_label: bool = False,
    lang: str = "en",
    text_column: str = TEXT_COLUMN,
    label_column: str = LABEL_COLUMN,
    force: bool = False,
) -> dict[str, Path]:
    """Write ``OUTPUT_DIR/<split>.spacy`` for a bundled corpus name, or ``<stem>.spacy`` per data
    file (its ``text_column`` and ``label_column`` read); every file shares the union of the
    labels. Returns {name: path written}. Every input is read and checked (ConfigError,
    DataError) before anything is written; each file is written atomically, and one already
    there is replaced only with ``force``."""
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit: must be at least 1 row per split, got {limit}")
    _refuse_unknown_language(lang)
    _refuse_unknown_sources(sources)
    refuse_a_file(output_dir)
    if len(sources) == 1 and sources[0] in CORPORA:
        named = {"--text-column": (text_column, TEXT_COLUMN)}
        named["--label-column"] = (label_column, LABEL_COLUMN)
        if given := [option for option, (value, default) in named.items() if value != default]:
            raise ConfigError(
                f"{' and '.join(given)}: name columns of data files; the bundled corpus "
                f"{sources[0]} keeps its own"
            )
        if not force:
            _refuse_existing(output_dir, SPLITS)
        splits = {split: load_corpus(sources[0], split) for split in SPLITS}
    else:
        corpus = next((source for source in sources if source in CORPORA), None)
        if corpus is not None:
            raise ConfigError(
                f"{corpus}: a bundled corpus is converted alone (into its {', '.join(SPLITS)} "
                "splits); give it without data files"
            )
        _refuse_shared_names(sources)
        if not force:
            _refuse_existing(output_dir, [_output_name(path) for path in sources])
        splits = {
            _output_name(path): read_dataset(
                path, multi_label=multi_label, text_column=text_column, label_column=label_column
            )
            for path in sources
        }
    splits = {name: sample(data, limit, seed) for name, data in splits.items()}
    labels = sorted(
        {name for data in splits.values() for lab in data.labels for name in _label_set(lab)}
    )
    docbins = {name: to_docbin(data, labels, lang).to_bytes() for name, data in splits.items()}
    written = {}
    for name, content in docbins.items():
        written[name] = Path(output_dir) / f"{name}.spacy"
        fsio.write_bytes(written[name], content)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: SOURCE... OUTPUT_DIR [--limit N] [--seed S] [--multi-label] [--lang L]
    [--force]."""
    parser = argparse.ArgumentParser(
        prog="python -m spacy_component.make_spacy_corpus", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "sources", nargs="+", help=f"a bundled corpus ({', '.join(CORPORA)}) or data files"
    )
    parser.add_argument("output_dir", help="folder for the .spacy files")
    parser.add_argument("--limit", type=int, default=None, help="at most N random rows per split")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit sample")
    parser.add_argument("--multi-label", action="store_true", help="rows carry several labels")
    parser.add_argument("--lang", default="en", help="spaCy language of the tokenizer")
    parser.add_argument("--text-column", default=TEXT_COLUMN, help="data files' text column")
    parser.add_argument("--label-column", default=LABEL_COLUMN, help="data files' label column")
    parser.add_argument(
        "--force", action="store_true", help="replace .spacy files already in OUTPUT_DIR"
    )
    args = parser.parse_args(argv)
    try:
        written = convert(
            args.sources,
            args.output_dir,
            limit=args.limit,
            seed=args.seed,
            multi_label=args.multi_label,
            lang=args.lang,
            text_column=args.text_column,
            label_column=args.label_column,
            force=args.force,
        )
    except (TextprojError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    for name, path in written.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
