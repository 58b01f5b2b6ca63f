"""Data contracts: a rule's ``schema:`` checked against its tabular outputs.

A schema maps column names to Arrow type names. The columns must be there
(others may be too) and hold those types. A name without its parameters
stands for the whole family: ``timestamp`` is any unit and time zone,
``date`` is date32 or date64, ``string`` is also large_string and
string_view, ``list<int64>`` is any list of int64, ``decimal`` any precision.
DuckDB's names (``BIGINT``, ``VARCHAR``, ``TIMESTAMPTZ``, ``INTEGER[]``, ...)
are read as the Arrow types DuckDB writes for them.

Parquet keeps types: its footer is compared. CSV and TSV keep text: each
value of a declared column must read as the declared type (an empty cell is
a missing value, which fits any type; nested types cannot be written as CSV,
so for them only the column's presence is checked). JSON keeps JSON types:
each value must be a number, string, bool, list or object that fits.

Names are checked when the Flowfile is loaded (no pyarrow needed then).
Files are checked in a worker process after the job, before it counts as
done (``SchemaCheck``, the worker's kind ``contracts``), so that reading
a large output never holds up the scheduler.
"""

from __future__ import annotations

import datetime
import json
import os
import re

from .base import JobContext, JobFailed

_FAMILIES = {  # a bare name: what it matches, by pyarrow.types predicate
    "timestamp": ("is_timestamp",), "date": ("is_date",), "time": ("is_time",),
    "duration": ("is_duration",), "decimal": ("is_decimal",), "struct": ("is_struct",),
    "map": ("is_map",), "list": ("is_list", "is_large_list", "is_fixed_size_list"),
    "string": ("is_string", "is_large_string", "is_string_view"),
    "binary": ("is_binary", "is_large_binary", "is_binary_view", "is_fixed_size_binary"),
    "interval": ("is_interval",),
}
_EXACT = {
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "halffloat", "float", "double", "bool", "null", "large_string", "large_binary",
    "string_view", "binary_view", "date32", "date64", "uuid", "timestamptz",
}
_ALIASES = {
    # Arrow spellings
    "float16": "halffloat", "float32": "float", "float64": "double", "boolean": "bool",
    "utf8": "string", "large_utf8": "large_string", "date32[day]": "date32", "date64[ms]": "date64",
    # DuckDB / SQL names, as DuckDB writes them to Arrow
    "tinyint": "int8", "smallint": "int16", "int2": "int16", "integer": "int32", "int": "int32",
    "int4": "int32", "bigint": "int64", "long": "int64", "utinyint": "uint8", "usmallint": "uint16",
    "uinteger": "uint32", "ubigint": "uint64", "real": "float", "float4": "float", "float8": "double",
    "doubleprecision": "double", "numeric": "decimal", "varchar": "string", "text": "string",
    "blob": "binary", "bytea": "binary", "timestamp_s": "timestamp[s]", "timestamp_ms": "timestamp[ms]",
    "timestamp_ns": "timestamp[ns]", "datetime": "timestamp", "timestampwithtimezone": "timestamptz",
}
_UNITS = "s|ms|us|ns"
_PARAMETRIC = [
    re.compile(rf"timestamp\[({_UNITS})(,tz=[^\]]+)?\]"),
    re.compile(r"time32\[(s|ms)\]"),
    re.compile(r"time64\[(us|ns)\]"),
    re.compile(rf"duration\[({_UNITS})\]"),
    re.compile(r"decimal(128|256)?\(\d+,-?\d+\)"),
    re.compile(r"fixed_size_binary\[\d+\]"),
    re.compile(r"struct<.+>"),
]
_FLOATING = {"halffloat", "float", "double"}
_INT_RANGES = {f"{s}int{b}": ((0, 2**b - 1) if s else (-(2 ** (b - 1)), 2 ** (b - 1) - 1))
               for s in ("", "u") for b in (8, 16, 32, 64)}


class SchemaError(ValueError):
    """A ``schema:`` that is not a dict of column names to known type names."""


# declaring --------------------------------------------------------------------------------


