"""The scheduler and the local executor, end to end: ``-j`` and
``--resources`` bounds, priorities, retries, time limits, what happens after a
failure, Python jobs in worker processes, and checkpoints.

Jobs record when they ran (``date +%s.%N`` at start and end) so that tests
can measure how many ran at the same time."""

from __future__ import annotations

import json
import os
import subprocess
import time

from conftest import FLOW

# A shell job that records its start and end time in its output.
TIMED = 'date +%s.%N > {output}; sleep {params.secs}; date +%s.%N >> {output}'


def _intervals(project, paths: list[str]) -> list[tuple[float, float]]:
    out = []
    for p in paths:
        start, end = (float(x) for x in project.read(p).split())
        out.append((start, end))
    return out


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals that contain one moment."""
    events = [(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals]
    events.sort(key=lambda ev: (ev[0], ev[1]))  # an end before a start at the same time
    best = now = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def _timed_flowfile(n: int, threads: int = 1, resources: str = "", secs: float = 0.4) -> str:
    res = f"\n    resources: {resources}" if resources else ""
    return f"""\
rule all:
    input: expand("t/{{i}}.txt", i=range({n}))

rule work:
    output: "t/{{i}}.txt"
    threads: {threads}{res}
    params: secs={secs}
    shell: "{TIMED}"
"""


# -j and --resources ---------------------------------------------------------------


def test_cores_bound_sum_of_threads_so_two_thread_jobs_never_overlap_with_j2(project):
    project.flowfile(_timed_flowfile(3, threads=2, secs=0.3))
    assert len(project.ran("-j", "2")) == 3
    spans = _intervals(project, [f"t/{i}.txt" for i in range(3)])
    assert _max_overlap(spans) == 1, spans


def test_cores_allow_up_to_j_one_thread_jobs_at_once(project):
    project.flowfile(_timed_flowfile(6, threads=1, secs=0.6))
    assert len(project.ran("-j", "3")) == 6
    spans = _intervals(project, [f"t/{i}.txt" for i in range(6)])
    overlap = _max_overlap(spans)
    assert 2 <= overlap <= 3, spans


def test_job_with_more_threads_than_cores_runs_alone(project):
    project.flowfile(_timed_flowfile(2, threads=8, secs=0.3))
    assert len(project.ran("-j", "2")) == 2
    spans = _intervals(project, [f"t/{i}.txt" for i in range(2)])
    assert _max_overlap(spans) == 1, spans


def test_resources_option_bounds_sum_of_job_resources(project):
    # 4 jobs of mem_mb=400 with mem_mb=1000: two at a time (not one, not four).
    project.flowfile(_timed_flowfile(4, resources="mem_mb=400", secs=0.6))
    assert len(project.ran("-j", "4", "--resources", "mem_mb=1000")) == 4
    spans = _intervals(project, [f"t/{i}.txt" for i in range(4)])
    assert _max_overlap(spans) == 2, spans


def test_job_needing_more_than_resources_allow_is_an_error(project):
    project.flowfile("""\
        rule big:
            output: "big.txt"
            resources: mem_mb=2000
            shell: "echo big > {output}"
        """)
    r = project.flow("run", "-j", "2", "--resources", "mem_mb=1000")
    assert r.returncode == 2, r.output
    assert "big" in r.stderr and "mem_mb" in r.stderr
    assert "Traceback" not in r.output
    assert not project.exists("big.txt")


# priority, retries, runtime -----------------------------------------------------


def test_priority_orders_ready_jobs(project):
    project.flowfile("""\
        rule all:
            input: expand("low/{i}.txt", i=range(3)), expand("high/{i}.txt", i=range(3))

        rule low:
            output: "low/{i}.txt"
            shell: "echo low{wildcards.i} >> order.log; touch {output}"

        rule high:
            output: "high/{i}.txt"
            priority: 10
            shell: "echo high{wildcards.i} >> order.log; touch {output}"
        """)
    project.run("-j", "1")
    order = project.read("order.log").split()
    assert len(order) == 6
    assert all(x.startswith("high") for x in order[:3]), order
    assert all(x.startswith("low") for x in order[3:]), order


FLAKY = """\
rule flaky:
    output: "out.txt"
    retries: {retries}
    shell: "n=$(cat attempts.txt 2>/dev/null || echo 0); n=$((n+1)); echo $n > attempts.txt; [ $n -ge {succeed_at} ]; echo ok > {{output}}"
