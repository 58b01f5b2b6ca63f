"""docs/benchmarks.md is written by several runners; each owns its parts.

``run.py`` writes the whole file but keeps every block between
``<!-- NAME -->`` and ``<!-- /NAME -->`` markers: the notes written by hand,
and the sections other runners (``consolidate.py``, ...) put there with
``replace_block``. Each runner thus rewrites only what it measured.
``provenance`` and ``compile_flow`` are what every runner does alike.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

BLOCK = re.compile(r"<!-- (\w+) -->.*?<!-- /\1 -->", re.DOTALL)
PACKAGES = ("engine", "rules", "grammar")
FIND = ("import importlib.util as u; print(*(u.find_spec('flow.' + p).submodule_search_locations[0] "
        f"for p in {PACKAGES!r}), sep='\\n')")


def blocks(text: str) -> dict[str, str]:
    """The marked blocks of a report, by name, markers included."""
    return {m.group(1): m.group(0) for m in BLOCK.finditer(text)}


def wrap(name: str, body: str) -> str:
    return f"<!-- {name} -->\n{body.strip()}\n<!-- /{name} -->"


def replace_block(path: Path, name: str, body: str) -> str:
    """Put ``body`` in the report's block ``name`` (added at the end if it has none)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = wrap(name, body)
    if name in blocks(text):
        text = BLOCK.sub(lambda m: block if m.group(1) == name else m.group(0), text)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text


def publish(path: Path, name: str, body: str) -> None:
    """Put ``body`` in the report's block ``name`` (``replace_block``) and show it."""
    print(blocks(replace_block(path, name, body))[name])


def provenance(script: str, argv: list[str] | None) -> str:
    """When a block was measured, and the command that measures it again."""
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    args = "".join(f" {x}" for x in (argv if argv is not None else sys.argv[1:]))
    return f"Measured {started}; reproduce: `python benchmarks/{script}{args}`."


def compile_flow(python: str = sys.executable) -> None:
    """Byte-compile flow as an installed package is (a PYTHONDONTWRITEBYTECODE=1
    environment would otherwise compile it at every start, 60 ms). With
    ``python``, the interpreter of another flow (a baseline measured beside
    this one), that flow's own sources are compiled, by it: both start alike."""
    repo = Path(__file__).resolve().parent.parent
    dirs = [str(repo / d) for d in PACKAGES] if python == sys.executable else source_dirs(python)
    if not dirs:  # (compileall without a directory would compile all of sys.path)
        print(f"flow's sources not found by {python!r}: not byte-compiled", file=sys.stderr)
        return
    subprocess.run([python, "-m", "compileall", "-q", *dirs],
                   check=False, env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""})


def source_dirs(python: str) -> list[str]:
    """The directories ``python`` imports flow's packages from (found without
    running them: a tree being edited may not import), or none."""
    if not python:
        return []
    try:
        out = subprocess.run([python, "-c", FIND], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return out.stdout.splitlines() if out.returncode == 0 else []
