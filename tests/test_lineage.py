"""``flow lineage FILE``: what a file derives from (and, --downstream, what
derives from it), drawn from flow's records. First the real command on small
Flowfiles, then the walk (``decide/lineage.py``) on stores written by hand."""

from __future__ import annotations

import json
import sqlite3

import pytest
from flow.engine.commands.lineage import MAX_INDENT, text_lines
from flow.engine.decide.hashing import file_digest
from flow.engine.decide.lineage import CHANGED, MISSING, OK, JobRecords, NotRecorded, wildcards_of
from flow.engine.decide.state import State
from flow.engine.load.model import job_id

# count reads a sample and the shared notes; merge reads both counts.
PIPELINE = """\
rule all:
    input: "out/final.txt"

rule count:
    input: "data/{s}.csv", "data/notes.txt"
    output: "out/{s}.txt"
    shell: "cat {input} | wc -l > {output}"

rule merge:
    input: "out/a.txt", "out/b.txt"
    output: "out/final.txt"
    shell: "cat {input} > {output}"
"""

# prep is the ancestor both branches share.
DIAMOND = """\
rule all:
    input: "top.txt"

rule prep:
    input: "raw.txt"
    output: "prep.txt"
    shell: "cp {input} {output}"

rule left:
    input: "prep.txt"
    output: "left.txt"
    shell: "cp {input} {output}"

rule right:
    input: "prep.txt"
    output: "right.txt"
    shell: "cp {input} {output}"

rule top:
    input: "left.txt", "right.txt"
    output: "top.txt"
    shell: "cat {input} > {output}"
"""


def _built(project, flowfile=PIPELINE, sources=("data/a.csv", "data/b.csv", "data/notes.txt")):
    for name in sources:
        project.write(name, f"{name}\n1\n2\n")
    project.flowfile(flowfile)
    project.run()


def _lineage_json(project, *args):
    r = project.flow("lineage", "--json", *args)
    assert r.returncode == 0, r.output
    return json.loads(r.stdout)


def _recorded_output_hashes(project):
    db = sqlite3.connect(project.root / ".flow/state.db")
    try:
        return dict(db.execute("SELECT path, hash FROM outputs"))
    finally:
        db.close()


# the command -------------------------------------------------------------------------


def test_upstream_lists_every_job_that_made_the_file_with_the_recorded_output_hashes(project):
    _built(project)
    lineage = _lineage_json(project, "out/final.txt")
    assert {j["id"] for j in lineage["jobs"]} == {"merge", "count[s=a]", "count[s=b]"}
    recorded = _recorded_output_hashes(project)
    outputs = {o["path"]: o["hash"] for j in lineage["jobs"] for o in j["outputs"]}
    assert outputs == {p: recorded[p] for p in ("out/final.txt", "out/a.txt", "out/b.txt")}


def test_upstream_lists_each_source_once_with_the_hash_of_its_content(project):
    _built(project)
    lineage = _lineage_json(project, "out/final.txt")
    sources = {s["path"]: s["hash"] for s in lineage["sources"]}
    assert sources == {p: file_digest(str(project.root / p)) for p in ("data/a.csv", "data/b.csv", "data/notes.txt")}
    assert len(lineage["sources"]) == 3  # data/notes.txt, read by both counts, is one source


def test_upstream_text_shows_each_job_with_its_command_and_sources_with_short_hashes(project):
    _built(project)
    r = project.flow("lineage", "out/final.txt")
    assert r.returncode == 0, r.output
    first, *rest = r.stdout.splitlines()
    final = file_digest(str(project.root / "out/final.txt"))
    assert first.startswith(f"out/final.txt  {final[:12]}  ← merge, made ")
    assert first.endswith(" · cat out/a.txt out/b.txt > out/final.txt")
    assert any(ln.startswith("  out/a.txt  ") and "← count (s=a), made " in ln for ln in rest)
    notes = file_digest(str(project.root / "data/notes.txt"))
    assert f"    data/notes.txt  {notes[:12]}  source" in rest
    assert notes not in r.stdout  # (the full hash is JSON's)
    assert "derives from 3 jobs and 3 source files" in r.stderr


