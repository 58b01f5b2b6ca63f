"""The Flowfile parser (flow.grammar): what FLOWFILE.md's "Top level",
"Expressions" and "Rules" sections allow parses into the expected AST, and
everything else is refused with a FlowfileError at the right line and column."""

from __future__ import annotations

import textwrap
import tracemalloc

import pytest
from flow.grammar import BUILTIN_FUNCTIONS, FlowfileError, ast, parse, parse_file
from flow.grammar.parser import MAX_BRACKETS, MAX_DEPTH

# ---------------------------------------------------------------- helpers


def _src(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def statements(text: str) -> tuple:
    return parse(_src(text), "Flowfile").statements


def only(text: str):
    stmts = statements(text)
    assert len(stmts) == 1, stmts
    return stmts[0]


def value_of(expr_text: str) -> ast.Expr:
    """The AST of one expression, via ``X = <expr>``."""
    stmt = only(f"X = {expr_text}\n")
    assert isinstance(stmt, ast.Assign)
    return stmt.value


def const(expr_text: str) -> object:
    expr = value_of(expr_text)
    assert isinstance(expr, ast.Const), expr
    return expr.value


def rule_of(text: str) -> ast.Rule:
    stmt = only(text)
    assert isinstance(stmt, ast.Rule)
    return stmt


def consts(args: ast.Arguments) -> tuple[list, dict]:
    """Positional and named entries of a directive whose values are constants."""
    pos = []
    for e in args.positional:
        assert isinstance(e, ast.Const), e
        pos.append(e.value)
    named = {}
    for k in args.named:
        assert isinstance(k.value, ast.Const), k
        named[k.name] = k.value.value
    return pos, named


def error_of(text: str, dedent: bool = True) -> FlowfileError:
    with pytest.raises(FlowfileError) as info:
        parse(_src(text) if dedent else text, "Flowfile")
    return info.value


def where(e: FlowfileError) -> tuple[str | None, int | None, int | None]:
    return e.file, e.line, e.column


def pos0() -> ast.Pos:
    return ast.Pos("x", 0, 0)


def c(v) -> ast.Const:
    return ast.Const(pos0(), v)


def n(name: str) -> ast.Name:
    return ast.Name(pos0(), name)


# ============================================================== top level


def test_configfile_directive_holds_its_path():
    d = only('configfile: "config.yaml"\n')
    assert isinstance(d, ast.Directive)
    assert d.name == "configfile"
    assert consts(d.value) == (["config.yaml"], {})
    assert (d.pos.line, d.pos.column) == (1, 1)


def test_include_directive_holds_its_path():
    d = only('include: "rules/more.flow"\n')
    assert (d.name, consts(d.value)) == ("include", (["rules/more.flow"], {}))


def test_workdir_directive_holds_its_path():
    d = only('workdir: "data"\n')
    assert (d.name, consts(d.value)) == ("workdir", (["data"], {}))


def test_ruleorder_lists_rules_highest_priority_first():
    r = only("ruleorder: b > a > c\n")
    assert isinstance(r, ast.RuleOrder)
    assert r.names == ("b", "a", "c")


def test_ruleorder_accepts_a_trailing_comment():
    r = only("ruleorder: special > generic  # prefer the special rule\n")
    assert r.names == ("special", "generic")


def test_global_wildcard_constraints_as_an_indented_block():
    d = only(
        """
        wildcard_constraints:
            year="[0-9]{4}",
            sample="[a-z]+"
        """
    )
    assert d.name == "wildcard_constraints"
    assert consts(d.value) == ([], {"year": "[0-9]{4}", "sample": "[a-z]+"})


def test_localrules_takes_bare_rule_names():
    d = only("localrules: all, report\n")
    assert d.name == "localrules"
    assert d.value.positional == (n("all"), n("report"))


def test_assignments_bind_names_in_order():
    stmts = statements(
        """
        YEARS = [2022, 2023, 2024]        # assignment of an expression
        OUT = "results"
        """
    )
    assert [s.name for s in stmts] == ["YEARS", "OUT"]
    assert stmts[0].value == ast.ListExpr(pos0(), (c(2022), c(2023), c(2024)))
    assert stmts[1].value == c("results")
    assert (stmts[1].pos.line, stmts[1].pos.column) == (2, 1)


def test_comment_lines_and_trailing_comments_are_ignored():
    stmts = statements(
        """
        # a comment on its own line
        A = 1  # a trailing comment with "quotes" and 'apostrophes'
            # an indented comment line

        B = 2
        """
    )
    assert [(s.name, s.value) for s in stmts] == [("A", c(1)), ("B", c(2))]


def test_comment_at_column_zero_inside_a_rule_does_not_end_it():
    r = rule_of(
        """
        rule a:
            output: "x"
        # commented out: threads: 4
            shell: "touch {output}"
        """
    )
    assert [d.name for d in r.directives] == ["output", "shell"]


def test_empty_file_has_no_statements():
    assert parse("", "Flowfile").statements == ()


def test_file_of_only_comments_has_no_statements():
    assert parse("# nothing\n\n# here\n", "Flowfile").statements == ()


def test_last_line_without_newline_parses():
    assert parse('A = "x"', "Flowfile").statements[0].value == c("x")


def test_crlf_line_endings_parse_with_the_same_lines():
    stmts = parse('A = 1\r\nrule a:\r\n    output: "x"\r\n', "Flowfile").statements
    assert stmts[0].value == c(1)
    assert stmts[1].name == "a"
    assert stmts[1].directives[0].pos.line == 3


def test_statement_positions_carry_the_file_name():
    module = parse('A = 1\n\nrule a:\n    output: "x"\n', "dir/Flowfile")
    assert module.path == "dir/Flowfile"
    assign, rule = module.statements
    assert assign.pos == ast.Pos("dir/Flowfile", 1, 1)
    assert rule.pos == ast.Pos("dir/Flowfile", 3, 1)
    assert rule.directives[0].pos == ast.Pos("dir/Flowfile", 4, 5)


# ============================================================= expressions


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'single'", "single"),
        ('"double"', "double"),
        ('"tab\\there"', "tab\there"),
        ("u'unicode prefix'", "unicode prefix"),
        ("'it\\'s'", "it's"),
        ('"{sample}/{{literal}}"', "{sample}/{{literal}}"),
    ],
)
def test_string_literal(literal, value):
    assert const(literal) == value


def test_raw_string_keeps_backslashes():
    assert const(r'r"\d+\.txt"') == r"\d+\.txt"


def test_uppercase_raw_prefix_is_accepted():
    assert const(r"R'\w'") == r"\w"


def test_triple_quoted_string_spans_lines():
    stmt = only(
        '''
        X = """first
        second"""
        '''
    )
    assert stmt.value == c("first\nsecond")


def test_triple_single_quoted_string():
    assert const("'''a \"quoted\" word'''") == 'a "quoted" word'


def test_adjacent_string_literals_concatenate_on_one_line():
    assert const("'a' \"b\" '''c'''") == "abc"


def test_adjacent_string_literals_concatenate_across_lines_inside_brackets():
    stmt = only(
        """
        X = ("results/"
             "{sample}"
             ".txt")
        """
    )
    assert stmt.value == c("results/{sample}.txt")


def test_raw_and_plain_literals_concatenate():
    assert const(r"r'\d' '\t'") == "\\d\t"


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("42", 42),
        ("1_000", 1000),
        ("0x1F", 31),
        ("2.5", 2.5),
        ("1.5e3", 1500.0),
        ("True", True),
        ("False", False),
        ("None", None),
    ],
)
def test_number_and_constant_literal(literal, value):
    got = const(literal)
    assert got == value and type(got) is type(value)


def test_negative_number_is_unary_minus():
    assert value_of("-2") == ast.UnaryOp(pos0(), "-", c(2))


def test_list_literal_with_trailing_comma():
    assert value_of("[1, 'a',]") == ast.ListExpr(pos0(), (c(1), c("a")))


def test_empty_list():
    assert value_of("[]") == ast.ListExpr(pos0(), ())


def test_tuple_literals():
    assert value_of("(1, 2)") == ast.TupleExpr(pos0(), (c(1), c(2)))
    assert value_of("(1,)") == ast.TupleExpr(pos0(), (c(1),))
    assert value_of("()") == ast.TupleExpr(pos0(), ())


def test_parenthesised_expression_is_not_a_tuple():
    assert value_of("(1)") == c(1)


def test_dict_literal():
    assert value_of('{"a": 1, 2: [3], "n": None}') == ast.DictExpr(
        pos0(),
        ((c("a"), c(1)), (c(2), ast.ListExpr(pos0(), (c(3),))), (c("n"), c(None))),
    )


def test_multiline_list_with_comments_inside_brackets():
    stmt = only(
        """
        X = [
            "a",  # first
            # a comment line inside the brackets
            "b",
        ]
        """
    )
    assert stmt.value == ast.ListExpr(pos0(), (c("a"), c("b")))


def test_backslash_continues_a_line():
    stmt = only("X = 1 + \\\n    2\n")
    assert stmt.value == ast.BinOp(pos0(), "+", c(1), c(2))


def test_chained_subscripts_of_config():
    assert value_of('config["db"]["path"]') == ast.Subscript(
        pos0(), ast.Subscript(pos0(), n("config"), c("db")), c("path")
    )


def test_attribute_of_a_call_result():
    assert value_of('glob_wildcards("raw/{sample}.csv").sample') == ast.Attribute(
        pos0(), ast.Call(pos0(), n("glob_wildcards"), (c("raw/{sample}.csv"),), ()), "sample"
    )


def test_multiplication_binds_tighter_than_addition():
    assert value_of("A + B * 2") == ast.BinOp(
        pos0(), "+", n("A"), ast.BinOp(pos0(), "*", n("B"), c(2))
    )


def test_addition_is_left_associative():
    assert value_of("A + B + C") == ast.BinOp(
        pos0(), "+", ast.BinOp(pos0(), "+", n("A"), n("B")), n("C")
    )


def test_call_with_positional_and_keyword_arguments():
    assert value_of('expand("{a}_{b}", zip, a=A, b=B)') == ast.Call(
        pos0(),
        n("expand"),
        (c("{a}_{b}"), n("zip")),
        (ast.Keyword("a", n("A")), ast.Keyword("b", n("B"))),
    )


