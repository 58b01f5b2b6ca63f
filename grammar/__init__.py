"""Flowfile grammar: text to immutable AST. Imports nothing of the engine.

``parse``/``parse_file`` (parser.py) are the entry; the pre-pass (prepass.py),
the indenter (indenter.py), the AST builder (builder.py) and the error
translation (translate.py) are its steps. The names a Flowfile expression may
call (vocabulary.py) are exported for the engine's evaluator.

``parse`` and ``parse_file`` load the parser, and Lark with it, on first
use: a run whose Flowfile the engine parsed before never needs them.
"""

from . import ast
from .errors import FlowfileError
from .vocabulary import BUILTIN_FUNCTIONS, DECLARATIVE_HINT, PATH_FUNCTIONS, PURE_METHODS


def __getattr__(name: str):
    if name in ("parse", "parse_file"):
        from . import parser

        return getattr(parser, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ast", "FlowfileError", "BUILTIN_FUNCTIONS", "DECLARATIVE_HINT", "PATH_FUNCTIONS", "PURE_METHODS",
           "parse", "parse_file"]
