"""One error root: every error a user sees is a ``FlowError``, whose class
decides its exit code and whose ``render()`` is what is shown; the CLI shows
it once, with that exit code and no traceback; the line that ends a run is
composed in one place (``report.py``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from types import SimpleNamespace

import click
import pytest
from conftest import wait_for
from flow.engine import errors
from flow.engine.commands.report import describe_error, status_text, summary_text
from flow.engine.decide.hashing import SpecialFileError
from flow.engine.errors import (
    AmbiguousRuleError,
    CycleError,
    FileAccessError,
    InternalError,
    Interrupted,
    JobsFailed,
    LockHeld,
    MissingInputError,
    OutputClosed,
    Terminated,
    UsageError,
    UserError,
)
from flow.grammar import FlowfileError

from flow import FlowError


def _summary(**fields) -> SimpleNamespace:
    """What the scheduler's Summary holds at the end of a run."""
    base = dict(ran=0, cached=0, up_to_date=0, failed=[], blocked=0, user_errors=0, would_run=[], undetermined=[])
    return SimpleNamespace(**{**base, **fields})


# the tree ---------------------------------------------------------------------------------------

SHOWN = [FlowfileError, UserError, UsageError, LockHeld, MissingInputError, CycleError, AmbiguousRuleError,
         SpecialFileError, FileAccessError, JobsFailed, Interrupted, OutputClosed, InternalError]


@pytest.mark.parametrize("cls", SHOWN, ids=lambda c: c.__name__)
def test_every_error_a_user_sees_is_a_flow_error(cls):
    assert issubclass(cls, FlowError)


def test_flow_errors_of_the_engine_are_the_root_of_the_package():
    assert errors.FlowError is FlowError


def test_terminated_is_no_flow_error_and_no_exception():
    # (raised by the signal handler: no `except Exception` or `except FlowError` may swallow it)
    assert not issubclass(Terminated, Exception)


def _all_subclasses(cls) -> set[type]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub} | _all_subclasses(sub)
    return out


def test_the_tree_in_errors_docstring_names_every_flow_error():
    import flow.engine.commands.cli  # noqa: F401 - imports every module that defines an error
    import flow.engine.decide.hashing  # noqa: F401

    names = {c.__name__ for c in _all_subclasses(FlowError) if c.__module__.startswith("flow.")}
    missing = [n for n in sorted(names) if n not in errors.__doc__]
    assert not missing, missing


def test_flow_is_still_a_package_of_one_module_that_imports_nothing():
    code = "import sys; import flow; print(sorted(m for m in sys.modules if m.startswith('flow')))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "['flow']"


# exit codes, decided by the class ---------------------------------------------------------------


def test_a_flow_error_exits_2_unless_said():
    assert FlowError("x").exit_code == 2


@pytest.mark.parametrize("error", [
    FlowfileError("bad", "Flowfile", 1, 1), UserError("bad"), LockHeld("held"), MissingInputError("gone"),
    CycleError("cycle"), AmbiguousRuleError("two rules"), FileAccessError("denied"), UsageError("Error: bad"),
], ids=lambda e: type(e).__name__)
def test_mistakes_of_the_user_exit_2(error):
    assert error.exit_code == 2


def test_failed_jobs_exit_1():
    assert JobsFailed(_summary(failed=["a"])).exit_code == 1


def test_a_job_that_could_not_start_exits_2():
    assert JobsFailed(_summary(failed=["a"], user_errors=1)).exit_code == 2


def test_a_failed_job_beside_one_that_could_not_start_exits_2():
    assert JobsFailed(_summary(failed=["a", "b"], user_errors=1)).exit_code == 2


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGHUP, 129)],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
def test_interrupted_exits_128_plus_the_signal(signum, code):
    assert Interrupted(signum).exit_code == code


def test_a_bug_in_flow_exits_1():
    assert InternalError.of(RuntimeError("boom")).exit_code == 1


def test_a_closed_output_exits_1():
    assert OutputClosed().exit_code == 1


# what each renders --------------------------------------------------------------------------------


def test_a_flow_error_renders_as_flow_error_and_its_hint():
    assert FlowError("no rule makes x", "Add one.").render() == "flow: error: no rule makes x\nAdd one."


def test_a_user_error_renders_without_a_hint_when_it_has_none():
    assert UserError("-C nowhere: No such file or directory").render() == (
        "flow: error: -C nowhere: No such file or directory")


def test_a_user_error_at_a_position_renders_as_a_flowfile_excerpt(tmp_path):
    (tmp_path / "Flowfile").write_text('rule a:\n    output: "{x"\n')
    pos = SimpleNamespace(file=str(tmp_path / "Flowfile"), line=2, column=13)
    text = UserError("unclosed wildcard", "Close it.", pos=pos).render()
    assert text.splitlines() == [f"{tmp_path}/Flowfile:2:13: error: unclosed wildcard",
                                 '        output: "{x"', "                ^", "Close it."]


