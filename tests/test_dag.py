"""DAG resolution: the graph ``flow dag`` prints, targets, which rule makes
a file (wildcard constraints), source files, ``include:``, ``workdir:``,
``default_target:``, and a large generated workflow."""

from __future__ import annotations

import os
import re
import subprocess

DIAMOND = """\
rule all:
    input: "report.txt"

rule extract:
    input: "raw/{s}.txt"
    output: "clean/{s}.txt"
    shell: "tr a-z A-Z < {input} > {output}"

rule count:
    input: "clean/{s}.txt"
    output: "counts/{s}.txt"
    shell: "wc -c < {input} > {output}"

rule report:
    input: expand("counts/{s}.txt", s=["a", "b"]), extra="clean/a.txt"
    output: "report.txt"
    shell: "cat {input} > {output}"
"""


def _diamond(project):
    project.write("raw/a.txt", "alpha\n")
    project.write("raw/b.txt", "beta\n")
    project.flowfile(DIAMOND)


def _dot_graph(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """Node labels (wildcards joined with spaces) and edges between labels."""
    nodes = {m[0]: m[1].replace("\\n", " ") for m in re.findall(r'^\s*(j\d+) \[label="(.*)"\];$', text, re.M)}
    edges = {(nodes[a], nodes[b]) for a, b in re.findall(r"^\s*(j\d+) -> (j\d+);$", text, re.M)}
    return set(nodes.values()), edges


def _mermaid_graph(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    nodes = {m[0]: m[1].replace("<br/>", " ") for m in re.findall(r'^\s*(j\d+)\["(.*)"\]$', text, re.M)}
    edges = {(nodes[a], nodes[b]) for a, b in re.findall(r"^\s*(j\d+) --> (j\d+)$", text, re.M)}
    return set(nodes.values()), edges


DIAMOND_NODES = {"all", "report", "extract s: a", "extract s: b", "count s: a", "count s: b"}
DIAMOND_EDGES = {
    ("extract s: a", "count s: a"),
    ("extract s: b", "count s: b"),
    ("count s: a", "report"),
    ("count s: b", "report"),
    ("extract s: a", "report"),
    ("report", "all"),
}


def test_dag_dot_has_a_node_per_job_and_an_edge_per_dependency(project):
    _diamond(project)
    r = project.flow("dag")
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("digraph")
    nodes, edges = _dot_graph(r.stdout)
    assert nodes == DIAMOND_NODES
    assert edges == DIAMOND_EDGES


def test_dag_mermaid_has_the_same_graph(project):
    _diamond(project)
    r = project.flow("dag", "--format", "mermaid")
    assert r.returncode == 0, r.output
    assert r.stdout.startswith("flowchart")
    nodes, edges = _mermaid_graph(r.stdout)
    assert nodes == DIAMOND_NODES
    assert edges == DIAMOND_EDGES


def test_dag_of_a_file_target_has_only_what_it_needs(project):
    _diamond(project)
    r = project.flow("dag", "counts/b.txt")
    assert r.returncode == 0, r.output
    nodes, edges = _dot_graph(r.stdout)
    assert nodes == {"extract s: b", "count s: b"}
    assert edges == {("extract s: b", "count s: b")}


def test_dag_does_not_run_anything(project):
    _diamond(project)
    assert project.flow("dag").returncode == 0
    assert not project.exists("clean")
    assert not project.exists("report.txt")


def test_dag_of_a_cycle_is_an_error(project):
    project.flowfile("""\
        rule ping:
            input: "pong.txt"
            output: "ping.txt"
            shell: "cp {input} {output}"

        rule pong:
            input: "ping.txt"
            output: "pong.txt"
            shell: "cp {input} {output}"
        """)
    r = project.flow("dag")
    assert r.returncode == 2, r.output
    assert "ping" in r.stderr and "pong" in r.stderr
    assert "Traceback" not in r.output


def test_target_by_file_runs_only_that_file_and_its_dependencies(project):
    _diamond(project)
    assert sorted(project.would_run("counts/a.txt")) == ["count (s=a)", "extract (s=a)"]


def test_target_by_rule_name(project):
    _diamond(project)
    assert sorted(project.would_run("report")) == [
        "count (s=a)", "count (s=b)", "extract (s=a)", "extract (s=b)", "report",
    ]


def test_first_rule_is_the_default_target(project):
    _diamond(project)
    ran = project.ran("-j", "2")
    assert "all" not in ran  # it has no action; it only gathers
    assert sorted(ran) == ["count (s=a)", "count (s=b)", "extract (s=a)", "extract (s=b)", "report"]
    assert project.exists("report.txt")


def test_a_workflow_without_rules_has_nothing_to_do(project):
    project.flowfile("X = 1\n")
    r = project.run()
    assert "nothing to do" in r.stderr


def test_a_rule_without_wildcards_wins_over_one_with_them(project):
    project.flowfile('''
rule special:
    output: "out/special.txt"
    shell: "echo special > {output}"

rule generic:
    output: "out/{name}.txt"
    shell: "echo generic > {output}"
''')
    project.run("out/special.txt", "out/other.txt")
    assert (project.read("out/special.txt"), project.read("out/other.txt")) == ("special\n", "generic\n")


def test_two_rules_with_wildcards_that_make_a_file_are_still_ambiguous(project):
    project.flowfile('''
rule one:
    output: "out/{name}.txt"
    shell: "echo one > {output}"

rule two:
    output: "out/{stem}.txt"
    shell: "echo two > {output}"
''')
    r = project.flow("run", "out/x.txt")
    assert r.returncode == 2 and "rules one and two can both make out/x.txt" in r.stderr


def test_a_log_is_a_target_made_by_its_job(project):
    project.flowfile('''
rule make:
    output: "data/{s}.txt"
    log: "logs/{s}.log"
    shell: "echo data > {output}; echo made {wildcards.s} > {log}"
''')
    project.run("logs/a.log")
    assert project.read("logs/a.log") == "made a\n" and project.exists("data/a.txt")


LOG_AS_INPUT = '''
rule all:
    input: "summary/a.txt"

rule make:
    output: "data/{s}.txt"
    log: "logs/{s}.log"
    shell: "echo data > {output}; echo made {wildcards.s} > {log}"

rule summarize:
    input: data="data/{s}.txt", log="logs/{s}.log"
    output: "summary/{s}.txt"
    shell: "cat {input.data} {input.log} > {output}"
'''


def test_a_log_read_by_another_rule_is_up_to_date_on_the_next_run(project):
    project.flowfile(LOG_AS_INPUT)
    assert sorted(project.ran()) == ["make (s=a)", "summarize (s=a)"]
    assert project.read("summary/a.txt") == "data\nmade a\n"
    assert project.ran() == []


def test_a_deleted_log_makes_its_job_run_again(project):
    project.flowfile(LOG_AS_INPUT)
    project.run()
    os.remove(project.root / "logs" / "a.log")
    assert project.ran() == ["make (s=a)"]  # (the same log again: its reader is up to date)


def test_flow_clean_removes_logs_with_the_outputs(project):
    project.flowfile(LOG_AS_INPUT)
    project.run()
    assert project.flow("clean").returncode == 0
    assert not project.exists("logs/a.log") and not project.exists("data/a.txt")


def test_an_input_written_as_rules_name_output_is_made_by_that_rule(project):
    project.flowfile('''
rule exact:
    output: "data/{s}.txt"
    shell: "echo exact > {output}"

rule loose:
    output: "data/{s}.txt"
    shell: "echo loose > {output}"

ruleorder: loose > exact

rule use:
    input: rules.exact.output[0]
    output: "use/{s}.txt"
    shell: "cp {input} {output}"
''')
    project.run("use/a.txt", "data/b.txt")
    assert project.read("use/a.txt") == "exact\n"  # tied to rule exact
    assert project.read("data/b.txt") == "loose\n"  # elsewhere, ruleorder decides


def test_an_input_function_that_fails_names_the_rule_the_wildcards_and_the_line(project):
    project.flowfile('''
SAMPLES = {"a": "raw/a.txt"}

rule copy:
    input: lambda wildcards: SAMPLES[wildcards.sample]
    output: "out/{sample}.txt"
    shell: "cp {input} {output}"
''')
    r = project.flow("run", "out/zz.txt")
    assert r.returncode == 2, r.stderr
    assert "Flowfile:5:" in r.stderr
    assert "input function <lambda> of rule copy (sample=zz): no key 'zz'" in r.stderr
    assert "Traceback" not in r.stderr


def test_an_input_function_is_called_for_each_job(project):
    project.write("raw/a.txt", "A\n")
    project.write("raw/b.txt", "B\n")
    project.flowfile('''
def source(wildcards):
    return "raw/" + wildcards.sample + ".txt"

rule copy:
    input: source
    output: "out/{sample}.txt"
    shell: "cp {input} {output}"
''')
    project.run("out/a.txt", "out/b.txt")
    assert (project.read("out/a.txt"), project.read("out/b.txt")) == ("A\n", "B\n")
    assert project.ran("out/a.txt", "out/b.txt") == []


def test_two_jobs_that_would_write_the_same_file_are_refused_before_anything_runs(project):
    project.flowfile('''
rule all:
    input: "A/one.txt", "B/one.txt"

rule A:
    output: a="A/{sample}.txt", c="C/{sample}.txt"
    shell: "touch {output}"

rule B:
    output: b="B/{sample}.txt", c="C/{sample}.txt"
    shell: "touch {output}"
''')
    r = project.flow("run")
    assert r.returncode == 2, r.stderr
    assert "A (sample=one) and B (sample=one) would both write C/one.txt" in r.stderr
    assert not project.exists("A/one.txt") and not project.exists("B/one.txt")


def test_unpack_in_params_is_refused_at_load_time(project):
    project.flowfile('''
def named(wildcards):
    return {"a": 1}

rule a:
    output: "a.txt"
    params: unpack(named)
    shell: "touch {output}"
''')
    r = project.flow("run")
    assert r.returncode == 2 and "unpack() in params: of rule a" in r.stderr and "Flowfile:7:" in r.stderr


def test_a_string_resource_counted_by_the_resources_option_is_refused(project):
    project.flowfile('''
rule b:
    output: "b.txt"
    resources: foo="bar"
    shell: "touch {output}"
''')
    r = project.flow("run", "--resources", "foo=4")
    assert r.returncode == 2 and "gives resource foo the text 'bar'" in r.stderr
    assert not project.exists("b.txt")
    project.run()  # not counted: passed on
    assert project.exists("b.txt")


def test_a_failed_attempts_log_is_not_taken_for_the_next_ones(project):
    project.flowfile('''
rule a:
    output: "a.txt"
    log: "a.log"
    shell: "echo started >> {log}; test -e ok || exit 1; echo done >> {log}; touch {output}"
''')
    assert project.flow("run").returncode == 1
    assert project.read("a.log") == "started\n"  # (kept to be read)
    project.write("ok", "")
    project.run()
    assert project.read("a.log") == "started\ndone\n"


def test_touch_records_logs_too(project):
    project.flowfile('''
rule a:
    output: "a.txt"
    log: "a.log"
    shell: "touch {output}"
''')
    project.write("a.txt", "x")
    project.run("--touch")
    assert project.ran() == []


def test_rule_with_wildcards_as_target_by_name_is_an_error(project):
    _diamond(project)
    r = project.flow("run", "-n", "extract")
    assert r.returncode == 2, r.output
    assert "extract" in r.stderr and "wildcard" in r.stderr
    assert "Traceback" not in r.output


# which rule makes a file --------------------------------------------------------------

TWO_RULES = """\
{top}
rule number:
    output: "{number_out}"
{number_extra}    shell: "echo number > {{output}}"

rule word:
    output: "{word_out}"
{word_extra}    shell: "echo word > {{output}}"
"""


def _which(project, path: str) -> list[str]:
    return project.would_run(path)


def test_rule_level_wildcard_constraints_decide_which_rule_matches(project):
    project.flowfile(TWO_RULES.format(
        top="",
        number_out="{x}.txt", number_extra='    wildcard_constraints: x="[0-9]+"\n',
        word_out="{x}.txt", word_extra='    wildcard_constraints: x="[a-z]+"\n',
    ))
    assert _which(project, "123.txt") == ["number (x=123)"]
    assert _which(project, "abc.txt") == ["word (x=abc)"]


def test_global_wildcard_constraints_decide_which_rule_matches(project):
    project.flowfile(TWO_RULES.format(
        top='wildcard_constraints:\n    n="[0-9]+",\n    w="[a-z]+"\n',
        number_out="{n}.txt", number_extra="",
        word_out="{w}.txt", word_extra="",
    ))
    assert _which(project, "123.txt") == ["number (n=123)"]
    assert _which(project, "abc.txt") == ["word (w=abc)"]


def test_inline_wildcard_constraints_decide_which_rule_matches(project):
    project.flowfile(TWO_RULES.format(
        top="",
        number_out="{x,[0-9]+}.txt", number_extra="",
        word_out="{x,[a-z]+}.txt", word_extra="",
    ))
    assert _which(project, "123.txt") == ["number (x=123)"]
    assert _which(project, "abc.txt") == ["word (x=abc)"]
    project.run("-j", "1", "123.txt", "abc.txt")
    assert project.read("123.txt") == "number\n"
    assert project.read("abc.txt") == "word\n"


def test_rule_level_constraint_overrides_global_one(project):
    project.flowfile(TWO_RULES.format(
        top='wildcard_constraints:\n    x="[0-9]+"\n',
        number_out="{x}.txt", number_extra="",
        word_out="{x}.txt", word_extra='    wildcard_constraints: x="[a-z]+"\n',
    ))
    assert _which(project, "123.txt") == ["number (x=123)"]
    assert _which(project, "abc.txt") == ["word (x=abc)"]


def test_file_matching_no_constrained_pattern_has_no_rule(project):
    project.flowfile(TWO_RULES.format(
        top="",
        number_out="{x,[0-9]+}.txt", number_extra="",
        word_out="{x,[a-z]+}.txt", word_extra="",
    ))
    r = project.flow("run", "-n", "ABC-1.txt")
    assert r.returncode == 2, r.output
    assert "ABC-1.txt" in r.stderr


def test_existing_file_whose_rule_lacks_inputs_is_a_source_file(project):
    project.write("data/a.csv", "existing\n")
    project.flowfile("""\
        rule use:
            input: "data/a.csv"
            output: "out.txt"
            shell: "cp {input} {output}"

        rule generate:
            input: "raw/{x}.src"
            output: "data/{x}.csv"
            shell: "cp {input} {output}"
        """)
    assert project.ran("-j", "1") == ["use"]
    assert project.read("out.txt") == "existing\n"
    assert project.read("data/a.csv") == "existing\n"


def test_missing_file_whose_rule_lacks_inputs_is_an_error_naming_the_deepest_input(project):
    project.flowfile("""\
        rule use:
            input: "data/a.csv"
            output: "out.txt"
            shell: "cp {input} {output}"

        rule generate:
            input: "raw/{x}.src"
            output: "data/{x}.csv"
            shell: "cp {input} {output}"
        """)
    r = project.flow("run", "-n")
    assert r.returncode == 2, r.output
    assert "raw/a.src" in r.stderr and "generate" in r.stderr


SELF_FEEDING = """\
rule all:
    input: "f.txt"

rule unzip:
    input: "{x}.gz"
    output: "{x}"
    shell: "gunzip -c {input} > {output}"
"""


def _flow_within(project, seconds: float, *args: str):
    try:
        return project.flow(*args, timeout=seconds)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"flow {' '.join(args)} did not finish in {seconds}s") from None


def test_rule_whose_input_matches_its_own_output_uses_existing_source(project):
    # {x} <- {x}.gz: f.txt needs f.txt.gz, which exists; the rule must not be
    # applied again to f.txt.gz (and f.txt.gz.gz, ...), as Snakemake does not.
    (project.root / "f.txt.gz").write_bytes(subprocess.run(
        ["gzip", "-c"], input=b"hello\n", capture_output=True, check=True).stdout)
    project.flowfile(SELF_FEEDING)
    r = _flow_within(project, 6, "run", "-j", "1")
    assert r.returncode == 0, r.output
    assert project.read("f.txt") == "hello\n"


def test_rule_whose_input_matches_its_own_output_without_source_is_an_error(project):
    project.flowfile(SELF_FEEDING)
    r = _flow_within(project, 6, "run", "-n")
    assert r.returncode == 2, r.output
    assert "unzip" in r.stderr
    assert "Traceback" not in r.output


def test_a_rule_applied_again_down_its_own_path_builds_a_tree(project):
    # t/{p}.txt joins t/{p}0.txt .. t/{p}2.txt while p has 1 or 2 digits: the rule
    # reduce makes t/0.txt from t/00.txt, which it makes too (recursion, as in Snakemake).
    leaves = [f"0{a}{b}" for a in range(3) for b in range(3)]
    for p in leaves:
        project.write(f"src/{p}.txt", f"{p}\n")
    project.flowfile("""\
        rule reduce:
            input: expand("t/{{p}}{c}.txt", c=range(3))
            output: "t/{p}.txt"
            wildcard_constraints: p="[0-9]{1,2}"
            shell: "cat {input} > {output}"

        rule leaf:
            input: "src/{p}.txt"
            output: "t/{p}.txt"
            wildcard_constraints: p="[0-9]{3}"
            shell: "cp {input} {output}"
        """)
    r = project.flow("run", "-j", "2", "t/0.txt")
    assert r.returncode == 0, r.output
    assert project.read("t/0.txt") == "".join(f"{p}\n" for p in leaves)


def test_a_chain_of_one_rule_applied_to_its_own_outputs_builds(project):
    project.write("c/a.txt", "start\n")
    project.flowfile("""\
        rule step:
            input: "c/{x}.txt"
            output: "c/{x}a.txt"
            wildcard_constraints: x="a+"
            shell: "cat {input} > {output}; echo step >> {output}"
        """)
    r = project.flow("run", "c/aaaaa.txt")
    assert r.returncode == 0, r.output
    assert project.read("c/aaaaa.txt") == "start\n" + "step\n" * 4


def test_absolute_input_path_outside_the_working_directory_is_a_source_file(project, tmp_path_factory):
    ref = tmp_path_factory.mktemp("reference") / "genome.txt"
    ref.write_text("ACGT\n")
    project.flowfile(f"""\
        rule all:
            input: "out.txt"

        rule copy:
            input: "{ref}"
            output: "out.txt"
            shell: "cp {{input}} {{output}}"

        rule other:
            output: "x/{{name}}.txt"
            shell: "echo other > {{output}}"
        """)
    r = _flow_within(project, 6, "run", "-j", "1")
    assert r.returncode == 0, r.output
    assert project.read("out.txt") == "ACGT\n"


def test_absolute_target_that_no_rule_makes_is_an_error(project, tmp_path_factory):
    missing = tmp_path_factory.mktemp("elsewhere") / "nothing.txt"
    project.flowfile("""\
        rule a:
            output: "a/{name}.txt"
            shell: "echo a > {output}"
        """)
    r = _flow_within(project, 6, "run", "-n", str(missing))
    assert r.returncode == 2, r.output
    assert str(missing) in r.stderr
    assert "Traceback" not in r.output


# include:, workdir:, default_target: -----------------------------------------------


def test_include_path_is_relative_to_the_including_file(project):
    project.flowfile("""\
        include: "rules/more.flow"

        rule all:
            input: "more.txt", "extra.txt"
        """)
    project.write("rules/more.flow", """\
        include: "sub/extra.flow"

        rule more:
            output: "more.txt"
            shell: "echo more > {output}"
        """)
    project.write("rules/sub/extra.flow", """\
        rule extra:
            output: "extra.txt"
            shell: "echo extra > {output}"
        """)
    assert sorted(project.ran("-j", "1", "all")) == ["extra", "more"]
    assert project.read("more.txt") == "more\n"
    assert project.read("extra.txt") == "extra\n"


def test_rule_of_an_included_file_is_not_the_default_target_as_in_snakemake(project):
    project.flowfile("""\
        include: "rules/first.flow"

        rule second:
            output: "second.txt"
            shell: "echo second > {output}"
        """)
    project.write("rules/first.flow", """\
        rule first:
            output: "first.txt"
            shell: "echo first > {output}"
        """)
    assert project.ran("-j", "1") == ["second"]


def test_included_rule_is_the_default_target_when_the_main_file_has_no_rule(project):
    project.flowfile("""\
        include: "rules/first.flow"
        """)
    project.write("rules/first.flow", """\
        rule first:
            output: "first.txt"
            shell: "echo first > {output}"
        """)
    assert project.ran("-j", "1") == ["first"]


def test_workdir_runs_jobs_relative_to_that_directory(project):
    project.write("data/in.txt", "inside data\n")
    project.flowfile("""\
        workdir: "data"

        rule copy:
            input: "in.txt"
            output: "out/copy.txt"
            shell: "cp {input} {output}; pwd > {output}.pwd"
        """)
    project.run("-j", "1")
    assert project.read("data/out/copy.txt") == "inside data\n"
    assert project.read("data/out/copy.txt.pwd").strip().endswith("/data")
    assert not project.exists("out")


def test_script_path_is_relative_to_the_flowfile_when_workdir_comes_after_the_rule(project):
    # As in Snakemake, script: paths are relative to the Flowfile wherever workdir: is.
    project.write("scripts/make.py", """\
        with open(snakemake.output[0], "w") as f:
            f.write("from script\\n")
        """)
    project.flowfile("""\
        rule make:
            output: "made.txt"
            script: "scripts/make.py"

        workdir: "data"
        """)
    r = project.flow("run", "-j", "1")
    assert r.returncode == 0, r.output
    assert project.read("data/made.txt") == "from script\n"


def test_script_path_is_relative_to_the_flowfile_under_workdir(project):
    project.write("scripts/make.py", """\
        with open(snakemake.output[0], "w") as f:
            f.write("from script\\n")
        """)
    project.flowfile("""\
        workdir: "data"

        rule make:
            output: "made.txt"
            script: "scripts/make.py"
        """)
    project.run("-j", "1")
    assert project.read("data/made.txt") == "from script\n"


def test_default_target_overrides_first_rule(project):
    project.flowfile("""\
        rule first:
            output: "first.txt"
            shell: "echo first > {output}"

        rule chosen:
            output: "chosen.txt"
            default_target: True
            shell: "echo chosen > {output}"
        """)
    assert project.ran("-j", "1") == ["chosen"]
    assert not project.exists("first.txt")


# a large generated workflow --------------------------------------------------------------


def test_two_thousand_job_workflow_resolves_in_a_dry_run(project):
    project.flowfile("""\
        rule all:
            input: expand("out/{i}.txt", i=range(2000))

        rule make:
            output: "out/{i}.txt"
            shell: "echo {wildcards.i} > {output}"
        """)
    r = project.flow("run", "-n")
    assert r.returncode == 0, r.output
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("would run  ")]
    assert len(lines) == 2000
    labels = {ln[len("would run  "):].split(":", 1)[0] for ln in lines}
    assert labels == {f"make (i={i})" for i in range(2000)}  # `all` only gathers: nothing to run
    assert not project.exists("out")