def parse_schema(value: object) -> dict[str, str]:
    """The schema with each type name in its canonical spelling; every
    unknown name is reported at once."""
    if not isinstance(value, dict) or not value:
        raise SchemaError("schema: takes a dict of column names to type names, "
                          'e.g. {"ts": "timestamp", "value": "double"}')
    out, unknown = {}, []
    for column, type_name in value.items():
        if not isinstance(column, str) or not isinstance(type_name, str):
            raise SchemaError(f"schema: {column!r}: {type_name!r}: column and type are both strings")
        name = canonical(type_name)
        if name is None:
            unknown.append(f"{type_name!r} for column {column!r}")
        out[column] = name
    if unknown:
        raise SchemaError(
            f"schema: unknown type {', '.join(unknown)}; known: Arrow names ("
            + ", ".join(sorted(_EXACT | set(_FAMILIES)))
            + ", timestamp[us, tz=UTC], decimal(10, 2), list<int64>, struct<a: int64>, ...) "
            "or DuckDB names (BIGINT, INTEGER, DOUBLE, VARCHAR, BOOLEAN, DATE, TIMESTAMP, TIMESTAMPTZ, INTEGER[], ...)")
    return out


def canonical(type_name: str) -> str | None:
    """The canonical spelling of a type name (None if unknown). Only the time
    zone keeps its case."""
    text = re.sub(r"\s+", "", type_name)
    zone = re.search(r",tz=([^\]]+)\]$", text)
    text = text.lower() if zone is None else text[: zone.start()].lower() + f",tz={zone.group(1)}]"
    text = _ALIASES.get(text, text)
    if text.endswith("[]"):  # DuckDB's INTEGER[]
        inner = canonical(text[:-2])
        return f"list<{inner}>" if inner else None
    for prefix in ("list<", "large_list<"):
        if text.startswith(prefix) and text.endswith(">"):
            inner = canonical(re.sub(r"^(item|element):", "", text[len(prefix):-1]))
            return f"{prefix}{inner}>" if inner else None
    if text in _EXACT or text in _FAMILIES or any(p.fullmatch(text) for p in _PARAMETRIC):
        return text
    return None


def checkable(path: str) -> bool:
    """Whether flow can read ``path``'s schema (by its name)."""
    return _kind(path) is not None


def _kind(path: str) -> str | None:
    name = path.lower()
    compressed = name.endswith((".gz", ".zst"))
    ext = os.path.splitext(name.removesuffix(".gz").removesuffix(".zst"))[1]
    if ext in (".parquet", ".pq"):
        return None if compressed else "parquet"
    return {".csv": "csv", ".tsv": "tsv", ".json": "json", ".ndjson": "json", ".jsonl": "json"}.get(ext)


# checking ---------------------------------------------------------------------------------


class SchemaCheck:
    """A rule's ``schema:`` checked on its job's outputs: a kind of job of its
    own (not a directive) that the scheduler sends to a worker after the job."""

    kind = "contracts"
    in_worker = True

    @staticmethod
    def execute(payload: tuple[list[str], dict[str, str], str], ctx: JobContext | None = None) -> None:
        check_job(payload)

    @staticmethod
    def warm() -> None:
        """Import pyarrow in a worker before the first check."""
        import pyarrow.parquet  # noqa: F401


def check_job(payload: tuple[list[str], dict[str, str], str]) -> None:
    """Fail the job (outputs, schema, rule name) if an output breaks the contract."""
    outputs, schema, rule = payload
    found = []
    for path in outputs:
        if not os.path.lexists(path):
            raise JobFailed(f"the job finished but did not make its output {path}")
        try:
            problems = check(path, schema)
        except ValueError as e:
            problems = [f"it cannot be read as a table: {e}"]
        if problems:
            found.append(f"output {path} does not match the schema: of rule {rule}:"
                         + "".join(f"\n  {p}" for p in problems))
    if found:
        raise JobFailed("\n".join(found))


def check(path: str, schema: dict[str, str]) -> list[str]:
    """Every way the file differs from the schema (empty if it conforms).
    Raises ``ValueError`` when the file cannot be read as a table."""
    kind = _kind(path)
    if kind == "parquet":
        return _check_parquet(path, schema)
    if kind in ("csv", "tsv"):
        return _check_csv(path, schema, "\t" if kind == "tsv" else ",")
    if kind == "json":
        return _check_json(path, schema)
    raise ValueError(f"flow cannot read the schema of {path}")


