"""A Snakefile that uses only FLOWFILE.md's subset runs unchanged under flow
and makes byte-identical files to Snakemake's.

Snakemake runs from its own virtualenv: set FLOW_SNAKEMAKE to its
executable, or create ``.venv-snakemake`` at the top of the repository (the
README's test command does)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FLOW

REPO = Path(__file__).resolve().parent.parent
IGNORED = {".snakemake", ".flow"}


def _snakemake() -> str:
    candidates = [os.environ.get("FLOW_SNAKEMAKE"), str(REPO / ".venv-snakemake" / "bin" / "snakemake"),
                  shutil.which("snakemake")]
    for c in candidates:
        if c and os.path.exists(c):
            return c
    raise AssertionError(
        "snakemake is needed for the compatibility tests: "
        "python3 -m venv .venv-snakemake && .venv-snakemake/bin/pip install snakemake"
    )


def _files(root: Path) -> dict[str, bytes]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts[0] in IGNORED or path.is_dir() or path.name == ".snakemake_timestamp":
            continue  # (Snakemake's own bookkeeping, also inside directory() outputs)
        out[str(rel)] = path.read_bytes()
    return out


def _run_both(source: Path, tmp_path: Path, flowfile: str, *args: str) -> tuple[dict, dict]:
    smk_dir, flow_dir = tmp_path / "snakemake", tmp_path / "flow"
    shutil.copytree(source, smk_dir, ignore=shutil.ignore_patterns(".flow", "work", "results"))
    shutil.copytree(source, flow_dir, ignore=shutil.ignore_patterns(".flow", "work", "results"))
    smk = subprocess.run([_snakemake(), "-s", flowfile, "-j", "2", "-q", *args],
                         cwd=smk_dir, capture_output=True, text=True, timeout=300)
    assert smk.returncode == 0, smk.stdout + smk.stderr
    fl = subprocess.run([*FLOW, "run", "-f", flowfile, "-j", "2", "-q", *args],
                        cwd=flow_dir, capture_output=True, text=True, timeout=300)
    assert fl.returncode == 0, fl.stdout + fl.stderr
    return _files(smk_dir), _files(flow_dir)


@pytest.fixture(scope="module")
def snakemake_available() -> str:
    return _snakemake()


def test_the_sales_example_makes_the_same_files_as_snakemake(tmp_path, snakemake_available):
    made_by_snakemake, made_by_flow = _run_both(REPO / "examples" / "sales", tmp_path, "Flowfile")
    assert "results/summary.tsv" in made_by_flow
    assert made_by_flow == made_by_snakemake


def test_a_snakefile_using_the_whole_subset_makes_the_same_files(tmp_path, snakemake_available):
    made_by_snakemake, made_by_flow = _run_both(
        REPO / "tests" / "data" / "compat", tmp_path, "Snakefile", "--config", "tag=cli"
    )
    assert "out/report.txt" in made_by_flow and "out/special_b.txt" in made_by_flow
    assert made_by_flow == made_by_snakemake


@pytest.mark.parametrize("shape,n", [("chain", 25), ("wide", 30), ("layered", 30), ("fanin", 100)])
def test_the_benchmark_workflows_make_the_same_files(tmp_path, snakemake_available, shape, n):
    # chain and fanin apply one rule again down its own path, as recursion in Snakemake does.
    sys.path.insert(0, str(REPO / "benchmarks"))
    import workflows

    source = tmp_path / "source"
    wf = workflows.build(shape, n)
    workflows.write(wf, str(source))
    made_by_snakemake, made_by_flow = _run_both(source, tmp_path, "Snakefile")
    assert wf.target in made_by_flow and all(out in made_by_flow for out in wf.outputs)
    assert made_by_flow == made_by_snakemake


CASES = REPO / "tests" / "compat"


def _case_args(case: Path) -> list[str]:
    """A case's command-line arguments: its ``args`` file, if it has one."""
    args = case / "args"
    return args.read_text().split() if args.exists() else []


@pytest.mark.parametrize("case", sorted(p.name for p in CASES.iterdir() if (p / "Snakefile").exists()))
def test_each_compatibility_case_makes_the_same_files_as_snakemake(tmp_path, snakemake_available, case):
    """One Snakefile per feature of the contract (``tests/compat/NAME/``),
    run by both tools: the same files, byte for byte."""
    made_by_snakemake, made_by_flow = _run_both(CASES / case, tmp_path, "Snakefile", *_case_args(CASES / case))
    assert len(made_by_flow) > len(_files(CASES / case))  # (something was made)
    assert made_by_flow == made_by_snakemake


def _refusal(work: Path, tool: list[str], snakefile: Path) -> subprocess.CompletedProcess:
    work.mkdir()
    shutil.copy(snakefile, work / "Snakefile")
    return subprocess.run([*tool, "-s", "Snakefile", "-j", "1"], cwd=work, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", sorted(p.name for p in (CASES / "refused").glob("*.smk")))
def test_what_snakemake_refuses_flow_refuses_at_load_time(tmp_path, snakemake_available, case):
    """Each ``tests/compat/refused/*.smk`` is refused by both tools; flow
    says where, exits 2 and runs nothing. Its first line says what flow says."""
    snakefile = CASES / "refused" / case
    smk = _refusal(tmp_path / "snakemake", [snakemake_available], snakefile)
    assert smk.returncode != 0, smk.stdout + smk.stderr
    fl = _refusal(tmp_path / "flow", [*FLOW, "run"], snakefile)
    expected = snakefile.read_text().splitlines()[0].removeprefix("#").strip()
    assert fl.returncode == 2, fl.stderr
    assert expected in fl.stderr
    assert "Snakefile:" in fl.stderr and "Traceback" not in fl.stderr
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == ["Snakefile"]
