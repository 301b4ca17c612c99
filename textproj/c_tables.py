"""Generated C sources of the C runtime: Unicode tables and the constants it shares with Python.

The C runtime (``textproj/c``) must turn text into exactly the code points ``textproj.features
.normalize`` gives, so its Unicode data comes from the same ``unicodedata`` module, generated
here (``python -m textproj.c_tables DIR``; ``textproj export`` calls :func:`write_sources`).
Per code point, a record holds the canonical combining class, the NFKC quick-check answer (yes,
maybe, no: derived from ``unicodedata`` itself, so ``is_normalized`` can be answered as Python
answers it), whether it can be the second half of a canonical composition, whether it is a
non-starter in the stream-safe sense (``features._is_nonstarter``), its token class
(``features.class_table``, and ``_kernels.features.char_class`` above the table), and where its
full NFKD decomposition and full case folding sit in a shared pool of code points. Records are
found through a two-stage table (block index, then record index). Hangul syllables decompose
and compose algorithmically in C, as in Unicode's chapter 3.

The constants (format limits, ``FeatureConfig`` defaults, kernel limits) are written from their
Python homes, so the C side never restates them.
"""

from __future__ import annotations

import dataclasses
import sys
import unicodedata
from pathlib import Path

import numpy as np

from textproj import decisions, fsio, model_file, netspec
from textproj._kernels import features as _kf
from textproj._kernels import projection as _kp
from textproj.config import FeatureConfig
from textproj.features import (
    _CGJ,
    CLASS_TABLE_SIZE,
    MAX_FEATURE_BOUND,
    STREAM_SAFE_RUN,
    _is_nonstarter,
    class_table,
)

N_CODE_POINTS = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3
QC_YES, QC_MAYBE, QC_NO = 0, 1, 2
FLAG_SECOND, FLAG_NONSTARTER = 4, 8  # flags byte: bits 0-1 quick check, then these, bits 4-5 class
CLASS_SHIFT = 4
TABLE_FILE, SPEC_FILE = "tp_unicode.c", "tp_spec.h"


def _class_of(cp: int) -> int:
    if cp < CLASS_TABLE_SIZE:
        return int(class_table()[cp])
    return int(_kf.char_class(cp, class_table()))


def _compositions() -> dict[tuple[int, int], int]:
    """(first, second) -> composite of every canonical pair NFC composes (Hangul aside)."""
    pairs = {}
    for cp in range(N_CODE_POINTS):
        decomposition = unicodedata.decomposition(chr(cp))
        if not decomposition or decomposition.startswith("<"):
            continue
        parts = [int(x, 16) for x in decomposition.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(parts[0]) + chr(parts[1])) == chr(
            cp
        ):
            pairs[(parts[0], parts[1])] = cp
    return pairs


def build() -> dict[str, object]:
    """Every table and count the C sources need (arrays as numpy arrays)."""
    pairs = _compositions()
    seconds = {b for _, b in pairs} | set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))
    pool: list[int] = []
    pool_index: dict[str, int] = {}

    def pooled(text: str) -> int:
        if text not in pool_index:
            pool_index[text] = len(pool)
            pool.extend(map(ord, text))
        return pool_index[text]

    records: dict[tuple, int] = {}
    record_of = np.zeros(N_CODE_POINTS, dtype=np.int64)
    max_decomposition = max_fold = 1
    for cp in range(N_CODE_POINTS):
        char = chr(cp)
        decomposition = (
            "" if HANGUL_FIRST <= cp <= HANGUL_LAST else unicodedata.normalize("NFKD", char)
        )
        decomposition = "" if decomposition == char else decomposition
        fold = char.casefold()
        fold = "" if fold == char else fold
        max_decomposition = max(max_decomposition, len(decomposition))
        max_fold = max(max_fold, len(fold))
        if unicodedata.normalize("NFKC", char) != char:
            qc = QC_NO
        else:
            qc = QC_MAYBE if cp in seconds else QC_YES
        nonstarter = not 0xD800 <= cp < 0xE000 and _is_nonstarter(char)
        flags = qc | (FLAG_SECOND if cp in seconds else 0) | (FLAG_NONSTARTER * nonstarter)
        flags |= _class_of(cp) << CLASS_SHIFT
        record = (
            unicodedata.combining(char),
            flags,
            len(decomposition),
            len(fold),
            pooled(decomposition) if decomposition else 0,
            pooled(fold) if fold else 0,
        )
        record_of[cp] = records.setdefault(record, len(records))
    best = None
    for shift in range(4, 10):
        blocks = record_of.reshape(-1, 1 << shift)
        unique, stage1 = np.unique(blocks, axis=0, return_inverse=True)
        size = 2 * len(stage1) + 2 * unique.size
        if best is None or size < best[0]:
            best = (size, shift, stage1.reshape(-1), unique.reshape(-1))
    _, shift, stage1, stage2 = best
    keys = sorted(pairs)
    return {
        "shift": shift,
        "stage1": stage1,
        "stage2": stage2,
        "records": list(records),
        "pool": pool,
        "pair_keys": [(a << 21) | b for a, b in keys],
        "pair_values": [pairs[k] for k in keys],
        "max_decomposition": max_decomposition,
        "max_fold": max_fold,
    }


