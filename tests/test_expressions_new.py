"""Snakefiles as people write them (issue 15): tab indentation, a directive
on the `rule NAME:` line, and the pure expressions of FLOWFILE.md's
"Expressions" section (comparisons, conditional expressions, f-strings,
comprehensions, lambdas and `def` input functions, `unpack()`, `os.path`),
each loaded from a real Flowfile and, where it matters, run by `flow run`."""

from __future__ import annotations

from pathlib import Path

import pytest
from flow.engine.load.loader import load
from flow.grammar import FlowfileError


def _load(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "Flowfile").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return load("Flowfile")


def _load_error(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> FlowfileError:
    with pytest.raises(FlowfileError) as info:
        _load(tmp_path, text, monkeypatch)
    return info.value


# ======================================================================= tabs

TAB_FLOWFILE = (
    'rule all:\n'
    '\tinput: "a.txt", "b.txt"\n'
    '\n'
    'rule a:\n'
    '\toutput: "a.txt"\n'
    '\tshell: "echo a > {output}"\n'
    '\n'
    'rule b:\n'
    '\tinput:\n'
    '\t\t"a.txt"\n'
    '\toutput: "b.txt"\n'
    '\trun:\n'
    '\t\twith open(input[0]) as src, open(output[0], "w") as dst:\n'
    '\t\t\tfor line in src:\n'
    '\t\t\t\tif line.strip():\n'
    '\t\t\t\t\tdst.write("b after " + line)\n'
    '\t\tprint("b done")\n'
)


def test_tab_indented_flowfile_runs(project):
    (project.root / "Flowfile").write_text(TAB_FLOWFILE)
    r = project.run()
    assert project.read("a.txt") == "a\n"
    assert project.read("b.txt") == "b after a\n"
    assert "b done" in r.output


def test_tab_indented_run_block_fails_at_its_line(project):
    (project.root / "Flowfile").write_text(
        'rule a:\n\toutput: "a.txt"\n\trun:\n\t\tx = 1\n\n\t\tif x:\n\t\t\traise ValueError("boom")\n')
    r = project.flow("run")
    assert r.returncode != 0
    assert 'Flowfile", line 7' in r.output and "ValueError: boom" in r.output


def test_inconsistent_tabs_are_refused_by_flow_run(project):
    (project.root / "Flowfile").write_text('rule a:\n    output: "a.txt"\n\tshell: "touch {output}"\n')
    r = project.flow("run")
    assert r.returncode == 2
    assert "Flowfile:3:2: error: inconsistent use of tabs and spaces in indentation" in r.stderr
    assert not project.exists("a.txt")


def test_tab_indented_flowfile_loads(tmp_path, monkeypatch):
    wf = _load(tmp_path, TAB_FLOWFILE, monkeypatch)
    assert list(wf.rules) == ["all", "a", "b"]
    assert [s.text for s in wf.rules["all"].inputs.specs] == ["a.txt", "b.txt"]


# ============================================================ rule-line directive


def test_directive_on_the_rule_line_loads_and_runs(project):
    project.flowfile('''\
        rule all: input: "a.txt", "b.txt"

        rule make:
            output: "{x}.txt"
            shell: "echo {wildcards.x} > {output}"
        ''')
    project.run()
    assert project.read("a.txt") == "a\n" and project.read("b.txt") == "b\n"


# ================================================================ expressions

from flow.engine.load.expressions import (  # noqa: E402
    MAX_CALLS,
    CheckpointPending,
    Env,
    EvalError,
    Function,
    Unpack,
    evaluate,
)
from flow.grammar import parse  # noqa: E402
from flow.rules import Namespace  # noqa: E402


def names_of(text: str, **bound) -> dict:
    """Evaluate a Flowfile's top-level assignments (and defs), as the loader does."""
    env = Env(names=dict(bound))
    for stmt in parse(text, "Flowfile").statements:
        env.names[stmt.name] = evaluate(stmt.value, env)
    return env.names


def value(text: str, **bound):
    return names_of(f"X = {text}\n", **bound)["X"]


def eval_error(text: str, **bound) -> EvalError:
    with pytest.raises(EvalError) as info:
        names_of(text, **bound)
    return info.value


W = Namespace({"sample": "a.x", "n": "3"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1 < 2 <= 2 != 3", True), ("3 > 2 > 2", False), ("'a' == 'a' and 1 >= 1.0", True),
        ("'a' in ['a', 'b']", True), ("'c' not in 'ab'", True), ("None is None", True),
        ("1 is not None", True), ("0 or '' or 'z'", "z"), ("1 and 0", 0), ("not []", True),
        ("'y' if 2 > 1 else 'n'", "y"), ("'y' if [] else 'n'", "n"),
        ("[x * 2 for x in range(5) if x % 2 == 0]", [0, 4, 8]),
        ("[(a, b) for a in 'xy' for b in range(2) if b]", [("x", 1), ("y", 1)]),
        ("{k: v for k, v in {'a': 1, 'b': 2}.items() if v > 1}", {"b": 2}),
        ("{x % 3 for x in range(10)}", {0, 1, 2}),
        ("sorted(x for x in [3, 1, 2])", [1, 2, 3]), ("sum(x for x in range(4))", 6),
        ("any(x > 2 for x in [1, 3])", True), ("all([])", True),
        ("list(map(lambda x: x + 1, [1, 2]))", [2, 3]),
        ("list(filter(lambda x: x, [0, 1, 2]))", [1, 2]),
        ("dict(zip(['a', 'b'], [1, 2]))", {"a": 1, "b": 2}),
        ("list(enumerate('ab'))", [(0, "a"), (1, "b")]), ("list(reversed([1, 2]))", [2, 1]),
        ("sorted(['bb', 'a'], key=len)", ["a", "bb"]), ("max([1, 3, 2], key=lambda x: -x)", 1),
        ("round(2.567, 1)", 2.6), ("set([1, 1])", {1}), ("tuple('ab')", ("a", "b")),
        ("[*range(2), *'ab']", [0, 1, "a", "b"]), ("{**{'a': 1}, 'b': 2}", {"a": 1, "b": 2}),
        ("[1, 2, 3][1:]", [2, 3]), ("'hello'[::-1]", "olleh"), ("'abc'[-1]", "c"),
        ("(lambda x, y=2: x * y)(3)", 6), ("-(+3)", -3),
        ("os.path.join('a', 'b', 'c.txt')", "a/b/c.txt"), ("os.path.basename('d/e.txt')", "e.txt"),
        ("os.path.dirname('d/e.txt')", "d"), ("os.path.splitext('e.tar.gz')", ("e.tar", ".gz")),
        ("'abc'.rstrip('c') + 'xab'.lstrip('x')", "abab"), ("'a.b.c'.rsplit('.', 1)", ["a.b", "c"]),
        ("'a=b'.partition('=')", ("a", "=", "b")), ("'banana'.count('a')", 3),
        ("[4, 5].index(5)", 1), ("'7'.zfill(3)", "007"), ("'x.txt'.removesuffix('.txt')", "x"),
        ("'pre_x'.removeprefix('pre_')", "x"), ("'12'.isdigit()", True), ("'ab'.upper().title()", "Ab"),
        ("{'a': 1}.get('b', 2)", 2), ("{1, 2}.union({3})", {1, 2, 3}),
    ],
)
def test_pure_expressions_evaluate_as_in_python(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("f'{N:>4}|{S!r}|{{x}}|{F:.2f}|{S:{N}}|'", "   3|'ab'|{x}|3.14|ab |"),
        ("f'{N=}'", "N=3"), ("f'{N + 1 = }'", "N + 1 = 4"), ("f'{S!s:^6}'", "  ab  "),
        ("f'results/{{sample}}.{S}'", "results/{sample}.ab"),
        ("f'{\", \".join(L)}'", "x, y"), ("rf'\\d{N}'", "\\d3"), ("f'a\\tb{N}'", "a\tb3"),
        ("f'''{N}\n{S}'''", "3\nab"), ("f'{L[0] if L else S}'", "x"),
    ],
)
def test_f_strings_evaluate_as_in_python(text, expected):
    assert value(text, N=3, S="ab", F=3.14159, L=["x", "y"]) == expected