def test_call_without_arguments():
    assert value_of("list()") == ast.Call(pos0(), n("list"), (), ())


def test_pure_method_call_on_config():
    assert value_of('config.get("threads", 4)') == ast.Call(
        pos0(), ast.Attribute(pos0(), n("config"), "get"), (c("threads"), c(4)), ()
    )


@pytest.mark.parametrize(
    "call",
    [
        'expand("{x}", x=[1])',
        'glob_wildcards("{x}.txt")',
        'temp("a")',
        'protected("a")',
        'directory("a")',
        'ancient("a")',
        'multiext("a", ".b", ".c")',
        "range(3)",
        "len(A)",
        "str(1)",
        'int("2")',
        "sorted(A)",
    ],
)
def test_builtin_function_of_the_contract_parses_as_a_call(call):
    expr = value_of(call)
    assert isinstance(expr, ast.Call)
    assert expr.func.id == call.split("(")[0]


def test_every_builtin_of_the_contract_is_known():
    contract = {"expand", "glob_wildcards", "temp", "protected", "directory", "ancient",
                "multiext", "range", "len", "str", "int", "sorted"}
    assert contract <= BUILTIN_FUNCTIONS


def test_expression_positions_point_at_the_expression():
    stmt = only('X = [1, config["a"]]\n')
    item = stmt.value.items[1]
    assert (item.pos.line, item.pos.column) == (1, 9)
    assert (item.index.pos.line, item.index.pos.column) == (1, 16)


# ================================================================== rules


CONTRACT_RULE = """
rule extract:
    input: "raw/{year}.csv", lookup="ref/regions.csv"
    output: "data/{year}.parquet"
    params: region=config["region"], tag="y{year}"
    threads: 2
    resources: mem_mb=2000, runtime=10
    retries: 1
    priority: 5
    log: "logs/extract/{year}.log"
    benchmark: "bench/extract/{year}.tsv"
    message: "extracting {wildcards.year}"
    wildcard_constraints: year="[0-9]{4}"
    shell: "python scripts/extract.py {input[0]} {input.lookup} {output} --region {params.region} 2> {log}"
"""


def test_contract_example_rule_has_every_directive_in_order():
    r = rule_of(CONTRACT_RULE)
    assert r.name == "extract"
    assert r.checkpoint is False
    assert r.run is None
    assert [d.name for d in r.directives] == [
        "input", "output", "params", "threads", "resources", "retries", "priority",
        "log", "benchmark", "message", "wildcard_constraints", "shell",
    ]
    assert [d.pos.line for d in r.directives] == list(range(2, 14))
    assert all(d.pos.column == 5 for d in r.directives)


def test_contract_example_rule_values():
    r = rule_of(CONTRACT_RULE)
    assert consts(r.directive("input").value) == (["raw/{year}.csv"], {"lookup": "ref/regions.csv"})
    assert consts(r.directive("resources").value) == ([], {"mem_mb": 2000, "runtime": 10})
    assert consts(r.directive("threads").value) == ([2], {})
    assert consts(r.directive("retries").value) == ([1], {})
    assert consts(r.directive("priority").value) == ([5], {})
    assert consts(r.directive("wildcard_constraints").value) == ([], {"year": "[0-9]{4}"})
    params = r.directive("params").value
    assert params.named[0] == ast.Keyword("region", ast.Subscript(pos0(), n("config"), c("region")))
    assert params.named[1] == ast.Keyword("tag", c("y{year}"))
    assert consts(r.directive("shell").value) == (
        ["python scripts/extract.py {input[0]} {input.lookup} {output} "
         "--region {params.region} 2> {log}"],
        {},
    )


def test_rule_position_is_its_header():
    stmts = statements(
        """
        A = 1

        rule first:
            output: "a"
        """
    )
    assert (stmts[1].pos.line, stmts[1].pos.column) == (3, 1)


def test_directive_value_as_indented_block_equals_one_line_form():
    block = rule_of(
        """
        rule a:
            input:
                "a.txt",
                ref="ref.txt",
            output:
                "b.txt"
        """
    )
    line = rule_of(
        """
        rule a:
            input: "a.txt", ref="ref.txt",
            output: "b.txt"
        """
    )
    assert block.directives == tuple(
        ast.Directive(d.name, d.value, block.directives[i].pos) for i, d in enumerate(line.directives)
    )
    assert consts(block.directive("input").value) == (["a.txt"], {"ref": "ref.txt"})


def test_directive_value_starts_on_its_line_and_continues_below():
    r = rule_of(
        """
        rule a:
            input: "a.txt",
                "b.txt",
                c="c.txt"
            output: "out"
        """
    )
    assert consts(r.directive("input").value) == (["a.txt", "b.txt"], {"c": "c.txt"})
    assert r.directive("output").pos.line == 5


def test_blank_line_between_directive_and_its_block():
    r = rule_of(
        """
        rule a:
            input:

                "a.txt"
        """
    )
    assert consts(r.directive("input").value) == (["a.txt"], {})


def test_comment_lines_inside_an_indented_directive_value():
    r = rule_of(
        """
        rule a:
            input:
                "a.txt",
                # "skipped.txt",
                "b.txt",
        """
    )
    assert consts(r.directive("input").value) == (["a.txt", "b.txt"], {})


def test_adjacent_strings_concatenate_across_lines_in_a_directive_block():
    r = rule_of(
        """
        rule report:
            output: "out/report.txt"
            shell:
                "cat {input} "
                "| sort "
                "> {output}"
        """
    )
    assert consts(r.directive("shell").value) == (["cat {input} | sort > {output}"], {})


def test_adjacent_strings_starting_on_the_directive_line_continue_below():
    r = rule_of(
        """
        rule a:
            output: "x"
            shell: "echo one; "
                "echo two > {output}"
        """
    )
    assert consts(r.directive("shell").value) == (["echo one; echo two > {output}"], {})


def test_adjacent_strings_concatenate_across_lines_in_a_named_entry():
    r = rule_of(
        """
        rule a:
            output: "x"
            params:
                cmd="--first "
                    "--second",
                n=3
        """
    )
    assert consts(r.directive("params").value) == ([], {"cmd": "--first --second", "n": 3})


def test_triple_quoted_shell_command_as_a_block():
    r = rule_of(
        '''
        rule a:
            output: "x"
            shell:
                """
                echo one > {output}
                echo two >> {output}
                """
        '''
    )
    cmd = r.directive("shell").value.positional[0].value
    assert cmd == "\n        echo one > {output}\n        echo two >> {output}\n        "


def test_tab_inside_a_triple_quoted_string_is_not_indentation():
    text = 'rule a:\n    output: "x"\n    shell: """\n\tprintf "%s" x\n    """\n'
    r = parse(text, "Flowfile").statements[0]
    assert r.directive("shell").value.positional[0].value == '\n\tprintf "%s" x\n    '


def test_directives_may_be_indented_by_eight_spaces():
    r = rule_of(
        """
        rule a:
                output: "x"
                shell: "y"
        """
    )
    assert [(d.name, d.pos.column) for d in r.directives] == [("output", 9), ("shell", 9)]


def test_rule_without_action_only_gathers_inputs():
    r = rule_of(
        """
        rule all:
            input: "a", "b"
        """
    )
    assert r.run is None
    assert [d.name for d in r.directives] == ["input"]


def test_checkpoint_rule_is_marked_as_checkpoint():
    stmts = statements(
        """
        checkpoint split:
            output: directory("parts")
            shell: "mkdir -p {output}"

        rule gather:
            input: "x"
        """
    )
    assert (stmts[0].name, stmts[0].checkpoint) == ("split", True)
    assert (stmts[1].name, stmts[1].checkpoint) == ("gather", False)


def test_default_target_directive():
    r = rule_of(
        """
        rule all:
            input: "a"
            default_target: True
        """
    )
    assert consts(r.directive("default_target").value) == ([True], {})


def test_localrule_directive_inside_a_rule():
    r = rule_of(
        """
        rule a:
            output: "x"
            localrule: True
        """
    )
    assert consts(r.directive("localrule").value) == ([True], {})


def test_log_takes_positional_and_named_entries():
    r = rule_of(
        """
        rule a:
            output: "x"
            log: "logs/a.log", err="logs/a.err"
        """
    )
    assert consts(r.directive("log").value) == (["logs/a.log"], {"err": "logs/a.err"})


def test_script_directive():
    r = rule_of(
        """
        rule a:
            output: "x"
            script: "scripts/make.py"
        """
    )
    assert consts(r.directive("script").value) == (["scripts/make.py"], {})


def test_duckdb_directive_holds_its_sql():
    r = rule_of(
        """
        rule clean:
            input: "raw.csv"
            output: "clean.parquet"
            duckdb: "SELECT * FROM input WHERE year = getvariable('year')"
        """
    )
    assert consts(r.directive("duckdb").value) == (
        ["SELECT * FROM input WHERE year = getvariable('year')"], {}
    )


def test_duckdb_sql_as_a_triple_quoted_block():
    r = rule_of(
        '''
        rule q:
            output: "y.csv"
            duckdb:
                """
                SELECT 1 AS x
                """
        '''
    )
    assert r.directive("duckdb").value.positional[0].value.strip() == "SELECT 1 AS x"


def test_mlx_directive_with_params():
    r = rule_of(
        """
        rule attend:
            input: "q.npz"
            output: "out.npz"
            params: heads=8, block=128
            mlx: "ring_attention"
        """
    )
    assert consts(r.directive("mlx").value) == (["ring_attention"], {})
    assert consts(r.directive("params").value) == ([], {"heads": 8, "block": 128})


def test_schema_directive_is_a_dict():
    r = rule_of(
        """
        rule clean:
            output: "clean/{year}.parquet"
            schema: {"ts": "timestamp", "value": "double", "region": "string"}
        """
    )
    schema = r.directive("schema").value.positional[0]
    assert schema == ast.DictExpr(
        pos0(),
        ((c("ts"), c("timestamp")), (c("value"), c("double")), (c("region"), c("string"))),
    )


def test_rule_named_run_is_a_rule_not_a_run_block():
    r = rule_of(
        """
        rule run:
            output: "x"
        """
    )
    assert (r.name, r.run) == ("run", None)


