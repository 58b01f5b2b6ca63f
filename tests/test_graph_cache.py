"""What flow remembers between runs in .flow/ never changes a decision.

The key memo (``engine/decide/memo.py``) lets a run find a job's key without
working it out. These tests run the same workflows and the same edits in two
copies, one with the memo and one with ``--no-graph-cache``, and require the
same decisions: the same jobs run (or would run, in a dry run) for the same
reasons, and the same files. The workflows are the seeded random ones of the
differential test against Snakemake (``differential_gen``), edited at random
(a source changed, touched, added where glob_wildcards finds it, removed; an
output deleted; params and commands changed), run with other targets and
with -F and -R; and a written one with what those lack: a config file, an
include, a script named per job, a run: block reading a global found by
glob_wildcards, {threads} with another -j, a checkpoint, ancient().
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from conftest import FLOW
from differential_gen import ALL_EDITS, WORDS, generate
from flow.engine.decide import memo as memo_module
from flow.engine.decide import stamp as stamp_module
from flow.engine.graph import cache as graph_module

SEEDS = [*range(6), 8]  # (8: a rule reads a log that a source edit makes another rule write again)
NO_CACHE = "--no-graph-cache"


def flow_events(root: Path, *args: str) -> list[dict]:
    """``flow run ARGS`` in ``root``, its events as JSON (docs/events.md)."""
    proc = subprocess.run([*FLOW, "run", "-j", "2", "--log-format", "json", *args], cwd=root,
                          capture_output=True, text=True, timeout=120)
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert events and events[-1]["event"] == "run_finished", proc.stdout + proc.stderr
    return events


def decisions(events: list[dict]) -> list[tuple]:
    """Each job that ran or would run, why, and how the run ended."""
    out = sorted((e["job"], e["reason"]["kind"], e["reason"]["detail"]) for e in events
                 if e["event"] in ("job_started", "job_skipped") and e.get("reason"))
    end = events[-1]
    return [*out, ("run_finished", end["outcome"], end.get("error"))]


def files(root: Path) -> dict[str, bytes]:
    """Every file of the project but flow's own."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".flow"]
        for name in filenames:
            path = Path(dirpath, name)
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


def summary_line(root: Path, *args: str) -> str:
    """The last line of ``flow run -n ARGS`` in the terminal's text (where a
    stamp may prove that nothing is to do, deciding no job)."""
    proc = subprocess.run([*FLOW, "run", "-j", "2", "-n", *args], cwd=root, capture_output=True, text=True,
                          timeout=120)
    return proc.stderr.strip().splitlines()[-1] if proc.returncode == 0 else proc.stderr


def compare(cached: Path, uncached: Path, *args: str) -> list[tuple]:
    """A dry run in ``cached`` decides as one without the caches (events
    and, in the terminal, where the stamp may prove a run, its last line);
    then a real run in each copy runs the same jobs for the same reasons
    and leaves the same files. The decisions, for the caller to look at."""
    dry = decisions(flow_events(cached, "-n", *args))
    assert dry == decisions(flow_events(cached, "-n", NO_CACHE, *args)), args
    assert summary_line(cached, *args) == summary_line(cached, NO_CACHE, *args), args
    ran = decisions(flow_events(cached, *args))
    assert ran == decisions(flow_events(uncached, NO_CACHE, *args)), args
    assert files(cached) == files(uncached)
    return ran


def removal(workflow, rng: random.Random) -> tuple | None:
    """A source glob_wildcards finds, to remove (the graph loses its jobs)."""
    if not workflow.glob:
        return None
    found = sorted(p for p in workflow.sources if p.startswith("src/"))
    return ("remove_source", rng.choice(found)) if len(found) > 1 else None


@pytest.mark.parametrize("seed", SEEDS)
def test_a_generated_workflow_decides_the_same_with_and_without_the_memo(seed, tmp_path):
    workflow = generate(seed)
    cached, uncached = tmp_path / "cached", tmp_path / "uncached"
    for root in (cached, uncached):
        root.mkdir()
        workflow.write(root)
    compare(cached, uncached, "-f", "Snakefile")
    rng = random.Random(f"memo-{seed}")
    made = sorted(set(files(cached)) - set(workflow.sources) - {"Snakefile"})
    for _round in range(2):
        for edit in workflow.edits(made, rng, ALL_EDITS):
            workflow.apply(edit, [cached, uncached])
        gone = removal(workflow, rng) if rng.random() < 0.3 else None
        if gone is not None:
            del workflow.sources[gone[1]]
            for root in (cached, uncached):
                (root / gone[1]).unlink()
        flags = rng.choice([[], [], ["-F"], ["-R", rng.choice(workflow.rules).name], [rng.choice(made)]])
        compare(cached, uncached, "-f", "Snakefile", *flags)
        if flags:
            compare(cached, uncached, "-f", "Snakefile")  # (and then without them)
    # Last, sources edited alone: the definitions are as the stamp the last
    # run left was written for, so the stamp vouches for every job the edit
    # does not reach (jobs reading a log that a rerun writes again, too).
    for source in sorted(p for p in workflow.sources if p.startswith("src/"))[:2]:
        workflow.apply(("change_source", source, rng.choice(WORDS)), [cached, uncached])
    compare(cached, uncached, "-f", "Snakefile")


