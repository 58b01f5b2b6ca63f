"""schema: contracts: after any job, its tabular outputs are checked against
the rule's declared columns and Arrow types (FLOWFILE.md, "Data contracts")."""

from __future__ import annotations

import decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flow.engine import contracts


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
    project.flowfile('''
        rule make:
            output: directory("parts"), "index.csv"
            schema: {"part": "string"}
            shell: "mkdir -p {output[0]} && printf 'part\\\\na\\\\n' > {output[1]}"
    ''')
    project.run()


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
    assert problems == ["column 'price' is string, expected double"]


def test_a_csv_whose_values_change_type_late_cannot_be_read_as_declared(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("n\n" + "1\n" * 9_000_000 + "x\n")  # past Arrow's first block of inference
    with pytest.raises(ValueError, match="int64"):
        contracts.check(str(path), contracts.parse_schema({"n": "int64"}))


def test_json_arrays_and_ndjson_are_checked(tmp_path):
    (tmp_path / "a.json").write_text('[{"n": 1, "s": "x"}]')
    (tmp_path / "b.ndjson").write_text('{"n": 1.5, "s": "x"}\n')
    schema = contracts.parse_schema({"n": "int64", "s": "string"})
    assert contracts.check(str(tmp_path / "a.json"), schema) == []
    assert contracts.check(str(tmp_path / "b.ndjson"), schema) == ["column 'n' is double, expected int64"]