# ------------------------------------------------------------- run blocks


RUN_RULE = """
rule count:
    input: "tmp/{sample}.upper"
    output: "out/{sample}.count"
    run:
        import collections
        with open(input[0]) as f:
            n = sum(1 for _ in f)  # Python, not Flowfile

        if n > 0:
            lambda_ = [x for x in range(n)]
        with open(output[0], "w") as f:
            f.write(f"{wildcards.sample}\\t{n}\\n")

rule after:
    output: "y"
"""


def test_run_block_code_is_kept_verbatim_and_dedented():
    r = statements(RUN_RULE)[0]
    assert r.run.code == (
        "import collections\n"
        "with open(input[0]) as f:\n"
        "    n = sum(1 for _ in f)  # Python, not Flowfile\n"
        "\n"
        "if n > 0:\n"
        "    lambda_ = [x for x in range(n)]\n"
        'with open(output[0], "w") as f:\n'
        '    f.write(f"{wildcards.sample}\\t{n}\\n")'
    )


def test_run_block_position_is_its_first_line_of_code():
    r = statements(RUN_RULE)[0]
    assert (r.run.pos.file, r.run.pos.line, r.run.pos.column) == ("Flowfile", 5, 9)


def test_run_block_is_not_a_directive():
    r = statements(RUN_RULE)[0]
    assert [d.name for d in r.directives] == ["input", "output"]


def test_rule_after_a_run_block_parses_at_its_own_line():
    after = statements(RUN_RULE)[1]
    assert (after.name, after.pos.line) == ("after", 14)
    assert consts(after.directive("output").value) == (["y"], {})


def test_run_block_code_compiles_as_python():
    r = statements(RUN_RULE)[0]
    compile(r.run.code, "run", "exec")


def test_one_line_run_block():
    r = rule_of(
        """
        rule a:
            output: "x"
            run: open(output[0], "w").close()
        """
    )
    assert r.run.code == 'open(output[0], "w").close()'
    assert (r.run.pos.line, r.run.pos.column) == (3, 10)


def test_run_block_with_a_comment_on_its_header_line():
    r = rule_of(
        """
        rule a:
            output: "x"
            run:  # write the file
                x = 1
        """
    )
    assert (r.run.code, r.run.pos.line) == ("x = 1", 4)


def test_run_block_in_a_checkpoint():
    r = rule_of(
        """
        checkpoint split:
            output: directory("parts")
            run:
                import os
                os.makedirs(output[0])
        """
    )
    assert r.checkpoint is True
    assert r.run.code == "import os\nos.makedirs(output[0])"


def test_two_rules_with_run_blocks_each_keep_their_own_code():
    a, b = statements(
        """
        rule a:
            output: "a"
            run:
                x = 1
        rule b:
            output: "b"
            run:
                y = 2
        """
    )
    assert (a.run.code, a.run.pos.line) == ("x = 1", 4)
    assert (b.run.code, b.run.pos.line) == ("y = 2", 8)


def test_run_block_with_triple_quoted_string_lines_at_column_zero():
    # Snakemake tokenizes run: blocks as Python, so a multi-line string whose
    # lines start at column 0 belongs to the block.
    r = rule_of(
        '''
        rule a:
            output: "x"
            run:
                text = """
        header
        """
                done = True
        '''
    )
    assert r.run.pos.line == 4
    ns: dict = {}
    exec(compile(r.run.code, "run", "exec"), ns)
    assert (ns["text"], ns["done"]) == ("\nheader\n", True)


# ===================================================== realistic Snakefiles


RNASEQ_SNAKEFILE = r'''
# RNA-seq style workflow using only the Flowfile subset of Snakemake.
configfile: "config.yaml"

SAMPLES = config["samples"]
READS = ["R1", "R2"]
REF = config["ref"]["genome"]
OUT = "results"

wildcard_constraints:
    sample="[A-Za-z0-9]+",
    read="R[12]"

localrules: all

ruleorder: trim_paired > trim_single

rule all:
    input:
        expand(OUT + "/counts/{sample}.tsv", sample=SAMPLES),
        expand("qc/{sample}_{read}_fastqc.html", sample=SAMPLES, read=READS),
        "report/summary.txt",

rule fastqc:
    input: "reads/{sample}_{read}.fastq.gz"
    output:
        html="qc/{sample}_{read}_fastqc.html",
        zip="qc/{sample}_{read}_fastqc.zip"
    log: "logs/fastqc/{sample}_{read}.log"
    threads: 2
    shell:
        "fastqc --threads {threads} --outdir qc {input} "
        "> {log} 2>&1"

rule trim_paired:
    input:
        r1="reads/{sample}_R1.fastq.gz",
        r2="reads/{sample}_R2.fastq.gz",
    output:
        r1=temp("trimmed/{sample}_R1.fastq.gz"),
        r2=temp("trimmed/{sample}_R2.fastq.gz"),
    params:
        adapter=config["adapter"],
        extra="--quality-cutoff 20"
    resources: mem_mb=4000, runtime=30
    retries: 2
    shell:
        """
        cutadapt -a {params.adapter} {params.extra} \
            -o {output.r1} -p {output.r2} {input.r1} {input.r2}
        """

rule trim_single:
    input: "reads/{sample}_R1.fastq.gz"
    output: temp("trimmed/{sample}_R1.fastq.gz")
    shell: "cutadapt -o {output} {input}"

rule align:
    input:
        reads=expand("trimmed/{{sample}}_{read}.fastq.gz", read=READS),
        index=multiext(REF, ".1.ht2", ".2.ht2"),
    output: protected("aligned/{sample}.bam")
    log: "logs/align/{sample}.log"
    threads: 8
    priority: 10
    benchmark: "bench/align/{sample}.tsv"
    message: "aligning {wildcards.sample}"
    shell: "hisat2 -p {threads} -x {REF} -1 {input.reads[0]} -2 {input.reads[1]} 2> {log} | samtools view -b -o {output}"

rule count:
    input: bam=ancient("aligned/{sample}.bam"), gtf=config["ref"]["gtf"]
    output: OUT + "/counts/{sample}.tsv"
    run:
        import collections
        counts = collections.Counter()
        with open(input.bam) as f:
            for line in f:
                if line.startswith("@"):
                    continue
                counts[line.split("\t")[2]] += 1
        with open(output[0], "w") as out:
            for gene, n in sorted(counts.items()):
                out.write(f"{gene}\t{n}\n")

checkpoint split_report:
    input: expand(OUT + "/counts/{sample}.tsv", sample=SAMPLES)
    output: directory("report/parts")
    shell: "mkdir -p {output} && split -l 100 {input} {output}/part_"

rule summary:
    input: expand("report/parts/{part}", part=glob_wildcards("report/parts/{part}").part)
    output: "report/summary.txt"
    shell: "cat {input} > {output}"
'''


def test_realistic_snakefile_parses_into_its_rules():
    stmts = statements(RNASEQ_SNAKEFILE)
    rules = [s for s in stmts if isinstance(s, ast.Rule)]
    assert [(r.name, r.checkpoint) for r in rules] == [
        ("all", False), ("fastqc", False), ("trim_paired", False), ("trim_single", False),
        ("align", False), ("count", False), ("split_report", True), ("summary", False),
    ]
    assert [s.name for s in stmts if isinstance(s, ast.Assign)] == ["SAMPLES", "READS", "REF", "OUT"]
    assert [s.name for s in stmts if isinstance(s, ast.Directive)] == [
        "configfile", "wildcard_constraints", "localrules",
    ]
    assert [s.names for s in stmts if isinstance(s, ast.RuleOrder)] == [("trim_paired", "trim_single")]


def test_realistic_snakefile_directive_values():
    rules = {s.name: s for s in statements(RNASEQ_SNAKEFILE) if isinstance(s, ast.Rule)}
    assert consts(rules["fastqc"].directive("shell").value) == (
        ["fastqc --threads {threads} --outdir qc {input} > {log} 2>&1"], {}
    )
    trim_cmd = rules["trim_paired"].directive("shell").value.positional[0].value
    assert "cutadapt -a {params.adapter} {params.extra}             -o {output.r1}" in trim_cmd
    assert [k.name for k in rules["trim_paired"].directive("output").value.named] == ["r1", "r2"]
    assert [k.name for k in rules["align"].directive("input").value.named] == ["reads", "index"]
    assert rules["all"].directive("input").pos.line == 18


def test_realistic_snakefile_run_block():
    rules = {s.name: s for s in statements(RNASEQ_SNAKEFILE) if isinstance(s, ast.Rule)}
    run = rules["count"].run
    assert run.pos.line == 73
    assert run.code.splitlines()[0] == "import collections"
    assert run.code.splitlines()[-1] == '        out.write(f"{gene}\\t{n}\\n")'
    assert len(run.code.splitlines()) == 10
    compile(run.code, "run", "exec")


FLOW_PIPELINE = '''
configfile: "config.json"
include: "rules/common.flow"
workdir: "work"

YEARS = [2022, 2023, 2024]
REGIONS = config.get("regions", ["north", "south"])
DB = config["db"]["path"]

rule report:
    input: expand("clean/{year}.parquet", year=YEARS)
    output: "report.csv"
    duckdb: """
        SELECT year, region, avg(value) AS mean
        FROM input
        GROUP BY ALL
    """

rule clean:
    input:
        raw="raw/{year}.csv",
        regions=ancient("ref/regions.csv"),
    output: "clean/{year,[0-9]{4}}.parquet"
    schema: {"ts": "timestamp", "value": "double", "region": "string"}
    params: min_value=config.get("min_value", 0)
    duckdb:
        "SELECT * FROM raw JOIN regions USING (region) "
        "WHERE value >= getvariable('min_value')"

rule weights:
    input: "clean/2024.parquet"
    output: "model/weights.npz"
    params: heads=8, dim=64
    resources: mem_mb=16000
    mlx: "ring_attention"

rule all:
    input: "report.csv", "model/weights.npz"
    default_target: True
'''


