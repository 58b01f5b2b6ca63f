"""The Flowfile's vocabulary: the names an expression may call, the
directives, the keywords a Flowfile never has and what to say about each.
The parser's checks use it, and the engine's evaluator too, which must not
load the parser (and Lark) to do so: a run whose Flowfile was parsed before
uses the AST the engine kept (``engine/load/parsed.py``)."""

from __future__ import annotations

import builtins

from flow.rules import ACTION_KINDS

BUILTIN_FUNCTIONS = frozenset(
    {
        "expand", "glob_wildcards", "temp", "protected", "directory", "ancient", "touch", "multiext",
        "unpack", "range", "len", "str", "int", "float", "bool", "sorted", "list", "min", "max", "abs",
        "tuple", "dict", "set", "sum", "any", "all", "enumerate", "zip", "reversed", "round",
        "map", "filter", "repr", "chr", "ord",
    }
)
# Pure methods of str/dict/list/tuple/set values, e.g. ``config.get("x", 1)`` or
# ``" ".join(X)``: each returns a new value and changes none (no list.append).
PURE_METHODS = frozenset(
    {
        # str
        "format", "join", "replace", "split", "rsplit", "splitlines", "strip", "lstrip", "rstrip",
        "lower", "upper", "title", "capitalize", "casefold", "swapcase", "startswith", "endswith",
        "partition", "rpartition", "find", "rfind", "index", "rindex", "count", "zfill",
        "center", "ljust", "rjust", "removeprefix", "removesuffix", "expandtabs",
        "isdigit", "isalpha", "isalnum", "isnumeric", "isdecimal", "isspace", "islower",
        "isupper", "istitle", "isidentifier", "isascii",
        # dict (and str/list/tuple: index, count)
        "get", "keys", "values", "items", "copy",
        # set
        "union", "intersection", "difference", "symmetric_difference", "issubset",
        "issuperset", "isdisjoint",
    }
)
# ``os.path.NAME(...)``: the pure path helpers (they read no file).
PATH_FUNCTIONS = frozenset({"join", "basename", "dirname", "splitext", "normpath", "split"})
# Python's built-in names that a Flowfile expression may not call (it may call
# any other name: a function the Flowfile defines, which the evaluator checks).
OTHER_PYTHON_BUILTINS = frozenset(
    n for n in dir(builtins) if not n.startswith("_") and n not in BUILTIN_FUNCTIONS
) | {"__import__", "__build_class__"}
TOPLEVEL_DIRECTIVES = frozenset(
    {"configfile", "include", "workdir", "wildcard_constraints", "localrules", "nocache"}
)
# The directives that say what a rule's jobs do: those of the registry of job kinds.
# `run:` holds Python, so the grammar has a rule of its own for it; the others are directives.
ACTIONS: tuple[str, ...] = ACTION_KINDS
RULE_DIRECTIVES = frozenset(
    {
        "input", "output", "params", "threads", "resources", "retries", "priority", "log",
        "benchmark", "message", "wildcard_constraints", "schema", "default_target", "localrule",
        "cache",
    }
) | frozenset(ACTIONS).difference({"run"})
PYTHON_KEYWORDS = frozenset(
    {
        "import", "from", "if", "elif", "else", "for", "while", "def", "class", "lambda",
        "with", "try", "except", "finally", "return", "yield", "global", "nonlocal", "assert",
        "del", "async", "await", "pass", "break", "continue", "raise", "not", "and", "or",
        "in", "is",
    }
)
# Keywords that start a statement a Flowfile never has.
STATEMENT_KEYWORDS = frozenset(
    {"import", "from", "for", "while", "class", "with", "try", "except", "finally", "raise",
     "global", "nonlocal", "del", "assert", "yield", "async", "await", "break", "continue"}
)
# Keywords that start a statement only some places have (`if` in a def body,
# `def` and `return` at the top level or in one), or that are part of an expression.
PLACED_KEYWORDS = frozenset({"if", "elif", "else", "def", "return", "pass", "lambda"})
_WHERE_PYTHON_GOES = (
    "Flowfiles are declarative: statements with effects belong in a `run:` block or a "
    "`script:` file, which run only inside jobs."
)
KEYWORD_MESSAGES = {
    "import": ("`import` statements are not allowed in a Flowfile",
               "os.path.join, basename, dirname and splitext need no import. " + _WHERE_PYTHON_GOES),
    "from": ("`from ... import` statements are not allowed in a Flowfile",
             "os.path.join, basename, dirname and splitext need no import. " + _WHERE_PYTHON_GOES),
    "for": ("`for` loops are not allowed in a Flowfile",
            "Make lists with a comprehension ([f(x) for x in L]) or expand(). " + _WHERE_PYTHON_GOES),
    "while": ("`while` loops are not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "if": ("`if` statements are allowed only in a `def` input function",
           "Choose a value with a conditional expression (X = a if COND else b), or in a "
           "`def NAME(wildcards):` that returns it. " + _WHERE_PYTHON_GOES),
    "elif": ("`elif` without an `if` before it", None),
    "else": ("`else` without an `if` before it", None),
    "def": ("function definitions (`def`) are allowed only at the top level of a Flowfile",
            "Define the function at the top level, before the rule, and name it in the rule."),
    "return": ("`return` is allowed only at the end of a `def` input function", None),
    "pass": ("`pass` is allowed only in a `def` input function", None),
    "class": ("class definitions are not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "with": ("`with` statements are not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "try": ("`try` statements are not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "except": ("`try` statements are not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "finally": ("`try` statements are not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "assert": ("`assert` is not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "async": ("`async` is not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "await": ("`await` is not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "break": ("`break` is not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "continue": ("`continue` is not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "raise": ("`raise` is not allowed in a Flowfile", _WHERE_PYTHON_GOES),
    "global": ("`global` is not allowed in a Flowfile",
               "A Flowfile function only names values of its own and returns one."),
    "nonlocal": ("`nonlocal` is not allowed in a Flowfile",
                 "A Flowfile function only names values of its own and returns one."),
    "del": ("`del` is not allowed in a Flowfile", "Flowfile values never change once named."),
    "yield": ("`yield` is not allowed in a Flowfile", "A Flowfile function returns its value."),
}


DECLARATIVE_HINT = (
    "Flowfiles are declarative: Python belongs in `run:` blocks and `script:` files, "
    "which run only inside jobs."
)
MAX_DEPTH = 150  # expression levels; far beyond any real Flowfile, well within Python's stack
DEPTH_HINT = "Split it into named parts (X = ...) and combine those."
