"""schema: contracts: after any job, its tabular outputs are checked against
the rule's declared columns and Arrow types (FLOWFILE.md, "Data contracts")."""

from __future__ import annotations

import decimal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flow.rules import contracts


def _consolidate(project, schema: str, sql: str = "SELECT * FROM input") -> None:
    project.write("parts/a.csv", "ts,value,region\n2024-01-01 00:00:00,1.5,north\n")
    project.flowfile(f'''
        rule consolidate:
            input: "parts/a.csv"
            output: "all.parquet"
            schema: {schema}
            duckdb: "{sql}"
    ''')


# the check after a job ----------------------------------------------------------------


def test_an_output_that_matches_its_schema_counts_as_done(project):
    _consolidate(project, '{"ts": "timestamp", "value": "double", "region": "string"}')
    project.run()
    assert project.exists("all.parquet")
    assert "all.parquet" in project.recorded_outputs()


def test_a_missing_column_fails_the_job_and_removes_the_output(project):
    _consolidate(project, '{"ts": "timestamp", "price": "double"}')
    r = project.flow("run")
    assert r.returncode == 1
    assert "output all.parquet does not match the schema: of rule consolidate" in r.stderr
    assert "missing column 'price' (expected double)" in r.stderr
    assert not project.exists("all.parquet")
    assert "all.parquet" not in project.recorded_outputs()


def test_a_type_that_differs_fails_the_job_naming_both_types(project):
    _consolidate(project, '{"value": "int64"}')
    r = project.flow("run")
    assert r.returncode == 1
    assert "column 'value' is double, expected int64" in r.stderr
    assert not project.exists("all.parquet")


def test_every_difference_is_named_at_once(project):
    _consolidate(project, '{"ts": "date", "value": "string", "region": "string", "price": "double", "qty": "int64"}')
    r = project.flow("run")
    assert r.returncode == 1
    for problem in ("column 'ts' is timestamp[us], expected date", "column 'value' is double, expected string",
                    "missing column 'price'", "missing column 'qty'"):
        assert problem in r.stderr
    assert "'region'" not in r.stderr


def test_a_job_that_broke_its_contract_runs_again_next_time(project):
    _consolidate(project, '{"price": "double"}')
    assert project.flow("run").returncode == 1
    _consolidate(project, '{"value": "double"}', "SELECT * FROM input")
    assert project.ran() == ["consolidate"]


def test_extra_columns_are_allowed(project):
    _consolidate(project, '{"region": "string"}')
    project.run()
    assert pq.read_schema(project.root / "all.parquet").names == ["ts", "value", "region"]


