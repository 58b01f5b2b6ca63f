"""Flowfile grammar: text to immutable AST. Imports nothing of the engine.

``parse``/``parse_file`` (parser.py) are the entry; the pre-pass (prepass.py),
the indenter (indenter.py), the AST builder (builder.py) and the error
translation (translate.py) are its steps. The names a Flowfile expression may
call are exported for the engine's evaluator.
"""

from . import ast
from .builder import BUILTIN_FUNCTIONS, DECLARATIVE_HINT, PATH_FUNCTIONS, PURE_METHODS
from .errors import FlowfileError
from .parser import parse, parse_file

__all__ = ["ast", "FlowfileError", "BUILTIN_FUNCTIONS", "DECLARATIVE_HINT", "PATH_FUNCTIONS", "PURE_METHODS",
           "parse", "parse_file"]
