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
import importlib.util
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from textproj import c_tables, fsio
from textproj.errors import TextprojError
from textproj.model_file import MODEL_FILENAME, model_path
from textproj.rundir import check_output_dir, holds_run
from textproj.runtime import load

C_DIR = Path(__file__).parent / "c"
LIBRARY_SOURCES = ("textproj.h", "tp_internal.h", "tp_text.c", "tp_model.c")
EXAMPLE = "example.c"
MODEL_SOURCE = "model_data.c"
PROGRAM = "classify"
COMPILE_FLAGS = "-std=c99 -O3 -Wall -Wextra"  # -O3: GCC vectorizes the tap products only there
LIBRARY_C = ("tp_model.c", "tp_text.c", c_tables.TABLE_FILE)
BUILD_SOURCES = (EXAMPLE, *LIBRARY_C, MODEL_SOURCE)
WEB_DIR = C_DIR / "web"
WEB_FILES = ("textproj.js", "index.html")
WASM_FILE = "textproj.wasm"
WASM_EXPORTS = (
    "malloc", "free", "tp_load", "tp_workspace_bytes", "tp_predict", "tp_n_labels", "tp_label",
    "tp_multi_label", "tp_threshold",
)  # fmt: skip
# The file that marks a directory as an export of each kind: such a directory is replaced whole
# by a new export of that kind; an export of another kind, as any other non-empty directory, only
# with ``force``.
EXPORT_MARKS = {"C": MODEL_SOURCE, "WebAssembly": WASM_FILE}
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
    tables = ", ".join(f"{table} {size:,}" for table, size in table_bytes.items())
    return f"""# textproj C runtime for `{name}`

Build the example (reads one text per line on stdin, prints `label<TAB>probability`, or an
empty line for a blank text, as `textproj predict` does):

    {compile_command()}

or `make`. Then `echo "I lost my card" | ./{PROGRAM}` (the model is compiled in, from
`{MODEL_SOURCE}`), or `./{PROGRAM} model.tpn` to load a file instead. An error (a refused
model, output that cannot be written) is one `error:` line on stderr and exit status 1. A reader
that stops early (`./{PROGRAM} < texts | head -1`) is none: the program stops at its next write,
silently, with exit status 141, as a shell reports for a coreutils filter there.

The library is `textproj.h` with `tp_model.c`, `tp_text.c` and `{c_tables.TABLE_FILE}` (C99,
libc and libm only, no global state; `tp_predict` is thread-safe with one workspace per thread).
Its Unicode tables ({sum(table_bytes.values()):,} bytes: {tables}) were generated from the
`unicodedata` of the Python that ran the export; it refuses a model written under another
Unicode version. See docs/device.md in the textproj repository.
"""


def _makefile() -> str:
    sources = " ".join(BUILD_SOURCES)
    return (
        f"CC ?= cc\nCFLAGS ?= {COMPILE_FLAGS}\n\n{PROGRAM}: {sources} textproj.h\n"
        f"\t$(CC) $(CFLAGS) -o $@ {sources} -lm\n\nclean:\n\trm -f {PROGRAM}\n"
    )


class ExportError(TextprojError):
    """An export that cannot be made here (a missing tool); the message says what to install."""


def _checked(model: str | os.PathLike[str]) -> Path:
    """The model file, after the Python reader has accepted it (its message otherwise)."""
    path = model_path(model)
    load(path)
    return path


def check_export_dir(
    directory: str | os.PathLike[str],
    kind: str,
    model: str | os.PathLike[str],
    force: bool = False,
) -> None:
    """Raise ConfigError unless a ``kind`` export (a key of ``EXPORT_MARKS``) of ``model`` may
    replace ``directory``: missing, empty or a previous export of that kind; an export of
    another kind (named as one) or other files only with ``force``; never the current directory
    or one holding the model (or a path under a file). The rules are
    ``rundir.check_output_dir``'s."""
    others = [other for other in EXPORT_MARKS if other != kind]
    check_output_dir(
        directory,
        force=force or holds_run(directory, (EXPORT_MARKS[kind],)),
        inputs=(model_path(model),),
        marks=tuple(EXPORT_MARKS[other] for other in others),
        kind=f"{kind} export",
        marked=" or ".join(f"a {other} export" for other in others),
    )