def _duplicates(names: list[str], schema: dict[str, str]) -> list[str]:
    return [f"column {c!r} appears {names.count(c)} times" for c in schema if names.count(c) > 1]


def _check_parquet(path: str, schema: dict[str, str]) -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        actual = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise ValueError(_first_line(e)) from None
    problems = _duplicates(actual.names, schema)
    for column, declared in schema.items():
        if column not in actual.names:
            problems.append(f"missing column {column!r} (expected {declared})")
        elif actual.names.count(column) == 1 and not _matches(declared, actual.field(column).type):
            problems.append(f"column {column!r} is {actual.field(column).type}, expected {declared}")
    return problems


def _matches(declared: str, t) -> bool:
    import pyarrow as pa
    import pyarrow.types as pt

    if pt.is_dictionary(t):
        t = t.value_type
    if isinstance(t, pa.BaseExtensionType):
        if declared == "uuid" and t.extension_name == "arrow.uuid":
            return True
        t = t.storage_type
    for prefix in ("list<", "large_list<"):
        if declared.startswith(prefix):
            family = pt.is_large_list(t) if prefix == "large_list<" else (
                pt.is_list(t) or pt.is_large_list(t) or pt.is_fixed_size_list(t))
            return family and _matches(declared[len(prefix):-1], t.value_type)
    if declared in ("uuid", "interval") and pt.is_fixed_size_binary(t):  # as parquet keeps them
        return t.byte_width == (16 if declared == "uuid" else 12)
    if declared in _FAMILIES:
        return any(getattr(pt, test)(t) for test in _FAMILIES[declared] if hasattr(pt, test))
    if declared == "timestamptz":
        return pt.is_timestamp(t) and t.tz is not None
    if declared.startswith("decimal") and pt.is_decimal(t):
        precision, scale = declared[declared.index("(") + 1:-1].split(",")
        return (t.precision, t.scale) == (int(precision), int(scale)) and (
            declared.startswith("decimal(") or declared.startswith(f"decimal{t.bit_width}("))
    return canonical(str(t)) == declared


# text formats: each value must read as the declared type ------------------------------------


def _check_csv(path: str, schema: dict[str, str], delimiter: str) -> list[str]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    try:
        header = _csv_header(path, delimiter)
    except (pa.ArrowException, OSError, UnicodeDecodeError) as e:
        raise ValueError(_first_line(e)) from None
    problems = _duplicates(header, schema)
    present = [c for c in schema if header.count(c) == 1]
    problems += [f"missing column {c!r} (expected {t})" for c, t in schema.items() if c not in header]
    targets = {c: _text_targets(schema[c]) for c in present}
    read = [c for c in present if targets[c]]
    if not read:
        return problems
    convert = pcsv.ConvertOptions(column_types={c: pa.string() for c in read}, include_columns=read,
                                  null_values=[""], strings_can_be_null=True)
    bad: dict[str, str] = {}
    try:
        with pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter),
                           convert_options=convert) as reader:
            for batch in reader:
                for c in read:
                    if c not in bad:
                        example = _not_castable(batch.column(c), targets[c])
                        if example is not None:
                            bad[c] = example
    except (pa.ArrowException, OSError) as e:
        raise ValueError(_first_line(e)) from None
    problems += [f"column {c!r} has values that are not {schema[c]}, e.g. {bad[c]}" for c in read if c in bad]
    return problems


def _csv_header(path: str, delimiter: str) -> list[str]:
    import csv
    import io

    import pyarrow as pa

    with pa.input_stream(path, compression="detect") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        return next(csv.reader(text, delimiter=delimiter), [])


def _text_targets(declared: str) -> list | None:
    """The Arrow types a text value may be cast to for ``declared`` (any one
    will do); an empty list when any text fits, None when only Python can tell."""
    import pyarrow as pa

    if declared in ("string", "large_string", "string_view", "binary", "large_binary", "binary_view", "uuid") \
            or declared.startswith(("list", "large_list", "struct", "map", "fixed_size_binary")) \
            or declared in ("list", "struct", "map", "interval"):
        return []
    if declared == "timestamp":
        return [pa.timestamp("us"), pa.timestamp("us", "UTC")]
    if declared == "timestamptz":
        return [pa.timestamp("us", "UTC")]
    if declared == "date":
        return [pa.date32()]
    if declared == "decimal":
        return [pa.float64()]
    if declared in ("time", "duration") or declared.startswith(("time32", "time64", "duration")):
        return None
    return [pa.type_for_alias(declared) if "[" not in declared and "(" not in declared else _arrow_type(declared)]


