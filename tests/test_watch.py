"""flow watch: a real watcher process on real files (watchdog, inotify)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time

import pytest
from conftest import FLOW, processes_in, wait_for
from flow.engine.commands.build import Build
from flow.engine.commands.watch import watched_paths
from flow.engine.graph.dag import DAG
from flow.engine.load.loader import load

WAITING = "flow watch: waiting for changes"

CHAINS = '''
NAMES = glob_wildcards("src/{n}.txt").n

rule all:
    input: "out/total.txt"

rule copy:
    input: "src/{n}.txt"
    output: "out/{n}.txt"
    shell: "cp {input} {output}"

rule total:
    input: expand("out/{n}.txt", n=NAMES)
    output: "out/total.txt"
    shell: "cat {input} > {output}"
'''


class Watch:
    """A running ``flow watch`` and what it has printed."""

    def __init__(self, project, *args):
        self.project = project
        self.proc = project.start("watch", "--debounce", "0.1", *args)

    def err(self) -> str:
        return self.project.read("flow.err")

    def builds(self) -> int:
        return self.err().count(WAITING)

    def wait_builds(self, n: int) -> None:
        wait_for(lambda: self.builds() >= n, timeout=30, what=f"build {n} of flow watch:\n{self.err()}")
        assert self.proc.poll() is None, self.err()

    def last_build(self) -> str:
        return self.err().rsplit(WAITING, 2)[-2]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout=30)


@pytest.fixture
def watch(project):
    started = []

    def start(*args):
        started.append(Watch(project, *args))
        return started[-1]

    yield start
    for w in started:
        if w.proc.poll() is None:
            w.proc.kill()
            w.proc.wait()


def _sources(project, **files):
    for name, text in files.items():
        project.write(f"src/{name}.txt", text)


def test_an_edited_input_rebuilds_only_what_depends_on_it(project, watch):
    _sources(project, a="1\n", b="2\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    project.write("src/a.txt", "10\n")
    w.wait_builds(2)
    build = w.last_build()
    assert "src/a.txt changed, building" in build
    assert "done  copy (n=a)" in build and "done  total" in build
    assert "copy (n=b)" not in build
    assert project.read("out/total.txt") == "10\n2\n"


def test_a_new_file_matching_a_glob_joins_the_build(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    project.write("src/c.txt", "3\n")
    w.wait_builds(2)
    assert project.read("out/c.txt") == "3\n"
    assert project.read("out/total.txt") == "1\n3\n"


def test_an_edited_script_reruns_its_rule(project, watch):
    project.write("in.txt", "x\n")
    project.write("scripts/shout.py", "open(snakemake.output[0], 'w').write(open(snakemake.input[0]).read().upper())\n")
    project.flowfile('''
        rule shout:
            input: "in.txt"
            output: "out.txt"
            script: "scripts/shout.py"
    ''')
    w = watch()
    w.wait_builds(1)
    assert project.read("out.txt") == "X\n"
    project.write("scripts/shout.py", "open(snakemake.output[0], 'w').write('!' + open(snakemake.input[0]).read())\n")
    w.wait_builds(2)
    assert "scripts/shout.py changed" in w.last_build() and "the script changed" in w.last_build()
    assert project.read("out.txt") == "!x\n"


def test_a_broken_flowfile_and_a_failing_job_do_not_end_the_watcher(project, watch):
    project.write("in.txt", "good\n")
    good = '''
        rule check:
            input: "in.txt"
            output: "ok.txt"
            shell: "grep -q good {input} && cp {input} {output}"
    '''
    project.flowfile(good)
    w = watch()
    w.wait_builds(1)
    project.flowfile(good.replace('output: "ok.txt"', 'output "ok.txt"'))
    w.wait_builds(2)
    assert "Flowfile:4:" in w.last_build() and "error" in w.last_build()
    project.flowfile(good)
    w.wait_builds(3)
    project.write("in.txt", "bad\n")
    w.wait_builds(4)
    assert "error check:" in w.last_build() and "1 job failed" in w.last_build()
    assert "Fix the problem and save: flow watch builds again" in w.last_build()
    project.write("in.txt", "good again\n")
    w.wait_builds(5)
    assert project.read("ok.txt") == "good again\n"
    assert "Traceback" not in w.err()


def test_its_own_outputs_do_not_start_another_build(project, watch):
    # Outputs land beside the sources, in the very directory glob_wildcards watches.
    project.write("data/a.txt", "1\n")
    project.flowfile('''
        NAMES = glob_wildcards("data/{n}.txt").n

        rule all:
            input: expand("data/{n}.out", n=NAMES), "data/log/all.log"

        rule upper:
            input: "data/{n}.txt"
            output: "data/{n}.out"
            log: "data/log/{n}.log"
            shell: "tr a-z A-Z < {input} > {output}; echo done > {log}"

        rule summary:
            input: expand("data/{n}.out", n=NAMES)
            output: "data/log/all.log"
            shell: "cat {input} > {output}"
    ''')
    w = watch()
    w.wait_builds(1)
    project.write("data/b.txt", "2\n")
    w.wait_builds(2)
    assert project.read("data/b.out") == "2\n"
    # Had any output or log written above counted as a change, a third build
    # would follow within the debounce (0.1 s); give it ample time to show.
    time.sleep(1.5)
    assert w.builds() == 2, w.err()


def test_sigint_ends_the_watcher_and_its_jobs(project, watch):
    project.write("in.txt", "x\n")
    project.flowfile('''
        rule slow:
            input: "in.txt"
            output: "out.txt"
            shell: "touch started; sleep 30; cp {input} {output}"
    ''')
    w = watch()
    wait_for(lambda: project.exists("started"), what="the slow job to start")
    assert w.stop() == 130
    wait_for(lambda: not processes_in(project.root), what="the job to be stopped")
    assert not project.exists("out.txt")


def test_sigint_while_waiting_ends_the_watcher(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    assert w.stop() == 130
    assert "Traceback" not in w.err()


def test_a_missing_input_is_reported_and_its_arrival_builds(project, watch):
    project.flowfile('''
        rule copy:
            input: "later/in.txt"
            output: "out.txt"
            shell: "cp {input} {output}"
    ''')
    w = watch()
    w.wait_builds(1)
    assert "needs later/in.txt, which does not exist" in w.err()
    project.write("later/in.txt", "here\n")
    w.wait_builds(2)
    assert project.read("out.txt") == "here\n"


def test_an_input_changed_while_its_job_runs_is_built_again_after(project, watch):
    project.write("in.txt", "first\n")
    project.flowfile('''
        rule slow:
            input: "in.txt"
            output: "out.txt"
            shell: "cp {input} {output}.part; touch started; sleep 1; mv {output}.part {output}"
    ''')
    w = watch()
    wait_for(lambda: project.exists("started"), what="the job to start")
    project.write("in.txt", "second\n")
    w.wait_builds(2)
    assert "in.txt changed, building" in w.last_build() and "input in.txt changed" in w.last_build()
    assert project.read("out.txt") == "second\n"


def test_clear_clears_the_screen_before_each_build(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS)
    w = watch("--clear")
    w.wait_builds(1)
    project.write("src/a.txt", "2\n")
    w.wait_builds(2)
    assert w.err().count("\x1b[2J\x1b[H") == 2
    assert w.err().index("\x1b[2J", 1) < w.err().index("src/a.txt changed")


def _threads_and_fds(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


def test_many_builds_leave_no_threads_or_descriptors_behind(project, watch):
    _sources(project, a="0\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    project.write("src/a.txt", "1\n")
    w.wait_builds(2)
    before = _threads_and_fds(w.proc.pid)
    for i in range(2, 12):
        project.write("src/a.txt", f"{i}\n")
        w.wait_builds(i + 1)
    assert _threads_and_fds(w.proc.pid) == before


def _total_becomes(project, text: str) -> None:
    def holds() -> bool:
        try:
            return project.read("out/total.txt") == text
        except FileNotFoundError:  # (not yet made, or removed as its job starts again)
            return False

    wait_for(holds, timeout=30, what=f"out/total.txt to hold {text!r}")


def test_a_source_directory_made_again_is_watched_again(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    shutil.rmtree(project.root / "src")
    _sources(project, a="2\n")
    _total_becomes(project, "2\n")
    project.write("src/a.txt", "3\n")
    _total_becomes(project, "3\n")
    assert w.proc.poll() is None


def test_a_source_directory_made_again_while_a_build_runs_is_taken_in_after_it(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS.replace('input: "out/total.txt"', 'input: "out/total.txt", "out/slow.txt"') + '''
rule slow:
    input: "out/total.txt"
    output: "out/slow.txt"
    shell: "sleep 2; cp {input} {output}"
''')
    w = watch()
    w.wait_builds(1)
    shutil.rmtree(project.root / "src")
    _total_becomes(project, "")  # the build the deletion started runs its slow job now
    _sources(project, a="2\n")  # (its events come before the directory is watched again)
    _total_becomes(project, "2\n")
    assert w.proc.poll() is None


def test_a_source_directory_made_again_with_a_new_file_takes_it_in(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    shutil.rmtree(project.root / "src")
    _sources(project, a="1\n", b="2\n")
    _total_becomes(project, "1\n2\n")
    assert w.proc.poll() is None


def test_a_deleted_source_directory_starts_a_build_that_names_the_missing_input(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    shutil.rmtree(project.root / "src")
    w.wait_builds(2)
    build = w.last_build()
    assert "src" in build.split("changed, building")[0]
    assert "done  total" in build


def test_after_a_config_mistake_the_config_is_still_watched(project, watch):
    project.write("config.yaml", "word: hello\n")
    project.flowfile('''
        configfile: "config.yaml"

        rule say:
            output: "said.txt"
            params: word=config["word"]
            shell: "echo {params.word} > {output}"
    ''')
    w = watch()
    w.wait_builds(1)
    project.write("config.yaml", "word: [unclosed\n")
    w.wait_builds(2)
    assert "config.yaml" in w.last_build()
    project.write("config.yaml", "word: bye\n")
    w.wait_builds(3)
    assert project.read("said.txt") == "bye\n"


def test_a_source_dated_in_the_future_does_not_build_again_and_again(project, watch):
    _sources(project, a="1\n")
    future = time.time() + 3600
    os.utime(project.root / "src/a.txt", (future, future))
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    time.sleep(1.5)
    assert w.builds() == 1, w.err()


def test_files_under_a_source_directory_are_watched(project, watch):
    project.write("ref/x.txt", "x\n")
    project.flowfile('''
        rule cat:
            input: "ref"
            output: "all.txt"
            shell: "cat {input}/* > {output}"
    ''')
    w = watch()
    w.wait_builds(1)
    project.write("ref/y.txt", "y\n")
    w.wait_builds(2)
    assert project.read("all.txt") == "x\ny\n"


def test_a_change_while_another_run_holds_the_lock_is_built_when_it_ends(project, watch):
    _sources(project, a="1\n")
    project.flowfile(CHAINS + '''
rule slow:
    output: "slow.txt"
    shell: "touch slow.started; sleep 2; touch {output}"
''')
    w = watch()
    w.wait_builds(1)
    other = subprocess.Popen([*FLOW, "run", "slow.txt"], cwd=project.root, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    wait_for(lambda: project.exists("slow.started"), what="the other run's job")
    project.write("src/a.txt", "2\n")
    w.wait_builds(2)
    assert "building when it ends" in w.err()
    assert other.wait(timeout=30) == 0
    assert project.read("out/total.txt") == "2\n"


def _save_as_an_editor_does(path, text: str, temp_name: str) -> None:
    """Write the new text to another name beside ``path``, then rename it over
    ``path`` (vim's swap-style save, emacs, VS Code, atomic writers)."""
    temp = path.parent / temp_name
    temp.write_text(text)
    os.rename(temp, path)


def test_a_source_saved_by_renaming_a_new_file_over_it_rebuilds(project, watch):
    project.write("a.txt", "old\n")
    project.flowfile('''
        rule copy:
            input: "a.txt"
            output: "out.txt"
            shell: "cp {input} {output}"
    ''')
    w = watch()
    w.wait_builds(1)
    assert project.read("out.txt") == "old\n"
    _save_as_an_editor_does(project.root / "a.txt", "new\n", ".a.txt.swp")
    w.wait_builds(2)
    assert "a.txt changed, building" in w.last_build() and "done  copy" in w.last_build()
    assert project.read("out.txt") == "new\n"
    # The file watched is a new one (another inode) now; the next save is seen too.
    _save_as_an_editor_does(project.root / "a.txt", "newer\n", ".a.txt.swp")
    w.wait_builds(3)
    assert project.read("out.txt") == "newer\n"


def test_a_source_in_a_globbed_directory_saved_by_renaming_over_it_rebuilds(project, watch):
    _sources(project, a="1\n", b="2\n")
    project.flowfile(CHAINS)
    w = watch()
    w.wait_builds(1)
    _save_as_an_editor_does(project.root / "src/a.txt", "10\n", "a.txt~")
    w.wait_builds(2)
    assert "src/a.txt changed, building" in w.last_build() and "done  copy (n=a)" in w.last_build()
    assert project.read("out/total.txt") == "10\n2\n"


def test_what_is_watched_comes_from_the_workflow_and_what_jobs_write(tmp_path, monkeypatch):
    """``watched_paths`` in memory: scripts and source inputs are watched;
    every file a job writes (outputs, logs, benchmark) and directory outputs are not."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "Flowfile").write_text(
        'rule shout:\n'
        '    input: "in.txt"\n'
        '    output: "out/{n}.txt", directory("parts/{n}")\n'
        '    log: "logs/{n}.log"\n'
        '    benchmark: "bench/{n}.tsv"\n'
        '    script: "scripts/shout.py"\n'
    )
    wf = load("Flowfile")
    dag = DAG(wf)
    jobs = dag.targets(["out/a.txt"])
    w = watched_paths(Build(wf=wf, dag=dag, jobs=jobs), None)
    assert {str(tmp_path / "scripts/shout.py"), str(tmp_path / "in.txt")} <= w.files
    assert {str(tmp_path / p) for p in ("out/a.txt", "logs/a.log", "bench/a.tsv")} <= w.ignored
    assert str(tmp_path / "parts/a") in w.ignored_dirs
    assert not w.matters("logs/a.log") and not w.matters("parts/a/x") and w.matters("scripts/shout.py")


def test_under_dask_the_cluster_outlives_a_build_and_a_run_block_imports_the_edited_module_afresh(project, watch):
    project.write("helper.py", "FACTOR = 2\n")
    project.write("src/a.txt", "1\n")
    project.flowfile("""
        rule scaled:
            input: "src/a.txt", "helper.py"
            output: "scaled.txt", "processes.txt"
            run:
                import os
                import sys
                sys.path.insert(0, ".")
                import helper
                open(output[0], "w").write(str(int(open(input[0]).read()) * helper.FACTOR))
                host = os.getppid()  # (up to the process that holds the local cluster)
                while host > 1 and b"local_cluster" not in open(f"/proc/{host}/cmdline", "rb").read():
                    host = int(open(f"/proc/{host}/stat").read().rsplit(")", 1)[1].split()[1])
                open(output[1], "w").write(f"{os.getpid()} {host}")
    """)
    w = watch("--executor", "dask")
    w.wait_builds(1)
    assert project.read("scaled.txt") == "2"
    python, host = project.read("processes.txt").split()
    project.write("helper.py", "FACTOR = 3\n")
    w.wait_builds(2)
    assert project.read("scaled.txt") == "3"  # (not the module the first build's Python imported)
    python_now, host_now = project.read("processes.txt").split()
    assert host_now == host != "1"  # the same cluster,
    assert python_now != python  # a Python worker of this build's
    assert w.stop() == 130
    wait_for(lambda: not os.path.exists(f"/proc/{host}"), what="the local cluster to close")
