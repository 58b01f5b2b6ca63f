"""Shell commands of plain words run without bash, and nothing else changes:
which commands qualify (``rules.shell.direct_command``), and what the
program sees when run directly against what it sees under bash
(``run.launch``)."""

from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest
from conftest import FLOW, Project
from flow.engine.run.launch import ShellLauncher, _pwd
from flow.rules.shell import Direct, direct_command


@pytest.fixture
def project(tmp_path) -> Project:
    return Project(tmp_path)


@pytest.mark.parametrize(("command", "argv"), [
    ("python3 fit.py data/a.csv out/model.bin", ["python3", "fit.py", "data/a.csv", "out/model.bin"]),
    ("cp 'my file.txt' out/copy.txt", ["cp", "my file.txt", "out/copy.txt"]),
    ("tool --size=3 a,b x:y +z @w 50%", ["tool", "--size=3", "a,b", "x:y", "+z", "@w", "50%"]),
    ("\n    sort -o out.txt in.txt\n", ["sort", "-o", "out.txt", "in.txt"]),
    ("x'a b'c", ["xa bc"]),
])
def test_a_command_of_plain_words_runs_directly(command, argv):
    assert direct_command(command) == Direct(argv)


@pytest.mark.parametrize(("command", "direct"), [
    ("cat a b > out.txt", Direct(["cat", "a", "b"], ((">", "out.txt"),))),
    ("tool >> 'log file'", Direct(["tool"], ((">>", "log file"),))),
    ("sort -u < in.txt >out.txt", Direct(["sort", "-u"], (("<", "in.txt"), (">", "out.txt")))),
    ("cat a > out.txt b", Direct(["cat", "a", "b"], ((">", "out.txt"),))),
    ("cat a 2 > out.txt", Direct(["cat", "a", "2"], ((">", "out.txt"),))),
])
def test_a_command_with_its_input_or_output_redirected_to_a_file_runs_directly(command, direct):
    assert direct_command(command) == direct


@pytest.mark.parametrize("command", [
    "cat a>b", "cat a 2>b", "cat a > b > c", "cat a >& b", "cat a >| b", "cat <<EOF", "cat a &> b",
    "> b cat a", "cat a >", "cat <(a)", "cat a <> b", "a | b", "a && b", "a; b", "a & b", "a\nb", "x $HOME", "x ${y}", "ls *.txt",
    "ls a?", "ls [ab]", "cp ~/a b", "echo {a,b}", "x 'it'\"'\"'s'", 'x "q"', "x a\\ b", "x `y`", "x $(y)",
    "A=1 prog", "echo hi", "cd dir", "exit 3", "test -f a", "[ -f a ]", "true", "time prog", "'echo' hi",
    "if", "! prog", "%1", "'' x", "", "   ", "prog\r", "prog # comment", "(prog)", "{ prog; }",
])
def test_a_command_with_any_shell_syntax_or_a_builtin_goes_through_bash(command):
    assert direct_command(command) is None


@pytest.mark.parametrize("name", ["BASH_FUNC_cp%%", "BASH_ENV", "IFS", "SHELLOPTS", "BASHOPTS", "PS4", "OPTIND"])
def test_what_bash_would_act_on_or_rewrite_in_the_environment_sends_every_command_through_bash(name):
    assert ShellLauncher({"PATH": os.defpath}).program("ls") is not None
    assert ShellLauncher({"PATH": os.defpath, name: "x"}).program("ls") is None


def test_pwd_is_kept_when_it_names_the_working_directory_else_it_is_the_real_path(tmp_path, monkeypatch):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    monkeypatch.chdir(tmp_path / "link")
    assert _pwd(str(tmp_path / "link")) == str(tmp_path / "link")
    assert _pwd("/nonexistent") == os.getcwd()
    assert _pwd("relative/path") == os.getcwd()
    assert _pwd(None) == os.getcwd()


DUMP = """\
import json, os, sys
with open(sys.argv[1], "w") as f:
    json.dump({"argv": sys.argv[1:], "env": dict(os.environ), "cwd": os.getcwd()}, f)
"""


def test_a_program_run_directly_sees_what_it_would_see_under_bash(project):
    project.write("dump.py", DUMP)
    project.flowfile("""
        rule all:
            input: "direct.json", "bash.json"
        rule direct:
            output: "direct.json"
            shell: "python3 dump.py {output} 'two words' --x=1"
        rule under_bash:
            output: "bash.json"
            shell: "bash -euo pipefail -c 'python3 dump.py {output} \\"two words\\" --x=1'"
    """)
    project.run(env={"PWD": "/nowhere", "SHLVL": "4", "PS1": "(venv) $ ", "PS2": "> "})
    direct = json.loads(project.read("direct.json"))
    bash = json.loads(project.read("bash.json"))
    assert direct["argv"][1:] == bash["argv"][1:] == ["two words", "--x=1"]
    assert direct["cwd"] == bash["cwd"]
    assert direct["env"] == bash["env"]
    assert direct["env"]["PWD"] == os.path.realpath(project.root)
    assert direct["env"]["SHLVL"] == "4"
    assert "PS1" not in direct["env"]  # (as bash drops it: a venv's activate exports it)


