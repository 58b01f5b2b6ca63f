"""The ``flow`` command line: messages and exit codes for the user's
mistakes, shell safety of substituted values, options, Flowfile lookup, and
what a run prints."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import pytest
from conftest import FLOW
from flow.rules import NamedList, Namespace
from flow.rules.shell import format_command

from flow import __version__

# user mistakes: exit 2, one message, never a traceback -------------------------------


def _user_error(project, *args: str) -> str:
    r = project.flow(*(args or ("run", "-j", "1")))
    assert r.returncode == 2, r.output
    assert "Traceback" not in r.output, r.output
    assert "internal error" not in r.output, r.output
    return r.stderr


def test_syntax_error_names_file_line_column_with_caret(project):
    project.flowfile("""\
        rule a:
            output: "a.txt"
            shell: "echo a > {output}"

        rule b
            output: "b.txt"
        """)
    err = _user_error(project)
    assert re.search(r"Flowfile:5:7: error:", err), err
    lines = err.splitlines()
    src = next(i for i, ln in enumerate(lines) if ln.strip() == "rule b")
    caret = lines[src + 1]
    assert caret.strip() == "^"
    assert caret.index("^") == lines[src].index("rule b") + len("rule b")


def test_syntax_error_in_included_file_names_that_file(project):
    project.flowfile('include: "rules/bad.flow"\n')
    project.write("rules/bad.flow", """\
        rule ok:
            output: "ok.txt"
            shell: "echo ok > {output}"

        X = (1 +
        """)
    err = _user_error(project)
    assert re.search(r"rules/bad\.flow:5:\d+: error:", err), err
    assert "X = (1 +" in err


def test_unknown_function_is_an_error_naming_it(project):
    project.flowfile("""\
        SAMPLES = shuffle([1, 2])

        rule a:
            output: "a.txt"
            shell: "echo a > {output}"
        """)
    err = _user_error(project)
    assert "shuffle" in err
    assert re.search(r"Flowfile:1:\d+:", err), err
    assert "declarative" in err


def test_indentation_mixing_tabs_and_spaces_inconsistently_is_an_error(project):
    # (tabs alone are fine, as in Python and Snakemake)
    project.flowfile('rule a:\n    output: "a.txt"\n\tshell: "echo a > {output}"\n')
    err = _user_error(project)
    assert re.search(r"Flowfile:3:\d+:", err), err
    assert "inconsistent use of tabs and spaces" in err


def test_cycle_is_an_error_naming_the_rules(project):
    project.flowfile("""\
        rule first:
            input: "second.txt"
            output: "first.txt"
            shell: "cp {input} {output}"

        rule second:
            input: "first.txt"
            output: "second.txt"
            shell: "cp {input} {output}"
        """)
    err = _user_error(project)
    assert "cycle" in err
    assert "first" in err and "second" in err


AMBIGUOUS = """\
rule all:
    input: "x.txt"

rule by_stem:
    output: "{stem}.txt"
    shell: "echo by_stem > {output}"

rule by_ext:
    output: "x.{ext}"
    shell: "echo by_ext > {output}"
"""


def test_two_rules_that_can_make_a_file_are_ambiguous(project):
    project.flowfile(AMBIGUOUS)
    err = _user_error(project)
    assert "by_stem" in err and "by_ext" in err and "x.txt" in err
    assert "ruleorder" in err


def test_ruleorder_resolves_ambiguity(project):
    project.flowfile("ruleorder: by_ext > by_stem\n" + AMBIGUOUS)
    assert project.ran("-j", "1") == ["by_ext (ext=txt)"]
    assert project.read("x.txt") == "by_ext\n"


def test_ruleorder_resolves_ambiguity_the_other_way_round(project):
    project.flowfile("ruleorder: by_stem > by_ext\n" + AMBIGUOUS)
    assert project.ran("-j", "1") == ["by_stem (stem=x)"]
    assert project.read("x.txt") == "by_stem\n"


def test_missing_input_without_rule_names_file_and_rule(project):
    project.flowfile("""\
        rule consume:
            input: "raw/missing.csv"
            output: "out.txt"
            shell: "cp {input} {output}"
        """)
    err = _user_error(project)
    assert "raw/missing.csv" in err
    assert "consume" in err


def test_undefined_params_in_shell_is_named(project):
    project.flowfile("""\
        rule a:
            output: "a.txt"
            params: y=1
            shell: "echo {params.x} > {output}"
        """)
    err = _user_error(project)
    assert "params.x" in err
    assert "rule a" in err
    assert "1 job could not start (a)" in err
    assert not project.exists("a.txt")


def test_missing_configfile_is_an_error(project):
    project.flowfile("""\
        configfile: "settings.yaml"

        rule a:
            output: "a.txt"
            shell: "echo a > {output}"
        """)
    err = _user_error(project)
    assert "settings.yaml" in err
    assert re.search(r"Flowfile:1:\d+:", err), err


@pytest.mark.parametrize("path", ["../escaped.txt", "sub/../../escaped.txt", "ABS"])
def test_output_outside_working_directory_is_an_error(project, path):
    target = project.root.parent / f"escaped-{project.root.name}.txt"
    if path == "ABS":
        path = str(target)
    else:
        path = path.replace("escaped.txt", target.name)
    project.flowfile(f"""\
        rule a:
            output: "{path}"
            shell: "echo a > {{output}}"
        """)
    err = _user_error(project)
    assert "outside the working directory" in err
    assert "rule a" in err
    assert not target.exists()


def test_output_through_a_symlink_leading_outside_is_an_error(project):
    outside = project.root.parent / f"outside-{project.root.name}"
    outside.mkdir()
    (project.root / "link").symlink_to(outside)
    project.flowfile("""\
        rule a:
            output: "link/x.txt"
            shell: "echo a > {output}"
        """)
    err = _user_error(project)
    assert "link/x.txt" in err and "rule a" in err
    assert list(outside.iterdir()) == []


def test_log_outside_working_directory_is_an_error(project):
    target = project.root.parent / f"escaped-{project.root.name}.log"
    project.flowfile(f"""\
        rule a:
            output: "a.txt"
            log: "../{target.name}"
            shell: "echo a > {{output}} 2> {{log}}"
        """)
    err = _user_error(project)
    assert "outside the working directory" in err
    assert not target.exists()
    assert not project.exists("a.txt")


def test_unknown_target_is_an_error(project):
    project.flowfile("""\
        rule a:
            output: "a.txt"
            shell: "echo a > {output}"
        """)
    err = _user_error(project, "run", "-j", "1", "nothing/here.txt")
    assert "nothing/here.txt" in err


def test_unknown_forcerun_rule_is_an_error(project):
    project.flowfile("""\
        rule a:
            output: "a.txt"
            shell: "echo a > {output}"
        """)
    err = _user_error(project, "run", "-j", "1", "-R", "nosuchrule")
    assert "nosuchrule" in err
    assert not project.exists("a.txt")


# shell safety -------------------------------------------------------------------------

HOSTILE_NAMES = [
    "x;touch PWNED",
    "$(touch PWNED)",
    "`touch PWNED`",
    "a b  c",
    "it's \"quoted\"",
    "x && touch PWNED || touch PWNED",
    "-rf",
    "glob*?[a]",
    "100% $HOME \\n",
    "new\nline;touch PWNED",
    "naïve 数据 🙂;touch PWNED",
    "--help",
    "tab\there'\"$(touch PWNED)\"'",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_file_name_flows_through_a_wildcard_into_shell_safely(project, name):
    project.write(f"src/{name}", f"content of {name}\n")
    project.flowfile("""\
        rule all:
            input: expand("dst/{name}", name=glob_wildcards("src/{name}").name)

        rule copy:
            input: "src/{name}"
            output: "dst/{name}"
            shell: "cp {input} {output}; echo {wildcards.name} >> names.log"
        """)
    project.run("-j", "1")
    assert project.read(f"dst/{name}") == f"content of {name}\n"
    assert project.read("names.log") == name + "\n"
    assert not list(project.root.rglob("PWNED"))


def test_each_item_of_a_list_is_quoted_on_its_own(project):
    names = ["a b.txt", "c;touch PWNED.txt", "$(touch PWNED).txt"]
    for n in names:
        project.write(f"src/{n}", f"<{n}>\n")
    project.flowfile("""\
        rule gather:
            input: expand("src/{name}", name=glob_wildcards("src/{name}").name)
            output: "all.txt"
            shell: 'for f in {input}; do cat "$f"; done > {output}'
        """)
    project.run("-j", "1")
    assert sorted(project.read("all.txt").splitlines()) == sorted(f"<{n}>" for n in names)
    assert not list(project.root.rglob("PWNED*"))


def test_config_value_from_command_line_cannot_inject_a_command(project):
    project.flowfile("""\
        rule say:
            output: "said.txt"
            shell: "echo {config[msg]} > {output}"
        """)
    project.run("-j", "1", "--config", "msg=$(touch PWNED); touch PWNED")
    assert project.read("said.txt") == "$(touch PWNED); touch PWNED\n"
    assert not project.exists("PWNED")


def test_shell_in_run_block_quotes_values(project):
    project.write("src/x;touch PWNED", "payload\n")
    project.flowfile("""\
        rule all:
            input: "dst/x;touch PWNED"

        rule copy:
            input: "src/{name}"
            output: "dst/{name}"
            run:
                shell("cp {input} {output}")
        """)
    project.run("-j", "1")
    assert project.read("dst/x;touch PWNED") == "payload\n"
    assert not project.exists("PWNED")


def test_raw_format_spec_inserts_value_unquoted(project):
    project.flowfile("""\
        rule raw:
            output: "raw.txt"
            params: words="one two"
            shell: "for w in {params.words:raw}; do echo $w; done > {output}"
        """)
    project.run("-j", "1")
    assert project.read("raw.txt") == "one\ntwo\n"


def test_a_path_with_spaces_is_quoted_as_one_word(project):
    # (a params string is split into words, as Snakemake does: tests/test_job_compat.py)
    project.write("one two.txt", "x\n")
    project.flowfile("""\
        rule quoted:
            input: "one two.txt"
            output: "quoted.txt"
            shell: "for w in {input}; do echo $w; done > {output}"
        """)
    project.run("-j", "1")
    assert project.read("quoted.txt") == "one two.txt\n"


def test_q_format_spec_is_accepted(project):
    project.flowfile("""\
        rule q:
            output: "q.txt"
            params: words="one two"
            shell: "for w in {params.words:q}; do echo $w; done > {output}"
        """)
    project.run("-j", "1")
    assert project.read("q.txt") == "one two\n"


# a file name that starts with "-" is a file to the command, never an option

TAR_TRAP = ["--checkpoint=1", "--checkpoint-action=exec=touch X"]  # tar runs `touch X` at a checkpoint


def _tar_trap(project) -> None:
    for name in TAR_TRAP:
        project.write(name, f"content of {name}\n")
    project.write("a.txt", "a\n")


def _archived(project, archive: str) -> list[str]:
    listing = subprocess.run(["tar", "tf", archive], cwd=project.root, capture_output=True, text=True, check=True)
    return sorted(listing.stdout.splitlines())


def test_globbed_file_named_like_a_tar_option_is_archived_not_run(project):
    _tar_trap(project)
    project.flowfile("""\
        rule pack:
            input: glob_wildcards("{name,--[^/]*}").name, "a.txt"
            output: "out.tar"
            shell: "tar cf {output} {input}"
        """)
    project.run("-j", "1")
    assert not project.exists("X")
    assert _archived(project, "out.tar") == sorted([f"./{n}" for n in TAR_TRAP] + ["a.txt"])


def test_shell_in_a_run_block_archives_a_file_named_like_a_tar_option(project):
    _tar_trap(project)
    project.flowfile("""\
        rule pack:
            input: glob_wildcards("{name,--[^/]*}").name, "a.txt"
            output: "out.tar"
            run:
                shell("tar cf {output} {input}")
        """)
    project.run("-j", "1")
    assert not project.exists("X")
    assert _archived(project, "out.tar") == sorted([f"./{n}" for n in TAR_TRAP] + ["a.txt"])


def test_wildcard_that_makes_paths_start_with_a_dash_gives_the_command_files(project):
    project.write("-x.in", "x\n")
    project.flowfile("""\
        rule all:
            input: "-x.out"

        rule copy:
            input: "{name}.in"
            output: "{name}.out"
            shell: "cp {input} {output}"
        """)
    project.run("-j", "1")
    assert project.read("-x.out") == "x\n"


def _namespace(**lists: list[str]) -> dict:
    ns = {name: NamedList(paths) for name, paths in lists.items()}
    return {"input": NamedList(), "output": NamedList(), "log": NamedList(), "params": Namespace(),
            "wildcards": Namespace(), "config": {}, **ns}


def test_format_command_puts_dot_slash_before_each_input_that_starts_with_a_dash():
    ns = _namespace(input=["-rf", "a.txt", "--x y"])
    assert format_command("rm {input}", ns) == "rm ./-rf a.txt './--x y'"


def test_format_command_puts_dot_slash_before_dashed_items_outputs_and_logs():
    ns = {**_namespace(output=["-o.txt"], log=["-e.log"]),
          "input": NamedList(["-a", "-b"], {"ref": 1})}
    assert format_command("x {input[0]} {input.ref} {output} {log[0]}", ns) == "x ./-a ./-b ./-o.txt ./-e.log"


def test_format_command_puts_dot_slash_before_a_raw_dashed_path():
    assert format_command("cat {input:raw}", _namespace(input=["-n", "b"])) == "cat ./-n b"


def test_format_command_puts_dot_slash_before_dashed_paths_converted_with_s_or_r():
    ns = _namespace(input=["-a", "b"])
    assert format_command("x {input!s} {input[0]!r}", ns) == """x './-a b' ''"'"'./-a'"'"''"""


def test_format_command_puts_dot_slash_before_paths_only_not_params_wildcards_or_config():
    ns = {**_namespace(input=["-data"]), "params": Namespace({"extra": "-r"}),
          "wildcards": Namespace({"flag": "-n"}), "config": {"opt": "--fast"}}
    command = format_command("sort {params.extra} {wildcards.flag} {config[opt]} {input}", ns)
    assert command == "sort -r -n --fast ./-data"


# options -------------------------------------------------------------------------------


def test_config_option_overrides_configfile_value(project):
    project.write("config.yaml", "greeting: hello\n")
    project.flowfile("""\
        configfile: "config.yaml"

        rule greet:
            output: "greeting.txt"
            shell: "echo {config[greeting]} > {output}"
        """)
    project.run("-j", "1", "--config", "greeting=bye")
    assert project.read("greeting.txt") == "bye\n"


def test_config_value_without_override_comes_from_configfile(project):
    project.write("config.yaml", "greeting: hello\n")
    project.flowfile("""\
        configfile: "config.yaml"

        rule greet:
            output: "greeting.txt"
            shell: "echo {config[greeting]} > {output}"
        """)
    project.run("-j", "1")
    assert project.read("greeting.txt") == "hello\n"


def test_config_option_value_is_parsed_as_yaml_scalar(project):
    project.write("config.yaml", "n: 1\n")
    project.flowfile("""\
        configfile: "config.yaml"

        rule all:
            input: expand("o/{i}.txt", i=range(config["n"]))

        rule one:
            output: "o/{i}.txt"
            shell: "echo {wildcards.i} > {output}"
        """)
    assert len(project.ran("-j", "1", "--config", "n=3")) == 3
    assert sorted(p.name for p in (project.root / "o").iterdir()) == ["0.txt", "1.txt", "2.txt"]


def test_directory_option_runs_in_that_directory(project):
    project.write("sub/in.txt", "inside\n")
    project.write("sub/Flowfile", """\
        rule copy:
            input: "in.txt"
            output: "out.txt"
            shell: "cp {input} {output}"
        """)
    r = project.flow("run", "-j", "1", "-C", "sub")
    assert r.returncode == 0, r.output
    assert project.read("sub/out.txt") == "inside\n"
    assert not project.exists("out.txt")
    assert project.exists("sub/.flow")


def test_flowfile_option_names_the_file(project):
    project.write("pipelines/other.flow", """\
        rule other:
            output: "other.txt"
            shell: "echo other > {output}"
        """)
    project.flowfile("""\
        rule default:
            output: "default.txt"
            shell: "echo default > {output}"
        """)
    project.run("-j", "1", "-f", "pipelines/other.flow")
    assert project.read("other.txt") == "other\n"
    assert not project.exists("default.txt")


def test_snakefile_option_is_an_alias_of_flowfile(project):
    project.write("my.smk", """\
        rule other:
            output: "other.txt"
            shell: "echo other > {output}"
        """)
    project.run("-j", "1", "-s", "my.smk")
    assert project.read("other.txt") == "other\n"


def test_flowfile_lookup_order(project):
    names = ["Flowfile", "workflow/Flowfile", "Snakefile", "workflow/Snakefile"]
    for name in names:
        project.write(name, f"""\
            rule which:
                output: "which.txt"
                shell: "echo {name} > {{output}}"
            """)
    for name in names:
        project.run("-j", "1")
        assert project.read("which.txt") == name + "\n"
        (project.root / name).unlink()


def test_missing_flowfile_option_path_is_an_error(project):
    err = _user_error(project, "run", "-f", "nowhere.flow")
    assert "nowhere.flow" in err


def test_missing_directory_option_path_is_an_error(project):
    err = _user_error(project, "run", "-C", "no/such/dir")
    assert "no/such/dir" in err


def test_no_flowfile_is_an_error(project):
    err = _user_error(project)
    assert "Flowfile" in err


def test_list_shows_rules_and_patterns(project):
    project.flowfile("""\
        rule all:
            input: "results/a.csv"

        rule extract:
            input: "raw/{sample}.txt"
            output: "results/{sample}.csv"
            shell: "cp {input} {output}"

        checkpoint split:
            output: directory("chunks")
            shell: "mkdir {output}"
        """)
    r = project.flow("list")
    assert r.returncode == 0, r.output
    lines = r.stdout.splitlines()
    extract = next(i for i, ln in enumerate(lines) if ln.startswith("extract"))
    assert "results/{sample}.csv" in lines[extract]
    assert "raw/{sample}.txt" in lines[extract + 1]
    assert any(ln.startswith("all") for ln in lines)
    split = next(ln for ln in lines if ln.startswith("split"))
    assert "checkpoint" in split and "chunks" in split


def test_version_option_prints_the_version(project):
    r = project.flow("--version")
    assert r.returncode == 0, r.output
    assert "flow" in r.stdout
    assert __version__ in r.stdout


# what a run prints -----------------------------------------------------------------------

ECHO = """\
rule all:
    input: expand("out/{i}.txt", i=range(2))

rule echo:
    output: "out/{i}.txt"
    shell: "echo marker-{wildcards.i} > {output}"
"""


def test_printshellcmds_prints_the_command(project):
    project.flowfile(ECHO)
    r = project.run("-j", "1", "-p")
    assert "echo marker-0 > out/0.txt" in r.stderr
    assert "echo marker-1 > out/1.txt" in r.stderr


def test_without_printshellcmds_the_command_is_not_printed(project):
    project.flowfile(ECHO)
    r = project.run("-j", "1")
    assert "echo marker-0" not in r.output
    assert project.read("out/0.txt") == "marker-0\n"


def test_quiet_prints_no_per_job_lines(project):
    project.flowfile(ECHO)
    r = project.run("-j", "1", "-q")
    for line in r.stderr.splitlines():
        assert not line.startswith(("done ", "run ")), r.stderr
        assert "echo (i=" not in line, r.stderr
    assert project.read("out/1.txt") == "marker-1\n"


def test_quiet_dry_run_prints_only_the_summary(project):
    project.flowfile(ECHO)
    r = project.run("-n", "-q")
    assert r.stdout == "" and r.stderr.strip().splitlines() == ["flow: would run 2 jobs, 0 up to date"], r.output


def test_default_output_has_a_done_line_per_job(project):
    project.flowfile(ECHO)
    assert sorted(project.ran("-j", "1")) == ["echo (i=0)", "echo (i=1)"]


def test_job_failure_prints_rule_wildcards_and_exit_status(project):
    project.flowfile("""\
        rule all:
            input: "out/sample7.txt"

        rule fail:
            output: "out/{name}.txt"
            shell: "echo oops >&2; exit 7"
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert "error fail (name=sample7):" in r.stderr
    assert "exit status 7" in r.stderr
    assert "oops" in r.stderr
    assert "Traceback" not in r.output


def _wait_for(path, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text().strip():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_stops_running_jobs_and_exits_130(project):
    project.flowfile("""\
        rule all:
            input: "shell.txt", "python.txt"

        rule sh:
            output: "shell.txt"
            shell: "echo partial > {output}; echo $$ > sh.pid; sleep 30; echo late > {output}"

        rule py:
            output: "python.txt"
            run:
                import os, time
                open(output[0], "w").write("partial")
                open("py.pid", "w").write(str(os.getpid()))
                time.sleep(30)
        """)
    p = subprocess.Popen([*FLOW, "run", "-j", "2"], cwd=project.root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(project.root / "sh.pid")
        _wait_for(project.root / "py.pid")
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 130, out + err
    assert "Traceback" not in out + err
    # The jobs were stopped and their half-written outputs removed.
    for name in ("sh.pid", "py.pid"):
        pid = int(project.read(name))
        deadline = time.monotonic() + 5
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(pid), name
    assert not project.exists("shell.txt")
    assert not project.exists("python.txt")


def test_sigterm_stops_a_run_and_exits_143(project):
    project.flowfile("""\
        rule sh:
            output: "shell.txt"
            shell: "echo $$ > sh.pid; sleep 30; echo late > {output}"
        """)
    p = subprocess.Popen([*FLOW, "run", "-j", "1"], cwd=project.root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(project.root / "sh.pid")
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143, out + err
    assert "Traceback" not in out + err
    assert not project.exists("shell.txt")


def _signal_while_loading(project, sig: int) -> tuple[int, str]:
    """Send ``sig`` while flow is blocked reading its config file (a FIFO)."""
    os.mkfifo(project.root / "config.yaml")
    project.flowfile("""\
        configfile: "config.yaml"

        rule a:
            output: "a.txt"
            shell: "echo a > {output}"
        """)
    p = subprocess.Popen([*FLOW, "run", "-j", "1"], cwd=project.root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)  # flow is now waiting in open() on the FIFO
        assert p.poll() is None
        p.send_signal(sig)
        out, err = p.communicate(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
    return p.returncode, out + err


def test_ctrl_c_while_loading_exits_130_without_traceback(project):
    code, output = _signal_while_loading(project, signal.SIGINT)
    assert code == 130, output
    assert "Traceback" not in output


def test_sigterm_while_loading_exits_143_without_traceback(project):
    code, output = _signal_while_loading(project, signal.SIGTERM)
    assert code == 143, output
    assert "Traceback" not in output


def test_several_config_values_after_one_config_option_as_in_snakemake(project):
    project.flowfile("""\
        rule a:
            output: "out.txt"
            shell: "echo {config[x]} {config[y]} > {output}"
        """)
    project.run("--config", "x=1", "y=2")
    assert project.read("out.txt") == "1 2\n"


def test_params_string_naming_a_wildcard_the_output_lacks_is_an_error(project):
    project.flowfile("""\
        rule a:
            output: "out_{a}.txt"
            params: p="val-{nope}-{a}"
            shell: "echo {params.p} > {output}"
        """)
    r = project.flow("run", "out_1.txt")
    assert r.returncode == 2
    assert "Flowfile:3" in r.stderr and "{nope}" in r.stderr, r.stderr


def test_params_string_is_filled_with_the_jobs_wildcards(project):
    project.flowfile("""\
        rule a:
            output: "out_{a}.txt"
            params: p="val-{a}"
            shell: "echo {params.p} > {output}"
        """)
    project.run("out_1.txt")
    assert project.read("out_1.txt") == "val-1\n"


def test_dry_run_plan_goes_to_stdout_and_the_summary_to_stderr(project):
    project.flowfile(ECHO)
    r = project.run("-n")
    assert sorted(r.stdout.splitlines()) == [
        "would run  echo (i=0): output out/0.txt is missing",
        "would run  echo (i=1): output out/1.txt is missing",
    ]
    assert r.stderr.strip() == "flow: would run 2 jobs, 0 up to date"


def test_summary_does_not_count_a_gathering_rule_as_a_job(project):
    project.flowfile(ECHO)
    assert project.run("-q").stderr.strip().startswith("flow: 2 jobs ran, 0 up to date")
    assert project.run("-q").stderr.strip().startswith("flow: nothing to do, 2 jobs up to date")


def test_failed_shell_job_shows_its_command(project):
    project.flowfile("""\
        rule a:
            output: "x.txt"
            shell: "echo hello; exit 3"
        """)
    r = project.flow("run")
    assert r.returncode == 1
    assert "exit status 3" in r.stderr and "command: echo hello; exit 3" in r.stderr, r.stderr


def test_debug_is_accepted_after_the_command_too(project):
    project.flowfile("""\
        rule a:
            output: "x.txt"
            shell: "exit 3"
        """)
    r = project.flow("run", "--debug")
    assert r.returncode == 1
    assert "No such option" not in r.stderr and "Traceback" in r.stderr, r.stderr


def test_clean_removes_directories_it_left_empty(project):
    project.flowfile("""\
        rule a:
            output: "deep/er/x.txt"
            shell: "echo > {output}"
        """)
    project.write("deep/keep.txt", "mine\n")
    project.run()
    assert project.flow("clean").returncode == 0
    assert not project.exists("deep/er") and project.read("deep/keep.txt") == "mine\n"


def test_live_line_names_the_running_jobs():
    import io

    from flow.engine.commands.report import Reporter

    out = io.StringIO()
    reporter = Reporter(stream=out, live=True)
    reporter.set_total(3)
    reporter.job_started("slow (n=1)", "output x is missing", None, None)
    assert "run   slow (n=1): output x is missing" in out.getvalue()
    assert "running 1: slow (n=1)" in out.getvalue().rsplit("\r", 1)[-1]