def _arrow_type(declared: str):
    import pyarrow as pa

    if m := re.fullmatch(rf"timestamp\[({_UNITS})(?:,tz=([^\]]+))?\]", declared):
        return pa.timestamp(m.group(1), m.group(2))
    if m := re.fullmatch(r"decimal(128|256)?\((\d+),(-?\d+)\)", declared):
        return (pa.decimal256 if m.group(1) == "256" else pa.decimal128)(int(m.group(2)), int(m.group(3)))
    raise ValueError(declared)


def _not_castable(column, targets: list | None) -> str | None:
    """A value of the string column that reads as none of the targets, quoted (None if all do)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if targets is None:  # times and durations: Python's ISO parser decides
        for value in column.drop_null().to_pylist():
            try:
                datetime.time.fromisoformat(value)
            except ValueError:
                return repr(value)
        return None
    error = None
    for target in targets:
        try:
            pc.cast(column, target, safe=True)
            return None
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            error = error or str(e)
    quoted = re.search(r"'([^']*)'", error or "")
    return repr(quoted.group(1)) if quoted else (error or "").splitlines()[0]


def _check_json(path: str, schema: dict[str, str]) -> list[str]:
    seen: set[str] = set()
    bad: dict[str, str] = {}
    any_record = False
    try:
        for record in _json_records(path):
            if not isinstance(record, dict):
                raise ValueError("a record is not a JSON object")
            any_record = True
            for column, declared in schema.items():
                if column in record:
                    seen.add(column)
                    value = record[column]
                    if column not in bad and not _json_fits(value, declared):
                        bad[column] = json.dumps(value)[:60]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(_first_line(e)) from None
    if not any_record:
        return []  # no rows: nothing contradicts the schema
    problems = [f"missing column {c!r} (expected {t})" for c, t in schema.items() if c not in seen]
    problems += [f"column {c!r} has values that are not {schema[c]}, e.g. {bad[c]}" for c in schema if c in bad]
    return problems


def _json_records(path: str):
    """The records of a JSON array or of newline-delimited JSON."""
    import io

    import pyarrow as pa

    with pa.input_stream(path, compression="detect") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8")
        first = text.read(1)
        while first.isspace():
            first = text.read(1)
        if first == "[":
            yield from json.loads(first + text.read())
            return
        pending = first
        for line in text:
            line = pending + line
            pending = ""
            if line.strip():
                yield json.loads(line)


def _json_fits(value, declared: str) -> bool:
    if value is None:
        return True
    if declared in _INT_RANGES:
        low, high = _INT_RANGES[declared]
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    if declared in _FLOATING or declared.startswith("decimal"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if declared == "bool":
        return isinstance(value, bool)
    if declared == "null":
        return False
    if declared.startswith(("list<", "large_list<")):
        inner = declared[declared.index("<") + 1:-1]
        return isinstance(value, list) and all(_json_fits(v, inner) for v in value)
    if declared in ("list",):
        return isinstance(value, list)
    if declared in ("struct", "map") or declared.startswith("struct<"):
        return isinstance(value, dict)
    if not isinstance(value, str):
        return False
    parse = {"date": datetime.date.fromisoformat, "date32": datetime.date.fromisoformat,
             "date64": datetime.date.fromisoformat, "time": datetime.time.fromisoformat}
    if declared.startswith(("timestamp", "datetime")):
        parse_one = datetime.datetime.fromisoformat
    elif declared.startswith(("time32", "time64")):
        parse_one = datetime.time.fromisoformat
    else:
        parse_one = parse.get(declared)
    if parse_one is None:
        return True  # strings, binary, uuid, durations, intervals: JSON holds them as text
    try:
        parse_one(value)
        return True
    except ValueError:
        return False


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
