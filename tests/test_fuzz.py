"""Bad input, fuzzed: no Flowfile is answered with anything but a message.

Hypothesis generates Flowfiles (random text and bytes, and realistic ones
mutated: truncated, colons and quotes deleted, indentation broken, brackets
nested deep, huge literals, unknown directives, Python statements) and checks
that parsing either succeeds or raises ``FlowfileError`` with a line and a
column inside the file, within a time bound; and that loading what parses
raises nothing but flow's own errors.

CI runs ``FLOW_FUZZ_EXAMPLES`` (default 150) cases per property; by hand, e.g.
``FLOW_FUZZ_EXAMPLES=20000 pytest tests/test_fuzz.py --hypothesis-show-statistics``."""

from __future__ import annotations

import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

from flow.engine.errors import UserError
from flow.engine.graph.dag import DAG
from flow.engine.load.loader import load
from flow.grammar import FlowfileError, ast, parse, parse_file
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("FLOW_FUZZ_EXAMPLES", "150"))
SECONDS_PER_FILE = 10  # far above any honest parse; a hang or a blow-up exceeds it
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FLOW_FUZZ_SEED" not in os.environ,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [
    (ROOT / "examples/sales/Flowfile").read_text(),
    '''\
configfile: "config.yaml"
SAMPLES = ["a", "b"]
wildcard_constraints:
    s="[a-z]+"

rule all:
    input: expand("out/{s}.txt", s=SAMPLES)

rule make:
    input: lambda wildcards: f"in/{wildcards.s}.txt"
    output: temp("mid/{s}.txt"), log="logs/{s}.log"
    params: n=len(SAMPLES) * 2, tag=config.get("tag", "x")
    threads: 2
    resources: mem_mb=100
    shell: "cp {input} {output[0]} 2> {log}"

checkpoint split:
    output: directory("parts")
    run:
        import os
        os.makedirs(output[0])
        for i in range(3):
            open(f"{output[0]}/{i}.txt", "w").write(str(i))

rule consolidate:
    input: "mid/{s}.txt"
    output: "out/{s}.parquet"
    schema: {"s": "VARCHAR", "n": "BIGINT"}
    duckdb: """
        COPY (SELECT * FROM read_csv('{input}')) TO '{output}' (FORMAT parquet)
    """

ruleorder: make > consolidate
include: "more.flow"
''',
    '''\
rule a:
    output: "a.txt"
    message: "making {output}"
    priority: 3
    shell:
        """
        echo a > {output}
        """
''',
]

PIECES = [
    ":", '"', "'", '"""', "(", ")", "[", "]", "{", "}", ",", "=", "\n", "    ", "\t", "\\",
    "#", "rule ", "checkpoint ", "run:", "shell:", "input:", "output:", "params:", "expand(",
    "lambda wildcards: ", "import os\n", "def f():\n    return 1\n", "class C:\n    pass\n",
    "@decorator\n", "with open('x') as f:\n", "f'{x}'", "x := 1", "*args", "**kw", "yield 1",
    "global x", "unknown_directive: 1\n", "\ufeff", "\r", "\r\n", "\x0c", "\u2028", "é", "🙂",
    "0x", "1e", "1_0", "0o9", "'\\N{bogus}'", "b'x'", "r'\\'", "u'x'", "None", "...",
]


