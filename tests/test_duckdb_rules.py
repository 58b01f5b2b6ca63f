"""duckdb: rules run real SQL over the job's input files (FLOWFILE.md)."""

from __future__ import annotations

import duckdb


def _rows(path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM '{path}' ORDER BY ALL").fetchall()


def test_duckdb_rule_unites_csv_inputs_by_column_name(project):
    project.write("parts/a.csv", "id,v\n1,10\n2,20\n")
    project.write("parts/b.csv", "id,v,extra\n3,30,x\n")
    project.flowfile('''
        rule consolidate:
            input: expand("parts/{p}.csv", p=["a", "b"])
            output: "all.parquet"
            duckdb: "SELECT id, v, extra FROM input"
    ''')
    project.run()
    assert _rows(project.root / "all.parquet") == [(1, 10, None), (2, 20, None), (3, 30, "x")]


def test_wildcards_and_params_are_duckdb_variables(project):
    project.write("in.csv", "id\n1\n")
    project.flowfile('''
        rule tag:
            input: "in.csv"
            output: "out_{year}.csv"
            params: factor=3
            duckdb: "SELECT id * getvariable('factor') AS x, getvariable('year') AS year FROM input"
    ''')
    project.run("out_2024.csv")
    assert project.read("out_2024.csv").splitlines() == ["x,year", "3,2024"]


def test_named_inputs_are_views_of_their_own_name(project):
    project.write("facts.csv", "k,v\n1,a\n2,b\n")
    project.write("keep.csv", "k\n2\n")
    project.flowfile('''
        rule join:
            input: facts="facts.csv", keep="keep.csv"
            output: "joined.json"
            duckdb: "SELECT facts.v FROM facts JOIN keep USING (k)"
    ''')
    project.run()
    assert '"v":"b"' in project.read("joined.json").replace(" ", "")


def test_a_sql_error_fails_the_job_with_duckdbs_message_and_no_output(project):
    project.write("in.csv", "id\n1\n")
    project.flowfile('''
        rule bad:
            input: "in.csv"
            output: "out.parquet"
            duckdb: "SELECT no_such_column FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "no_such_column" in r.stderr and "bad" in r.stderr
    assert "Traceback" not in r.stderr
    assert not project.exists("out.parquet")