def _array(ctype: str, name: str, values: object, per_line: int = 16) -> str:
    items = [str(int(v)) for v in values]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    body = ",\n    ".join(lines)
    return f"const {ctype} {name}[{len(items)}] = {{\n    {body}\n}};\n"


def table_bytes(tables: dict[str, object]) -> dict[str, int]:
    """Bytes of each generated table in the compiled library."""
    return {
        "stage1": 2 * len(tables["stage1"]),
        "stage2": 2 * len(tables["stage2"]),
        "records": 8 * len(tables["records"]),
        "pool": 4 * len(tables["pool"]),
        "compositions": 12 * len(tables["pair_keys"]),
    }


def table_source(tables: dict[str, object]) -> str:
    """The C file of the Unicode tables (``tp_unicode.c``)."""
    records = [
        f"{{{ccc}, {flags}, {dlen}, {flen}, {doff}, {foff}}}"
        for ccc, flags, dlen, flen, doff, foff in tables["records"]
    ]
    sizes = table_bytes(tables)
    return "\n".join(
        [
            f"/* Generated by textproj.c_tables from Python {sys.version.split()[0]}'s unicodedata"
            f" (Unicode {unicodedata.unidata_version}); do not edit.",
            f"   Bytes: {sizes} = {sum(sizes.values())} in all. */",
            '#include "tp_internal.h"',
            "",
            f'const char tp_unicode_version_string[] = "{unicodedata.unidata_version}";',
            _array("uint16_t", "tp_stage1", tables["stage1"]),
            _array("uint16_t", "tp_stage2", tables["stage2"]),
            f"const tp_char_record tp_records[{len(records)}] = {{\n    "
            + ",\n    ".join(records)
            + "\n};\n",
            _array("uint32_t", "tp_pool", tables["pool"]),
            _array("uint64_t", "tp_pair_keys", tables["pair_keys"], 8),
            _array("uint32_t", "tp_pair_values", tables["pair_values"]),
            f"const size_t tp_n_pairs = {len(tables['pair_keys'])};",
            "",
        ]
    )


def spec_source(tables: dict[str, object]) -> str:
    """The C header of constants shared with the Python runtime (``tp_spec.h``)."""
    defaults = FeatureConfig()
    define = {
        "TP_UNICODE_SHIFT": tables["shift"],
        "TP_MAX_DECOMPOSITION": tables["max_decomposition"],
        "TP_MAX_FOLD": tables["max_fold"],
        "TP_QC_YES": QC_YES,
        "TP_QC_MAYBE": QC_MAYBE,
        "TP_QC_NO": QC_NO,
        "TP_FLAG_SECOND": FLAG_SECOND,
        "TP_FLAG_NONSTARTER": FLAG_NONSTARTER,
        "TP_CLASS_SHIFT": CLASS_SHIFT,
        "TP_CLASS_SEPARATOR": _kf.CLASS_SEPARATOR,
        "TP_CLASS_WORD": _kf.CLASS_WORD,
        "TP_CLASS_SINGLE": _kf.CLASS_SINGLE,
        "TP_STREAM_SAFE_RUN": STREAM_SAFE_RUN,
        "TP_CGJ": ord(_CGJ),
        "TP_MAX_FEATURE_BOUND": MAX_FEATURE_BOUND,
        "TP_N_WEIGHT_BITS": _kp.N_WEIGHT_BITS,
        "TP_MAX_WEIGHT": _kp.MAX_WEIGHT,
        "TP_N_PLANES": _kp.N_PLANES,
        "TP_FORMAT_VERSION": model_file.FORMAT_VERSION,
        "TP_ALIGNMENT": model_file.ALIGNMENT,
        "TP_MAX_HEADER_BYTES": model_file.MAX_HEADER_BYTES,
        "TP_MAX_TENSOR_ELEMENTS": model_file.MAX_TENSOR_ELEMENTS,
        "TP_MAX_TENSOR_DIMS": model_file.MAX_TENSOR_DIMS,
        "TP_MAX_LABELS": model_file.MAX_LABELS,
        "TP_MAX_LAYERS": netspec.MAX_LAYERS,
        "TP_DEFAULT_THRESHOLD": f"{decisions.DEFAULT_THRESHOLD!r}f",
    }
    for field in dataclasses.fields(FeatureConfig):
        define[f"TP_DEFAULT_{field.name.upper()}"] = int(getattr(defaults, field.name))
    lines = [
        "/* Generated by textproj.c_tables from textproj's Python sources; do not edit. */",
        "#ifndef TP_SPEC_H",
        "#define TP_SPEC_H",
        f'#define TP_MAGIC "{model_file.MAGIC.decode("ascii")}"',
        f'#define TP_UNICODE_VERSION_KEY "{model_file.UNICODE_VERSION_KEY}"',
    ]
    lines += [f"#define {name} {value}" for name, value in define.items()]
    lines += ["#endif", ""]
    return "\n".join(lines)


def write_sources(directory: Path) -> dict[str, int]:
    """Write ``tp_unicode.c`` and ``tp_spec.h`` into ``directory``; returns the table bytes."""
    tables = build()
    fsio.write_text(directory / TABLE_FILE, table_source(tables))
    fsio.write_text(directory / SPEC_FILE, spec_source(tables))
    return table_bytes(tables)


if __name__ == "__main__":
    sizes = write_sources(Path(sys.argv[1]))
    print(f"Unicode {unicodedata.unidata_version} tables: {sizes}, {sum(sizes.values())} bytes")