def test_downstream_from_a_source_lists_what_derives_from_it(project):
    _built(project)
    lineage = _lineage_json(project, "--downstream", "data/a.csv")
    assert lineage["direction"] == "downstream"
    assert [j["id"] for j in lineage["jobs"]] == ["count[s=a]", "merge"]  # not count[s=b]
    assert lineage["file"]["made_by"] is None
    lines = project.flow("lineage", "--downstream", "data/a.csv").stdout.splitlines()
    assert lines[0] == f"data/a.csv  {file_digest(str(project.root / 'data/a.csv'))[:12]}  source"
    below = ["  → count (s=a), made ", "    out/a.txt  ", "      → merge, made ", "        out/final.txt  "]
    assert len(lines) == 1 + len(below)
    assert all(line.startswith(start) for line, start in zip(lines[1:], below, strict=True)), lines


def test_downstream_from_an_output_says_which_job_made_it(project):
    _built(project)
    r = project.flow("lineage", "--downstream", "out/a.txt")
    assert r.returncode == 0, r.output
    lines = r.stdout.splitlines()
    assert "← count (s=a), made " in lines[0]
    assert lines[1].startswith("  → merge, made ")
    assert lines[2].startswith("    out/final.txt  ")


def test_json_gives_each_job_its_rule_wildcards_command_key_time_outputs_and_inputs(project):
    _built(project)
    lineage = _lineage_json(project, "out/a.txt")
    assert set(lineage) == {"file", "direction", "jobs", "sources"}
    assert lineage["file"] == {"path": "out/a.txt", "hash": file_digest(str(project.root / "out/a.txt")),
                               "status": "ok", "temp": False, "made_by": "count[s=a]"}
    (job,) = lineage["jobs"]
    assert job["rule"] == "count" and job["wildcards"] == {"s": "a"}
    assert job["command"] == "cat data/a.csv data/notes.txt | wc -l > out/a.txt"
    assert len(job["key"]) == 32 and isinstance(job["finished"], float) and job["finished_at"]
    assert job["inputs"] == [
        {"path": "data/a.csv", "hash": file_digest(str(project.root / "data/a.csv")), "made_by": None, "status": "ok"},
        {"path": "data/notes.txt", "hash": file_digest(str(project.root / "data/notes.txt")), "made_by": None,
         "status": "ok"},
    ]


def test_an_output_modified_since_it_was_made_is_reported_changed(project):
    _built(project)
    project.write("out/a.txt", "edited by hand\n")
    lineage = _lineage_json(project, "out/final.txt")
    status = {o["path"]: o["status"] for j in lineage["jobs"] for o in j["outputs"]}
    assert status == {"out/final.txt": "ok", "out/a.txt": "changed", "out/b.txt": "ok"}
    text = project.flow("lineage", "out/final.txt").stdout
    assert "(changed since flow made it)  ← count (s=a)" in text


def test_a_source_changed_since_it_was_read_is_reported_changed(project):
    _built(project)
    project.write("data/notes.txt", "new notes\n")
    lineage = _lineage_json(project, "out/final.txt")
    assert {s["path"]: s["status"] for s in lineage["sources"]}["data/notes.txt"] == "changed"


def test_an_unknown_file_exits_2_naming_it_and_saying_to_run_it_first(project):
    _built(project)
    r = project.flow("lineage", "no/such.txt")
    assert r.returncode == 2
    assert "flow has no record of no/such.txt" in r.stderr
    assert "flow run no/such.txt" in r.stderr
    assert r.stdout == ""


def test_without_a_store_it_exits_2_saying_nothing_is_recorded(project):
    project.flowfile(PIPELINE)
    r = project.flow("lineage", "out/final.txt")
    assert r.returncode == 2
    assert "flow has no record of out/final.txt: nothing is recorded here" in r.stderr
    assert not (project.root / ".flow").exists()  # (reading made nothing)