def test_flow_pipeline_with_flow_directives_parses():
    stmts = statements(FLOW_PIPELINE)
    rules = {s.name: s for s in stmts if isinstance(s, ast.Rule)}
    assert list(rules) == ["report", "clean", "weights", "all"]
    assert [s.name for s in stmts if isinstance(s, ast.Directive)] == [
        "configfile", "include", "workdir",
    ]
    assert [d.name for d in rules["clean"].directives] == [
        "input", "output", "schema", "params", "duckdb",
    ]
    assert consts(rules["clean"].directive("duckdb").value) == (
        ["SELECT * FROM raw JOIN regions USING (region) WHERE value >= getvariable('min_value')"],
        {},
    )
    assert consts(rules["clean"].directive("output").value) == (["clean/{year,[0-9]{4}}.parquet"], {})
    assert consts(rules["weights"].directive("mlx").value) == (["ring_attention"], {})
    assert consts(rules["all"].directive("default_target").value) == ([True], {})


def test_parse_file_reads_a_realistic_snakefile(tmp_path):
    path = tmp_path / "Snakefile"
    path.write_text(_src(RNASEQ_SNAKEFILE), encoding="utf-8")
    module = parse_file(path)
    assert module.path == str(path)
    assert len([s for s in module.statements if isinstance(s, ast.Rule)]) == 8
    assert module.statements[0].pos.file == str(path)


# ============================================================== rejections


def test_tabs_indent_rules_as_in_snakemake():
    rules = [s for s in parse('rule all:\n\tinput: "a.txt"\n\nrule a:\n\toutput: "a.txt"\n'
                              '\tshell: "touch {output}"\n', "Flowfile").statements]
    assert [r.name for r in rules] == ["all", "a"]
    assert [d.name for d in rules[1].directives] == ["output", "shell"]


def test_a_tab_reaches_the_next_multiple_of_eight_columns():
    # 9 spaces are deeper than a tab (8 columns): the value of `input:` goes on there
    rule = rule_of_text('rule a:\n\tinput:\n         "a",\n\toutput: "x"\n')
    assert [d.name for d in rule.directives] == ["input", "output"]
    # a tab after 2 spaces is column 8 too
    rule = rule_of_text('rule a:\n  \toutput: "x"\n  \tshell: "y"\n')
    assert [d.name for d in rule.directives] == ["output", "shell"]


def test_tab_indented_directive_value_goes_on_over_lines():
    rule = rule_of_text('rule a:\n\tinput:\n\t\t"a",\n\t\t"b",\n\toutput: "x"\n')
    assert consts(rule.directive("input").value) == (["a", "b"], {})


def test_tabs_and_spaces_inside_brackets_are_not_indentation():
    stmts = parse('X = [1,\n\t  2,\n        3]\nrule a:\n\toutput: "x"\n', "Flowfile").statements
    assert [type(s).__name__ for s in stmts] == ["Assign", "Rule"]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        # a tab (8 columns, 1 character) after a block of 8 spaces (8 columns, 8 characters)
        ('rule all:\n\tinput: "a.txt"\n\nrule a:\n        output: "a.txt"\n\tshell: "t"\n', 6, 2),
        # deeper than 4 spaces with a tab read as 8 columns, shallower with a tab read as 1
        ('rule a:\n    output: "x"\n\tshell: "y"\n', 3, 2),
        # the value of a directive, over lines
        ('rule a:\n        input:\n\t\t"a",\n                "b"\n', 3, 3),
    ],
    ids=["same-columns", "deeper-by-columns-only", "value-lines"],
)
def test_inconsistent_tabs_and_spaces_are_refused_at_the_line(text, line, column):
    e = error_of(text, dedent=False)
    assert where(e) == ("Flowfile", line, column)
    assert e.message == "inconsistent use of tabs and spaces in indentation"
    assert "tabs only or with spaces only" in e.hint
    assert e.source_line == text.split("\n")[line - 1]


def test_errors_after_tab_indented_lines_keep_their_columns():
    e = error_of('rule a:\n\toutput: "x"\n\tinput: "a" +\n', dedent=False)
    assert where(e) == ("Flowfile", 3, 14)  # just after the line's last character
    e = error_of('rule a:\n\toutput: "x"\n\tbogus: 1\n', dedent=False)
    assert where(e) == ("Flowfile", 3, 2)
    e = error_of('rule a:\n\toutput: "x"\n\t\tinput: "y"\n', dedent=False)
    assert (e.line, e.column) == (3, 3)
    assert e.message.startswith("`input:` is indented deeper than the directive above it")


def test_a_dedent_to_no_block_names_its_character_column():
    e = error_of('rule a:\n\t\toutput: "x"\n\tshell: "y"\n', dedent=False)
    assert where(e) == ("Flowfile", 3, 2)
    assert e.message == "this line's indentation matches no enclosing block"


def rule_of_text(text: str) -> ast.Rule:
    (stmt,) = parse(text, "Flowfile").statements
    assert isinstance(stmt, ast.Rule)
    return stmt


def test_tab_indented_run_block_is_dedented_by_columns():
    rule = rule_of_text('rule a:\n\toutput: "x"\n\trun:\n\t\twith open(output[0], "w") as f:\n'
                        '\t\t\tf.write("""a\n\tb""")\n\t\tprint(1)\n')
    assert rule.run.code == 'with open(output[0], "w") as f:\n        f.write("""a\n\tb""")\nprint(1)'
    assert (rule.run.pos.line, rule.run.pos.column) == (4, 3)
    compile(rule.run.code, "x", "exec")


def test_run_block_mixing_tabs_and_spaces_by_columns_alone_is_dedented_so():
    # "\t\t" and 16 spaces + 4: deeper both ways, so Python accepts it
    rule = rule_of_text('rule a:\n\toutput: "x"\n\trun:\n\t\tif 1:\n                    x = 1\n')
    assert rule.run.code == "if 1:\n    x = 1"


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ('rule a:\n    output: "x"\n    run:\n\tprint(1)\n', 4, 2),
        ('rule a:\n\toutput: "x"\n\trun:\n\t\tif 1:\n\t\t        x = 1\n\t\t\ty = 1\n', 6, 4),
    ],
    ids=["body-against-run-line", "inside-the-body"],
)
def test_run_block_mixing_tabs_and_spaces_inconsistently_is_refused(text, line, column):
    e = error_of(text, dedent=False)
    assert where(e) == ("Flowfile", line, column)
    assert e.message == "inconsistent use of tabs and spaces in indentation"
    assert e.hint


def test_a_line_after_a_tab_indented_run_block_ends_it():
    (a, b) = parse('rule a:\n\toutput: "x"\n\trun:\n\t\tprint(1)\n\nrule b:\n\toutput: "y"\n',
                   "Flowfile").statements
    assert a.run.code == "print(1)" and b.name == "b"


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("import os\n", 1, 1, "`import` statements are not allowed in a Flowfile"),
        ("A = 1\nfrom os import path\n", 2, 1,
         "`from ... import` statements are not allowed in a Flowfile"),
        ("if X:\n    Y = 1\n", 1, 1, "`if` statements are allowed only in a `def` input function"),
        ("A = 1\n  # c\nif X == 1: Y = 1\n", 3, 1,
         "`if` statements are allowed only in a `def` input function"),
        ("for s in S:\n    pass\n", 1, 1, "`for` loops are not allowed in a Flowfile"),
        ("while True:\n    pass\n", 1, 1, "`while` loops are not allowed in a Flowfile"),
        ("class A:\n    pass\n", 1, 1, "class definitions are not allowed in a Flowfile"),
        ("with open('x') as f:\n    pass\n", 1, 1, "`with` statements are not allowed in a Flowfile"),
        ("try:\n    X = 1\nexcept E:\n    X = 2\n", 1, 1, "`try` statements are not allowed in a Flowfile"),
        ("def f(w):\n    for x in w:\n        pass\n    return 1\n", 2, 5,
         "`for` loops are not allowed in a Flowfile"),
        ("def f(w):\n    import os\n    return 1\n", 2, 5,
         "`import` statements are not allowed in a Flowfile"),
        ("def f(w):\n    while w:\n        pass\n    return 1\n", 2, 5,
         "`while` loops are not allowed in a Flowfile"),
    ],
    ids=["import", "from-import", "if", "if-after-comment", "for", "while", "class", "with", "try",
         "for-in-def", "import-in-def", "while-in-def"],
)
def test_python_construct_is_rejected_at_its_position(text, line, column, message):
    e = error_of(text, dedent=False)
    assert where(e) == ("Flowfile", line, column)
    assert e.message == message
    assert "declarative" in e.hint and ("`run:` block" in e.hint or "def" in e.hint)


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("rule a:\n    def f(w): return 1\n", 2, 5,
         "function definitions (`def`) are allowed only at the top level of a Flowfile"),
        ("return 1\n", 1, 1, "`return` is allowed only at the end of a `def` input function"),
        ("rule a:\n    output: 'x'\n    if X:\n        input: 'y'\n", 3, 5,
         "`if` statements are allowed only in a `def` input function"),
        ("pass\n", 1, 1, "`pass` is allowed only in a `def` input function"),
    ],
    ids=["def-in-rule", "return-at-top", "if-in-rule", "pass-at-top"],
)
def test_statement_out_of_its_place_is_named(text, line, column, message):
    e = error_of(text, dedent=False)
    assert where(e) == ("Flowfile", line, column)
    assert e.message == message


def test_import_inside_a_rule_is_rejected():
    e = error_of(
        """
        rule a:
            output: "x"
            import os
        """
    )
    assert (e.line, e.column) == (3, 5)
    assert e.message == "`import` statements are not allowed in a Flowfile"


def test_keyword_inside_a_string_is_not_taken_for_a_statement():
    e = error_of('X = "import me" + ]\n', dedent=False)
    assert e.message == "unexpected `]`"
    assert (e.line, e.column) == (1, 19)


def test_a_valid_if_expression_does_not_make_a_later_mistake_an_if_statement():
    e = error_of("X = 1 if Y else 2 )\n", dedent=False)
    assert e.message == "unexpected `)`"
    e = error_of("def f(w):\n    if w: return 1 +\n    return 2\n", dedent=False)
    assert e.message == "unexpected end of line"


@pytest.mark.parametrize(("text", "column", "word"),
                         [("X = [yield]\n", 6, "yield"), ("X = import\n", 5, "import"),
                          ("X = 1 + del\n", 9, "del")])
def test_python_keyword_used_as_a_value_is_rejected(text, column, word):
    e = error_of(text, dedent=False)
    assert (e.line, e.column) == (1, column)
    assert e.message == f"`{word}` is not allowed here"