def test_top_level_unpacking():
    got = names_of("A, B = 'x.y'.split('.')\nC, = [1]\nD = A + B\n")
    assert (got["A"], got["B"], got["C"], got["D"]) == ("x", "y", 1, "xy")
    e = eval_error("A, B = [1, 2, 3]\n")
    assert e.message == "cannot unpack 3 values into 2 names"
    assert (e.pos.line, e.pos.column) == (1, 8)


# -------------------------------------------------------------- functions


DEFS = '''\
PREFIX = "raw"

def sample_files(wildcards):
    """Both reads of a sample."""
    stem, ext = wildcards.sample.split(".")
    first, *rest = [stem, ext, "z"]
    return [f"{PREFIX}/{stem}_{r}.{ext}" for r in (1, 2)]

def choose(wildcards, threads=1):
    if wildcards.n == "1":
        return "one"
    elif int(wildcards.n) > threads:
        return "many"
    else:
        return "few"

def fact(n): return 1 if n <= 1 else n * fact(n - 1)

BY_NAME = lambda wildcards: wildcards["sample"].upper()
WITH_INPUT = lambda wildcards, input, output, threads, resources: (
    input.ref, output[0], threads, resources.mem_mb)
'''


def test_def_and_lambda_are_functions_bound_to_their_names():
    got = names_of(DEFS)
    fn = got["sample_files"]
    assert isinstance(fn, Function) and fn.name == "sample_files" and fn.param_names == ("wildcards",)
    assert fn.call(W) == ["raw/a_1.x", "raw/a_2.x"]
    assert isinstance(got["BY_NAME"], Function) and got["BY_NAME"].name == "<lambda>"
    assert got["BY_NAME"].call(W) == "A.X"
    assert got["fact"](5) == 120