WRITTEN = {
    "Flowfile": """\
        configfile: "config.yaml"
        include: "more.flow"

        SAMPLES = sorted(glob_wildcards("data/{s}.txt").s)

        rule all:
            input: expand("out/{s}.{kind}.txt", s=SAMPLES, kind=["up", "rev"]), "count.txt", "parts.txt",
                   "threads.txt", "old.txt", "stamp.txt",
                   "extras.txt", "chosen/k.txt"

        rule transform:
            input: "data/{s}.txt"
            output: "out/{s}.{kind}.txt"
            params: tag=config["tag"]
            script: "scripts/{wildcards.kind}.py"

        rule count:
            input: expand("out/{s}.up.txt", s=SAMPLES)
            output: "count.txt"
            run:
                with open(output[0], "w") as f:
                    f.write(f"{len(SAMPLES)} {' '.join(SAMPLES)}\\n")

        rule threads:
            output: "threads.txt"
            threads: 8
            shell: "echo {threads} > {output}"

        rule old:
            input: ancient("data/ref.dat")
            output: "old.txt"
            shell: "cat {input} > {output}"

        checkpoint split:
            input: "data/split.dat"
            output: directory("split")
            shell: "mkdir -p {output}; for w in $(cat {input}); do echo $w > {output}/$w.part; done"

        def parts(wildcards):
            d = checkpoints.split.get().output[0]
            return expand("split/{p}.part", p=glob_wildcards(d + "/{p}.part").p)

        rule parts:
            input: parts
            output: "parts.txt"
            shell: "cat {input} > {output}"

        def extras(wildcards):
            return expand("extra/{e}.txt", e=glob_wildcards("extra/{e}.txt").e)

        rule extras:
            input: extras
            output: "extras.txt"
            shell: "cat {input} > {output}"

        ruleorder: from_raw > from_default

        rule from_raw:
            input: "raw/{x}.raw"
            output: "chosen/{x}.txt"
            shell: "echo raw > {output}"

        rule from_default:
            input: "defaults/{x}.def"
            output: "chosen/{x}.txt"
            shell: "echo default > {output}"
        """,
    "extra/one.txt": "one\n",
    "defaults/k.def": "default\n",
    "more.flow": """\
        rule stamp:
            output: "stamp.txt"
            shell: "echo {config[tag]} > {output}"
        """,
    "config.yaml": "tag: one\n",
    "scripts/up.py": "open(snakemake.output[0], 'w').write(open(snakemake.input[0]).read().upper()"
                     " + snakemake.params.tag)\n",
    "scripts/rev.py": "open(snakemake.output[0], 'w').write(open(snakemake.input[0]).read()[::-1])\n",
    "data/a.txt": "alpha\n",
    "data/b.txt": "beta\n",
    "data/ref.dat": "ref\n",
    "data/split.dat": "x y\n",
}

# What changes (a path and its new text; None removes it), the flags of
# the run after it, and the jobs that run then.
EDITS = [
    ("config.yaml", "tag: two\n", (), {"transform", "count", "stamp"}),
    ("more.flow", 'rule stamp:\n    output: "stamp.txt"\n    shell: "echo {config[tag]}! > {output}"\n',
     ("out/b.rev.txt",), set()),
    (None, None, (), {"stamp"}),
    ("scripts/rev.py", "open(snakemake.output[0], 'w').write(open(snakemake.input[0]).read()[::-1] + '!')\n",
     (), {"transform"}),
    ("data/c.txt", "gamma\n", (), {"transform", "count"}),
    ("extra/two.txt", "two\n", (), {"extras"}),  # (found by an input function)
    ("raw/k.raw", "raw\n", (), {"from_raw"}),  # (now the higher ranked rule can make chosen/k.txt)
    (None, None, ("-j", "1"), set()),  # ({threads} is not part of a key)
    ("data/split.dat", "x y z\n", (), {"split", "parts"}),
    ("data/ref.dat", "changed\n", (), set()),  # (ancient)
    ("data/a.txt", None, (), {"count"}),
    ("raw/k.raw", None, (), {"from_default"}),
    (None, None, ("-R", "count"), {"count"}),
    (None, None, (), set()),
]