def test_a_shared_ancestor_is_listed_once(project):
    _built(project, DIAMOND, sources=("raw.txt",))
    lineage = _lineage_json(project, "top.txt")
    assert sorted(j["id"] for j in lineage["jobs"]) == ["left", "prep", "right", "top"]
    text = project.flow("lineage", "top.txt").stdout
    assert text.count("← prep, made ") == 1
    assert text.count("← prep (shown above)") == 1
    assert text.count("raw.txt  ") == 1  # (its source line, under prep only)


def test_a_path_written_with_dot_slash_is_normalized(project):
    _built(project)
    assert _lineage_json(project, "./out//a.txt")["file"]["path"] == "out/a.txt"


def test_a_source_upstream_is_just_itself(project):
    _built(project)
    lineage = _lineage_json(project, "data/notes.txt")
    assert lineage["jobs"] == []
    assert lineage["sources"] == [{"path": "data/notes.txt", "hash": file_digest(str(project.root / "data/notes.txt")),
                                   "status": "ok"}]


def test_directory_option_reads_the_records_of_that_directory(project, tmp_path):
    _built(project)
    r = project.flow("lineage", "-C", str(project.root), "out/a.txt")
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("out/a.txt  ")


def test_a_run_block_is_named_with_where_it_is_written(project):
    project.write("in.txt", "x\n")
    project.flowfile("""\
        rule copy:
            input: "in.txt"
            output: "out.txt"
            run:
                open(output[0], "w").write(open(input[0]).read())
        """)
    project.run()
    (job,) = _lineage_json(project, "out.txt")["jobs"]
    assert job["command"] is not None and "run" in job["command"]


def _forget_commands(project):
    """The store as an older flow left it: no job's command recorded."""
    db = sqlite3.connect(project.root / ".flow/state.db")
    try:
        if any(column[1] == "command" for column in db.execute("PRAGMA table_info(jobs)")):
            db.execute("UPDATE jobs SET command = NULL")
            db.commit()
    finally:
        db.close()


def test_a_command_not_recorded_is_worked_out_from_the_flowfile(project):
    _built(project)
    _forget_commands(project)
    commands = {j["id"]: j["command"] for j in _lineage_json(project, "out/final.txt")["jobs"]}
    assert commands["count[s=b]"] == "cat data/b.csv data/notes.txt | wc -l > out/b.txt"


def test_a_job_no_longer_in_the_flowfile_shows_no_command(project):
    _built(project)
    _forget_commands(project)
    project.flowfile(PIPELINE.replace('output: "out/{s}.txt"', 'output: "counts/{s}.txt"'))
    commands = {j["id"]: j["command"] for j in _lineage_json(project, "out/final.txt")["jobs"]}
    assert commands["count[s=a]"] is None  # (no rule makes out/a.txt now)
    assert commands["merge"] == "cat out/a.txt out/b.txt > out/final.txt"  # (still in the graph)


def test_a_name_with_a_control_character_is_escaped_in_text(project):
    project.write("in\x1b[2J.txt", "x\n")
    project.flowfile("""\
        rule copy:
            input: "in\\x1b[2J.txt"
            output: "out.txt"
            shell: "cp {input:q} {output}"
        """)
    r = project.run()
    text = project.flow("lineage", "out.txt").stdout
    assert "\x1b" not in text and "in\\x1b[2J.txt" in text, r.output


# the walk, on stores written by hand --------------------------------------------------

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, inode INTEGER, hash TEXT, ctime_ns INTEGER);
CREATE TABLE outputs (path TEXT PRIMARY KEY, job TEXT NOT NULL, key TEXT NOT NULL, hash TEXT,
                      temp INTEGER NOT NULL DEFAULT 0);
CREATE TABLE jobs (id TEXT PRIMARY KEY, rule TEXT NOT NULL, key TEXT NOT NULL, parts TEXT NOT NULL, finished REAL);
CREATE TABLE attempts (id INTEGER PRIMARY KEY, job TEXT NOT NULL, rule TEXT NOT NULL, wildcards TEXT NOT NULL,
                       started REAL NOT NULL, ended REAL NOT NULL, status INTEGER NOT NULL);