def test_call_passes_wildcards_first_and_the_named_values_a_function_declares():
    got = names_of(DEFS)
    assert got["choose"].call(Namespace({"n": "1"})) == "one"
    assert got["choose"].call(Namespace({"n": "3"})) == "many"  # threads takes its default, 1
    assert got["choose"].call(Namespace({"n": "3"}), threads=4, input=["ignored"]) == "few"
    fn = got["WITH_INPUT"]
    assert fn.param_names == ("wildcards", "input", "output", "threads", "resources")
    inputs = Namespace({"ref": "ref.fa"})
    assert fn.call(W, input=inputs, output=["o.txt"], threads=2, resources=Namespace({"mem_mb": 100})) == (
        "ref.fa", "o.txt", 2, 100)


def test_call_without_a_value_for_a_parameter_says_which():
    fn = names_of(DEFS)["WITH_INPUT"]
    with pytest.raises(EvalError) as info:
        fn.call(W, input=[])
    assert info.value.message == "the lambda: no value for parameter `output`"
    assert (info.value.pos.line, info.value.pos.column) == (20, 14)


def test_a_function_closes_over_later_assignments_and_sees_them_at_call_time():
    got = names_of("F = lambda w: LATER + w.sample\nLATER = 'x/'\n")
    assert got["F"].call(W) == "x/a.x"


def test_lambda_inside_a_def_closes_over_its_locals():
    got = names_of("def f(w):\n    k = 10\n    g = lambda x: x + k\n    return g(1)\n")
    assert got["f"](None) == 11


def test_comprehension_variables_do_not_leak():
    got = names_of("def f(w):\n    x = 'kept'\n    y = [x for x in 'ab']\n    return x\n")
    assert got["f"](None) == "kept"


def test_error_inside_a_function_is_at_the_failing_expression():
    got = names_of("D = {'a': 1}\n\ndef f(wildcards):\n    k = wildcards.sample\n    return D[k]\n")
    with pytest.raises(EvalError) as info:
        got["f"].call(W)
    e = info.value
    assert e.message == "no key 'a.x'" and "Known keys: 'a'" in e.hint
    assert (e.pos.file, e.pos.line, e.pos.column) == ("Flowfile", 5, 14)


