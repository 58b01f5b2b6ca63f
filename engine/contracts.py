"""Data contracts: a rule's ``schema:`` checked against its tabular outputs.

A schema maps column names to Arrow type names. The columns must be there
(others may be too) and have those types. A name without its parameters
stands for the whole family: ``timestamp`` is any unit and time zone,
``date`` is date32 or date64, ``string`` is also large_string, ``list<int64>``
is any list of int64, ``decimal`` any precision. DuckDB's names (``BIGINT``,
``VARCHAR``, ...) are read as the Arrow types DuckDB writes for them.

Parquet keeps types, so its footer is compared. CSV, TSV and JSON keep text:
their types are the ones Arrow reads, so there a column with no values fits
any type and whole numbers fit a floating or decimal column.

Names are checked when the Flowfile is loaded (no pyarrow needed then); files
are checked by the scheduler after a job, before it counts as done.
"""

from __future__ import annotations

import json
import os
import re

_FAMILIES = {  # a bare name: what it matches, by pyarrow.types predicate
    "timestamp": ("is_timestamp",), "date": ("is_date",), "time": ("is_time",),
    "duration": ("is_duration",), "decimal": ("is_decimal",), "struct": ("is_struct",),
    "map": ("is_map",), "list": ("is_list", "is_large_list", "is_fixed_size_list"),
    "string": ("is_string", "is_large_string", "is_string_view"),
    "binary": ("is_binary", "is_large_binary", "is_binary_view"),
}
_EXACT = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "halffloat", "float", "double", "bool", "null", "large_string", "large_binary",
    "date32", "date64",
}
_ALIASES = {
    # Arrow spellings
    "float16": "halffloat", "float32": "float", "float64": "double", "boolean": "bool",
    "utf8": "string", "large_utf8": "large_string", "date32[day]": "date32", "date64[ms]": "date64",
    # DuckDB / SQL names, as DuckDB writes them to Arrow
    "tinyint": "int8", "smallint": "int16", "integer": "int32", "int": "int32", "bigint": "int64",
    "utinyint": "uint8", "usmallint": "uint16", "uinteger": "uint32", "ubigint": "uint64",
    "real": "float", "varchar": "string", "text": "string", "blob": "binary",
}
_UNITS = "s|ms|us|ns"
_PARAMETRIC = [
    re.compile(rf"timestamp\[({_UNITS})(,tz=[^\]]+)?\]"),
    re.compile(r"time32\[(s|ms)\]"),
    re.compile(r"time64\[(us|ns)\]"),
    re.compile(rf"duration\[({_UNITS})\]"),
    re.compile(r"decimal(128|256)?\(\d+,-?\d+\)"),
]
_FLOATING = {"halffloat", "float", "double"}


class SchemaError(ValueError):
    """A ``schema:`` that is not a dict of column names to known type names."""


def parse_schema(value: object) -> dict[str, str]:
    """The schema with each type name in its canonical spelling."""
    if not isinstance(value, dict) or not value:
        raise SchemaError("schema: takes a dict of column names to type names, "
                          'e.g. {"ts": "timestamp", "value": "double"}')
    out = {}
    for column, type_name in value.items():
        if not isinstance(column, str) or not isinstance(type_name, str):
            raise SchemaError(f"schema: {column!r}: {type_name!r}: column and type are both strings")
        out[column] = canonical(type_name, column)
    return out


def canonical(type_name: str, column: str = "") -> str:
    text = re.sub(r"\s+", "", type_name).lower()
    text = _ALIASES.get(text, text)
    if text in _EXACT or text in _FAMILIES or any(p.fullmatch(text) for p in _PARAMETRIC):
        return text
    for prefix in ("list<", "large_list<"):
        if text.startswith(prefix) and text.endswith(">"):
            return prefix + canonical(text[len(prefix):-1], column) + ">"
    known = ", ".join(sorted(_EXACT | set(_FAMILIES))) + ", timestamp[us], list<int64>, decimal(10,2), ..."
    raise SchemaError(f"schema: unknown type {type_name!r} for column {column!r} (known: {known})")


def checkable(path: str) -> bool:
    """Whether flow can read ``path``'s schema (by its name)."""
    return _kind(path) is not None


def _kind(path: str) -> str | None:
    name = path.lower()
    for ext in (".gz", ".zst"):
        name = name.removesuffix(ext)
    ext = os.path.splitext(name)[1]
    if ext in (".parquet", ".pq"):
        return "parquet" if name == path.lower() else None
    return {".csv": "csv", ".tsv": "tsv", ".json": "json", ".ndjson": "json", ".jsonl": "json"}.get(ext)


def check(path: str, schema: dict[str, str]) -> list[str]:
    """Every way the file differs from the schema (empty if it conforms).
    Raises ``ValueError`` when the file cannot be read as a table."""
    kind = _kind(path)
    actual = _read_schema(path, kind)
    text = kind != "parquet"
    problems = []
    for column, declared in schema.items():
        if column not in actual.names:
            problems.append(f"missing column {column!r} (expected {declared})")
            continue
        t = actual.field(column).type
        if not _matches(declared, t, text):
            problems.append(f"column {column!r} is {t}, expected {declared}")
    return problems


def _read_schema(path: str, kind: str | None):
    import pyarrow as pa

    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        if kind in ("csv", "tsv"):
            import pyarrow.csv as pcsv

            parse = pcsv.ParseOptions(delimiter="\t" if kind == "tsv" else ",")
            convert = pcsv.ConvertOptions(null_values=[""], strings_can_be_null=True)  # as DuckDB reads CSV
            with pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=16 << 20),
                               parse_options=parse, convert_options=convert) as reader:
                for _ in reader:  # the types of the first block must hold to the end
                    pass
                return reader.schema
        if kind == "json":
            import pyarrow.json as pjson

            return pjson.read_json(_ndjson(path)).schema
    except (pa.ArrowException, OSError, json.JSONDecodeError) as e:
        raise ValueError(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__) from None
    raise ValueError(f"flow cannot read the schema of {path}")


def _ndjson(path: str):
    """The file as newline-delimited JSON, the form Arrow reads (a .json
    file may hold one array of records instead)."""
    import io

    import pyarrow as pa

    stream = pa.input_stream(path, compression="detect")
    data = stream.read()
    if data.lstrip()[:1] == b"[":
        records = json.loads(data)
        data = b"\n".join(json.dumps(r).encode() for r in records)
    return io.BytesIO(data)


def _matches(declared: str, t, text_format: bool) -> bool:
    import pyarrow.types as pt

    if pt.is_dictionary(t):
        t = t.value_type
    if text_format and (pt.is_null(t) or (pt.is_integer(t) and (declared in _FLOATING or declared.startswith("decimal")))):
        return True
    for prefix in ("list<", "large_list<"):
        if declared.startswith(prefix):
            family = pt.is_large_list(t) if prefix == "large_list<" else (pt.is_list(t) or pt.is_large_list(t))
            return family and _matches(declared[len(prefix):-1], t.value_type, text_format)
    if declared in _FAMILIES:
        return any(getattr(pt, test)(t) for test in _FAMILIES[declared] if hasattr(pt, test))
    if declared.startswith("decimal") and pt.is_decimal(t):
        precision, scale = declared[declared.index("(") + 1:-1].split(",")
        return (t.precision, t.scale) == (int(precision), int(scale)) and (
            declared[:8] == "decimal(" or declared.startswith(f"decimal{t.bit_width}("))
    actual = _ALIASES.get(str(t).replace(" ", "").lower(), str(t).replace(" ", "").lower())
    return actual == declared
