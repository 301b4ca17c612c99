"""The blank-text rule (Python's ``str.isspace``, :func:`textproj.data.is_blank`) is spelled by
hand in the C example (``is_blank``) and the web page (``BLANK``): both must accept exactly
Python's white space code points, none more (a code point once white space, U+180E, or a
neighbour of a range end) and none fewer."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import need

from textproj.export import C_DIR, EXAMPLE, WEB_DIR

SPACES = [c for c in range(sys.maxunicode + 1) if chr(c).isspace()]

# A driver printing, one a line, the code points whose UTF-8 form (surrogates in their 3-byte
# form, as the C runtime takes them) the example's is_blank accepts.
_DRIVER = r"""
#include <stddef.h>
#include <stdio.h>

%s

int main(void) {
    for (unsigned long cp = 0; cp <= 0x10ffff; cp++) {
        unsigned char s[4];
        size_t n;
        if (cp < 0x80) {
            s[0] = (unsigned char)cp; n = 1;
        } else if (cp < 0x800) {
            s[0] = (unsigned char)(0xc0 | cp >> 6); s[1] = (unsigned char)(0x80 | (cp & 0x3f));
            n = 2;
        } else if (cp < 0x10000) {
            s[0] = (unsigned char)(0xe0 | cp >> 12);
            s[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
            s[2] = (unsigned char)(0x80 | (cp & 0x3f)); n = 3;
        } else {
            s[0] = (unsigned char)(0xf0 | cp >> 18);
            s[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
            s[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
            s[3] = (unsigned char)(0x80 | (cp & 0x3f)); n = 4;
        }
        if (is_blank(s, n)) printf("%%lu\n", cp);
    }
    return 0;
}
"""


def _differences(accepted: list[int]) -> tuple[list[str], list[str]]:
    """The code points ``accepted`` but not Python's spaces, and Python's spaces not accepted."""
    extra = sorted(set(accepted) - set(SPACES))
    missing = sorted(set(SPACES) - set(accepted))
    return [f"U+{c:04X}" for c in extra], [f"U+{c:04X}" for c in missing]


def test_the_c_examples_is_blank_accepts_exactly_pythons_spaces(tmp_path: Path) -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    need(compiler is not None, "no C compiler is installed")
    source = (C_DIR / EXAMPLE).read_text(encoding="utf-8")
    function = re.search(r"^static int is_blank\(.*?^\}$", source, re.S | re.M)
    assert function is not None, f"{EXAMPLE} defines no is_blank"
    (tmp_path / "blank.c").write_text(_DRIVER % function.group(0), encoding="utf-8")
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror"]
    build = [str(compiler), *flags, "-o", "blank", "blank.c"]
    subprocess.run(build, cwd=tmp_path, check=True, capture_output=True)
    done = subprocess.run([str(tmp_path / "blank")], capture_output=True, check=True, text=True)
    assert _differences([int(line) for line in done.stdout.split()]) == ([], [])


def test_the_pages_blank_regex_accepts_exactly_pythons_spaces() -> None:
    need(shutil.which("node") is not None, "node is not installed")
    source = (WEB_DIR / "textproj.js").read_text(encoding="utf-8")
    blank = re.search(r"^\s*const BLANK = (/.*/[a-z]*);$", source, re.M)
    assert blank is not None, "textproj.js defines no BLANK"
    script = (
        f"const BLANK = {blank.group(1)}; const accepted = [];"
        "for (let cp = 0; cp <= 0x10ffff; cp++) {"
        "  if (BLANK.test(String.fromCodePoint(cp))) accepted.push(cp); }"
        "process.stdout.write(JSON.stringify(accepted));"
    )
    done = subprocess.run(["node", "-e", script], capture_output=True, check=True, text=True)
    assert _differences(json.loads(done.stdout)) == ([], [])