def test_missing_wildcard_names_the_wildcards_there_are():
    fn = names_of("F = lambda wildcards: wildcards.smaple\n")["F"]
    with pytest.raises(EvalError) as info:
        fn.call(W)
    assert info.value.message == "Namespace has no attribute `smaple`"
    assert info.value.hint == "Its names: sample, n."
    assert (info.value.pos.line, info.value.pos.column) == (1, 23)


def test_unknown_name_and_unknown_function_inside_a_function():
    got = names_of("F = lambda w: nothing\nG = lambda w: helper(w)\n")
    with pytest.raises(EvalError) as info:
        got["F"].call(W)
    assert info.value.message == "name `nothing` is not defined"
    with pytest.raises(EvalError) as info:
        got["G"].call(W)
    assert info.value.message == "unknown function `helper`" and "declarative" in info.value.hint


def test_wrong_number_of_arguments_is_an_error_at_the_call():
    e = eval_error("F = lambda w: w\nX = F(1, 2)\n")
    assert e.message == "the lambda takes 1 argument, not 2"
    assert (e.pos.line, e.pos.column) == (2, 5)


def test_function_without_parameters_cannot_take_wildcards():
    fn = names_of("F = lambda: 'x'\n")["F"]
    with pytest.raises(EvalError) as info:
        fn.call(W)
    assert "takes no parameters" in info.value.message


def test_unpack_wraps_an_input_function():
    got = names_of("def named(w):\n    return {'r1': w.sample + '_1', 'r2': w.sample + '_2'}\nX = unpack(named)\n")
    assert isinstance(got["X"], Unpack) and got["X"].fn is got["named"]
    assert got["X"].fn.call(W) == {"r1": "a.x_1", "r2": "a.x_2"}
    e = eval_error("X = unpack('a.txt')\n")
    assert "unpack() takes an input function" in e.message


def test_double_star_wildcards_in_expand():
    fn = names_of("F = lambda wildcards: expand('{sample}/{part}.txt', part=[1, 2], **wildcards)\n")["F"]
    assert fn.call(Namespace({"sample": "s1"})) == ["s1/1.txt", "s1/2.txt"]


def test_wildcards_by_subscript_and_get():
    fn = names_of("F = lambda w: [w['sample'], w.get('nope', 'dflt'), w[0]]\n")["F"]
    assert fn.call(W) == ["a.x", "dflt", "a.x"]


def test_os_bound_to_the_module_still_gives_only_the_pure_helpers():
    import os

    assert value("os.path.join('a', 'b')", os=os) == "a/b"
    assert value("os.path.sep + os.sep", os=os) == "//"
    e = eval_error("X = os.environ\n", os=os)
    assert e.message == "`os.environ` is not available in a Flowfile expression"


# ----------------------------------------------------------------- limits


def test_recursion_is_bounded_at_the_call():
    e = eval_error("def f(n): return f(n + 1)\nX = f(0)\n")
    assert f"more than {MAX_CALLS} deep" in e.message
    assert e.pos.line == 1


def test_comprehension_work_is_bounded():
    e = eval_error("X = [1 for a in range(10000) for b in range(10000) for c in range(100)]\n")
    assert "steps" in e.message


def test_exponential_recursion_is_bounded():
    e = eval_error("def f(n): return 0 if n == 0 else f(n - 1) + f(n - 1)\nX = f(40)\n")
    assert "steps" in e.message


@pytest.mark.parametrize(
    "text",
    ["X = ''.join(['x' * 1000000] * 20)", "X = ('a' * 1000000).replace('a', 'aaaaaaaaaaaaaaaaaaaa')",
     "X = 'a'.ljust(100000000)", "X = '{:{}}'.format('a', 100000000)", "X = f'{1:{100000000}}'",
     "X = list(range(10000000)) + [1]", "X = [[1] * 10000000 for x in range(3)][0] + [1]"],
)
def test_huge_values_are_refused_before_they_are_made(text):
    with pytest.raises(EvalError):
        names_of(text + "\n")