def test_a_flowfile_error_renders_its_location_and_source_line():
    text = FlowfileError("unexpected end of line", "Flowfile", 5, 7, "Expected ':'.", "rule b").render()
    assert text.splitlines() == ["Flowfile:5:7: error: unexpected end of line", "    rule b", "          ^",
                                 "Expected ':'."]


def test_jobs_failed_renders_which_failed_and_what_to_do():
    e = JobsFailed(_summary(failed=["a"], ran=2, blocked=1))
    assert e.render() == ("flow: 1 job failed (a); 2 ran; 1 not started. "
                          "Fix the problem and `flow run` again: finished jobs are kept.")


def test_jobs_that_could_not_start_are_said_so():
    e = JobsFailed(_summary(failed=["a", "b"], user_errors=2))
    assert e.render().startswith("flow: 2 jobs could not start (a, b); 0 ran.")


def test_jobs_failed_names_five_and_counts_the_rest():
    e = JobsFailed(_summary(failed=[f"j{i}" for i in range(7)]))
    assert "(j0, j1, j2, j3, j4 and 2 more)" in e.render()


def test_jobs_failed_under_watch_says_to_save():
    e = JobsFailed(_summary(failed=["a"]))
    assert describe_error(e, watching=True) == (
        "flow: 1 job failed (a); 0 ran. Fix the problem and save: flow watch builds again: finished jobs are kept.")


def test_interrupted_during_a_run_says_what_finished_and_how_to_resume():
    assert Interrupted(signal.SIGINT, 1).render() == (
        "flow: stopped by SIGINT; 1 job finished and are kept. `flow run` resumes from there.")


def test_ctrl_c_before_a_run_renders_as_interrupted():
    assert Interrupted(signal.SIGINT).render() == "flow: interrupted"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_a_signal_before_a_run_renders_its_name(signum):
    assert Interrupted(signum).render() == f"flow: stopped by {signal.Signals(signum).name}"


def test_a_refused_file_renders_its_name_and_what_to_check():
    e = FileAccessError.of(PermissionError(13, "Permission denied", ".flow/state.db"))
    assert e.render() == ("flow: error: .flow/state.db: Permission denied\n"
                          "Check the permissions of that file and its directory.")


def test_a_full_disk_renders_without_a_permissions_hint():
    import errno

    e = FileAccessError.of(OSError(errno.ENOSPC, "No space left on device", "out.txt"))
    assert e.render() == "flow: error: out.txt: No space left on device"


def test_a_bug_renders_as_an_internal_error_in_one_line():
    assert InternalError.of(KeyError("x")).render() == (
        "flow: internal error: KeyError: 'x' (run with --debug for details)")


def test_a_closed_output_renders_nothing():
    assert OutputClosed().render() == ""


def test_a_usage_error_renders_as_click_shows_it():
    e = UsageError.of(click.UsageError("No such option '--bogus'."))
    assert e.render() == "Error: No such option '--bogus'."