def test_lambda_without_a_body_is_an_error():
    e = error_of("X = [lambda]\n", dedent=False)
    assert (e.line, e.column, e.message) == (1, 12, "unexpected `]`")


def test_declarative_error_renders_file_line_caret_and_hint(tmp_path):
    path = tmp_path / "Flowfile"
    path.write_text('OUT = "results"\nimport os\n', encoding="utf-8")
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    text = info.value.render()
    assert text.splitlines() == [
        f"{path}:2:1: error: `import` statements are not allowed in a Flowfile",
        "    import os",
        "    ^",
        "os.path.join, basename, dirname and splitext need no import. Flowfiles are declarative: "
        "statements with effects belong in a `run:` block or a `script:` file, which run only inside jobs.",
    ]


def test_unknown_function_is_rejected_with_the_list_of_functions():
    e = error_of('X = open("f.txt")\n', dedent=False)
    assert where(e) == ("Flowfile", 1, 5)
    assert e.message == "unknown function `open`"
    assert "expand" in e.hint and "glob_wildcards" in e.hint and "declarative" in e.hint


def test_unknown_function_in_a_rule_points_at_it():
    e = error_of(
        """
        rule a:
            output: "x"
            input: globals()
        """
    )
    assert (e.line, e.column, e.message) == (3, 12, "unknown function `globals`")
    # a name that is not Python's may be a function the Flowfile defines: the evaluator checks it
    rule = rule_of("""
        rule a:
            output: "x"
            input: get_inputs("x")
        """)
    assert isinstance(rule.directive("input").value.positional[0], ast.Call)


def test_method_outside_the_pure_ones_is_rejected():
    e = error_of('X = config.pop("a")\n', dedent=False)
    assert (e.line, e.column) == (1, 5)
    assert e.message == "method `.pop()` is not allowed here"


def test_unknown_rule_directive_is_rejected():
    e = error_of(
        """
        rule a:
            output: "x"
            outptu: "y"
        """
    )
    assert (e.line, e.column) == (3, 5)
    assert e.message == "unknown directive `outptu:` in rule a. Did you mean `output`?"
    assert "input" in e.hint and "output" in e.hint


def test_unsupported_snakemake_directive_says_so():
    e = error_of(
        """
        rule a:
            output: "x"
            conda: "envs/a.yaml"
            shell: "true"
        """
    )
    assert (e.line, e.column) == (3, 5)
    assert e.message == "unknown directive `conda:` in rule a"
    assert e.hint == "Snakemake's `conda:` is not supported by flow."


def test_top_level_directive_inside_a_rule_is_rejected():
    e = error_of(
        """
        rule a:
            output: "x"
            configfile: "c.yaml"
        """
    )
    assert (e.line, e.column) == (3, 5)
    assert e.message == "unknown directive `configfile:` in rule a"


def test_unknown_top_level_directive_is_rejected():
    e = error_of('A = 1\nfrobnicate: "x"\n', dedent=False)
    assert where(e) == ("Flowfile", 2, 1)
    assert e.message == "unknown top-level directive `frobnicate:`"
    assert "configfile" in e.hint


def test_rule_directive_at_top_level_is_rejected():
    e = error_of('shell: "echo hi"\n', dedent=False)
    assert (e.line, e.column) == (1, 1)
    assert e.message == "`shell:` belongs inside a rule"


def test_run_block_at_top_level_is_rejected():
    e = error_of("run:\n    x = 1\n", dedent=False)
    assert (e.line, e.column) == (1, 1)
    assert e.message == "unknown top-level directive `run:`"


def test_two_actions_in_one_rule_are_rejected():
    e = error_of(
        """
        A = 1
        rule both:
            output: "x"
            shell: "touch {output}"
            script: "make.py"
        """
    )
    assert (e.line, e.column) == (2, 1)
    assert e.message == "rule both has 2 actions (shell, script)"
    assert "exactly one" in e.hint


def test_shell_and_run_in_one_rule_are_rejected():
    e = error_of(
        """
        rule both:
            output: "x"
            shell: "touch {output}"
            run:
                print(1)
        """
    )
    assert (e.line, e.column) == (1, 1)
    assert e.message == "rule both has 2 actions (shell, run)"


def test_duckdb_and_mlx_in_one_rule_are_rejected():
    e = error_of(
        """
        rule both:
            output: "x.parquet"
            duckdb: "SELECT 1"
            mlx: "tensors"
        """
    )
    assert e.message == "rule both has 2 actions (duckdb, mlx)"


def test_directive_appearing_twice_is_rejected_at_the_second():
    e = error_of(
        """
        rule a:
            output: "x"
            threads: 2
            output: "y"
        """
    )
    assert (e.line, e.column) == (4, 5)
    assert e.message == "`output:` appears twice in rule a"


def test_positional_entry_after_named_is_rejected():
    e = error_of(
        """
        rule a:
            input: ref="r.txt", "a.txt"
        """
    )
    assert (e.line, e.column) == (2, 25)
    assert e.message == "a positional entry follows a named one"


def test_unclosed_bracket_hint_names_its_position():
    e = error_of(
        """
        rule a:
            input: expand("x/{s}", s=S
            output: "y"
        """
    )
    assert (e.line, e.column) == (3, 5)
    assert e.hint == "The '(' at line 2, column 18 is never closed."


def test_unclosed_list_hint_names_its_position():
    e = error_of("X = [1, 2,\nY = 3\n", dedent=False)
    assert (e.line, e.column) == (2, 3)
    assert e.hint == "The '[' at line 1, column 5 is never closed."


def test_unclosed_bracket_at_end_of_file_points_at_the_bracket():
    e = error_of('A = 1\nX = {"a": 1,\n  "b": 2\n', dedent=False)
    assert where(e) == ("Flowfile", 2, 5)
    assert e.message == "'{' is never closed"


def test_syntax_error_inside_closed_brackets_does_not_blame_the_bracket():
    e = error_of("X = [1 2]\n", dedent=False)
    assert (e.line, e.column) == (1, 8)
    assert e.message == "unexpected `2`"
    assert "never closed" not in (e.hint or "")


def test_unmatched_closing_bracket_is_rejected():
    e = error_of("X = (1, 2))\n", dedent=False)
    assert (e.line, e.column) == (1, 11)
    assert e.message == "unexpected `)`"


def test_dedent_to_no_enclosing_level_is_rejected():
    e = error_of(
        """
        rule a:
            output: "x"
          shell: "y"
        """
    )
    assert (e.line, e.column) == (3, 3)
    assert e.message == "this line's indentation matches no enclosing block"


def test_unexpected_indentation_points_at_the_indented_line():
    e = error_of("A = 1\nB = 2\n    C = 3\n", dedent=False)
    assert e.message == "unexpected indentation"
    assert (e.line, e.column) == (3, 5)


def test_line_indented_under_a_one_line_directive_is_rejected():
    e = error_of(
        """
        rule a:
            output: "x"
            shell: "y"
                threads: 2
        """
    )
    assert (e.line, e.column) == (4, 9)
    assert e.message == ("`threads:` is indented deeper than the directive above it, "
                         "so it reads as part of that directive's value")
    assert e.hint == "Indent each directive of a rule as deep as the others."


def test_run_without_code_is_rejected():
    e = error_of(
        """
        rule a:
            output: "x"
            run:
        rule b:
            output: "y"
        """
    )
    assert (e.line, e.column) == (3, 5)
    assert e.message == "`run:` has no code: indent the Python block below it"


@pytest.mark.parametrize("prefix", ["F", "rf", "fR", "Rf"])
def test_f_string_prefix_spellings(prefix):
    value = value_of(f"{prefix}'a{{B}}\\d'")
    assert isinstance(value, ast.JoinedStr)
    assert value.values[0] == c("a") and value.values[-1] == c("\\d")


def test_bytes_literal_is_rejected():
    e = error_of("X = b'raw'\n", dedent=False)
    assert (e.line, e.column) == (1, 5)
    assert e.message == "string prefix `b` is not supported"


def test_nul_byte_is_rejected_at_its_position():
    e = error_of('A = 1\nB = 2\nC = "\x00"\n', dedent=False)
    assert e.message == "the file contains a NUL byte; is it a binary file?"
    assert where(e) == ("Flowfile", 3, 6)


def test_nul_byte_at_the_start_is_rejected():
    e = error_of("\x00\x01\x02", dedent=False)
    assert where(e) == ("Flowfile", 1, 1)
    assert "NUL byte" in e.message


def test_parse_file_rejects_non_utf8_text_naming_line_and_column(tmp_path):
    path = tmp_path / "Flowfile"
    path.write_bytes(b'X = 1\nY = "\xc3\xa9\xff"\n')
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    assert where(info.value) == (str(path), 2, 7)
    assert "not UTF-8 text (byte 0xff" in info.value.message


def test_parse_file_of_missing_file_is_a_flowfile_error(tmp_path):
    with pytest.raises(FlowfileError) as info:
        parse_file(tmp_path / "nope")
    assert info.value.message.startswith(f"cannot read {tmp_path / 'nope'}")


@pytest.mark.parametrize(
    ("text", "column"),
    [("X = 1; Y = 2\n", 6), ("X = 1 <> 2\n", 8), ("X = (y := 2)\n", 8), ("@rule\nA = 1\n", 1),
     ("X += 1\n", 3), ("X = 2 ** 3\n", 8), ("X = a[1, 2]\n", 8)],
    ids=["semicolon", "diamond", "walrus", "decorator", "augmented", "power", "tuple-index"],
)
def test_other_python_syntax_is_an_error_at_the_offending_token(text, column):
    e = error_of(text, dedent=False)
    assert where(e) == ("Flowfile", 1, column)


def test_rule_header_without_an_indented_body_asks_for_indentation():
    e = error_of('rule a:\noutput: "x"\n', dedent=False)
    assert (e.line, e.column) == (2, 1)
    assert "indent" in f"{e.message} {e.hint}"


def test_byte_order_mark_at_the_start_is_ignored():
    module = parse("\ufeffX = 1\n")
    assert [s.name for s in module.statements] == ["X"]