def test_huge_integers_are_refused():
    e = eval_error("def sq(n, x): return x if n == 0 else sq(n - 1, x * x)\nX = sq(40, 3)\n")
    assert "bits" in e.message


def test_format_cannot_reach_private_attributes():
    e = eval_error("X = '{0.__class__}'.format(1)\n")
    assert "private" in e.message


def test_a_list_mutator_cannot_be_reached_as_a_value():
    e = eval_error("X = [1].append\n")
    assert e.message == "list has no attribute `append`"


# ------------------------------------------------------------- checkpoints


def test_glob_inside_a_checkpoint_output_waits_in_a_function_too(tmp_path, monkeypatch):
    wf = _load(tmp_path, '''\
checkpoint split:
    output: directory("parts")
    shell: "mkdir -p parts"

def parts(wildcards):
    found = glob_wildcards("parts/{i}.txt")
    return expand("parts/{i}.txt", i=found.i)

EARLY = glob_wildcards("parts/{i}.txt").i

rule all:
    input: "parts"
''', monkeypatch)
    with pytest.raises(CheckpointPending) as info:
        wf.env.names["parts"].call(Namespace({}))
    assert info.value.paths == {"parts"}
    with pytest.raises(CheckpointPending):
        evaluate(parse("X = EARLY\n", "Flowfile").statements[0].value, wf.env)


# ------------------------------------------------------- real Flowfiles


def test_flowfile_with_expressions_and_functions_loads_and_runs(project):
    project.flowfile('''\
        SAMPLES = ["a", "b", "c"]
        KEEP = [s for s in SAMPLES if s != "c"]
        EXT = "txt" if len(KEEP) == 2 else "dat"
        A, B = KEEP

        def label(wildcards):
            """The label of one sample."""
            up = wildcards.s.upper()
            if up == "A":
                return f"first:{up}"
            return f"other:{up}"

        rule all: input: [f"out/{s}.{EXT}" for s in KEEP] + [os.path.join("out", B + ".lbl")]

        rule make:
            output: "out/{s}.txt"
            params: tag=lambda wildcards: wildcards.s * 2
            shell: "echo {wildcards.s} > {output}"

        rule lbl:
            output: "out/{s}.lbl"
            shell: "echo {wildcards.s} > {output}"
        ''')
    project.run()
    assert project.read("out/a.txt") == "a\n" and project.read("out/b.txt") == "b\n"
    assert project.read("out/b.lbl") == "b\n" and not project.exists("out/c.txt")


def test_top_level_functions_are_in_the_workflows_names(tmp_path, monkeypatch):
    wf = _load(tmp_path, DEFS + 'rule all:\n    input: "x"\n', monkeypatch)
    assert isinstance(wf.env.names["sample_files"], Function)
    assert wf.env.names["sample_files"].call(W) == ["raw/a_1.x", "raw/a_2.x"]


def test_effects_are_refused_at_load_with_where_they_belong(tmp_path, monkeypatch):
    e = _load_error(tmp_path, 'def f(w):\n    open("x", "w")\n    return 1\n', monkeypatch)
    assert (e.line, e.column, e.message) == (2, 5, "unknown function `open`")
    e = _load_error(tmp_path, 'X = 1\nif X:\n    Y = 2\n', monkeypatch)
    assert (e.line, e.column) == (2, 1)
    assert "run:" in e.hint and "script:" in e.hint


@pytest.mark.parametrize(
    ("text", "expected"),
    [("'%s.%d' % ('a', 3)", "a.3"), ("'{name}.%s.x' % 'c'", "{name}.c.x"), ("'%(k)s' % {'k': 1}", "1"),
     ("'%05.1f' % 2.25", "002.2"), ("['{n}.%s' % c for c in 'ab']", ["{n}.a", "{n}.b"])],
)
def test_percent_formatting_as_in_python(text, expected):
    assert value(text) == expected