"""


def test_retries_rerun_a_failing_job_until_it_succeeds(project):
    project.flowfile(FLAKY.format(retries=1, succeed_at=2))
    r = project.run("-j", "1")
    assert project.read("attempts.txt").strip() == "2"
    assert project.read("out.txt") == "ok\n"
    assert "retry flaky" in r.stderr


def test_retries_give_up_after_n_more_attempts(project):
    project.flowfile(FLAKY.format(retries=2, succeed_at=99))
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert project.read("attempts.txt").strip() == "3"
    assert not project.exists("out.txt")


def test_runtime_resource_kills_a_shell_job_that_runs_longer(project):
    project.flowfile("""\
        rule slow:
            output: "slow.txt"
            resources: runtime=0.02
            shell: "sleep 30; echo late > {output}"
        """)
    t0 = time.monotonic()
    r = project.flow("run", "-j", "1")
    took = time.monotonic() - t0
    assert r.returncode == 1, r.output
    assert took < 15, f"the job was not stopped ({took:.1f}s)"
    assert "error slow" in r.stderr
    assert "runtime" in r.stderr
    assert not project.exists("slow.txt")


def test_runtime_resource_kills_a_run_block_that_runs_longer(project):
    project.flowfile("""\
        rule slow:
            output: "slow.txt"
            resources: runtime=0.02
            run:
                import time
                time.sleep(30)
                open(output[0], "w").write("late")
        """)
    t0 = time.monotonic()
    r = project.flow("run", "-j", "1")
    took = time.monotonic() - t0
    assert r.returncode == 1, r.output
    assert took < 15, f"the job was not stopped ({took:.1f}s)"
    assert "error slow" in r.stderr
    assert not project.exists("slow.txt")


# failures ------------------------------------------------------------------------

FAILING_WORKFLOW = """\
rule all:
    input: "bad.txt", "slow.txt", expand("later/{i}.txt", i=range(3))

rule bad:
    output: "bad.txt"
    priority: 10
    shell: "sleep 0.2; exit 3"

rule slow:
    output: "slow.txt"
    priority: 10
    shell: "sleep 1.2; echo finished > {output}"

rule later:
    output: "later/{i}.txt"
    shell: "echo later > {output}"
"""


def test_after_a_failure_no_new_job_starts_and_exit_is_1(project):
    project.flowfile(FAILING_WORKFLOW)
    r = project.flow("run", "-j", "2")
    assert r.returncode == 1, r.output
    assert "error bad" in r.stderr
    assert not any(project.exists(f"later/{i}.txt") for i in range(3)), r.output


def test_after_a_failure_running_jobs_finish_and_are_kept(project):
    project.flowfile(FAILING_WORKFLOW)
    r = project.flow("run", "-j", "2")
    assert r.returncode == 1, r.output
    assert project.read("slow.txt") == "finished\n"
    # The finished job was recorded: the next run does not make it again.
    again = project.would_run("-j", "2")
    assert "slow" not in again and "bad" in again, again


def test_failed_job_outputs_are_removed_and_logs_kept(project):
    project.flowfile("""\
        rule broken:
            output: "half.txt"
            log: "logs/broken.log"
            shell: "echo partial > {output}; echo 'why it broke' > {log}; exit 1"
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert not project.exists("half.txt")
    assert project.read("logs/broken.log") == "why it broke\n"