def test_a_special_file_renders_its_name_and_what_to_do(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    e = SpecialFileError(str(tmp_path / "pipe"), os.stat(tmp_path / "pipe"))
    assert e.render() == (f"flow: error: {tmp_path}/pipe is a FIFO, not a regular file or directory\n"
                          "flow reads only regular files, directories and links to them: "
                          "remove it, or put a regular file in its place.")


# the line that ends a run, composed in one place ------------------------------------------------------


def test_a_run_that_had_nothing_to_do_says_so():
    assert summary_text(_summary(up_to_date=3), 0.123) == "flow: nothing to do, 3 jobs up to date (0.12s)"


def test_a_run_says_how_many_jobs_ran():
    assert summary_text(_summary(ran=1, up_to_date=2), 1.5) == "flow: 1 job ran, 2 up to date (1.50s)"


def test_a_run_says_how_many_jobs_the_shared_cache_gave():
    assert summary_text(_summary(ran=1, cached=2), 1.5) == \
        "flow: 1 job ran, 2 restored from the shared cache, 0 up to date (1.50s)"


def test_touch_says_how_many_jobs_it_recorded_even_none():
    assert summary_text(_summary(), 0.1, touch=True) == "flow: 0 jobs ran, 0 up to date (0.10s)"


def test_a_dry_run_says_what_would_run_and_what_waits_for_checkpoints():
    s = _summary(would_run=[None, None], up_to_date=1, undetermined=[None])
    assert summary_text(s, 0.1, dry_run=True) == (
        "flow: would run 2 jobs, 1 up to date, more after checkpoints (1 job wait for them)")


def test_status_says_how_many_jobs_are_out_of_date():
    assert status_text(_summary(would_run=[None], up_to_date=4)) == "flow: 1 job out of date, 4 up to date"


def test_status_says_everything_is_up_to_date():
    assert status_text(_summary(up_to_date=1)) == "flow: everything is up to date (1 job)"


# the real CLI: a FlowError becomes its message and exit code, never a traceback ----------------------------


def _no_traceback(r) -> None:
    assert "Traceback" not in r.output, r.output
    assert "internal error" not in r.output, r.output


def test_cli_a_bad_flowfile_exits_2_naming_file_line_and_column(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n\nrule b\n')
    r = project.flow("run")
    assert r.returncode == 2, r.output
    assert r.stderr.splitlines() == [f"{project.root}/Flowfile:5:7: error: unexpected end of line",
                                     "    rule b", "          ^", "Expected ':'."], r.stderr
    _no_traceback(r)


def test_cli_a_bad_option_value_exits_2_with_clicks_message(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n')
    r = project.flow("run", "-j", "0")
    assert r.returncode == 2, r.output
    assert "Error: Invalid value for '-j' / '--cores': 0 is not in the range x>=1." in r.stderr, r.stderr
    assert r.stderr.startswith("Usage: flow run "), r.stderr
    _no_traceback(r)


def test_cli_a_failed_job_exits_1_with_the_failure_summary(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    shell: "exit 3"\n')
    r = project.flow("run", "-q")
    assert r.returncode == 1, r.output
    assert r.stderr.splitlines()[-1] == (
        "flow: 1 job failed (a); 0 ran. Fix the problem and `flow run` again: finished jobs are kept.")
    _no_traceback(r)


def test_cli_a_job_that_could_not_start_exits_2(project):
    project.flowfile('rule a:\n    input: "in.fifo"\n    output: "a.txt"\n    shell: "cat {input} > {output}"\n')
    os.mkfifo(project.root / "in.fifo")
    r = project.flow("run", "-q", timeout=20)
    assert r.returncode == 2, r.output
    assert "flow: 1 job could not start (a)" in r.stderr, r.stderr
    _no_traceback(r)


def test_cli_a_successful_run_ends_with_the_summary_line(project):
    project.flowfile('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n')
    r = project.run("-q")
    assert r.stderr.startswith("flow: 1 job ran, 0 up to date ("), r.stderr
    r = project.run("-q")
    assert r.stderr.startswith("flow: nothing to do, 1 job up to date ("), r.stderr


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_cli_a_signal_during_a_run_exits_128_plus_it_and_says_what_finished(project, sig, code):
    project.flowfile('rule a:\n    output: "a.txt"\n    shell: "touch started; sleep 30; touch {output}"\n')
    proc = project.start("run")
    wait_for(lambda: project.exists("started"), what="the job to start")
    time.sleep(0.1)
    os.kill(proc.pid, sig)
    assert proc.wait(timeout=15) == code
    err = project.read("flow.err")
    assert err.splitlines()[-1] == (f"flow: stopped by {signal.Signals(sig).name}; 0 jobs finished and are kept. "
                                    "`flow run` resumes from there."), err
    assert "Traceback" not in err, err


def _main_raising(tmp_path, raise_code: str, *args: str) -> subprocess.CompletedProcess:
    """The real ``main`` with ``flow list`` replaced by a command raising ``raise_code``."""
    code = textwrap.dedent(f"""\
        import sys, signal
        from flow import FlowError
        from flow.engine import errors
        from flow.engine.commands import cli

        class Odd(FlowError):
            exit_code = 7
            def render(self):
                return "flow: something odd"

        def boom(**kwargs):
            {raise_code}

        cli.list_rules.callback = boom
        sys.exit(cli.main(["list", *sys.argv[1:]]))
        """)
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)


def test_cli_a_flow_error_from_a_command_exits_with_its_own_code_and_message(tmp_path):
    r = _main_raising(tmp_path, "raise Odd()")
    assert (r.returncode, r.stderr) == (7, "flow: something odd\n")


def test_cli_any_other_exception_is_an_internal_error_exiting_1(tmp_path):
    r = _main_raising(tmp_path, "raise RuntimeError('boom')")
    assert (r.returncode, r.stderr) == (1, "flow: internal error: RuntimeError: boom (run with --debug for details)\n")


def test_cli_debug_adds_the_traceback_of_an_internal_error(tmp_path):
    r = _main_raising(tmp_path, "raise RuntimeError('boom')", "--debug")
    assert r.returncode == 1
    assert "Traceback" in r.stderr and "RuntimeError: boom\n" in r.stderr, r.stderr
    assert r.stderr.endswith("flow: internal error: RuntimeError: boom (run with --debug for details)\n")


def test_cli_terminated_outside_a_run_exits_143(tmp_path):
    r = _main_raising(tmp_path, "raise errors.Terminated(signal.SIGTERM)")
    assert (r.returncode, r.stderr) == (143, "flow: stopped by SIGTERM\n")


def test_cli_a_file_flow_cannot_write_is_a_message_exiting_2(tmp_path):
    r = _main_raising(tmp_path, "raise PermissionError(13, 'Permission denied', '.flow/state.db')")
    assert (r.returncode, r.stderr) == (2, "flow: error: .flow/state.db: Permission denied\n"
                                           "Check the permissions of that file and its directory.\n")
