"""What jobs see and write, as Snakemake makes it: touch() outputs,
``{wildcards}`` alone, ``os``/``sys`` in Python jobs, params and config
strings split into shell words, and benchmark files with Snakemake's ten
columns. Each runs a real Flowfile with ``python -m flow run``; where the
result is deterministic, Snakemake 9 runs the same file and the files both
make must be byte-identical."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import Project

REPO = Path(__file__).resolve().parent.parent
BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time"


def _snakemake() -> str | None:
    for c in (os.environ.get("FLOW_SNAKEMAKE"), str(REPO / ".venv-snakemake" / "bin" / "snakemake"),
              shutil.which("snakemake")):
        if c and os.path.exists(c):
            return c
    return None


def _made(root: Path) -> dict[str, bytes]:
    """The files a run made (not the Flowfile, not either tool's own directory)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.relative_to(root).parts[0] not in {".flow", ".snakemake", "Flowfile"}}


def _same_as_snakemake(project: Project, tmp_path: Path, *args: str) -> dict[str, bytes]:
    """Run the project's Flowfile under flow and, in a copy, under
    Snakemake; assert both made the same files, byte for byte; those files."""
    snakemake = _snakemake()
    if snakemake is None:
        pytest.fail("Snakemake 9 is needed: python3 -m venv .venv-snakemake && "
                    ".venv-snakemake/bin/pip install snakemake")
    smk_dir = tmp_path / "under-snakemake"
    shutil.copytree(project.root, smk_dir)
    project.run("-j", "1", *args)
    smk = subprocess.run([snakemake, "-s", "Flowfile", "-c1", "-q", *args], cwd=smk_dir,
                         capture_output=True, text=True, timeout=300)
    assert smk.returncode == 0, smk.stdout + smk.stderr
    made = _made(project.root)
    assert made == _made(smk_dir)
    return made


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "flow"
    root.mkdir()
    return Project(root)


# touch() ---------------------------------------------------------------------------


def test_touch_output_is_made_though_the_command_does_not_make_it(project, tmp_path):
    project.flowfile("""\
        rule all:
            input: "report.txt"

        rule flag:
            output: touch("flags/ready.done")
            shell: "true"

        rule report:
            input: "flags/ready.done"
            output: "report.txt"
            shell: "wc -c < {input} > {output}"
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["flags/ready.done"] == b""
    assert made["report.txt"].strip() == b"0"


def test_touch_output_is_recorded_so_the_next_run_runs_nothing(project):
    project.flowfile("""\
        rule flag:
            output: touch("ready.done")
            shell: "true"
        """)
    assert project.ran() == ["flag"]
    assert "ready.done" in project.recorded_outputs()
    assert project.ran() == []


def test_touch_output_the_job_wrote_keeps_its_bytes_and_gets_a_new_time(project):
    project.flowfile("""\
        rule flag:
            output: touch("ready.done")
            shell: "echo kept > {output} && touch -d '2001-01-01' {output}"
        """)
    before = time.time()
    project.run()
    assert project.read("ready.done") == "kept\n"
    assert os.path.getmtime(project.root / "ready.done") >= before - 1


def test_a_failed_job_leaves_no_touch_output(project):
    project.flowfile("""\
        rule flag:
            output: touch("ready.done")
            shell: "exit 3"
        """)
    r = project.flow("run")
    assert r.returncode == 1, r.output
    assert not project.exists("ready.done")
    assert "ready.done" not in project.recorded_outputs()


def test_touch_output_beside_an_output_the_run_block_writes(project):
    project.flowfile("""\
        rule r:
            output: "data.txt", touch("data.done")
            run:
                with open(output[0], "w") as f:
                    f.write("data\\n")
        """)
    project.run()
    assert project.read("data.txt") == "data\n" and project.read("data.done") == ""
    assert {"data.txt", "data.done"} <= project.recorded_outputs()


def test_touch_directory_output_is_made_as_a_directory(project):
    project.flowfile("""\
        rule r:
            output: touch(directory("shards"))
            shell: "true"
        """)
    project.run()
    assert (project.root / "shards").is_dir()


# {wildcards} alone ----------------------------------------------------------------------


def test_wildcards_alone_formats_as_sorted_name_value_pairs_in_shell(project, tmp_path):
    project.flowfile("""\
        rule all:
            input: "out/b_2.txt"

        rule make:
            output: "out/{sample}_{n}.txt"
            shell: "echo {wildcards} > {output}"
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["out/b_2.txt"] == b"n=2,sample=b\n"


def test_wildcards_alone_formats_as_name_value_pairs_in_message(project):
    project.flowfile("""\
        rule make:
            output: "out/{sample}_{n}.txt"
            message: "making {wildcards}"
            shell: "touch {output}"
        """)
    r = project.run("out/b_2.txt")
    assert "making n=2,sample=b" in r.output


def test_wildcards_alone_in_shell_from_a_run_block(project):
    project.flowfile("""\
        rule make:
            output: "out/{sample}.txt"
            run:
                shell("echo {wildcards} > {output}")
        """)
    project.run("out/b.txt")
    assert project.read("out/b.txt") == "sample=b\n"


# os and sys in Python jobs -------------------------------------------------------------


def test_run_block_uses_os_and_sys_without_importing_them(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "out/name.txt"
            run:
                with open(output[0], "w") as f:
                    f.write(os.path.basename(output[0]) + " " + str(sys.version_info[0]) + "\\n")
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["out/name.txt"] == b"name.txt 3\n"


def test_script_uses_os_and_sys_without_importing_them(project):
    project.write("scripts/s.py", """\
        with open(snakemake.output[0], "w") as f:
            f.write(os.path.basename(snakemake.output[0]) + " " + str(sys.version_info[0]) + "\\n")
        """)
    project.flowfile("""\
        rule r:
            output: "name.txt"
            script: "scripts/s.py"
        """)
    project.run()
    assert project.read("name.txt") == "name.txt 3\n"


# params and config strings as shell words ------------------------------------------------

def test_params_string_is_split_into_shell_words(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            params: extra="-r -u"
            shell: 'printf "<%s>" {params.extra} > {output}'
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["words.txt"] == b"<-r><-u>"


def test_quotes_inside_a_params_string_group_words(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            params: extra="--name 'a b' \\"c  d\\""
            shell: 'printf "<%s>" {params.extra} > {output}'
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["words.txt"] == b"<--name><a b><c  d>"


def test_config_string_is_split_into_shell_words(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            shell: 'printf "<%s>" {config[opts]} > {output}'
        """)
    made = _same_as_snakemake(project, tmp_path, "--config", "opts=-x 1")
    assert made["words.txt"] == b"<-x><1>"


def test_no_params_string_can_run_a_command(project):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            params: evil="$(touch pwned1) `touch pwned2`; touch pwned3 | x && y > z"
            shell: 'printf "<%s>" {params.evil} > {output}'
        """)
    project.run()
    assert project.read("words.txt") == "<$(touch><pwned1)><`touch><pwned2`;><touch><pwned3><|><x><&&><y><>><z>"
    assert not any(project.exists(f"pwned{i}") for i in (1, 2, 3)) and not project.exists("z")


def test_params_string_with_an_unbalanced_quote_is_one_word(project):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            params: name="it's mine"
            shell: 'printf "<%s>" {params.name} > {output}'
        """)
    project.run()
    assert project.read("words.txt") == "<it's mine>"


def test_q_format_keeps_a_params_string_one_word(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            params: extra="-r -u"
            shell: 'printf "<%s>" {params.extra:q} > {output}'
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["words.txt"] == b"<-r -u>"


def test_empty_params_string_gives_no_word(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "words.txt"
            params: extra=""
            shell: 'printf "<%s>" x {params.extra} > {output}'
        """)
    made = _same_as_snakemake(project, tmp_path)
    assert made["words.txt"] == b"<x>"


def test_input_path_with_a_space_stays_one_word(project):
    project.write("in put.txt", "x\n")
    project.flowfile("""\
        rule r:
            input: "in put.txt"
            output: "words.txt"
            shell: 'printf "<%s>" {input} > {output}'
        """)
    project.run()
    assert project.read("words.txt") == "<in put.txt>"


# benchmark files ------------------------------------------------------------------


def _benchmark_row(project: Project, name: str) -> dict[str, str]:
    header, row, *rest = project.read(name).split("\n")
    assert header == BENCHMARK_HEADER and rest == [""]
    values = row.split("\t")
    assert len(values) == 10
    return dict(zip(header.split("\t"), values, strict=True))


_NUMBER = re.compile(r"\d+\.\d\d")


def test_shell_benchmark_has_snakemakes_ten_columns_measured(project):
    project.flowfile("""\
        rule r:
            output: "out.txt"
            benchmark: "bench/r.tsv"
            shell: "sleep 0.7; head -c 20000000 /dev/zero | gzip -1 > {output}"
        """)
    project.run()
    row = _benchmark_row(project, "bench/r.tsv")
    assert re.fullmatch(r"0:00:0\d", row["h:m:s"])
    assert all(_NUMBER.fullmatch(v) for k, v in row.items() if k != "h:m:s"), row
    assert float(row["s"]) >= 0.7
    assert float(row["max_rss"]) > 0 and float(row["max_vms"]) > 0 and float(row["max_pss"]) > 0
    assert float(row["cpu_time"]) > 0 and float(row["mean_load"]) > 0


def test_run_block_benchmark_sees_its_memory_and_cpu(project):
    project.flowfile("""\
        rule r:
            output: "out.txt"
            benchmark: "r.tsv"
            run:
                block = bytearray(150_000_000)
                total = sum(range(3_000_000))
                with open(output[0], "w") as f:
                    f.write(str(len(block) + total))
        """)
    project.run()
    row = _benchmark_row(project, "r.tsv")
    assert all(_NUMBER.fullmatch(v) for k, v in row.items() if k != "h:m:s"), row
    assert float(row["max_rss"]) >= 140  # MB: the block it made
    assert float(row["cpu_time"]) > 0


def test_benchmark_has_the_same_header_and_shape_as_snakemakes(project, tmp_path):
    project.flowfile("""\
        rule r:
            output: "out.txt"
            benchmark: "r.tsv"
            shell: "sleep 0.6; echo x > {output}"
        """)
    snakemake = _snakemake()
    assert snakemake is not None
    smk_dir = tmp_path / "under-snakemake"
    shutil.copytree(project.root, smk_dir)
    project.run()
    subprocess.run([snakemake, "-s", "Flowfile", "-c1", "-q"], cwd=smk_dir, check=True,
                   capture_output=True, timeout=300)
    shape = re.compile(r"[^\t\n]+")
    ours, theirs = project.read("r.tsv"), (smk_dir / "r.tsv").read_text()
    assert shape.sub("v", ours.split("\n", 1)[1]) == shape.sub("v", theirs.split("\n", 1)[1])
    assert ours.split("\n")[0] == theirs.split("\n")[0] == BENCHMARK_HEADER


def test_a_run_block_imports_a_module_beside_its_flowfile(project):
    project.write("wf/helpers.py", "def shout(text):\n    return text.upper()\n")
    project.write("wf/Flowfile", '''
rule a:
    output: "a.txt"
    run:
        from helpers import shout
        open(output[0], "w").write(shout("hi"))
''')
    project.run("-f", "wf/Flowfile")
    assert project.read("a.txt") == "HI"


def test_a_script_imports_a_module_beside_it(project):
    project.write("scripts/helpers.py", "def shout(text):\n    return text.upper()\n")
    project.write("scripts/make.py", "from helpers import shout\nopen(snakemake.output[0], 'w').write(shout('hi'))\n")
    project.flowfile('''
rule a:
    output: "a.txt"
    script: "scripts/make.py"
''')
    project.run()
    assert project.read("a.txt") == "HI"


def test_a_rule_whose_only_output_is_touch_makes_it_without_an_action(project):
    project.flowfile('''
rule done:
    output: touch("flags/done")
''')
    project.run()
    assert project.exists("flags/done")
    assert project.ran() == []


def test_shell_read_true_returns_what_the_command_printed(project):
    project.flowfile('''
rule a:
    output: "a.txt"
    run:
        text = shell("echo hello; echo world", read=True)
        open(output[0], "w").write(text.upper())
''')
    project.run()
    assert project.read("a.txt") == "HELLO\nWORLD\n"


def test_a_script_knows_its_own_path_as_snakemake_names_it(project):
    project.write("scripts/where.py", "open(snakemake.output[0], 'w').write(os.path.basename(__real_file__))\n")
    project.flowfile('''
rule a:
    output: "a.txt"
    script: "scripts/where.py"
''')
    project.run()
    assert project.read("a.txt") == "where.py"