"""


class Store:
    """A ``.flow/state.db`` written row by row, in a temporary directory
    that is the working directory (the records name files relative to it)."""

    def __init__(self, root, command_column=True):
        (root / ".flow").mkdir()
        self.root = root
        self.db = sqlite3.connect(root / ".flow/state.db")
        self.db.executescript(_SCHEMA)
        self.command_column = command_column
        if command_column:
            self.db.execute("ALTER TABLE jobs ADD COLUMN command TEXT")

    def file(self, path, text):
        """A file on disk; its hash."""
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_text(text)
        return file_digest(str(self.root / path))

    def job(self, jid, inputs, outputs, command=None, finished=1_700_000_000.0, row=True, temp=()):
        """A job that read ``inputs`` {path: recorded hash} and made ``outputs``
        {path: recorded hash}; ``row=False``: its outputs recorded, not the job."""
        rule = jid.partition("[")[0]
        for path, h in outputs.items():
            self.db.execute("INSERT OR REPLACE INTO outputs VALUES (?,?,?,?,?)", (path, jid, "k-" + jid, h,
                                                                                   int(path in temp)))
        if row:
            parts = json.dumps({"action": "a", "params": "p", "inputs": [[p, h] for p, h in inputs.items()],
                                "outputs": list(outputs)})
            values = (jid, rule, "k-" + jid, parts, finished) + ((command,) if self.command_column else ())
            self.db.execute(f"INSERT OR REPLACE INTO jobs VALUES ({','.join('?' * len(values))})", values)

    def records(self):
        self.db.commit()
        self.db.close()
        return JobRecords(State(str(self.root / ".flow"), readonly=True))


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return Store(tmp_path)


def test_walk_upstream_follows_recorded_outputs_down_to_the_sources(store):
    src = store.file("src.txt", "s")
    mid = store.file("mid.txt", "m")
    end = store.file("end.txt", "e")
    store.job("make_mid", {"src.txt": src}, {"mid.txt": mid}, command="cp src.txt mid.txt")
    store.job("make_end", {"mid.txt": mid}, {"end.txt": end})
    lineage = store.records().upstream("end.txt")
    assert list(lineage.jobs) == ["make_end", "make_mid"]
    assert lineage.made_by == "make_end" and lineage.maker is lineage.jobs["make_end"]
    assert [(i.path, i.made_by) for i in lineage.jobs["make_end"].inputs] == [("mid.txt", "make_mid")]
    assert lineage.jobs["make_mid"].command == "cp src.txt mid.txt"
    assert lineage.jobs["make_end"].command is None
    assert {p: (s.hash, s.status) for p, s in lineage.sources.items()} == {"src.txt": (src, OK)}


def test_walk_downstream_follows_the_jobs_that_read_the_file(store):
    src = store.file("src.txt", "s")
    mid = store.file("mid.txt", "m")
    store.job("make_mid", {"src.txt": src}, {"mid.txt": mid})
    store.job("make_end", {"mid.txt": mid, "other.txt": "h"}, {"end.txt": "e"})
    store.job("unrelated", {"other.txt": "h"}, {"u.txt": "u"})
    lineage = store.records().downstream("src.txt")
    assert list(lineage.jobs) == ["make_mid", "make_end"]
    assert lineage.made_by is None and list(lineage.sources) == ["src.txt"]


def test_walk_survives_a_cycle_in_the_records(store):
    store.job("a", {"b.txt": "hb"}, {"a.txt": "ha"})
    store.job("b", {"a.txt": "ha"}, {"b.txt": "hb"})
    records = store.records()
    assert list(records.upstream("a.txt").jobs) == ["a", "b"]
    assert list(records.downstream("a.txt").jobs) == ["b", "a"]


def test_walk_lists_a_shared_ancestor_once(store):
    store.job("prep", {"raw.txt": "r"}, {"prep.txt": "p"})
    store.job("left", {"prep.txt": "p"}, {"left.txt": "l"})
    store.job("right", {"prep.txt": "p"}, {"right.txt": "r2"})
    store.job("top", {"left.txt": "l", "right.txt": "r2"}, {"top.txt": "t"})
    lineage = store.records().upstream("top.txt")
    assert list(lineage.jobs) == ["top", "left", "right", "prep"]  # nearest first, each once
    lines = list(text_lines(lineage))
    assert sum("← prep, made" in ln for ln in lines) == 1
    assert sum("← prep (shown above)" in ln for ln in lines) == 1


def test_walk_says_whether_each_output_is_what_was_recorded(store):
    ok = store.file("ok.txt", "same")
    store.file("changed.txt", "now")
    store.job("j", {}, {"ok.txt": ok, "changed.txt": "recorded-before", "gone.txt": "g"})
    (job,) = store.records().upstream("ok.txt").jobs.values()
    assert {o.path: o.status for o in job.outputs} == {"ok.txt": OK, "changed.txt": CHANGED, "gone.txt": MISSING}


def test_walk_marks_a_temp_output_removed_after_use(store):
    store.job("j", {}, {"scratch.txt": "s"}, temp=("scratch.txt",))
    store.job("k", {"scratch.txt": "s"}, {"k.txt": "k"})
    lineage = store.records().upstream("k.txt")
    (scratch,) = lineage.jobs["j"].outputs
    assert scratch.temp and scratch.status == MISSING
    assert any("scratch.txt  s (temp(), removed after use)" in ln for ln in text_lines(lineage))


def test_walk_leaves_out_a_job_whose_outputs_another_job_now_makes(store):
    store.job("old", {"src.txt": "s"}, {"out.txt": "o1"})
    store.job("new", {"src.txt": "s"}, {"out.txt": "o2"})  # the record of out.txt now names new
    assert list(store.records().downstream("src.txt").jobs) == ["new"]


def test_walk_reads_a_store_of_an_older_flow_without_commands(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = Store(tmp_path, command_column=False)
    old.job("j", {"src.txt": "s"}, {"out.txt": "o"})
    (job,) = old.records().upstream("out.txt").jobs.values()
    assert job.command is None and job.key == "k-j"


def test_walk_shows_a_job_whose_row_is_lost_without_inputs(store):
    store.job("gone[n=1]", {}, {"out.txt": "o"}, row=False)  # (a store salvaged from damage)
    lineage = store.records().upstream("out.txt")
    (job,) = lineage.jobs.values()
    assert (job.rule, job.wildcards, job.key, job.inputs) == ("gone", {"n": "1"}, "k-gone[n=1]", None)
    assert "  (the inputs it read are not recorded)" in list(text_lines(lineage))


def test_walk_of_a_file_no_record_names_raises_not_recorded(store):
    store.job("j", {"src.txt": "s"}, {"out.txt": "o"})
    with pytest.raises(NotRecorded):
        store.records().upstream("elsewhere.txt")


def test_walk_of_a_long_chain_needs_no_recursion(store):
    n = 5_000
    for i in range(n):
        store.job(f"step[i={i}]", {f"f{i - 1}" if i else "src": "h"}, {f"f{i}": "h"})
    records = store.records()
    assert len(records.upstream(f"f{n - 1}").jobs) == n
    lineage = records.downstream("src")
    assert len(lineage.jobs) == n
    lines = list(text_lines(lineage))
    assert len(lines) == 2 * n + 1
    assert lines[-1].startswith("  " * MAX_INDENT + f"[depth {2 * n}] f{n - 1}")  # indented no deeper


@pytest.mark.parametrize("wildcards", [{}, {"s": "a"}, {"a": "x,y", "b": "p=q]", "c": "back\\slash"}, {"e": ""}])
def test_wildcards_are_read_back_from_a_job_id(wildcards):
    assert wildcards_of(job_id("rule", wildcards), "rule") == wildcards


def test_a_command_over_several_lines_is_one_line_of_the_tree_and_whole_in_json(project):
    project.write("in.txt", "1")
    project.flowfile("""
        rule two_lines:
            input: "in.txt"
            output: "out.txt"
            shell:
                \"\"\"
                cat {input} \\
                    > {output}
                \"\"\"
    """)
    project.run()
    text = project.flow("lineage", "out.txt").stdout
    assert "· cat in.txt > out.txt" in text.splitlines()[0]
    (job,) = json.loads(project.flow("lineage", "out.txt", "--json").stdout)["jobs"]
    assert "\n" in job["command"]