@contextmanager
def _time_bound(seconds: int):
    """Interrupt the main thread after ``seconds``: a parse must never hang."""
    def expired(signum, frame):
        raise TimeoutError(f"took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _check_parse(text: str) -> ast.Module | None:
    """Parse ``text``: a module, or None after a well-formed FlowfileError."""
    try:
        with _time_bound(SECONDS_PER_FILE):
            return parse(text, "Flowfile")
    except FlowfileError as e:
        _check_position(e, text)
        return None


def _check_position(e: FlowfileError, text: str) -> None:
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    assert isinstance(e.line, int) and isinstance(e.column, int), f"no line/column: {e.render()}"
    assert 1 <= e.line <= len(lines), f"line {e.line} of {len(lines)}: {e.render()}"
    assert 1 <= e.column <= len(lines[e.line - 1]) + 1, f"column {e.column}: {e.render()}"
    assert e.message and "Traceback" not in e.render()


@st.composite
def mutated_flowfiles(draw) -> str:
    """A realistic Flowfile with a few random edits."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "delete", "insert", "truncate", "strip", "indent", "nest",
                                     "huge", "duplicate"]))
        at = draw(st.integers(0, len(text)))
        if kind == "cut":  # delete a span
            text = text[:at] + text[at + draw(st.integers(1, 40)):]
        elif kind == "delete":  # delete every colon, quote or bracket of one line
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            for ch in draw(st.sampled_from([":", '"', "'", "()", "[]{}", " "])):
                lines[i] = lines[i].replace(ch, "")
            text = "\n".join(lines)
        elif kind == "insert":
            piece = draw(st.sampled_from(PIECES) | st.text(max_size=8))
            text = text[:at] + piece + text[at:]
        elif kind == "truncate":
            text = text[:at]
        elif kind == "strip":  # reindent one line
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i] = draw(st.sampled_from(["", " ", "  ", "\t", "        ", "            "])) + lines[i].lstrip()
            text = "\n".join(lines)
        elif kind == "indent":  # indent or dedent a run of lines
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            j = draw(st.integers(i, len(lines)))
            pad = draw(st.sampled_from(["    ", " ", "\t"]))
            lines[i:j] = [pad + ln if draw(st.booleans()) else ln.removeprefix("    ") for ln in lines[i:j]]
            text = "\n".join(lines)
        elif kind == "nest":
            depth = draw(st.sampled_from([50, 500, 5000]))
            o, c = draw(st.sampled_from([("(", ")"), ("[", "]"), ("{", "}"), ("-", ""), ("not ", ""),
                                         ("f(", ")"), ("[1, ", "]"), ("{'a': ", "}")]))
            text = text[:at] + o * depth + "1" + c * depth + text[at:]
        elif kind == "huge":
            piece = draw(st.sampled_from(["9" * 200_000, "'" + "a" * 500_000 + "'", "x" * 100_000,
                                          "1 + " * 20_000 + "1", "\n" * 100_000, "# " + "c" * 300_000]))
            text = text[:at] + piece + text[at:]
        else:
            lines = text.split("\n")
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i] = lines[i:i + draw(st.integers(1, 10))]
            text = "\n".join(lines)
    return text


@FUZZ
@given(st.text(max_size=2000))
def test_random_text_parses_or_fails_with_a_position(text):
    _check_parse(text)


@FUZZ
@given(st.lists(st.sampled_from(PIECES) | st.text(max_size=6), max_size=80).map("".join))
def test_random_flowfile_tokens_parse_or_fail_with_a_position(text):
    _check_parse(text)


@FUZZ
@given(mutated_flowfiles())
def test_mutated_flowfiles_parse_or_fail_with_a_position(text):
    _check_parse(text)


@FUZZ
@given(st.binary(max_size=2000) | mutated_flowfiles().map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_random_bytes_in_a_file_parse_or_fail_with_a_position(data):
    with tempfile.TemporaryDirectory() as d:
        path = Path(d, "Flowfile")
        path.write_bytes(data)
        try:
            with _time_bound(SECONDS_PER_FILE):
                parse_file(path)
        except FlowfileError as e:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = data.decode("utf-8", "replace")
            _check_position(e, text)


@FUZZ
@given(mutated_flowfiles())
def test_mutated_flowfiles_that_parse_load_or_fail_with_flows_own_error(text):
    with tempfile.TemporaryDirectory() as d:
        Path(d, "Flowfile").write_text(text, encoding="utf-8", errors="surrogatepass")
        Path(d, "config.yaml").write_text("years: [2023, 2024]\ncurrency: EUR\n")
        cwd = os.getcwd()
        os.chdir(d)
        try:
            with _time_bound(SECONDS_PER_FILE):
                DAG(load("Flowfile")).targets([])
        except (UserError, FlowfileError) as e:
            assert "Traceback" not in (e.render() if hasattr(e, "render") else str(e))
        finally:
            os.chdir(cwd)