def test_keep_going_runs_jobs_that_do_not_depend_on_the_failure(project):
    project.flowfile("""\
        rule all:
            input: "after_bad.txt", "independent.txt"

        rule bad:
            output: "bad.txt"
            priority: 10
            shell: "exit 1"

        rule after_bad:
            input: "bad.txt"
            output: "after_bad.txt"
            shell: "cp {input} {output}"

        rule independent:
            output: "independent.txt"
            shell: "echo fine > {output}"
        """)
    r = project.flow("run", "-j", "1", "-k")
    assert r.returncode == 1, r.output
    assert project.read("independent.txt") == "fine\n"
    assert not project.exists("after_bad.txt")
    assert not project.exists("bad.txt")


def test_without_keep_going_independent_jobs_do_not_start_after_a_failure(project):
    project.flowfile("""\
        rule all:
            input: "bad.txt", "independent.txt"

        rule bad:
            output: "bad.txt"
            priority: 10
            shell: "exit 1"

        rule independent:
            output: "independent.txt"
            shell: "echo fine > {output}"
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert not project.exists("independent.txt")


# Python jobs -------------------------------------------------------------------------

PIDS = """\
rule all:
    input: expand("pid/{i}.txt", i=range(6))

rule pid:
    output: "pid/{i}.txt"
    run:
        import os, time
        time.sleep(0.1)
        with open(output[0], "w") as f:
            f.write(f"{os.getpid()} {os.getppid()}")
"""


def test_run_blocks_run_in_a_worker_process_not_in_flow(project):
    project.flowfile(PIDS)
    p = subprocess.Popen([*FLOW, "run", "-j", "2"], cwd=project.root, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, out + err
    for i in range(6):
        pid, ppid = (int(x) for x in project.read(f"pid/{i}.txt").split())
        assert pid != p.pid
        assert ppid == p.pid  # a worker that flow started


def test_one_worker_process_serves_several_run_jobs(project):
    project.flowfile(PIDS)
    project.run("-j", "2")
    pids = {project.read(f"pid/{i}.txt").split()[0] for i in range(6)}
    assert len(pids) < 6, pids
    assert len(pids) <= 2, pids


def test_run_blocks_run_in_parallel_up_to_j(project):
    project.flowfile("""\
        rule all:
            input: expand("t/{i}.txt", i=range(4))

        rule work:
            output: "t/{i}.txt"
            run:
                import time
                start = time.time()
                time.sleep(0.6)
                with open(output[0], "w") as f:
                    f.write(f"{start} {time.time()}")
        """)
    project.run("-j", "2")
    spans = _intervals(project, [f"t/{i}.txt" for i in range(4)])
    assert _max_overlap(spans) == 2, spans


def test_run_block_sees_job_names_and_top_level_assignments(project):
    project.write("in.txt", "x\n")
    project.write("config.yaml", "k: 5\n")
    project.flowfile("""\
        configfile: "config.yaml"
        PREFIX = "pre"

        rule all:
            input: "out/s1.txt"

        rule names:
            input: src="in.txt"
            output: main="out/{s}.txt"
            params: p="v-{s}", q=[1, 2]
            threads: 2
            resources: mem_mb=123
            log: "logs/{s}.log"
            run:
                import json
                with open(output.main, "w") as f:
                    json.dump([input.src, input[0], output[0], params.p, params.q, wildcards.s,
                               threads, resources.mem_mb, log[0], config["k"], PREFIX], f)
        """)
    project.run("-j", "2")
    assert json.loads(project.read("out/s1.txt")) == [
        "in.txt", "in.txt", "out/s1.txt", "v-s1", [1, 2], "s1", 2, 123, "logs/s1.log", 5, "pre",
    ]


def test_failing_run_block_shows_the_users_traceback_line_not_flows(project):
    project.flowfile("""\
        rule boom:
            output: "boom.txt"
            run:
                value = 41
                raise ValueError(f"boom {value + 1}")
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert "error boom" in r.stderr
    assert "line 5" in r.stderr and "Flowfile" in r.stderr
    assert 'raise ValueError(f"boom {value + 1}")' in r.stderr
    assert "ValueError: boom 42" in r.stderr
    for internal in ("worker.py", "python.py", "scheduler.py", "executor.py", "flow/rules", "exec("):
        assert internal not in r.stderr, internal


def test_script_sees_snakemake_and_flow_objects(project):
    project.write("in.txt", "data\n")
    project.write("scripts/show.py", """\
        with open(snakemake.output[0], "w") as f:
            f.write("|".join([snakemake.input[0], snakemake.input.src, snakemake.output[0],
                              snakemake.params.greeting, flow.input[0], flow.output.result]))
        """)
    project.flowfile("""\
        rule show:
            input: src="in.txt"
            output: result="out/shown.txt"
            params: greeting="hello"
            script: "scripts/show.py"
        """)
    project.run("-j", "1")
    assert project.read("out/shown.txt") == "in.txt|in.txt|out/shown.txt|hello|in.txt|out/shown.txt"


def test_script_sees_bare_job_names(project):
    project.write("in.txt", "data\n")
    project.write("scripts/bare.py", """\
        with open(output[0], "w") as f:
            f.write(" ".join([input[0], output[0], params.greeting, wildcards.w]))
        """)
    project.flowfile("""\
        rule all:
            input: "out/one.txt"

        rule bare:
            input: "in.txt"
            output: "out/{w}.txt"
            params: greeting="hi-{w}"
            script: "scripts/bare.py"
        """)
    project.run("-j", "1")
    assert project.read("out/one.txt") == "in.txt out/one.txt hi-one one"


def test_script_path_is_relative_to_the_flowfile(project):
    project.write("workflow/scripts/where.py", """\
        with open(snakemake.output[0], "w") as f:
            f.write("found")
        """)
    project.write("workflow/Flowfile", """\
        rule where:
            output: "where.txt"
            script: "scripts/where.py"
        """)
    project.run("-j", "1")
    assert project.read("where.txt") == "found"


def test_failing_script_shows_the_script_line(project):
    project.write("scripts/fail.py", """\
        x = 1
        raise RuntimeError("script broke")
        """)
    project.flowfile("""\
        rule fail:
            output: "never.txt"
            script: "scripts/fail.py"
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert "fail.py" in r.stderr and "line 2" in r.stderr
    assert "RuntimeError: script broke" in r.stderr
    assert "worker.py" not in r.stderr and "python.py" not in r.stderr


def test_shell_inside_run_block_formats_input_and_output(project):
    project.write("in.txt", "make me loud\n")
    project.flowfile("""\
        rule loud:
            input: "in.txt"
            output: "loud.txt"
            run:
                shell("tr a-z A-Z < {input} > {output}")
        """)
    project.run("-j", "1")
    assert project.read("loud.txt") == "MAKE ME LOUD\n"


def test_shell_inside_run_block_sees_local_variables(project):
    project.flowfile("""\
        rule local:
            output: "local.txt"
            run:
                greeting = "hello there"
                shell("echo {greeting} > {output}")
        """)
    project.run("-j", "1")
    assert project.read("local.txt") == "hello there\n"


def test_failing_shell_inside_run_block_fails_the_job(project):
    project.flowfile("""\
        rule local:
            output: "local.txt"
            run:
                shell("echo partial > {output}; exit 5")
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 1, r.output
    assert "error local" in r.stderr and "5" in r.stderr
    assert not project.exists("local.txt")


# checkpoints ----------------------------------------------------------------------------

CHECKPOINT = """\
rule all:
    input: "result.txt"

checkpoint split:
    input: "data.txt"
    output: directory("chunks")
    run:
        import os
        os.makedirs(output[0])
        with open(input[0]) as f:
            for n, line in enumerate(f):
                with open(os.path.join(output[0], str(n)), "w") as out:
                    out.write(line)

rule process:
    input: "chunks/{i}"
    output: "processed/{i}.txt"
    shell: "tr a-z A-Z < {input} > {output}"

rule gather:
    input: expand("processed/{i}.txt", i=glob_wildcards("chunks/{i}").i)
    output: "result.txt"
    shell: "cat {input} | sort > {output}"
"""


def test_checkpoint_fans_out_over_an_unknown_number_of_chunks(project):
    project.write("data.txt", "apple\nbanana\ncherry\n")
    project.flowfile(CHECKPOINT)
    ran = project.ran("-j", "2")
    assert sorted(ran) == ["gather", "process (i=0)", "process (i=1)", "process (i=2)", "split"]
    assert project.read("result.txt") == "APPLE\nBANANA\nCHERRY\n"


def test_checkpoint_making_more_chunks_processes_only_new_and_changed_chunks(project):
    project.write("data.txt", "apple\nbanana\ncherry\n")
    project.flowfile(CHECKPOINT)
    project.run("-j", "2")
    project.write("data.txt", "apple\nblueberry\ncherry\ndate\n")
    ran = project.ran("-j", "2")
    assert sorted(ran) == ["gather", "process (i=1)", "process (i=3)", "split"]
    assert project.read("result.txt") == "APPLE\nBLUEBERRY\nCHERRY\nDATE\n"


def test_failure_while_a_job_runs_whose_consumer_then_becomes_ready_ends_with_exit_1(project):
    # The consumer of the running job is queued after the failure stopped
    # new starts; the run must still end (it once spun forever).
    project.flowfile("""\
        rule all:
            input: "bad.txt", "b.txt"

        rule bad:
            output: "bad.txt"
            shell: "exit 1"

        rule a:
            output: "a.txt"
            shell: "sleep 1; echo a > {output}"

        rule b:
            input: "a.txt"
            output: "b.txt"
            shell: "cp {input} {output}"
        """)
    r = project.flow("run", "-j", "2", timeout=30)
    assert r.returncode == 1, r.output
    assert project.read("a.txt") == "a\n"
    assert not project.exists("b.txt")


def test_threads_placeholder_is_capped_at_cores(project):
    project.flowfile("""\
        rule a:
            output: "threads.txt"
            threads: 64
            shell: "echo {threads} > {output}"
        """)
    project.run("-j", "2")
    assert project.read("threads.txt") == "2\n"


def test_log_the_job_did_not_write_exists_empty_afterwards(project):
    project.flowfile("""\
        rule a:
            output: "out.txt"
            log: "logs/a.log"
            shell: "echo > {output}"
        """)
    project.run()
    assert project.read("logs/a.log") == ""


def test_run_block_indexes_named_inputs_and_outputs_by_name_as_in_snakemake(project):
    project.write("in.txt", "x\n")
    project.flowfile("""\
        rule a:
            input: src="in.txt"
            output: main="out.txt"
            run:
                with open(output["main"], "w") as f:
                    f.write(" ".join([input["src"], str(input.get("src")), str(input.get("nope"))]))
        """)
    project.run()
    assert project.read("out.txt") == "in.txt in.txt None"


def test_failed_job_message_names_its_log_file(project):
    project.flowfile("""\
        rule broken:
            output: "out.txt"
            log: "logs/broken.log"
            shell: "echo 'why' > {log}; exit 3"
        """)
    r = project.flow("run")
    assert r.returncode == 1
    assert "its log: logs/broken.log" in r.stderr, r.stderr


def _error_block(stderr: str, label: str) -> str:
    """The lines of flow's message about failed job ``label``."""
    lines = stderr.split("\n")
    start = lines.index(f"error {label}:")
    block = [lines[start]]
    for ln in lines[start + 1:]:
        if not ln.startswith("      "):
            break
        block.append(ln)
    return "\n".join(block)


def test_failed_job_shows_the_last_lines_of_its_stderr_under_its_name(project):
    project.flowfile("""\
        rule all:
            input: "out/s7.txt"

        rule noisy:
            output: "out/{sample}.txt"
            shell: "for i in $(seq 1 100); do echo complaint $i >&2; done; exit 4"
        """)
    r = project.flow("run")
    assert r.returncode == 1
    block = _error_block(r.stderr, "noisy (sample=s7)")
    assert "exit status 4" in block
    assert "its stderr ended with:" in block
    assert "complaint 91" in block and "complaint 100" in block, block
    assert "complaint 90\n" not in block
    assert "complaint 1\n" in r.stderr  # all of it went by as the job ran


def test_failed_job_that_sends_stderr_to_its_log_shows_the_end_of_the_log(project):
    project.flowfile("""\
        rule broken:
            output: "out.txt"
            log: "logs/broken.log"
            shell: "(echo early; echo 'the real reason') 2>&1 > {log}; exit 3"
        """)
    r = project.flow("run")
    assert r.returncode == 1
    block = _error_block(r.stderr, "broken")
    assert "logs/broken.log ends with:" in block and "the real reason" in block, block


def test_failed_job_does_not_show_a_log_left_by_an_earlier_run(project):
    project.write("logs/broken.log", "stale words\n")
    os.utime(project.root / "logs/broken.log", (1_000_000_000, 1_000_000_000))
    project.flowfile("""\
        rule broken:
            output: "out.txt"
            log: "logs/broken.log"
            shell: "exit 3"
        """)
    r = project.flow("run")
    assert r.returncode == 1
    assert "stale words" not in r.stderr


def test_stderr_of_a_job_that_succeeds_passes_through(project):
    project.flowfile("""\
        rule chatty:
            output: "out.txt"
            shell: "echo progress 50% >&2; touch {output}"
        """)
    r = project.run()
    assert "progress 50%" in r.stderr


def test_keep_going_past_a_job_that_cannot_be_prepared(project):
    project.flowfile("""\
        rule all:
            input: "long.txt", "bad.txt"

        rule long:
            output: "long.txt"
            shell: "echo partial > {output}; sleep 1; echo full > {output}"

        rule first:
            output: "first.txt"
            shell: "sleep 0.2; echo > {output}"

        rule bad:
            input: "first.txt"
            output: "bad.txt"
            shell: "echo {params.nope} > {output}"
        """)
    r = project.flow("run", "-k", "-j", "3")
    assert r.returncode == 2, r.output
    assert r.stderr.count("cannot resolve {params.nope}") == 1, r.stderr
    assert project.read("long.txt") == "full\n"


def test_wildcard_values_with_commas_and_equals_signs_are_different_jobs(project):
    project.flowfile("""\
        rule all:
            input: "o/x,b=y/z.txt", "o/x/y,b=z.txt"

        rule r:
            output: "o/{a}/{b}.txt"
            shell: "echo {wildcards.a} {wildcards.b} > {output}"
        """)
    project.run()
    assert project.read("o/x,b=y/z.txt") == "x,b=y z\n"
    assert project.read("o/x/y,b=z.txt") == "x y,b=z\n"


def test_output_that_is_a_directory_must_be_marked_directory(project):
    project.flowfile("""\
        rule a:
            output: "d"
            shell: "mkdir {output}"
        """)
    r = project.flow("run")
    assert r.returncode == 1
    assert 'mark it directory("d")' in r.stderr, r.stderr
    assert not project.exists("d")


def test_benchmark_directory_emptied_by_a_temp_file_stays_while_its_job_runs(project):
    project.flowfile("""\
        rule all:
            input: "d.out", "x.out"

        rule p:
            output: temp("work/t.txt")
            shell: "echo t > {output}"

        rule d:
            input: "work/t.txt"
            output: "d.out"
            shell: "cat {input} > {output}"

        rule x:
            output: "x.out"
            benchmark: "work/x.bench"
            shell: "sleep 1; echo x > {output}"
        """)
    project.run("-j", "3")
    assert project.read("work/x.bench").startswith("s\th:m:s")
    assert project.ran() == []


def test_a_job_whose_output_directory_cannot_be_made_fails_alone(project):
    project.flowfile("""\
        rule all:
            input: "a/b.txt", "ok.txt"

        rule bad:
            output: "a/b.txt"
            shell: "echo > {output}"

        rule ok:
            output: "ok.txt"
            shell: "sleep 0.5; echo ok > {output}"
        """)
    project.write("a", "a file where a directory should be\n")
    r = project.flow("run", "-k", "-j", "2")
    assert r.returncode == 2, r.output
    assert "error bad" in r.stderr and "cannot make the directory a for a/b.txt" in r.stderr, r.stderr
    assert project.read("ok.txt") == "ok\n"


def test_flowfile_error_found_after_a_checkpoint_fails_only_that_job_with_keep_going(project):
    project.flowfile("""\
        rule all:
            input: "agg.txt", "slow.txt"

        checkpoint ck:
            output: directory("ck")
            shell: "mkdir -p ck; touch ck/a.txt ck/b.txt"

        rule agg:
            input: expand("ck/{s}.txt", s=glob_wildcards("ck/{s}.txt").s, t=undefined_name)
            output: "agg.txt"
            shell: "cat {input} > {output}"

        rule slow:
            output: "slow.txt"
            shell: "sleep 1; echo slow > {output}"
        """)
    r = project.flow("run", "-k", "-j", "2")
    assert r.returncode == 2, r.output
    assert "undefined_name" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert project.read("slow.txt") == "slow\n"


def test_a_job_that_changes_directory_does_not_move_the_next_job_in_its_worker(project):
    project.write("scripts/make.py", """\
import os
out = os.path.abspath(snakemake.output[0])
os.chdir(os.path.dirname(os.path.abspath(__file__)))
with open(out, "w") as f:
    f.write(snakemake.wildcards.i + "\\n")
""")
    project.flowfile("""\
        rule all:
            input: expand("o/{i}.txt", i=range(3))

        rule a:
            output: "o/{i}.txt"
            script: "scripts/make.py"
        """)
    project.run("-j", "1")
    assert [project.read(f"o/{i}.txt") for i in range(3)] == ["0\n", "1\n", "2\n"]


# dependencies ---------------------------------------------------------------------------


def test_a_gathering_job_starts_only_after_the_last_of_its_producers_has_ended(project):
    # Producers of different lengths run side by side (-j 4); each appends its end
    # to a shared log (O_APPEND), and the gatherer appends its start as its first act.
    project.flowfile("""\
        rule gather:
            input: expand("parts/{secs}.txt", secs=["0.8", "0.2", "0.5"])
            output: "all.txt"
            shell: "echo start gather >> events.log; cat {input} > {output}"

        rule produce:
            output: "parts/{secs}.txt"
            shell: "echo start {wildcards.secs} >> events.log; sleep {wildcards.secs}; "
                   "echo {wildcards.secs} > {output}; echo end {wildcards.secs} >> events.log"
        """)
    r = project.flow("run", "-j", "4")
    events = project.read("events.log").splitlines()
    starts = [i for i, e in enumerate(events) if e.startswith("start 0")]
    ends = [i for i, e in enumerate(events) if e.startswith("end ")]
    assert len(starts) == len(ends) == 3, events
    assert sorted(starts)[1] < min(ends), f"the producers did not run side by side: {events}"
    assert events.count("start gather") == 1, events
    assert events.index("start gather") > max(ends), events
    assert r.returncode == 0, r.output
    assert project.read("all.txt") == "0.8\n0.2\n0.5\n"
