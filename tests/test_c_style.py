"""One C style for the runtime and the C fuzz harness: `.clang-format` at the repository root
(clang-format 14, Debian 12's), checked file by file. Reformat with
``clang-format -i --style=file src/edgecnn/compiler/runtime/*.[ch] fuzz/c/*.c``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import need

REPO = Path(__file__).resolve().parents[1]
FILES = sorted([*(REPO / "src/edgecnn/compiler/runtime").glob("*.[ch]"),
                *(REPO / "fuzz/c").glob("*.c")])


def test_the_style_file_is_there():
    assert (REPO / ".clang-format").is_file() and len(FILES) > 10


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_c_file_follows_clang_format(path):
    exe = shutil.which("clang-format")
    need("clang", exe is not None, "clang-format not installed (apt install clang-format)")
    r = subprocess.run([exe, "--dry-run", "--Werror", f"--style=file:{REPO / '.clang-format'}",
                        str(path)], capture_output=True, text=True)
    assert r.returncode == 0, (f"{path.name} is not formatted: run clang-format -i "
                               f"--style=file {path}\n{r.stderr[:2000]}")
