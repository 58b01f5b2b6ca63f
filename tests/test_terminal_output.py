"""Terminal-safe output: a file name or wildcard value holding control
characters (ESC, BEL, CR, DEL, C1 controls, bidi overrides) is printed
escaped in every line flow writes itself, so that a file cannot clear the
screen, ring the bell, forge a line or reverse text. A job's own stderr is
the job's, and passes through as it was written.

Each test runs the real ``flow`` command on real files with such names."""

from __future__ import annotations

import subprocess
import unicodedata

from conftest import FLOW, Result, on_a_terminal, wait_for

# ESC (a clear-screen sequence), BEL, CR, DEL, C1 CSI, RIGHT-TO-LEFT OVERRIDE
NASTY = "a\x1b[2J\x07\rb\x7f\x9b\u202ec"
SHOWN = r"a\x1b[2J\x07\rb\x7f\x9b\u202ec"

_BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")

COPY_EACH = '''
NAMES = glob_wildcards("raw/{name}.txt").name

rule all:
    input: expand("out/{name}.txt", name=NAMES)

rule copy:
    input: "raw/{name}.txt"
    output: "out/{name}.txt"
    shell: "cp {input:q} {output:q}"
'''


def raw_controls(text: str) -> list[str]:
    """The characters of ``text`` a terminal would act on rather than show
    (newline and tab are flow's own line breaks and indents)."""
    return [c for c in text if c in _BIDI or (unicodedata.category(c) in ("Cc", "Cs") and c not in "\n\t")]


def flow(project, *args: str) -> Result:
    """``flow ARGS`` in the project, its output decoded as written: a carriage
    return stays one (``Project.flow`` reads text, which makes it a newline)."""
    proc = subprocess.run([*FLOW, *args], cwd=project.root, capture_output=True, timeout=120)
    return Result(proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))


def _nasty_project(project, flowfile: str = COPY_EACH, name: str = NASTY):
    project.write(f"raw/{name}.txt", "x\n")
    project.flowfile(flowfile)
    return project


def test_dry_run_plan_lines_escape_control_characters(project):
    _nasty_project(project)
    r = flow(project, "run", "-n", "--explain")
    assert r.returncode == 0, r.output
    assert f"would run  copy (name={SHOWN}): output out/{SHOWN}.txt is missing" in r.stdout
    assert raw_controls(r.output) == []


def test_done_lines_escape_control_characters(project):
    _nasty_project(project)
    r = flow(project, "run")
    assert r.returncode == 0, r.output
    assert f"done  copy (name={SHOWN})" in r.stderr
    assert raw_controls(r.output) == []


def test_a_job_that_did_not_make_its_output_is_reported_escaped(project):
    _nasty_project(project, COPY_EACH.replace("cp {input:q} {output:q}", "true"))
    r = flow(project, "run")
    assert r.returncode == 1
    assert f"out/{SHOWN}.txt" in r.stderr and f"copy (name={SHOWN})" in r.stderr
    assert raw_controls(r.output) == []


def test_a_failure_escapes_flows_lines_but_leaves_the_jobs_stderr_tail_as_written(project):
    failing = COPY_EACH.replace('"cp {input:q} {output:q}"',
                                r'''"printf '\\033[31mjob says red\\033[0m\\n' >&2; echo {input:q}; exit 3"''')
    _nasty_project(project, failing)
    r = flow(project, "run")
    assert r.returncode == 1
    message = r.stderr.split("error copy", 1)[1]
    flows_lines, tail = message.split("its stderr ended with:\n", 1)
    assert f"raw/{SHOWN}.txt" in flows_lines and raw_controls(flows_lines) == []
    assert tail.startswith("        \x1b[31mjob says red\x1b[0m\n")


def test_a_missing_input_error_escapes_the_file_name(project):
    _nasty_project(project, COPY_EACH.replace('input: "raw/{name}.txt"', 'input: "src/{name}.dat"'))
    r = flow(project, "run")
    assert r.returncode == 2
    assert f"src/{SHOWN}.dat" in r.stderr
    assert raw_controls(r.output) == []


def test_status_text_escapes_control_characters(project):
    r = flow(_nasty_project(project), "status")
    assert r.returncode == 1  # (out of date)
    assert f"  copy (name={SHOWN}): output out/{SHOWN}.txt is missing" in r.stdout
    assert raw_controls(r.output) == []


def test_list_escapes_control_characters(project):
    r = flow(_nasty_project(project), "list")
    assert r.returncode == 0
    assert f"<- out/{SHOWN}.txt" in r.stdout
    assert raw_controls(r.output) == []


def test_clean_dry_run_escapes_control_characters(project):
    _nasty_project(project).run()
    r = flow(project, "clean", "-n")
    assert r.returncode == 0
    assert f"would remove out/{SHOWN}.txt" in r.stdout
    assert raw_controls(r.output) == []


def test_dag_text_escapes_control_characters(project):
    r = flow(_nasty_project(project), "dag")
    assert r.returncode == 0
    assert f"name: {SHOWN}" in r.stdout
    assert raw_controls(r.output) == []


def test_a_flowfile_error_excerpt_escapes_control_characters(project):
    project.flowfile('rule a:\n    output: "x\x07\ry.txt" + no_such_name\n    shell: "true"\n')
    r = flow(project, "run")
    assert r.returncode == 2
    assert '"x??y.txt" + no_such_name' in r.stderr  # the excerpt shows each control as ?
    assert raw_controls(r.output) == []


def test_a_newline_in_a_wildcard_value_is_shown_as_backslash_n_in_job_labels(project):
    _nasty_project(project, name="two\nlines")
    r = flow(project, "run")
    assert r.returncode == 0, r.output
    assert any(line.startswith(r"done  copy (name=two\nlines) (") for line in r.stderr.splitlines()), r.stderr


def _on_a_terminal(project, *args: str) -> str:
    """``flow ARGS`` on a pseudo-terminal (so that it draws its live progress
    line), the bytes as written."""
    return on_a_terminal(project.root, *args, env={"COLUMNS": "400"}, raw=True)


def test_the_live_progress_line_escapes_control_characters(project, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")  # (the bar's colours are escapes too: flow's, not the name's)
    _nasty_project(project)
    screen = _on_a_terminal(project, "run")
    live_lines = [seg for seg in screen.split("\r\x1b[2K") if seg.startswith("[")]
    assert any(f"running 1: copy (name={SHOWN})" in line for line in live_lines), repr(screen)
    assert [raw_controls(line) for line in live_lines] == [[] for _ in live_lines]


def test_watch_names_a_changed_file_escaped(project):
    _nasty_project(project)
    proc = project.start("watch", "--debounce", "0.1")
    try:
        waiting = "flow watch: waiting for changes"
        wait_for(lambda: waiting in project.read("flow.err"), timeout=30, what="the first build")
        project.write(f"raw/{NASTY}.txt", "changed\n")
        wait_for(lambda: project.read("flow.err").count(waiting) >= 2, timeout=30, what="the second build")
    finally:
        proc.kill()
        proc.wait()
    err = project.read("flow.err")
    assert f"flow watch: raw/{SHOWN}.txt changed, building" in err
    assert raw_controls(err) == []