def test_a_workflow_with_every_kind_of_definition_decides_the_same_with_and_without_the_memo(tmp_path):
    cached, uncached = tmp_path / "cached", tmp_path / "uncached"
    for name, text in WRITTEN.items():
        path = cached / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    shutil.copytree(cached, uncached)
    compare(cached, uncached)
    for name, text, flags, rules in EDITS:
        for root in (cached, uncached) if name else ():
            if text is None:
                (root / name).unlink()
            else:
                (root / name).parent.mkdir(exist_ok=True)
                (root / name).write_text(text)
        ran = compare(cached, uncached, *flags)
        assert ran[-1] == ("run_finished", "ok", None)
        assert {job.split("[")[0] for job, *_ in ran[:-1]} == rules, (name, flags, ran)


def test_a_run_that_changes_nothing_prepares_no_job(tmp_path, monkeypatch):
    """The memo is used: a second run formats no command."""
    from flow.engine.commands.build import RunOptions, build
    from flow.engine.run.prepare import Preparer

    (tmp_path / "Flowfile").write_text(textwrap.dedent("""\
        rule all:
            input: expand("out/{i}.txt", i=range(5))

        rule make:
            output: "out/{i}.txt"
            params: n=lambda wildcards: int(wildcards.i) * 2
            shell: "echo {params.n} {wildcards.i} > {output}"
        """))
    monkeypatch.chdir(tmp_path)
    build(RunOptions(quiet=True), freeze=False, summary_line=False)
    prepared = []
    real = Preparer.prepared
    monkeypatch.setattr(Preparer, "prepared", lambda self, job: prepared.append(job.id) or real(self, job))
    summary = build(RunOptions(quiet=True), freeze=False, summary_line=False).summary
    assert summary.up_to_date == 5 and summary.ran == 0
    assert prepared == []
    build(RunOptions(quiet=True, no_graph_cache=True), freeze=False, summary_line=False)
    assert len(prepared) == 5  # (and without it, every job's action; all, which only gathers, has no key to work out)