def test_rule_docstring_is_accepted_as_in_snakemake():
    r = only('''
        rule a:
            """Makes a.txt."""
            output: "a.txt"
            shell: "touch {output}"
        ''')
    assert [d.name for d in r.directives] == ["output", "shell"]


def test_unclosed_string_says_it_is_never_closed():
    e = error_of('X = "abc\n', dedent=False)
    assert where(e) == ("Flowfile", 1, 5)
    assert "never closed" in e.message


def test_unclosed_triple_quoted_string_says_it_is_never_closed():
    e = error_of('X = """abc\nY = 1\n', dedent=False)
    assert where(e) == ("Flowfile", 1, 5)
    assert '"""' in e.message and "never closed" in e.message


@pytest.mark.parametrize("literal", [r'"\N{BOGUS}"', r'"\x4"', r'"\u12"'])
def test_bad_escape_in_a_string_names_its_line_and_column(literal):
    e = error_of(f"X = 1\nY = {literal}\n", dedent=False)
    assert where(e) == ("Flowfile", 2, 5)
    assert "invalid string" in e.message


def test_decimal_number_with_a_leading_zero_is_an_error_as_in_python():
    e = error_of("X = 08\n", dedent=False)
    assert where(e) == ("Flowfile", 1, 5)


@pytest.mark.parametrize("handler", ["onstart", "onsuccess", "onerror"])
def test_snakemake_handlers_are_named_as_unsupported(handler):
    e = error_of(f'rule a:\n    output: "x"\n\n{handler}:\n    print("done")\n', dedent=False)
    assert where(e) == ("Flowfile", 4, 1)
    assert f"`{handler}:`" in e.message and "not supported" in e.message


def test_handler_name_inside_a_triple_quoted_string_is_just_text():
    r = only('''
        rule all:
            output: "x"
            shell: """
        echo hi > x
        onerror: ignored
        """
        ''')
    assert "onerror: ignored" in r.directive("shell").value.positional[0].value


def test_expression_nested_too_deeply_is_named_where_the_nesting_gets_too_deep():
    with pytest.raises(FlowfileError) as info:
        parse("A = 1\nX = " + "[" * 3000 + "]" * 3000 + "\n")
    e = info.value
    assert e.line == 2 and 5 < e.column < 400
    assert "nested too deeply" in e.message


def test_deep_but_reasonable_nesting_parses():
    module = parse("X = " + "[" * 40 + "]" * 40 + "\nY = " + "(" * 500 + "1" + ")" * 500 + "\n")
    assert len(module.statements) == 2


def test_triple_quotes_in_a_comment_or_a_one_line_string_do_not_hide_a_run_block():
    text = (
        "# shell strings may use \'\'\' quotes\n"
        'X = "a \\"\\"\\" b"\n'
        "rule a:\n"
        '    output: "o"\n'
        "    run:\n"
        '        open(output[0], "w").write("x")\n'
    )
    rule = parse(text).statements[-1]
    assert rule.run is not None and "write" in rule.run.code


# ------------------------------------------- bounded cost on hostile Flowfiles (issue 13)

TERMINAL_LINE = 120  # columns an error's excerpt and caret may take, at most


def rendered_error(path) -> str:
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    return info.value.render()


def excerpt_and_caret(rendered: str) -> tuple[str, str]:
    """The source excerpt and the caret line of a rendered error."""
    lines = rendered.splitlines()
    return lines[1], lines[2]


def flowfile(tmp_path, text: str):
    path = tmp_path / "Flowfile"
    path.write_text(text, encoding="utf-8")
    return path


def test_error_on_a_very_long_line_shows_at_most_one_terminal_line_of_it(tmp_path):
    path = flowfile(tmp_path, "X = [" + '"a", ' * 20_000 + "1 1]\n")
    excerpt, caret = excerpt_and_caret(rendered_error(path))
    assert max(len(excerpt), len(caret)) <= TERMINAL_LINE


def test_error_excerpt_is_cut_around_the_column_with_the_caret_under_the_offending_character(tmp_path):
    path = flowfile(tmp_path, "X = [" + "1, " * 5_000 + "$, " + "1, " * 5_000 + "]\n")
    excerpt, caret = excerpt_and_caret(rendered_error(path))
    assert excerpt.lstrip().startswith("\u2026") and excerpt.endswith("\u2026")
    assert excerpt[caret.index("^")] == "$"


def test_error_excerpt_fits_a_terminal_narrower_than_usual(tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    path = flowfile(tmp_path, "X = [" + "1, " * 5_000 + "$]\n")
    excerpt, caret = excerpt_and_caret(rendered_error(path))
    assert max(len(excerpt), len(caret)) <= 60


def test_error_read_back_from_the_file_is_cut_the_same_way(tmp_path):
    path = flowfile(tmp_path, "X = " + "a + " * 20_000 + "B\n")
    column = len("X = ") + len("a + ") * 20_000 + 1  # where B is, as the engine would report it
    excerpt, caret = excerpt_and_caret(FlowfileError("name `B` is not defined", str(path), 1, column).render())
    assert len(excerpt) <= TERMINAL_LINE and excerpt[caret.index("^")] == "B"


def test_error_caret_counts_a_wide_character_as_two_columns(tmp_path):
    path = flowfile(tmp_path, 'X = "\u65e5\u672c" $\n')  # two CJK characters, two columns each
    excerpt, caret = excerpt_and_caret(rendered_error(path))
    columns_before_dollar = len('X = "') + 2 * 2 + len('" ')
    assert caret == "    " + " " * columns_before_dollar + "^"


def test_control_characters_of_the_source_are_shown_as_question_marks(tmp_path):
    path = flowfile(tmp_path, "X = 1 \x1b[2J\n")  # an escape sequence that would clear the terminal
    excerpt, caret = excerpt_and_caret(rendered_error(path))
    assert excerpt == "    X = 1 ?[2J" and excerpt[caret.index("^")] == "?"


def test_a_very_long_token_quoted_in_an_error_message_is_cut_with_an_ellipsis(tmp_path):
    path = flowfile(tmp_path, "X = 1 " + "a" * 10_000 + "\n")
    first_line = rendered_error(path).splitlines()[0]
    assert first_line.endswith("error: unexpected `" + "a" * 59 + "\u2026`")


def test_brackets_nested_too_deeply_are_refused_at_the_first_one_too_deep(tmp_path):
    path = flowfile(tmp_path, "X = " + "[" * 100_000 + "$\n")
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    assert (info.value.column, info.value.message) == (4 + MAX_DEPTH + 1, "expression nested too deeply")


def test_grouping_parentheses_beyond_the_bracket_bound_are_refused_at_the_first_one_past_it(tmp_path):
    path = flowfile(tmp_path, "X = " + "(" * 100_000 + "$\n")
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    assert (info.value.column, info.value.message) == (4 + MAX_BRACKETS + 1, "expression nested too deeply")


def test_a_run_of_unary_minus_too_long_is_refused_where_it_gets_too_deep(tmp_path):
    path = flowfile(tmp_path, "X = " + "-" * 100_000 + "$\n")
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    assert (info.value.column, info.value.message) == (4 + MAX_DEPTH + 2, "expression nested too deeply")


def test_an_operator_chain_too_deep_is_refused_before_the_rest_of_the_line_is_read(tmp_path):
    path = flowfile(tmp_path, "X = 1" + " + 1" * 100_000 + " $\n")
    with pytest.raises(FlowfileError) as info:
        parse_file(path)
    assert (info.value.column, info.value.message) == (5, "expression nested too deeply")


HOSTILE_SHAPES = {
    "one huge string literal": 'X = "' + "a" * 500_000 + '"\n',
    "one huge triple-quoted string": 'X = """' + "a\n" * 250_000 + '"""\n',
    "a string never closed": 'X = "' + "a" * 500_000 + "\n",
    "many comment lines": "# comment\n" * 50_000 + "X = 1\n",
    "many blank lines": "\n" * 500_000 + "X = 1\n",
    "a long list of paths on one line":
        "X = [" + "".join(f'"data/file_{i:06d}.csv", ' for i in range(20_000)) + "]\n",
}


@pytest.mark.parametrize("shape", sorted(HOSTILE_SHAPES))
def test_loading_a_hostile_flowfile_takes_memory_a_small_multiple_of_its_size(tmp_path, shape):
    text = HOSTILE_SHAPES[shape]
    path = flowfile(tmp_path, text)
    parse("X = 1\n")  # the grammar is loaded once per process: not part of the cost
    tracemalloc.start()
    try:
        try:
            parse_file(path)
        except FlowfileError:  # the unclosed string: its error costs no more than a load
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * len(text)


# ------------------------------------------------ the parser's parts (issue 14)


def test_the_grammar_file_names_run_as_its_only_action_keyword_and_the_registry_has_it():
    """The .lark grammar knows `run:` by name (its body is Python the pre-pass
    cuts out); every other action is a plain directive, told apart by the
    registry of job kinds, so adding a kind there needs no grammar change."""
    import re
    from pathlib import Path

    import flow.grammar.parser as parser
    from flow.rules import ACTION_KINDS

    lark_text = Path(parser.GRAMMAR).read_text(encoding="utf-8")
    keywords = set(re.findall(r'^[A-Z_]+(?:\.\d+)?:\s*"(\w+)"\s*$', lark_text, re.MULTILINE))
    assert keywords & set(ACTION_KINDS) == {"run"}
    assert "directive: NAME" in lark_text
    assert parser.ACTIONS == ACTION_KINDS
    assert parser.RULE_DIRECTIVES >= set(ACTION_KINDS) - {"run"}


@pytest.mark.parametrize("kind", ["shell", "script", "duckdb", "mlx"])
def test_each_action_kind_but_run_is_a_rule_directive_and_counts_as_the_action(kind):
    rule = only(f'rule a:\n    output: "o"\n    {kind}: "x"\n')
    assert [d.name for d in rule.directives] == ["output", kind]
    e = error_of(f'rule a:\n    {kind}: "x"\n    run:\n        pass\n', dedent=False)
    assert e.message == f"rule a has 2 actions ({kind}, run)"
    assert e.hint == "A rule has exactly one of shell:, run:, script:, duckdb:, mlx: (or none)."


def test_the_error_path_is_handed_the_open_bracket_of_its_own_parse():
    """translate.from_lark reads no parser state: the bracket it blames is the
    one it is given (the indenter of that parse hands it over)."""
    from flow.grammar import translate
    from lark import Token
    from lark.exceptions import UnexpectedToken

    text = "X = [1, 2,\nY = 3\n"
    bad = Token("EQUAL", "=", start_pos=13, line=2, column=3)
    e = UnexpectedToken(bad, {"RSQB", "COMMA"})
    assert translate.from_lark(e, text, "F").hint == "Expected ',' or ']'."
    bracket = Token("LSQB", "[", start_pos=4, line=1, column=5)
    assert translate.from_lark(e, text, "F", bracket).hint == "The '[' at line 1, column 5 is never closed."


def test_the_parser_module_holds_no_indenter_of_its_own_between_parses():
    import flow.grammar.parser as parser
    from flow.grammar.indenter import FlowIndenter

    with pytest.raises(FlowfileError):
        parse("X = [1, 2,\nY = 3\n")
    assert not [v for v in vars(parser).values() if isinstance(v, FlowIndenter)]
    assert parser._POSTLEX.indenter is None


def test_parses_in_threads_say_the_same_as_one_at_a_time():
    from concurrent.futures import ThreadPoolExecutor

    texts = [
        "X = [1, 2,\nY = 3\n",  # the bracket at line 1 is blamed
        'rule a:\n    input: expand("x/{s}", s=S\n    output: "y"\n',
        "X = [1 2]\n",  # no bracket is blamed
        "X = (1, 2))\n",
        'rule a:\n    output: "o"\n    shell: "x"\n',
    ] * 40

    def outcome(text):
        try:
            return repr(parse(text))
        except FlowfileError as e:
            return (e.message, e.line, e.column, e.hint)

    alone = [outcome(t) for t in texts]
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(outcome, texts)) == alone