def test_dag_escapes_quotes_backslashes_and_markup_in_wildcard_values(project):
    project.flowfile("""\
        rule a:
            output: "out/{name}.txt"
            shell: "touch {output}"
        """)
    name = 'a"b\\c<br>'
    dot = project.flow("dag", f"out/{name}.txt")
    assert dot.returncode == 0, dot.output
    assert 'name: a\\"b\\\\c<br>' in dot.stdout, dot.stdout
    mermaid = project.flow("dag", "--format", "mermaid", f"out/{name}.txt")
    assert "name: a#quot;b\\c#lt;br#gt;" in mermaid.stdout, mermaid.stdout


def test_include_of_itself_names_the_include_line(project):
    project.flowfile("""\
        rule a:
            output: "a.txt"
            shell: "touch {output}"

        include: "Flowfile"
        """)
    r = project.flow("run")
    assert r.returncode == 2
    assert "Flowfile:5:1" in r.stderr and "includes itself" in r.stderr, r.stderr


def test_ruleorder_naming_an_unknown_rule_names_its_line(project):
    project.flowfile("""\
        rule a:
            output: "a.txt"
            shell: "touch {output}"

        ruleorder: a > nosuch
        """)
    r = project.flow("run")
    assert r.returncode == 2
    assert "Flowfile:5:1" in r.stderr and "nosuch" in r.stderr, r.stderr


def test_file_inside_a_temp_directory_output_cannot_be_an_input(project):
    project.flowfile("""\
        rule r:
            input: "tdir/a.txt"
            output: "r.out"
            shell: "cat {input} > {output}"

        rule p:
            output: temp(directory("tdir"))
            shell: "mkdir {output}; echo a > {output}/a.txt"
        """)
    r = project.flow("run")
    assert r.returncode == 2
    assert "temp(directory())" in r.stderr and "tdir/a.txt" in r.stderr, r.stderr
