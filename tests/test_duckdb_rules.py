"""duckdb: rules run real SQL over the job's input files (FLOWFILE.md)."""

from __future__ import annotations

import gzip
import json
import os
import signal

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from conftest import kill_9_everything, processes_in, wait_for


def _rows(path) -> list[tuple]:
    return duckdb.sql(f"SELECT * FROM '{path}' ORDER BY ALL").fetchall()


def _parquet(project, name: str, columns: dict) -> None:
    path = project.root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)


# reading ---------------------------------------------------------------------------


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


def test_input_reads_every_supported_format_together(project):
    _parquet(project, "in/a.parquet", {"id": [1], "v": [1.5]})
    project.write("in/b.csv", "id,v\n2,2.5\n")
    project.write("in/c.tsv", "id\tv\n3\t3.5\n")
    project.write("in/d.json", json.dumps([{"id": 4, "v": 4.5}]))
    project.write("in/e.ndjson", '{"id": 5, "v": 5.5}\n')
    project.write("in/f.jsonl", '{"id": 6, "v": 6.5}\n')
    (project.root / "in/g.csv.gz").write_bytes(gzip.compress(b"id,v\n7,7.5\n"))
    project.flowfile('''
        rule all_formats:
            input: "in/a.parquet", "in/b.csv", "in/c.tsv", "in/d.json", "in/e.ndjson", "in/f.jsonl", "in/g.csv.gz"
            output: "all.parquet"
            duckdb: "SELECT id, v FROM input"
    ''')
    project.run()
    assert _rows(project.root / "all.parquet") == [(i, i + 0.5) for i in range(1, 8)]


def test_parts_whose_columns_drift_are_united_by_name(project):
    _parquet(project, "parts/1.parquet", {"day": ["d1"], "load": pa.array([10], pa.int64())})
    _parquet(project, "parts/2.parquet", {"load": pa.array([2.5], pa.float64()), "day": ["d2"], "note": ["late"]})
    project.flowfile('''
        rule consolidate:
            input: "parts/1.parquet", "parts/2.parquet"
            output: "all.parquet"
            duckdb: "SELECT day, load, note FROM input"
    ''')
    project.run()
    assert _rows(project.root / "all.parquet") == [("d1", 10.0, None), ("d2", 2.5, "late")]
    assert pq.read_schema(project.root / "all.parquet").field("load").type == pa.float64()


def test_a_directory_input_means_the_data_files_in_it(project):
    project.flowfile('''
        rule parts:
            output: directory("parts")
            run:
                import os
                os.makedirs(output[0] + "/sub")
                open(output[0] + "/a.csv", "w").write("n\\n1\\n")
                open(output[0] + "/sub/b.csv", "w").write("n\\n2\\n")
                open(output[0] + "/_SUCCESS", "w").write("")
                open(output[0] + "/.a.csv.crc", "w").write("junk")
                open(output[0] + "/README.txt", "w").write("not data")

        rule total:
            input: "parts"
            output: "total.csv"
            duckdb: "SELECT sum(n) AS total, count(*) AS rows FROM input"
    ''')
    project.run("total.csv")
    assert project.read("total.csv").splitlines() == ["total,rows", "3,2"]