# ====================================================== directive on the rule line


def test_directive_on_the_rule_line():
    (all_, a) = parse('rule all: input: "a.txt", "b.txt"\n\nrule a:\n    output: "{x}.txt"\n',
                      "Flowfile").statements
    assert all_.name == "all" and [d.name for d in all_.directives] == ["input"]
    assert consts(all_.directive("input").value) == (["a.txt", "b.txt"], {})
    assert (all_.directive("input").pos.line, all_.directive("input").pos.column) == (1, 11)
    assert a.name == "a"


@pytest.mark.parametrize(
    ("text", "kind", "name", "directive"),
    [
        ('rule a: output: "a.txt"\n', "rule", "a", "output"),
        ('checkpoint c: output: directory("d")\n', "checkpoint", "c", "output"),
        ('rule: input: "a.txt"\n', "rule", "", "input"),
        ('rule a: shell: "touch a"\n', "rule", "a", "shell"),
        # the next rule may follow at once (Snakemake wants a blank line there; flow does not)
        ('rule all: input: "a.txt"\nrule b:\n    output: "b"\n', "rule", "all", "input"),
        # the value may go on over indented lines or inside brackets
        ('rule all: input:\n    "a.txt",\n    "b.txt"\n', "rule", "all", "input"),
        ('rule all: input: expand("{x}",\n    x=[1, 2])\n', "rule", "all", "input"),
        ('rule all: input: "a" # why\n# more\n', "rule", "all", "input"),
        ('rule all:\tinput:\t"a"\n', "rule", "all", "input"),
    ],
)
def test_one_line_rules(text, kind, name, directive):
    rule = parse(text, "Flowfile").statements[0]
    assert rule.checkpoint == (kind == "checkpoint")
    assert rule.name == name
    assert [d.name for d in rule.directives] == [directive]


def test_a_directive_indented_under_a_one_line_rule_is_refused():
    e = error_of('rule a: output: "a.txt"\n    shell: "touch a.txt"\n', dedent=False)
    assert where(e) == ("Flowfile", 2, 5)
    assert e.message == "`shell:` is indented under a rule whose directive is on its `rule` line"
    assert "has that one directive" in e.hint


def test_run_on_the_rule_line_is_refused():
    e = error_of('rule a: run: print(1)\n', dedent=False)
    assert where(e) == ("Flowfile", 1, 9)
    assert e.message == "a `run:` block cannot start on the `rule` line"


def test_unknown_directive_on_the_rule_line_is_named():
    e = error_of('rule a: bogus: 1\n', dedent=False)
    assert where(e) == ("Flowfile", 1, 9)
    assert e.message == "unknown directive `bogus:` in rule a"


# ======================================================= expressions (issue 15)


@pytest.mark.parametrize(
    ("text", "ops"),
    [("a == b", ("==",)), ("a != b", ("!=",)), ("a < b <= c", ("<", "<=")), ("a > b >= c", (">", ">=")),
     ("a in b", ("in",)), ("a not in b", ("not in",)), ("a is b", ("is",)), ("a is not b", ("is not",))],
)
def test_comparisons(text, ops):
    value = value_of(text)
    assert isinstance(value, ast.Compare)
    assert value.ops == ops and value.left == n("a")


def test_boolean_operators_bind_as_in_python():
    value = value_of("a or b and not c or d")
    assert value == ast.BoolOp(pos0(), "or", (
        n("a"), ast.BoolOp(pos0(), "and", (n("b"), ast.UnaryOp(pos0(), "not", n("c")))), n("d")))


def test_not_binds_looser_than_comparison():
    assert value_of("not a == b") == ast.UnaryOp(pos0(), "not", ast.Compare(pos0(), n("a"), ("==",), (n("b"),)))


def test_conditional_expression():
    value = value_of("'x' if a > 1 else 'y' if b else 'z'")
    assert isinstance(value, ast.IfExp) and value.body == c("x")
    assert value.orelse == ast.IfExp(pos0(), n("b"), c("y"), c("z"))


def test_arithmetic_still_binds_tighter_than_comparison():
    value = value_of("a + 1 < b * 2")
    assert isinstance(value, ast.Compare)
    assert isinstance(value.left, ast.BinOp) and isinstance(value.comparators[0], ast.BinOp)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[x for x in L]", "list"), ("{x for x in L}", "set"), ("{x: 1 for x in L}", "dict"),
     ("(x for x in L)", "generator")],
)
def test_comprehension_kinds(text, kind):
    value = value_of(text)
    assert isinstance(value, ast.Comprehension) and value.kind == kind
    assert value.generators == (ast.CompFor(n("x"), n("L")),)


def test_comprehension_with_several_fors_and_ifs():
    value = value_of("[a + b for a, b in P if a for c in L if c if b]")
    first, second = value.generators
    assert first.target == ast.TupleExpr(pos0(), (n("a"), n("b"))) and first.ifs == (n("a"),)
    assert second.target == n("c") and second.ifs == (n("c"), n("b"))


def test_conditional_expression_as_comprehension_element():
    value = value_of("[a if a else b for a in L]")
    assert isinstance(value.elt, ast.IfExp)


def test_generator_as_the_only_argument():
    value = value_of("sorted(x.upper() for x in L)")
    assert isinstance(value, ast.Call)
    (arg,) = value.args
    assert isinstance(arg, ast.Comprehension) and arg.kind == "generator"


def test_comprehension_target_must_be_names():
    e = error_of("X = [1 for x.y in L]\n", dedent=False)
    assert e.message == "cannot assign to an attribute"


def test_lambda_parameters_and_defaults():
    value = value_of("lambda wildcards, input, threads=2: threads")
    assert isinstance(value, ast.Lambda)
    assert value.params == (ast.Param("wildcards"), ast.Param("input"), ast.Param("threads", c(2)))
    assert value.body == n("threads")
    assert value_of("lambda: 1").params == ()


def test_lambda_as_input_function_in_a_rule():
    rule = rule_of("""
        rule a:
            input: lambda wildcards: "raw/" + wildcards.sample, ref="ref.txt"
            output: "x"
        """)
    value = rule.directive("input").value
    assert isinstance(value.positional[0], ast.Lambda)
    assert value.named[0].name == "ref"


@pytest.mark.parametrize(
    ("text", "message"),
    [("lambda a, a: 1", "parameter `a` appears twice"),
     ("lambda a=1, b: 1", "parameter `b` without a default follows one with a default")],
)
def test_bad_parameters_are_refused(text, message):
    e = error_of(f"X = {text}\n", dedent=False)
    assert e.message == message


def test_def_is_an_assignment_of_a_function():
    (stmt,) = statements('''
        def sample_files(wildcards):
            """The reads of one sample."""
            base = wildcards.sample.upper()
            a, b = base.split(".")
            checkpoints.split.get(**wildcards)
            return [a + ".fq", b + ".fq"]
        ''')
    assert isinstance(stmt, ast.Assign) and stmt.name == "sample_files"
    fn = stmt.value
    assert isinstance(fn, ast.FunctionDef)
    assert (fn.name, fn.params, fn.docstring) == ("sample_files", (ast.Param("wildcards"),), "The reads of one sample.")
    assert [type(s).__name__ for s in fn.body] == ["LocalAssign", "LocalAssign", "ExprStmt", "Return"]
    assert fn.body[1].target == ast.TupleExpr(pos0(), (n("a"), n("b")))
    call = fn.body[2].value
    assert call.kwargs == (ast.Keyword(None, n("wildcards")),)
    assert (stmt.pos.line, stmt.pos.column, fn.pos.line, fn.pos.column) == (1, 5, 1, 1)


def test_one_line_def():
    (stmt,) = statements("def f(w): return w.sample\n")
    assert stmt.value.body == (ast.Return(pos0(), ast.Attribute(pos0(), n("w"), "sample")),)


def test_def_with_if_elif_else_returns():
    (stmt,) = statements("""
        def f(w):
            if w.x == "a":
                return 1
            elif w.x == "b": return 2
            else:
                y = 3
                return y
        """)
    (if_,) = stmt.value.body
    assert isinstance(if_, ast.If) and if_.body == (ast.Return(pos0(), c(1)),)
    (elif_,) = if_.orelse
    assert isinstance(elif_, ast.If) and elif_.body == (ast.Return(pos0(), c(2)),)
    assert [type(s).__name__ for s in elif_.orelse] == ["LocalAssign", "Return"]


def test_def_with_if_then_a_final_return():
    (stmt,) = statements("""
        def f(w):
            if w.x:
                return "a"
            return "b"
        """)
    assert [type(s).__name__ for s in stmt.value.body] == ["If", "Return"]