def write_library(directory: Path) -> dict[str, int]:
    """Write the C library (sources, generated tables and constants) into ``directory``;
    returns the Unicode table bytes."""
    for name in (*LIBRARY_SOURCES, EXAMPLE):
        fsio.write_bytes(directory / name, (C_DIR / name).read_bytes())
    return c_tables.write_sources(directory)


def export_c(
    model: str | os.PathLike[str], directory: str | os.PathLike[str], force: bool = False
) -> Path:
    """Write the C runtime, ``model`` as a C array, the example, Makefile and README into
    ``directory``, replacing it whole (:func:`check_export_dir` says when it may); returns it.
    The model is checked by the Python reader first."""
    directory = Path(directory)
    check_export_dir(directory, "C", model, force)
    path = _checked(model)

    def write(staging: Path) -> None:
        table_bytes = write_library(staging)
        fsio.write_text(staging / MODEL_SOURCE, model_array(path.read_bytes()))
        fsio.write_text(staging / "Makefile", _makefile())
        fsio.write_text(staging / "README.md", _readme(path.name, table_bytes))

    fsio.build_directory(directory, write)
    return directory


def wasm_command(output: Path) -> list[str]:
    """The command (zig's clang, from the ``ziglang`` package) that builds the library as a
    WebAssembly reactor module exporting the functions ``textproj.js`` calls."""
    exports = [f"-Wl,--export={name}" for name in WASM_EXPORTS]
    return [
        sys.executable, "-m", "ziglang", "cc", "-target", "wasm32-wasi", "-mexec-model=reactor",
        "-O2", "-s", "-o", str(output), *LIBRARY_C, *exports,
    ]  # fmt: skip


def check_wasm_tools() -> None:
    """An ExportError unless zig's compiler (the ``ziglang`` package) is installed: what
    :func:`export_wasm` builds with, checked before any export is written."""
    if importlib.util.find_spec("ziglang") is None:
        raise ExportError("textproj export --wasm needs zig's compiler: pip install ziglang")


def export_wasm(
    model: str | os.PathLike[str], directory: str | os.PathLike[str], force: bool = False
) -> Path:
    """Write a static web page classifying as you type into ``directory``: ``textproj.wasm``,
    ``textproj.js``, ``index.html`` and the model, replacing it whole (:func:`check_export_dir`
    says when it may); returns it. Needs the ``ziglang`` package."""
    directory = Path(directory)
    check_export_dir(directory, "WebAssembly", model, force)
    check_wasm_tools()
    path = _checked(model)

    def write(staging: Path) -> None:
        with tempfile.TemporaryDirectory() as build:
            write_library(Path(build))
            wasm = Path(build) / WASM_FILE
            done = subprocess.run(wasm_command(wasm), cwd=build, capture_output=True, text=True)
            if done.returncode != 0:
                raise ExportError(f"building {WASM_FILE} failed: {done.stderr.strip()[-500:]}")
            fsio.write_bytes(staging / WASM_FILE, wasm.read_bytes())
        for name in WEB_FILES:
            fsio.write_bytes(staging / name, (WEB_DIR / name).read_bytes())
        fsio.write_bytes(staging / MODEL_FILENAME, path.read_bytes())
        fsio.write_text(staging / "README.md", _web_readme(path.name))

    fsio.build_directory(directory, write)
    return directory


def _web_readme(name: str) -> str:
    return f"""# textproj WebAssembly build for `{name}`

`index.html` classifies as you type. Serve this folder with any static file server, for example
`python -m http.server --directory .`, then open http://localhost:8000 (the page fetches
`{WASM_FILE}` and `{MODEL_FILENAME}`, which browsers refuse to do from a `file://` page).

From your own page, with `textproj.js` loaded:

```js
const clf = await Textproj.create(await (await fetch("{WASM_FILE}")).arrayBuffer(),
                                  await (await fetch("{MODEL_FILENAME}")).arrayBuffer());
clf.top("some text", 5);  // [{{label, probability}}, ...], most probable first
```

In node: `const Textproj = require("./textproj.js")`, with the two files' bytes from
`fs.readFileSync`. `{WASM_FILE}` needs no imports; it runs the same C code as `textproj export
--c` and gives the labels of textproj's Python runtime. See docs/device.md in the textproj
repository.
"""
