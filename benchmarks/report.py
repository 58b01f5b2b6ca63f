"""docs/benchmarks.md is written by several runners; each owns its parts.

``run.py`` writes the whole file but keeps every block between
``<!-- NAME -->`` and ``<!-- /NAME -->`` markers: the notes written by hand,
and the sections other runners (``consolidate.py``, ...) put there with
``replace_block``. Each runner thus rewrites only what it measured.
"""

from __future__ import annotations

import re
from pathlib import Path

BLOCK = re.compile(r"<!-- (\w+) -->.*?<!-- /\1 -->", re.DOTALL)


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