@pytest.mark.parametrize(
    ("body", "line"),
    [("    x = 1\n", 2), ('    """doc"""\n', 1), ("    if w:\n        return 1\n", 2),
     ("    if w:\n        return 1\n    else:\n        x = 2\n", 2)],
    ids=["no-return", "docstring-only", "if-without-else", "else-without-return"],
)
def test_def_must_end_in_return(body, line):
    e = error_of("def f(w):\n" + body, dedent=False)
    assert e.message == "function `f` must end in `return VALUE`"
    assert e.line == line


@pytest.mark.parametrize(
    ("body", "message"),
    [("    w.x = 1\n", "cannot assign to an attribute"), ("    w[0] = 1\n", "cannot assign to an item"),
     ("    f(w) = 1\n", "cannot assign to this expression")],
)
def test_def_assigns_only_names(body, message):
    e = error_of("def f(w):\n" + body + "    return 1\n", dedent=False)
    assert (e.line, e.column, e.message) == (2, 5, message)


def test_top_level_unpacking_is_one_assignment_a_name():
    a, b = statements("A, B = glob_wildcards('{a}/{b}.txt')\n")
    assert (a.name, b.name) == ("A", "B")
    assert isinstance(a.value, ast.UnpackItem) and (a.value.index, a.value.count) == (0, 2)
    assert (b.value.index, b.value.count) == (1, 2) and b.value.value is a.value.value
    (only_,) = statements("SAMPLES, = glob_wildcards('{s}.txt')\n")
    assert only_.name == "SAMPLES" and only_.value.count == 1


@pytest.mark.parametrize(
    ("text", "parts"),
    [("x[1:]", (c(1), None, None)), ("x[:-1]", (None, ast.UnaryOp(pos0(), "-", c(1)), None)),
     ("x[::2]", (None, None, c(2))), ("x[a:b:c]", (n("a"), n("b"), n("c"))), ("x[:]", (None, None, None))],
)
def test_slices(text, parts):
    value = value_of(text)
    assert isinstance(value.index, ast.Slice)
    assert (value.index.lower, value.index.upper, value.index.step) == parts


def test_sets_starred_and_double_starred():
    assert value_of("{1, 2}") == ast.SetExpr(pos0(), (c(1), c(2)))
    assert value_of("[*a, 1]") == ast.ListExpr(pos0(), (ast.Starred(pos0(), n("a")), c(1)))
    assert value_of("{**a, 'k': 1}") == ast.DictExpr(pos0(), ((None, n("a")), (c("k"), c(1))))
    call = value_of("expand(p, *a, k=1, **w)")
    assert call.args == (n("p"), ast.Starred(pos0(), n("a")))
    assert call.kwargs == (ast.Keyword("k", c(1)), ast.Keyword(None, n("w")))


def test_unary_plus():
    assert value_of("+a") == ast.UnaryOp(pos0(), "+", n("a"))


@pytest.mark.parametrize("func", ["os.path.join", "os.path.basename", "os.path.dirname", "os.path.splitext"])
def test_pure_path_helpers_may_be_called(func):
    assert isinstance(value_of(f"{func}('a', 'b')"), ast.Call)


@pytest.mark.parametrize("func", ["os.path.exists", "os.listdir", "os.getcwd", "os.environ.get"])
def test_other_os_functions_are_refused(func):
    e = error_of(f"X = {func}('a')\n", dedent=False)
    assert e.message == f"`{func}()` is not allowed in a Flowfile expression"
    assert "os.path.join" in e.hint and "run:" in e.hint


@pytest.mark.parametrize("method", ["rstrip", "lstrip", "partition", "rsplit", "count", "index", "zfill",
                                    "removeprefix", "removesuffix", "isdigit", "items", "union"])
def test_more_pure_methods_may_be_called(method):
    assert isinstance(value_of(f"x.{method}()"), ast.Call)


@pytest.mark.parametrize("method", ["append", "pop", "extend", "insert", "remove", "sort", "update",
                                    "setdefault", "clear", "add", "discard"])
def test_mutating_methods_are_refused(method):
    e = error_of(f"X = x.{method}(1)\n", dedent=False)
    assert e.message == f"method `.{method}()` is not allowed here"
    assert "none changes a value in place" in e.hint


# ------------------------------------------------------------------- f-strings


def test_f_string_parts():
    value = value_of("f'a{b}c{d!r:>{w}}'")
    assert isinstance(value, ast.JoinedStr)
    a, b, c_, d = value.values
    assert (a, c_) == (c("a"), c("c"))
    assert b == ast.FormattedValue(pos0(), n("b"))
    assert d.value == n("d") and d.conversion == "r"
    assert d.format_spec == ast.JoinedStr(pos0(), (c(">"), ast.FormattedValue(pos0(), n("w"))))


@pytest.mark.parametrize(
    ("text", "value"),
    [("f'{{sample}}.txt'", "{sample}.txt"), ("f'a\\tb'", "a\tb"), ("rf'a\\tb'", "a\\tb"),
     ("f'{{'  '}}'", "{}}"), ("f'{{}}'", "{}"), ("f'\\N{BULLET}'", "\u2022"), ("f'x' 'y' f''", "xy")],
)
def test_f_string_without_fields_is_a_constant(text, value):
    assert value_of(text) == c(value)


def test_f_string_expressions_are_flowfile_expressions():
    value = value_of("f\"{', '.join(x.upper() for x in L)}-{a if b else c}-{d['k']}-{e[1:]}\"")
    kinds = [type(v.value).__name__ for v in value.values if isinstance(v, ast.FormattedValue)]
    assert kinds == ["Call", "IfExp", "Subscript", "Subscript"]


def test_f_string_field_may_hold_a_string_with_escapes():
    # as Python 3.12 reads it (3.11 refuses any backslash in a field)
    value = value_of("f'{\"\\n\".join(L)}'")
    assert value.values[0].value.func.value == c("\n")


def test_f_string_debug_field_shows_its_text():
    value = value_of("f'{x = }'")
    (joined,) = value.values
    assert joined.values[0] == c("x = ") and joined.values[1].conversion == "r"


def test_f_string_field_positions_are_those_of_the_file():
    (stmt,) = statements('X = "a" f"""b\n  {c}{  d.e }"""\n')
    c_field, d_field = [v for v in stmt.value.values if isinstance(v, ast.FormattedValue)]
    assert (c_field.value.pos.line, c_field.value.pos.column) == (2, 4)
    assert (d_field.value.pos.line, d_field.value.pos.column) == (2, 9)


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [("f'a}'", 8, "f-string: single '}' is not allowed"),
     ("f'{a'", 7, "f-string: expecting '}'"),
     ("f'{}'", 8, "f-string: empty expression not allowed"),
     ("f'{a!x}'", 9, "f-string: invalid conversion character: expected 's', 'r', or 'a'"),
     ("f'{a + }'", 11, "f-string field: unexpected end of field"),
     ("f'{a b}'", 10, "f-string field: unexpected `b`"),
     ("f'{open(1)}'", 8, "unknown function `open`"),
     ("f'{a\\n}'", 9, "f-string: a field cannot hold a backslash"),
     ("b'x' f'{a}'", 5, "string prefix `b` is not supported"),
     ("bf'{a}'", 5, "string prefix `bf` is not supported")],
)
def test_f_string_mistakes_are_refused_where_they_are(text, column, message):
    e = error_of(f"X = {text}\n", dedent=False)
    assert (e.line, e.column, e.message) == (1, column, message)


def test_f_string_in_a_rule():
    rule = rule_of("""
        rule a:
            output: f"{OUT}/{{sample}}.txt"
            params: label=lambda wildcards: f"{wildcards.sample:>8}"
        """)
    out = rule.directive("output").value.positional[0]
    assert isinstance(out, ast.JoinedStr) and out.values[1] == c("/{sample}.txt")


# ============================================ more of what Snakefiles write


@pytest.mark.parametrize("shell", ['"bash"', "'/bin/bash'", '"/usr/bin/bash"'])
def test_shell_executable_bash_is_accepted_and_changes_nothing(shell):
    stmts = parse(f'shell.executable({shell})\n\nrule a:\n    output: "x"\n', "Flowfile").statements
    assert [type(s).__name__ for s in stmts] == ["Rule"]


@pytest.mark.parametrize(
    ("text", "message"),
    [('shell.executable("zsh")\n', "flow runs `shell:` commands with bash only"),
     ('shell.prefix("set -e;")\n', "`shell.prefix()` is not supported in a Flowfile"),
     ('shell("touch a")\n', "`shell()` is not supported in a Flowfile"),
     ('print(1)\n', "unknown function `print`"),
     ('config.keys()\n', "a call alone at the top level (`config.keys(...)`) does nothing in a Flowfile"),
     ('expand("a")\n', "a call alone at the top level (`expand(...)`) does nothing in a Flowfile")],
)
def test_other_calls_alone_at_the_top_level_are_refused(text, message):
    e = error_of(text, dedent=False)
    assert (e.line, e.column, e.message) == (1, 1, message)


def test_module_docstring_is_accepted():
    stmts = parse('"""What this workflow does."""\nX = 1\n"another"\n', "Flowfile").statements
    assert [s.name for s in stmts] == ["X"]


def test_parenthesised_unpacking_at_the_top_level():
    (ids,) = parse('(IDS,) = glob_wildcards("test.{id}.txt")\n', "Flowfile").statements
    assert ids.name == "IDS" and isinstance(ids.value, ast.UnpackItem) and ids.value.count == 1


def test_a_directive_value_may_be_a_bare_generator():
    rule = rule_of("""
        rule all:
            input: '{ds}.bam'.format(ds=ds) for ds in DATASETS
        """)
    (value,) = rule.directive("input").value.positional
    assert isinstance(value, ast.Comprehension) and value.kind == "generator"


def test_def_inside_a_def_names_a_local_function():
    (stmt,) = statements("""
        def some_a():
            def inner(wildcards):
                return wildcards.x
            return inner
        """)
    local, ret = stmt.value.body
    assert isinstance(local, ast.LocalAssign) and local.target == n("inner")
    assert isinstance(local.value, ast.FunctionDef) and ret == ast.Return(pos0(), n("inner"))