def test_a_program_that_is_not_found_fails_as_under_bash(project):
    project.flowfile("""
        rule x:
            output: "out.txt"
            shell: "no-such-program-anywhere out.txt"
    """)
    r = project.flow("run")
    assert r.returncode == 1
    assert "exit status 127" in r.stderr
    assert "no-such-program-anywhere: command not found" in r.stderr


def test_an_executable_script_without_a_hash_bang_line_runs_as_bash_runs_it(project):
    script = project.write("make-it", "echo made > out.txt\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    project.flowfile("""
        rule x:
            output: "out.txt"
            shell: "./make-it"
    """)
    project.run()
    assert project.read("out.txt") == "made\n"


def test_an_exported_bash_function_runs_instead_of_the_program_of_its_name(project):
    project.flowfile("""
        rule x:
            output: "out.txt"
            shell: "cp nothing out.txt"
    """)
    project.run(env={"BASH_FUNC_cp%%": "() {  echo function > \"$2\"\n}"})
    assert project.read("out.txt") == "function\n"


def test_bash_starts_only_for_commands_that_need_it(project):
    spy = project.write("spy/bash", f'#!/bin/sh\necho "$4" >> {project.root}/bash-ran\nexec /bin/bash "$@"\n')
    spy.chmod(0o755)
    project.write("in.txt", "x\n")
    project.flowfile("""
        rule all:
            input: "plain.txt", "redirected.txt", "piped.txt"
        rule plain:
            input: "in.txt"
            output: "plain.txt"
            shell: "cp {input} {output}"
        rule redirected:
            input: "in.txt"
            output: "redirected.txt"
            shell: "cat {input} > {output}"
        rule piped:
            input: "redirected.txt"
            output: "piped.txt"
            shell: "cat {input} | cat > {output}"
    """)
    project.run(env={"PATH": f"{project.root / 'spy'}:{os.environ['PATH']}"})
    assert project.read("bash-ran") == "cat redirected.txt | cat > piped.txt\n"
    assert project.read("plain.txt") == project.read("redirected.txt") == project.read("piped.txt") == "x\n"


def test_a_program_found_once_is_looked_up_again_only_through_bash_when_it_is_gone(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "tool"
    tool.write_text("#!/bin/sh\necho direct > \"$1\"\n")
    tool.chmod(0o755)
    launcher = ShellLauncher({"PATH": f"{bin_dir}:{os.defpath}"})
    assert launcher.program("tool") == str(tool)
    tool.unlink()  # found before, gone now: the start fails over to bash, which says so
    proc = launcher.start(f"tool {tmp_path / 'out'}", stderr=subprocess.PIPE, cwd=tmp_path)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 127 and b"tool: command not found" in err


def test_with_bash_env_set_every_command_goes_through_bash_which_runs_that_file_first(project):
    project.write("dump.py", DUMP)
    project.write("setup.sh", "export GREETING=from-bash-env\n")
    project.flowfile("""
        rule x:
            output: "out.json"
            shell: "python3 dump.py {output}"
    """)
    project.run(env={"BASH_ENV": str(project.root / "setup.sh")})
    assert json.loads(project.read("out.json"))["env"]["GREETING"] == "from-bash-env"


def test_redirected_files_are_opened_as_bash_opens_them(project):
    project.write("in.txt", "x\n")
    project.write("log.txt", "before\n")
    project.flowfile("""
        rule all:
            input: "out.txt", "sorted.txt"
        rule write:
            input: "in.txt"
            output: "out.txt"
            shell: "cat {input} > {output}"
        rule sort:
            input: "in.txt"
            output: "sorted.txt"
            shell: "sort < {input} > {output}"
        rule log:
            input: "out.txt"
            output: touch("logged")
            shell: "cat {input} >> log.txt"
    """)
    old = os.umask(0o027)
    try:
        project.run("all", "logged")
    finally:
        os.umask(old)
    assert project.read("out.txt") == project.read("sorted.txt") == "x\n"
    assert project.read("log.txt") == "before\nx\n"
    assert stat.S_IMODE((project.root / "out.txt").stat().st_mode) == 0o640


def test_a_redirected_file_that_cannot_be_opened_fails_as_under_bash(project):
    project.write("in.txt", "x\n")
    project.flowfile("""
        rule x:
            input: "in.txt"
            output: "out.txt"
            shell: "cat {input} > missing/dir/out.txt"
    """)
    r = project.flow("run")
    assert r.returncode == 1
    assert "missing/dir/out.txt: No such file or directory" in r.stderr, r.stderr


def test_a_job_inherits_no_descriptor_that_flow_inherited_beyond_its_stdio(project):
    project.flowfile("""
        rule all:
            input: "direct.txt", "bash.txt"
        rule direct:
            output: "direct.txt"
            shell: "ls /proc/self/fd > {output}"
        rule bash:
            output: "bash.txt"
            shell: "ls /proc/self/fd | sort > {output}"
    """)
    # As a wrapper that reads flow's progress from descriptor 9 would start it:
    wrapper = ["bash", "-c", 'exec 9</dev/null; exec "$@"', "bash", *FLOW, "run"]
    proc = subprocess.run(wrapper, cwd=project.root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("direct.txt", "bash.txt"):
        fds = {int(n) for n in project.read(name).split()}
        assert 9 not in fds and fds <= {0, 1, 2, 3}, (name, fds)  # (3: the listing ls reads)
