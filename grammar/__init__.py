"""Flowfile grammar: text to immutable AST. Imports nothing of the engine."""

from . import ast
from .errors import FlowfileError
from .parser import BUILTIN_FUNCTIONS, parse, parse_file

__all__ = ["ast", "FlowfileError", "BUILTIN_FUNCTIONS", "parse", "parse_file"]