def test_a_directory_input_without_data_files_fails_naming_it(project):
    (project.root / "empty").mkdir()
    (project.root / "empty/notes.txt").write_text("no data here")
    project.flowfile('''
        rule total:
            input: "empty"
            output: "total.csv"
            duckdb: "SELECT count(*) AS n FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "input directory empty holds no data files" in r.stderr
    assert not project.exists("total.csv")


def test_inputs_in_other_formats_are_dependencies_only(project):
    project.write("in.csv", "n\n1\n2\n")
    project.write("notes.md", "v1")
    project.flowfile('''
        rule total:
            input: "in.csv", "notes.md"
            output: "total.csv"
            duckdb: "SELECT sum(n) AS total FROM input"
    ''')
    project.run()
    assert project.read("total.csv").splitlines() == ["total", "3"]
    project.write("notes.md", "v2")
    assert project.ran() == ["total"]


def test_named_inputs_are_views_of_their_own_name(project):
    project.write("facts.csv", "k,v\n1,a\n2,b\n")
    project.write("keep.csv", "k\n2\n")
    project.flowfile('''
        rule join:
            input: facts="facts.csv", keep="keep.csv"
            output: "joined.ndjson"
            duckdb: "SELECT facts.v FROM facts JOIN keep USING (k)"
    ''')
    project.run()
    assert [json.loads(ln) for ln in project.read("joined.ndjson").splitlines()] == [{"v": "b"}]


def test_an_input_named_input_is_refused(project):
    project.write("a.csv", "k\n1\n")
    project.flowfile('''
        rule join:
            input: input="a.csv"
            output: "out.csv"
            duckdb: "SELECT * FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 2
    assert "cannot be named `input`" in r.stderr


# variables and settings ----------------------------------------------------------------


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


def test_a_value_with_quotes_stays_a_value_and_is_never_sql(project):
    project.write("in.csv", "id\n1\n")
    project.flowfile('''
        rule tag:
            input: "in.csv"
            output: "out.csv"
            params: who="O'Brien'); DROP TABLE x; --"
            duckdb: "SELECT getvariable('who') AS who FROM input"
    ''')
    project.run()
    assert project.read("out.csv").splitlines() == ["who", "O'Brien'); DROP TABLE x; --"]


def test_threads_and_mem_mb_set_duckdbs_threads_memory_limit_and_spill_directory(project):
    project.flowfile('''
        rule settings:
            output: "settings.csv"
            threads: 3
            resources: mem_mb=512
            duckdb: """
                SELECT current_setting('threads') AS threads,
                       current_setting('memory_limit') AS mem,
                       current_setting('temp_directory') AS spill
            """
    ''')
    project.run("-j", "4")
    header, row = project.read("settings.csv").splitlines()
    threads, mem, spill = row.split(",")
    assert threads == "3"
    assert mem.startswith("488") or mem.startswith("512")  # 512 MB, shown in MiB
    assert os.path.normpath(spill).startswith(os.path.join(".flow", "tmp", "duckdb-"))
    assert not os.path.exists(project.root / spill)  # removed after the job
    assert not project.exists(".tmp")  # DuckDB's own default spill place


def test_a_rule_without_threads_runs_duckdb_on_one_thread(project):
    project.flowfile('''
        rule settings:
            output: "settings.csv"
            duckdb: "SELECT current_setting('threads') AS threads"
    ''')
    project.run("-j", "4")
    assert project.read("settings.csv").splitlines() == ["threads", "1"]


# writing ---------------------------------------------------------------------------


def test_parquet_output_is_zstd_compressed(project):
    project.flowfile('''
        rule make:
            output: "out.parquet"
            duckdb: "SELECT range AS n FROM range(1000)"
    ''')
    project.run()
    meta = pq.ParquetFile(project.root / "out.parquet").metadata
    assert meta.num_rows == 1000
    assert meta.row_group(0).column(0).compression == "ZSTD"


def test_the_output_format_follows_its_extension(project):
    project.flowfile('''
        rule make:
            output: "out/t.{ext}"
            duckdb: "SELECT 1 AS a, 'x' AS b"
    ''')
    project.run("out/t.csv", "out/t.tsv", "out/t.json", "out/t.ndjson", "out/t.csv.gz")
    assert project.read("out/t.csv") == "a,b\n1,x\n"
    assert project.read("out/t.tsv") == "a\tb\n1\tx\n"
    assert json.loads(project.read("out/t.json")) == [{"a": 1, "b": "x"}]
    assert json.loads(project.read("out/t.ndjson")) == {"a": 1, "b": "x"}
    assert gzip.decompress((project.root / "out/t.csv.gz").read_bytes()) == b"a,b\n1,x\n"


def test_a_rule_with_two_outputs_is_refused_when_loaded(project):
    project.flowfile('''
        rule make:
            output: "a.parquet", "b.parquet"
            duckdb: "SELECT 1 AS a"
    ''')
    r = project.flow("list")
    assert r.returncode == 2
    assert "Flowfile:4:" in r.stderr and "exactly one output" in r.stderr


def test_an_output_duckdb_cannot_write_is_refused_when_loaded(project):
    project.flowfile('''
        rule make:
            output: "report.xlsx"
            duckdb: "SELECT 1 AS a"
    ''')
    r = project.flow("run", "-n")
    assert r.returncode == 2
    assert "Flowfile:4:" in r.stderr and "report.xlsx" in r.stderr and ".parquet" in r.stderr


# errors ----------------------------------------------------------------------------


def test_a_sql_error_fails_the_job_with_duckdbs_message_the_rule_and_wildcards(project):
    project.write("in.csv", "id\n1\n")
    project.flowfile('''
        rule bad:
            input: "in.csv"
            output: "out/{year}.parquet"
            duckdb: "SELECT no_such_column FROM input"
    ''')
    r = project.flow("run", "out/2024.parquet")
    assert r.returncode == 1
    assert "error bad (year=2024)" in r.stderr
    assert "DuckDB could not run the SQL" in r.stderr and "no_such_column" in r.stderr
    assert "Traceback" not in r.stderr
    assert os.listdir(project.root / "out") == []  # neither the output nor a temporary file


def test_a_syntax_error_in_the_sql_is_shown_with_duckdbs_pointer(project):
    project.flowfile('''
        rule bad:
            output: "out.csv"
            duckdb: "SELEC 1"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "syntax error at or near \"SELEC\"" in r.stderr
    assert "Traceback" not in r.stderr


def test_sql_on_input_without_data_inputs_says_why_there_is_no_view(project):
    project.write("notes.md", "x")
    project.flowfile('''
        rule bad:
            input: "notes.md"
            output: "out.csv"
            duckdb: "SELECT * FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "no input in a data format" in r.stderr


def test_an_input_that_cannot_be_read_is_named(project):
    _parquet(project, "parts/a.parquet", {"n": [1]})
    project.write("parts/b.parquet", "this is not parquet")
    _parquet(project, "parts/c.parquet", {"n": [3]})
    project.flowfile('''
        rule consolidate:
            input: expand("parts/{p}.parquet", p=["a", "b", "c"])
            output: "all.parquet"
            duckdb: "SELECT * FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "cannot read input parts/b.parquet" in r.stderr
    assert "Traceback" not in r.stderr
    assert not project.exists("all.parquet")


def test_a_malformed_json_input_is_named(project):
    project.write("a.ndjson", '{"n": 1}\n')
    project.write("b.ndjson", '{"n": 2\n{"n": \n')
    project.flowfile('''
        rule consolidate:
            input: "a.ndjson", "b.ndjson"
            output: "all.csv"
            duckdb: "SELECT * FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "cannot read input b.ndjson" in r.stderr
    assert not project.exists("all.csv")


# atomic output ---------------------------------------------------------------------------

_SLOW_COPY = '''
    rule big:
        output: "big.parquet"
        threads: 2
        duckdb: "SELECT range AS n, md5(range::VARCHAR) AS h FROM range(300000000)"
'''

# About a second of writing: long enough to be killed mid-write, short enough to run whole.
_ROWS = 2_000_000
_BIG = f'''
    rule big:
        output: "big.parquet"
        threads: 2
        duckdb: "SELECT range AS n, md5(range::VARCHAR) AS h FROM range({_ROWS})"
'''


def _files_made(project) -> dict[str, int]:
    """Every file in the project but the Flowfile, flow's stderr and ``.flow/``,
    with its size: what the job wrote, whatever it named it."""
    made = {}
    for directory, subdirs, files in os.walk(project.root):
        if directory == str(project.root):
            subdirs[:] = [d for d in subdirs if d != ".flow"]
        for name in files:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, project.root)
            if rel not in ("Flowfile", "flow.err"):
                try:
                    made[rel] = os.path.getsize(path)
                except OSError:  # (renamed or removed meanwhile)
                    pass
    return made


def _writing(project) -> bool:
    return any(size > 0 for size in _files_made(project).values())


def test_a_kill_9_mid_write_leaves_nothing_taken_as_done_and_the_next_run_makes_it_whole(project):
    project.flowfile(_BIG)
    proc = project.start("run", "-j", "2")
    wait_for(lambda: _writing(project), timeout=60, what="DuckDB to start writing")
    kill_9_everything(project.root, proc)
    assert not project.exists("big.parquet"), "a crash left a half-written output under its name"
    plan = project.run("-n").stdout.splitlines()
    assert plan == ["would run  big: output big.parquet is missing"], plan
    assert project.ran("-j", "2") == ["big"]
    # Every row, as an uninterrupted run writes it; and nothing else left beside it.
    n, total, right = duckdb.sql(f"SELECT count(*), sum(n), count(*) FILTER (h = md5(n::VARCHAR)) "
                                 f"FROM '{project.root / 'big.parquet'}'").fetchall()[0]
    assert (n, total, right) == (_ROWS, _ROWS * (_ROWS - 1) // 2, _ROWS)
    assert set(_files_made(project)) == {"big.parquet"}
    assert project.run("-n").stdout == ""


def test_ctrl_c_during_the_write_leaves_no_output(project):
    project.flowfile(_SLOW_COPY)
    proc = project.start("run", "-j", "2")
    wait_for(lambda: _writing(project), timeout=60, what="DuckDB to start writing")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    wait_for(lambda: not processes_in(project.root), what="the job's processes to end")
    assert not project.exists("big.parquet")
    assert "big.parquet" not in project.recorded_outputs()


# what a user coming from Snakemake or DuckDB writes -------------------------------------------


def test_file_names_with_glob_characters_are_read_as_named(project):
    project.write("x*.csv", "a\n1\n")
    project.write("xa.csv", "a\n2\n")
    project.write("y[1].csv", "a\n3\n")
    project.write("y1.csv", "a\n4\n")
    project.flowfile('''
        rule pick:
            input: "x*.csv", "y[1].csv"
            output: "out.csv"
            duckdb: "SELECT a FROM input ORDER BY a"
    ''')
    project.run()
    assert project.read("out.csv").splitlines() == ["a", "1", "3"]
    assert not project.exists(".flow/tmp")


def test_key_value_folders_of_listed_files_are_not_columns(project):
    project.write("runs/lr=0.01/metrics.csv", "step,loss,lr\n1,0.5,0.02\n")
    project.write("runs/lr=0.1/metrics.csv", "step,loss\n1,0.7\n")
    project.flowfile('''
        rule gather:
            input: "runs/lr=0.01/metrics.csv", "runs/lr=0.1/metrics.csv"
            output: "all.csv"
            duckdb: "SELECT * FROM input ORDER BY loss"
    ''')
    project.run()
    assert project.read("all.csv").splitlines() == ["step,loss,lr", "1,0.5,0.02", "1,0.7,"]


def test_key_value_folders_of_a_directory_input_are_columns_as_in_duckdb(project):
    project.flowfile('''
        rule parts:
            output: directory("sales")
            run:
                import os
                for year in (2023, 2024):
                    os.makedirs(f"{output[0]}/year={year}")
                    open(f"{output[0]}/year={year}/part.csv", "w").write(f"amount\\n{year - 2000}\\n")

        rule total:
            input: "sales"
            output: "total.csv"
            duckdb: "SELECT year, amount FROM input ORDER BY year"
    ''')
    project.run("total.csv")
    assert project.read("total.csv").splitlines() == ["year,amount", "2023,23", "2024,24"]


def test_several_statements_run_and_the_last_query_is_the_output(project):
    project.write("in.csv", "n\n1\n2\n3\n")
    project.flowfile('''
        rule two_steps:
            input: "in.csv"
            output: "out.csv"
            duckdb: """
                CREATE TABLE big AS SELECT n FROM input WHERE n > 1;
                SELECT sum(n) AS total FROM big;  -- the output
            """
    ''')
    project.run()
    assert project.read("out.csv").splitlines() == ["total", "5"]


def test_sql_ending_in_a_comment_works(project):
    project.flowfile('''
        rule comment:
            output: "out.csv"
            duckdb: "SELECT 1 AS one -- just one"
    ''')
    project.run()
    assert project.read("out.csv").splitlines() == ["one", "1"]


def test_a_last_statement_that_is_not_a_query_is_refused(project):
    project.flowfile('''
        rule no_query:
            output: "out.csv"
            duckdb: "CREATE TABLE t AS SELECT 1 AS one"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "the last statement of a duckdb: rule must be a query" in r.stderr
    assert not project.exists("out.csv")


def test_a_misspelt_variable_is_refused_before_anything_runs(project):
    project.flowfile('''
        rule tag:
            output: "out_{year}.csv"
            duckdb: "SELECT getvariable('yeer') AS year"
    ''')
    r = project.flow("run", "-n", "out_2024.csv")
    assert r.returncode == 2
    assert "getvariable('yeer')" in r.stderr and "there are: year" in r.stderr


def test_a_param_with_a_wildcards_name_is_refused(project):
    project.flowfile('''
        rule tag:
            output: "out_{year}.csv"
            params: Year=1999
            duckdb: "SELECT getvariable('year') AS year"
    ''')
    r = project.flow("run", "out_2024.csv")
    assert r.returncode == 2
    assert "params.Year has the name of the wildcard" in r.stderr


def test_snakemake_placeholders_in_sql_are_refused_when_loaded(project):
    project.flowfile('''
        rule tag:
            output: "out_{year}.csv"
            duckdb: "SELECT * FROM read_csv('{input[0]}') WHERE year = {wildcards.year}"
    ''')
    r = project.flow("list")
    assert r.returncode == 2
    assert "Flowfile:4:" in r.stderr and "{input[0]} would stay as it is" in r.stderr
    assert "getvariable('name')" in r.stderr


def test_a_named_input_that_is_not_data_says_why_it_is_no_view(project):
    project.write("codes.txt", "a b c")
    project.flowfile('''
        rule join:
            input: lookup="codes.txt"
            output: "out.csv"
            duckdb: "SELECT * FROM lookup"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "The input lookup (codes.txt) is not in a data format, so there is no view `lookup`" in r.stderr


def test_an_empty_input_file_adds_no_column(project):
    project.write("a.csv", "n\n1\n")
    project.write("b.csv", "")
    project.flowfile('''
        rule gather:
            input: "a.csv", "b.csv"
            output: "out.csv"
            duckdb: "SELECT * FROM input"
    ''')
    project.run()
    assert project.read("out.csv").splitlines() == ["n", "1"]


def test_a_csv_value_that_does_not_fit_its_column_names_the_file(project):
    project.write("a.csv", "n\n1\n")
    project.write("b.csv", "n\n" + "1\n" * 30000 + "x\n")
    project.flowfile('''
        rule total:
            input: "a.csv", "b.csv"
            output: "out.csv"
            duckdb: "SELECT sum(n) AS total FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "a value of input b.csv" in r.stderr and "Original Line: x" in r.stderr


def test_a_failing_cast_in_the_sql_blames_the_sql_not_an_input(project):
    project.write("a.csv", "s\nabc\n")
    project.flowfile('''
        rule cast:
            input: "a.csv"
            output: "out.csv"
            duckdb: "SELECT concat(s, '!')::INTEGER AS n FROM input"
    ''')
    r = project.flow("run")
    assert r.returncode == 1
    assert "input a.csv" not in r.stderr
    assert "Could not convert string 'abc!'" in r.stderr


def test_a_run_clears_scratch_space_a_killed_job_left(project):
    left = project.root / ".flow/tmp/duckdb-999999/duckdb_temp_storage-0.tmp"
    left.parent.mkdir(parents=True)
    left.write_bytes(b"x" * 1000)
    project.flowfile('''
        rule one:
            output: "out.csv"
            duckdb: "SELECT 1 AS one"
    ''')
    project.run()
    assert not project.exists(".flow/tmp")


def test_the_worker_warmed_up_for_duckdb_jobs_ends_with_the_run_even_when_nothing_ran(project):
    project.flowfile('''
        rule one:
            output: "out.csv"
            duckdb: "SELECT 1 AS one"
    ''')
    project.run()
    assert project.run().stderr.startswith("flow: nothing to do")
    assert processes_in(project.root) == []


def test_duckdb_jobs_running_side_by_side_keep_their_scratch_spaces_apart(project):
    project.flowfile('''
        rule all:
            input: expand("out/{i}.csv", i=range(12))

        rule one:
            output: "out/{i}.csv"
            duckdb: "SELECT getvariable('i') AS i"
    ''')
    project.run("-j", "4")
    assert sorted(p.name for p in (project.root / "out").iterdir()) == sorted(f"{i}.csv" for i in range(12))
    assert not project.exists(".flow/tmp")
