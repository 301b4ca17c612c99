"""``textproj export``: a model with the C runtime, as sources ready to compile on a device.

The C runtime lives in ``textproj/c`` (shipped in the wheel). Export copies it, generates its
Unicode tables and shared constants from this Python (``textproj.c_tables``), writes the model
as a C array (for devices without a file system), an example program, a Makefile and a README
with the one-line ``cc`` command.

The C side takes UTF-8 bytes; Python's runtime takes ``str``. :func:`decode_like_c` is the
bridge: C on ``data`` gives what Python gives on ``decode_like_c(data)``, and C on
``text.encode("utf-8", "surrogatepass")`` gives what Python gives on ``text``.
"""

from __future__ import annotations

import codecs
import os
from pathlib import Path

from textproj import c_tables
from textproj.c_tables import write_atomic
from textproj.model_file import model_path
from textproj.runtime import load

C_DIR = Path(__file__).parent / "c"
LIBRARY_SOURCES = ("textproj.h", "tp_internal.h", "tp_text.c", "tp_model.c")
EXAMPLE = "example.c"
MODEL_SOURCE = "model_data.c"
PROGRAM = "classify"
COMPILE_FLAGS = "-std=c99 -O2 -Wall -Wextra"
BUILD_SOURCES = (EXAMPLE, "tp_model.c", "tp_text.c", c_tables.TABLE_FILE, MODEL_SOURCE)
_ERRORS = "textproj-c"  # codecs error handler: U+FFFD per maximal subpart, surrogates passed


def _replace_or_pass(error: UnicodeError) -> tuple[str, int]:
    try:
        return codecs.lookup_error("surrogatepass")(error)
    except UnicodeDecodeError:
        return codecs.lookup_error("replace")(error)


codecs.register_error(_ERRORS, _replace_or_pass)


def decode_like_c(data: bytes) -> str:
    """``data`` decoded as the C runtime decodes text: UTF-8, each ill-formed part as U+FFFD
    (Python's ``"replace"``), except 3-byte surrogate forms, kept (``"surrogatepass"``)."""
    return data.decode("utf-8", _ERRORS)


def compile_command(output: str = PROGRAM) -> str:
    """The one-line ``cc`` command that builds the example program in an export directory."""
    return f"cc {COMPILE_FLAGS} -o {output} {' '.join(BUILD_SOURCES)} -lm"


def model_array(data: bytes) -> str:
    """The model's bytes as a C source defining ``textproj_model`` and ``textproj_model_size``."""
    rows = [",".join(str(b) for b in data[i : i + 24]) for i in range(0, len(data), 24)]
    body = ",\n".join(rows)
    return (
        "/* model.tpn as a C array, written by textproj export. */\n#include <stddef.h>\n\n"
        f"const unsigned char textproj_model[{len(data)}] = {{\n{body}\n}};\n"
        f"const size_t textproj_model_size = {len(data)};\n"
    )


def _readme(name: str, table_bytes: dict[str, int]) -> str:
    return f"""# textproj C runtime for `{name}`

Build the example (reads one text per line on stdin, prints `label<TAB>probability`):

    {compile_command()}

or `make`. Then `echo "I lost my card" | ./{PROGRAM}` (the model is compiled in, from
`{MODEL_SOURCE}`), or `./{PROGRAM} model.tpn` to load a file instead.

The library is `textproj.h` with `tp_model.c`, `tp_text.c` and `{c_tables.TABLE_FILE}` (C99,
libc and libm only, no global state; `tp_predict` is thread-safe with one workspace per thread).
Its Unicode tables ({sum(table_bytes.values()):,} bytes: {table_bytes}) were generated from the
`unicodedata` of the Python that ran the export; it refuses a model written under another
Unicode version. See docs/device.md in the textproj repository.
"""


def _makefile() -> str:
    sources = " ".join(BUILD_SOURCES)
    return (
        f"CC ?= cc\nCFLAGS ?= {COMPILE_FLAGS}\n\n{PROGRAM}: {sources} textproj.h\n"
        f"\t$(CC) $(CFLAGS) -o $@ {sources} -lm\n\nclean:\n\trm -f {PROGRAM}\n"
    )


def export_c(model: str | os.PathLike[str], directory: str | os.PathLike[str]) -> Path:
    """Write the C runtime, ``model`` as a C array, the example, Makefile and README into
    ``directory``; returns it. The model is checked by the Python reader first."""
    path = model_path(model)
    load(path)  # a damaged model is refused here, with the reader's message
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in (*LIBRARY_SOURCES, EXAMPLE):
        write_atomic(directory / name, (C_DIR / name).read_bytes())
    table_bytes = c_tables.write_sources(directory)
    write_atomic(directory / MODEL_SOURCE, model_array(path.read_bytes()))
    write_atomic(directory / "Makefile", _makefile())
    write_atomic(directory / "README.md", _readme(path.name, table_bytes))
    return directory