def test_the_contract_holds_for_shell_jobs_and_their_csv_outputs(project):
    project.flowfile('''
        rule make:
            output: "out.csv"
            schema: {"id": "int64", "name": "string"}
            shell: "printf 'id,label\\\\n1,a\\\\n' > {output}"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "missing column 'name' (expected string)" in r.stderr
    assert not project.exists("out.csv")


def test_the_contract_holds_for_run_jobs_and_each_of_their_outputs(project):
    project.flowfile('''
        rule make:
            output: "good.parquet", "bad.parquet", "notes.txt"
            schema: {"n": "int64"}
            run:
                import pyarrow as pa, pyarrow.parquet as pq
                pq.write_table(pa.table({"n": pa.array([1], pa.int64())}), output[0])
                pq.write_table(pa.table({"n": pa.array([1], pa.int32())}), output[1])
                open(output[2], "w").write("not a table, not checked")
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "output bad.parquet does not match" in r.stderr and "column 'n' is int32, expected int64" in r.stderr
    assert "good.parquet does not match" not in r.stderr
    assert not project.exists("good.parquet") and not project.exists("bad.parquet")


def test_an_output_that_is_not_a_table_fails_the_contract(project):
    project.flowfile('''
        rule make:
            output: "out.parquet"
            schema: {"n": "int64"}
            shell: "echo hello > {output}"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "out.parquet does not match" in r.stderr and "cannot be read as a table" in r.stderr
    assert "Traceback" not in r.stderr


def test_a_directory_output_is_not_checked(project):
    # "parts.parquet" reads as a parquet file by its name, and holds a part whose
    # columns are not the schema's: only index.csv is the rule's table to check.
    project.flowfile('''
        rule make:
            output: directory("parts.parquet"), "index.csv"
            schema: {"part": "string"}
            run:
                import os
                import pyarrow as pa
                import pyarrow.parquet as pq
                os.makedirs(output[0])
                pq.write_table(pa.table({"n": [1, 2]}), os.path.join(output[0], "part-0.parquet"))
                with open(output[1], "w") as f:
                    f.write("part\\na\\n")
    ''')
    r = project.run()
    assert "does not match the schema" not in r.stderr
    assert {"parts.parquet", "index.csv"} <= project.recorded_outputs()
    assert pq.read_table(project.root / "parts.parquet/part-0.parquet").column_names == ["n"]


# declaring a schema ----------------------------------------------------------------------


def test_an_unknown_type_name_is_refused_when_the_flowfile_is_loaded(project):
    _consolidate(project, '{"ts": "timestamp", "value": "number"}')
    r = project.flow("run", "-n")
    assert r.returncode == 2
    assert "Flowfile:5:" in r.stderr
    assert "unknown type 'number' for column 'value'" in r.stderr and "int64" in r.stderr


def test_a_schema_that_is_not_a_dict_of_strings_is_refused(project):
    _consolidate(project, '{"value": 3}')
    r = project.flow("list")
    assert r.returncode == 2
    assert "Flowfile:5:" in r.stderr and "column and type are both strings" in r.stderr


def test_a_schema_on_a_rule_without_tabular_outputs_is_refused(project):
    project.flowfile('''
        rule make:
            output: "report.txt"
            schema: {"n": "int64"}
            shell: "echo > {output}"
    ''')
    r = project.flow("run")
    assert r.returncode == 2
    assert "no output flow can check it on" in r.stderr


def test_flow_list_shows_the_declared_schema(project):
    _consolidate(project, '{"ts": "timestamp", "value": "double"}')
    r = project.flow("list")
    assert r.returncode == 0
    assert "schema {ts: timestamp, value: double}" in r.stdout


def test_a_dry_run_shows_the_schema_each_job_will_be_checked_against(project):
    _consolidate(project, '{"ts": "TIMESTAMP", "value": "float64"}')
    r = project.run("-n")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("would run  consolidate:")
    assert lines[1].strip() == "schema {ts: timestamp, value: double}"


# type names and how they match (real files, the checker called directly) ---------------------


def _file(tmp_path, table: pa.Table) -> str:
    path = str(tmp_path / "t.parquet")
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("declared, array", [
    ("timestamp", pa.array([0], pa.timestamp("us", tz="UTC"))),
    ("timestamp[ms]", pa.array([0], pa.timestamp("ms"))),
    ("timestamp[us, tz=UTC]", pa.array([0], pa.timestamp("us", tz="UTC"))),
    ("date", pa.array([0], pa.date32())),
    ("string", pa.array(["x"], pa.large_string())),
    ("string", pa.array(["x", "y", "x"]).dictionary_encode()),
    ("VARCHAR", pa.array(["x"])),
    ("BIGINT", pa.array([1], pa.int64())),
    ("integer", pa.array([1], pa.int32())),
    ("float32", pa.array([1.0], pa.float32())),
    ("boolean", pa.array([True])),
    ("list<int64>", pa.array([[1, 2]], pa.list_(pa.int64()))),
    ("list", pa.array([["a"]], pa.large_list(pa.string()))),
    ("decimal(10, 2)", pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2))),
    ("decimal", pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2))),
    ("struct", pa.array([{"a": 1}])),
])
def test_a_type_name_matches_its_arrow_types(tmp_path, declared, array):
    path = _file(tmp_path, pa.table({"c": array}))
    assert contracts.check(path, contracts.parse_schema({"c": declared})) == []


@pytest.mark.parametrize("declared, array", [
    ("timestamp[us]", pa.array([0], pa.timestamp("ms"))),
    ("timestamp[us]", pa.array([0], pa.timestamp("us", tz="UTC"))),
    ("int64", pa.array([1], pa.int32())),
    ("double", pa.array([1], pa.int64())),
    ("large_string", pa.array(["x"])),
    ("list<int64>", pa.array([[1.0]], pa.list_(pa.float64()))),
    ("decimal(10, 3)", pa.array([decimal.Decimal("1.25")], pa.decimal128(10, 2))),
    ("date", pa.array([0], pa.timestamp("us"))),
])
def test_a_type_name_does_not_match_other_types(tmp_path, declared, array):
    path = _file(tmp_path, pa.table({"c": array}))
    assert len(contracts.check(path, contracts.parse_schema({"c": declared}))) == 1


def test_in_csv_whole_numbers_fit_a_floating_column_and_an_empty_column_fits_any(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("price,note,when\n1,,2024-01-01\n2,,2024-01-02\n")
    schema = contracts.parse_schema({"price": "double", "note": "string", "when": "date"})
    assert contracts.check(str(path), schema) == []


def test_in_csv_text_does_not_fit_a_number_column(tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("price\tqty\nn/a\t1\n")
    problems = contracts.check(str(path), contracts.parse_schema({"price": "double", "qty": "int64"}))
    assert problems == ["column 'price' has values that are not double, e.g. 'n/a'"]


def test_in_csv_each_value_is_read_as_the_declared_type_not_guessed(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("zip,flag,day,n,x,amount,d,ts,t,tags\n"
                    "01234,true,2024-01-02,42,1.5,12.34,2024-01-02,2024-01-02 03:04:05.123456,10:11:12,\"[1, 2]\"\n")
    schema = contracts.parse_schema({
        "zip": "VARCHAR", "flag": "string", "day": "string", "n": "INTEGER", "x": "REAL",
        "amount": "decimal(10, 2)", "d": "date", "ts": "timestamp", "t": "time", "tags": "INTEGER[]"})
    assert contracts.check(str(path), schema) == []


def test_a_csv_text_column_that_looks_numeric_for_many_rows_is_still_text(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("code\n" + "1\n" * 9_000_000 + "X1\n")  # past any first block a reader guesses from
    assert contracts.check(str(path), contracts.parse_schema({"code": "string"})) == []
    assert contracts.check(str(path), contracts.parse_schema({"code": "int64"})) == [
        "column 'code' has values that are not int64, e.g. 'X1'"]


def test_a_duplicated_column_is_named_not_a_crash(tmp_path):
    (tmp_path / "t.csv").write_text("code,code\nN,M\n")
    pq.write_table(pa.Table.from_arrays([pa.array([1]), pa.array([2])], names=["n", "n"]), tmp_path / "t.parquet")
    assert contracts.check(str(tmp_path / "t.csv"), {"code": "string"}) == ["column 'code' appears 2 times"]
    assert contracts.check(str(tmp_path / "t.parquet"), {"n": "int64"}) == ["column 'n' appears 2 times"]


def test_json_arrays_and_ndjson_are_checked_by_their_json_values(tmp_path):
    (tmp_path / "a.json").write_text('[{"n": 1, "s": "x", "d": "2024-01-02", "ts": "2024-01-02T03:04:05Z", "l": [1]}]')
    (tmp_path / "b.ndjson").write_text('{"n": 1.5, "s": "x"}\n{"n": 2, "s": 3}\n')
    schema = contracts.parse_schema({"n": "int64", "s": "string"})
    assert contracts.check(str(tmp_path / "a.json"), {**schema, "d": "date", "ts": "timestamptz",
                                                      "l": "list<int32>"}) == []
    assert contracts.check(str(tmp_path / "b.ndjson"), schema) == [
        "column 'n' has values that are not int64, e.g. 1.5", "column 's' has values that are not string, e.g. 3"]


def test_an_empty_json_output_fits_any_schema(tmp_path):
    for name, text in (("a.json", "[]"), ("b.ndjson", ""), ("c.jsonl", "\n")):
        (tmp_path / name).write_text(text)
        assert contracts.check(str(tmp_path / name), {"id": "int64"}) == []


@pytest.mark.parametrize("spelling, canonical", [
    ("TIMESTAMPTZ", "timestamptz"), ("TIMESTAMP WITH TIME ZONE", "timestamptz"), ("TIMESTAMP_NS", "timestamp[ns]"),
    ("INT4", "int32"), ("FLOAT8", "double"), ("DOUBLE PRECISION", "double"), ("NUMERIC", "decimal"),
    ("UUID", "uuid"), ("INTERVAL", "interval"), ("INTEGER[]", "list<int32>"), ("list<item: int64>", "list<int64>"),
    ("string_view", "string_view"), ("fixed_size_binary[16]", "fixed_size_binary[16]"),
    ("timestamp[us, tz=Europe/Paris]", "timestamp[us,tz=Europe/Paris]"),
])
def test_common_spellings_of_types_are_understood(spelling, canonical):
    assert contracts.parse_schema({"c": spelling}) == {"c": canonical}


def test_every_unknown_type_name_is_reported_at_once():
    with pytest.raises(contracts.SchemaError) as e:
        contracts.parse_schema({"a": "number", "b": "int64", "c": "texte"})
    assert "'number' for column 'a', 'texte' for column 'c'" in str(e.value)
    assert "BIGINT" in str(e.value)


def test_types_duckdb_writes_match_their_duckdb_names(tmp_path):
    path = str(tmp_path / "t.parquet")
    duckdb.sql("SELECT now()::TIMESTAMPTZ AS a, uuid() AS b, [1, 2] AS c, INTERVAL 1 DAY AS d, 1::HUGEINT AS e") \
        .write_parquet(path)
    schema = contracts.parse_schema({"a": "TIMESTAMPTZ", "b": "UUID", "c": "INTEGER[]", "d": "INTERVAL"})
    assert contracts.check(path, schema) == []


# the contract in a run ----------------------------------------------------------------------


def test_one_schema_fits_the_same_table_written_as_parquet_csv_and_json(project):
    project.flowfile('''
        rule table:
            output: "out/t.{ext}"
            schema: {"zip": "VARCHAR", "n": "INTEGER", "x": "REAL", "amount": "decimal(10, 2)",
                     "d": "date", "ts": "timestamp", "tags": "INTEGER[]"}
            duckdb: """
                SELECT '01234' AS zip, 42::INTEGER AS n, 1.5::REAL AS x, 12.34::DECIMAL(10, 2) AS amount,
                       DATE '2024-01-02' AS d, TIMESTAMP '2024-01-02 03:04:05.123456' AS ts, [1, 2] AS tags
            """
    ''')
    project.run("out/t.parquet", "out/t.csv", "out/t.tsv", "out/t.json", "out/t.ndjson")


def test_changing_the_schema_checks_the_output_again(project):
    _consolidate(project, '{"value": "double"}')
    project.run()
    _consolidate(project, '{"value": "double", "price": "double"}')
    r = project.flow("run")
    assert r.returncode == 1
    assert "its schema: changed" in r.stderr and "missing column 'price'" in r.stderr


def test_a_broken_contract_is_not_retried(project):
    project.write("parts/a.csv", "n\n1\n")
    project.flowfile('''
        rule consolidate:
            input: "parts/a.csv"
            output: "all.parquet"
            retries: 2
            schema: {"m": "int64"}
            duckdb: "SELECT * FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "retry" not in r.stderr
    assert r.stderr.count("missing column 'm'") == 1