@pytest.mark.parametrize("text", ["'%*d' % (100000000, 1)", "'%99999d' % 1", "'%.99999f' % 1.0"])
def test_percent_formatting_cannot_make_huge_strings(text):
    with pytest.raises(EvalError):
        value(text)


def test_nested_def_closes_over_the_outer_functions_values():
    got = names_of("def some_a(suffix):\n    def inner(wildcards):\n        return wildcards.sample + suffix\n"
                   "    return inner\nF = some_a('.in')\n")
    assert isinstance(got["F"], Function) and got["F"].call(W) == "a.x.in"


def test_bare_generator_directive_loads_as_a_list(tmp_path, monkeypatch):
    wf = _load(tmp_path, "DATASETS = '1 2'.split()\n\nrule all:\n\tinput: '{ds}.bam'.format(ds=ds) for ds in DATASETS\n"
                         "\nrule make:\n\toutput: '{x}.bam'\n\tshell: 'touch {output}'\n", monkeypatch)
    assert [s.text for s in wf.rules["all"].inputs.specs] == ["1.bam", "2.bam"]


def test_shell_executable_and_docstring_runs_as_under_snakemake(project):
    project.flowfile('''\
        """A workflow as Snakemake's own tests write them."""
        shell.executable("bash")

        (IDS,) = [["1", "2"]]

        rule all:
            input: expand("out/{i}.txt", i=IDS)

        rule make:
            output: "out/{i}.txt"
            shell: "echo %s > {output}" % "made"
        ''')
    project.run()
    assert project.read("out/1.txt") == "made\n" and project.read("out/2.txt") == "made\n"


def test_functions_go_to_a_worker_with_the_names_they_close_over():
    import pickle

    got = names_of(DEFS)
    copies = pickle.loads(pickle.dumps({"f": got["sample_files"], "g": got["fact"]}))
    assert copies["f"].call(W) == ["raw/a_1.x", "raw/a_2.x"]
    assert copies["g"](4) == 24
    nested = names_of("def outer(k):\n    def inner(w):\n        return w.sample + k\n    return inner\n"
                      "F = outer('!')\n")["F"]
    assert pickle.loads(pickle.dumps(nested)).call(W) == "a.x!"


def test_a_run_block_may_call_the_flowfiles_functions(project):
    project.flowfile('''\
        PREFIX = "L-"

        def label(wildcards):
            return PREFIX + wildcards.s.upper()

        rule all:
            input: "out/a.txt"

        rule make:
            output: "out/{s}.txt"
            run:
                with open(output[0], "w") as f:
                    f.write(label(wildcards) + "\\n")
        ''')
    project.run()
    assert project.read("out/a.txt") == "L-A\n"


@pytest.mark.parametrize(
    "text",
    ["X = [[1] * 10000000 for x in range(1000)]", "X = ['x' * 10000000 for x in range(1000)]",
     "X = sum([[1] * 1000000] * 100, [])"],
)
def test_many_large_values_are_refused(text):
    with pytest.raises(EvalError):
        names_of(text + "\n")


def test_engine_objects_answer_attributes_and_methods_through_their_hooks():
    class Checkpoint(Namespace):  # even a NamedList: its hooks come first
        def flow_attribute(self, name):
            if name != "output":
                raise AttributeError(f"checkpoint has no `{name}`")
            return ["parts/x"]

        def flow_method(self, name):
            return (lambda **wildcards: self) if name == "get" else None

    cp = Checkpoint({"output": "ignored"})
    fn = names_of("F = lambda wildcards: CP.get(**wildcards).output[0]\n", CP=cp)["F"]
    assert fn.call(W) == "parts/x"
    e = eval_error("X = CP.input\n", CP=cp)
    assert e.message == "checkpoint has no `input`"
    e = eval_error("X = CP.items()\n", CP=cp)
    assert e.message == "Checkpoint has no method `items` here"


def test_a_function_that_map_cannot_call_is_a_flowfile_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "Flowfile").write_text("X = list(map(lambda: 1, [1]))\n")
    with pytest.raises(FlowfileError, match=r"map\(\): "):
        load("Flowfile")