@pytest.mark.parametrize("damage", ["truncated", "flipped", "garbage", "empty"])
@pytest.mark.parametrize("name", [memo_module.FILE, graph_module.FILE, stamp_module.FILE])
def test_a_damaged_cache_file_is_ignored_and_written_again(name, damage, tmp_path):
    root = tmp_path
    (root / "Flowfile").write_text('rule all:\n    input: "a.txt"\n\nrule a:\n    output: "a.txt"\n'
                                   '    shell: "echo a > {output}"\n')
    flow_events(root)
    path = root / ".flow" / name
    good = path.read_bytes()
    bad = {"truncated": good[: len(good) // 2], "flipped": good[:-1] + bytes([good[-1] ^ 1]),
           "garbage": os.urandom(len(good)), "empty": b""}[damage]
    path.write_bytes(bad)
    (root / "Flowfile").write_text((root / "Flowfile").read_text().replace("echo a", "echo b"))
    assert decisions(flow_events(root))[0][:2] == ("a", "code")
    assert path.read_bytes() not in (bad, good)
    assert decisions(flow_events(root)) == [("run_finished", "ok", None)]


def test_a_memo_of_other_definitions_is_not_used(tmp_path):
    """Only the definitions it was written for count: a memo copied from
    another project, where each job's check is the same, is not read."""
    flowfile = 'rule all:\n    input: "a.txt"\n\nrule a:\n    output: "a.txt"\n    shell: "echo {config[x]} > {output}"\n'
    memo = memo_module.KeyMemo(str(tmp_path), "definitions of one")
    memo.learn("a", b"c" * 16, "k" * 32, ())
    memo.save()
    assert memo_module.KeyMemo(str(tmp_path), "definitions of one").entries == {"a": b"c" * 16 + b"k" * 32}
    assert memo_module.KeyMemo(str(tmp_path), "definitions of two").entries == {}
    (tmp_path / "Flowfile").write_text(flowfile)
    assert decisions(flow_events(tmp_path, "--config", "x=1"))[0][:2] == ("a", "missing")
    assert decisions(flow_events(tmp_path, "--config", "x=2"))[0][:2] == ("a", "code")


def test_no_graph_cache_neither_reads_nor_writes_the_cache(tmp_path):
    (tmp_path / "Flowfile").write_text('rule a:\n    output: "a.txt"\n    shell: "echo a > {output}"\n')
    kept = [tmp_path / ".flow" / name for name in (memo_module.FILE, graph_module.FILE, stamp_module.FILE)]
    flow_events(tmp_path, NO_CACHE)
    assert not any(p.exists() for p in kept)
    proc = subprocess.run([*FLOW, "run", "-q"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "FLOW_NO_GRAPH_CACHE": "1"})
    assert proc.returncode == 0, proc.stderr
    assert not any(p.exists() for p in kept)
    (tmp_path / "a.txt").unlink()
    flow_events(tmp_path)
    assert all(p.exists() for p in kept)


def test_what_a_run_killed_while_writing_left_is_never_read(tmp_path):
    """Killed while it wrote, a run leaves the scratch file beside the old
    one (the rename never happened): the next run reads neither as new,
    decides as without them, and writes over the scratch files."""
    (tmp_path / "Flowfile").write_text('rule all:\n    input: "a.txt"\n\nrule a:\n    output: "a.txt"\n'
                                       '    shell: "echo {config[x]} > {output}"\n')
    flow_events(tmp_path, "--config", "x=1")
    for name in (memo_module.FILE, graph_module.FILE, stamp_module.FILE):
        whole = (tmp_path / ".flow" / name).read_bytes()
        (tmp_path / ".flow" / f"{name}.tmp").write_bytes(whole[: len(whole) // 3])
    expected = decisions(flow_events(tmp_path, "-n", NO_CACHE, "--config", "x=2"))
    assert [d[:2] for d in expected] == [("a", "code"), ("run_finished", "ok")]
    assert decisions(flow_events(tmp_path, "-n", "--config", "x=2")) == expected
    assert decisions(flow_events(tmp_path, "--config", "x=2")) == expected
    assert [p.name for p in (tmp_path / ".flow").iterdir() if p.name.endswith(".tmp")] == []
    assert (tmp_path / "a.txt").read_text() == "2\n"


def _graph(root: Path):
    """The workflow in ``root``, and a graph cache of it for its default target."""
    from flow.engine.graph.cache import GraphCache, fingerprint
    from flow.engine.load.loader import load

    wf = load(str(root / "Flowfile"), {})
    return wf, GraphCache(str(root / ".flow"), fingerprint("definitions", (), (), (), {}, {}))


def test_a_kept_graph_loads_as_the_jobs_it_was_inferred_as(tmp_path, monkeypatch):
    from flow.engine.graph.dag import DAG

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".flow").mkdir()
    (tmp_path / "src").mkdir()
    for s in "ab":
        (tmp_path / "src" / f"{s}.txt").write_text(s)
    (tmp_path / "Flowfile").write_text(textwrap.dedent("""\
        S = glob_wildcards("src/{s}.txt").s

        rule all:
            input: expand("out/{s}.txt", s=S)

        rule copy:
            input: "src/{s}.txt"
            output: "out/{s}.txt"
            params: n=lambda wildcards: len(wildcards.s)
            shell: "cp {input} {output}"
        """))
    wf, cache = _graph(tmp_path)
    assert cache.load(wf) is None  # (nothing kept yet)
    dag = DAG(wf)
    targets = dag.targets([])
    cache.save(dag, targets)
    wf, cache = _graph(tmp_path)
    loaded, loaded_targets = cache.load(wf)
    fields = ("id", "inputs", "outputs", "params", "threads", "wildcards")
    assert [[getattr(j, f) for f in fields] for j in loaded.reachable(loaded_targets)] == \
        [[getattr(j, f) for f in fields] for j in dag.reachable(targets)]
    assert [d.id for d in loaded_targets[0].deps] == ["copy[s=a]", "copy[s=b]"]
    assert loaded.producer["out/a.txt"].id == "copy[s=a]" and loaded.producer["src/a.txt"] is None


def _one_rule_graph_kept(tmp_path, monkeypatch):
    """A one-rule workflow reading ``in.txt``, its graph kept in the cache."""
    from flow.engine.graph.dag import DAG

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".flow").mkdir()
    (tmp_path / "in.txt").write_text("x")
    (tmp_path / "Flowfile").write_text('rule a:\n    input: "in.txt"\n    output: "a.txt"\n    shell: "cp {input} {output}"\n')
    wf, cache = _graph(tmp_path)
    cache.load(wf)
    dag = DAG(wf)
    cache.save(dag, dag.targets([]))
    return dag


def test_a_kept_graph_is_not_loaded_once_a_path_it_looked_at_is_gone(tmp_path, monkeypatch):
    dag = _one_rule_graph_kept(tmp_path, monkeypatch)
    assert dag.probes == {"in.txt": True}
    wf, cache = _graph(tmp_path)
    assert cache.load(wf) is not None
    (tmp_path / "in.txt").unlink()
    wf, cache = _graph(tmp_path)
    assert cache.load(wf) is None


def test_a_probe_of_a_path_the_run_already_saw_is_answered_by_what_it_saw(tmp_path, monkeypatch):
    """A run whose stamp stat'ed every file already (``Stamp.seen``) does not
    ask the file system again while it loads the graph."""
    _one_rule_graph_kept(tmp_path, monkeypatch)
    wf, cache = _graph(tmp_path)
    assert cache.load(wf, lambda path: False) is None  # (seen gone: not loaded, though it is there now)
    wf, cache = _graph(tmp_path)
    (tmp_path / "in.txt").unlink()
    assert cache.load(wf, lambda path: True) is not None  # (seen there: no stat asks again)
    wf, cache = _graph(tmp_path)
    assert cache.load(wf, lambda path: None) is None  # (not seen: the file system answers)


def test_a_config_whose_keys_are_not_all_strings_is_no_reason_to_fail(tmp_path):
    """YAML allows numbers and dates as keys; the caches then step aside."""
    (tmp_path / "config.yaml").write_text("m: {1: a, b: c}\n2024-01-01: x\n")
    (tmp_path / "Flowfile").write_text('configfile: "config.yaml"\n\nrule a:\n    output: "a.txt"\n'
                                       '    shell: "echo {config[m][b]} > {output}"\n')
    assert [d[:2] for d in decisions(flow_events(tmp_path))] == [("a", "missing"), ("run_finished", "ok")]
    assert decisions(flow_events(tmp_path)) == [("run_finished", "ok", None)]


def test_an_absolute_output_that_became_a_link_out_of_the_project_is_refused_as_without_the_cache(tmp_path):
    root, outside = tmp_path / "project", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    out = root / "out.txt"
    (root / "Flowfile").write_text(f'rule a:\n    output: "{out}"\n    shell: "echo hi > {{output}}"\n')
    flow_events(root)
    out.unlink()
    out.symlink_to(outside / "x")
    refused = decisions(flow_events(root, "-n", NO_CACHE))
    assert refused[-1][:2] == ("run_finished", "error") and "outside the working directory" in refused[-1][2]
    assert decisions(flow_events(root, "-n")) == refused
    assert decisions(flow_events(root)) == refused


def test_a_rule_refused_before_a_checkpoint_ran_stays_refused_when_it_grows_the_graph(tmp_path):
    """The graph keeps the jobs it refused for a missing input: growing it
    behind a checkpoint does not try them again (here, fromraw, whose input
    the checkpoint writes without saying so)."""
    cached, uncached = tmp_path / "cached", tmp_path / "uncached"
    cached.mkdir()
    (cached / "Flowfile").write_text(textwrap.dedent("""\
        ruleorder: fromraw > none2 > none3

        rule all:
            input: "extra.out2", "agg.txt"

        def found(wildcards):
            checkpoints.split.get()
            return ["extra.out3"]

        rule agg:
            input: found
            output: "agg.txt"
            shell: "cat {input} > {output}"

        checkpoint split:
            output: directory("parts")
            shell: "mkdir -p parts && touch parts/a.txt && echo raw > extra.raw"

        rule fromraw:
            input: "{x}.raw"
            output: "{x}.out2", "{x}.out3"
            shell: "cp {input} {output[0]}; cp {input} {output[1]}"

        rule none2:
            output: "{x}.out2"
            shell: "echo two > {output}"

        rule none3:
            output: "{x}.out3"
            shell: "echo three > {output}"
        """))
    shutil.copytree(cached, uncached)
    compare(cached, uncached)
    for root in (cached, uncached):
        for name in ("parts", "extra.raw", "extra.out2", "extra.out3", "agg.txt"):
            shutil.rmtree(root / name) if (root / name).is_dir() else (root / name).unlink()
    ran = compare(cached, uncached)
    assert ran[-1] == ("run_finished", "ok", None)
