"""The formula language: exact evaluation, refusals that say what and where, and properties.

Pure core: no database, no Django.
"""

import ast
import contextlib
import inspect
from decimal import Context, Decimal, localcontext

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pricing import formula as formula_module
from pricing.formula import Formula, FormulaError, formula_parse

METRICS = ("input_tokens", "output_tokens", "cached_input_tokens")
RATES = ("rate_in", "rate_out", "rate_cached", "rate_long")
NAMES = (*METRICS, *RATES, "x", "y", "z")
STANDARD = "input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached"
# $2.50 / $10.00 / $1.25 per million input / output / cached-input tokens, per token.
GPT_4O = {
    "rate_in": Decimal("0.0000025"),
    "rate_out": Decimal("0.00001"),
    "rate_cached": Decimal("0.00000125"),
    "rate_long": Decimal("0.000005"),
}
SAMPLE_CALL = {"input_tokens": 1000, "output_tokens": 500, "cached_input_tokens": 2000}


def parse(text: str) -> Formula:
    return formula_parse(text, allowed_names=NAMES)


def refusal(text: str, **values) -> FormulaError:
    """The error that parsing, or evaluating with ``values``, raises."""
    with pytest.raises(FormulaError) as caught:
        parse(text).evaluate(values)
    return caught.value


# -- evaluation -----------------------------------------------------------------------------


def test_the_standard_three_rate_formula_prices_a_sample_call_at_exactly_one_cent():
    # given gpt-4o's rates and a call of 1,000 input, 500 output and 2,000 cached tokens
    formula = parse(STANDARD)

    # when it is evaluated
    cost = formula.evaluate({**SAMPLE_CALL, **GPT_4O})

    # then 2.5e-3 + 5e-3 + 2.5e-3 is exactly one cent, and the formula knows its names
    assert cost == Decimal("0.01")
    assert isinstance(cost, Decimal)
    assert formula.names == frozenset({*METRICS, "rate_in", "rate_out", "rate_cached"})
    assert formula.text == STANDARD


LONG_CONTEXT = "if(input_tokens > 200000, input_tokens * rate_long, input_tokens * rate_in)"
EVALUATIONS = [
    # exact decimal literals, never floats
    ("0.1 + 0.2", {}, "0.3"),
    ("2.5e-6 * 1000000", {}, "2.5"),
    ("1e3 + 1_000", {}, "2000"),
    ("1 / 8", {}, "0.125"),
    # precedence and associativity
    ("1 + 2 * 3", {}, "7"),
    ("(1 + 2) * 3", {}, "9"),
    ("2 - 3 - 4", {}, "-5"),
    ("8 / 4 / 2", {}, "1"),
    ("-2 * 3 + 1", {}, "-5"),
    ("-(x - 5)", {"x": 2}, "3"),
    ("- -x + +x", {"x": 4}, "8"),
    # values may be int, Decimal or decimal text
    ("x * y", {"x": "1.5", "y": Decimal("2")}, "3"),
    # min and max take two or more arguments
    ("min(3, 1, 2)", {}, "1"),
    ("max(x, 1)", {"x": 0}, "1"),
    ("max(-1, -2)", {}, "-1"),
    # ceil goes toward +infinity, floor toward -infinity
    ("ceil(1.2)", {}, "2"),
    ("ceil(-1.2)", {}, "-1"),
    ("floor(1.8)", {}, "1"),
    ("floor(-1.2)", {}, "-2"),
    ("ceil(output_tokens / 1000) * 3", {"output_tokens": 1001}, "6"),
    # round: half away from zero (ROUND_HALF_UP), places 0..12
    ("round(2.5)", {}, "3"),
    ("round(-2.5)", {}, "-3"),
    ("round(2.4999)", {}, "2"),
    ("round(0.125, 2)", {}, "0.13"),
    ("round(-0.125, 2)", {}, "-0.13"),
    ("round(0.0000000000015, 12)", {}, "0.000000000002"),
    # the conditional: a long-context tier, both sides of the threshold
    (LONG_CONTEXT, {"input_tokens": 200000}, "0.5"),
    (LONG_CONTEXT, {"input_tokens": 200001}, "1.000005"),
    (
        "input_tokens * rate_long if input_tokens > 200000 else input_tokens * rate_in",
        {"input_tokens": 300000},
        "1.5",
    ),
    ("x if (y > 1) else if(x > 0, 1, 2)", {"x": 7, "y": 0}, "1"),
    ("if (\n  x > 1,\n  10,\n  20\n)", {"x": 2}, "10"),
    ("if(0 < x <= 10, 1, 2)", {"x": 10}, "1"),
    ("if(0 < x <= 10, 1, 2)", {"x": 0}, "2"),
    ("if(x > 0 and y > 0, 1, 0)", {"x": 1, "y": 0}, "0"),
    ("if(not x > 0 or y == 1, 1, 0)", {"x": 1, "y": 1}, "1"),
    ("if(x != 0, y / x, 0)", {"x": 0, "y": 5}, "0"),  # the branch not taken is not evaluated
    ("if(x >= 1, if(x >= 10, 3, 2), 1)", {"x": 10}, "3"),
    # the result is not rounded to money
    ("x * rate_in", {"x": 1}, "0.0000025"),
]


@pytest.mark.parametrize(("text", "values", "expected"), EVALUATIONS)
def test_a_formula_evaluates_exactly(text, values, expected):
    # given a checked formula
    formula = parse(text)

    # when it is evaluated (with gpt-4o's rates, for the formulas that use them)
    result = formula.evaluate({**GPT_4O, **values})

    # then the value is exact
    assert result == Decimal(expected)


def test_decimal_literals_are_read_from_the_text_not_through_float():
    assert str(parse("0.1 + 0.2").evaluate({})) == "0.3"
    assert str(parse("2.5e-6").evaluate({})) == "0.0000025"


def test_terms_break_a_top_level_sum_into_signed_addends_that_sum_to_the_total():
    # given the standard formula and a sample call
    formula = parse(STANDARD)
    values = {**SAMPLE_CALL, **GPT_4O}

    # when it is broken down
    terms = formula.terms(values)

    # then each addend shows its text and its value, and they sum to the total
    assert terms == [
        ("input_tokens * rate_in", Decimal("0.0025")),
        ("output_tokens * rate_out", Decimal("0.005")),
        ("cached_input_tokens * rate_cached", Decimal("0.0025")),
    ]
    assert sum(value for _, value in terms) == formula.evaluate(values)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x - y + 1", [("x", Decimal(5)), ("y", Decimal(-3)), ("1", Decimal(1))]),
        ("x - (y + 1)", [("x", Decimal(5)), ("y + 1", Decimal(-4))]),
        ("-x + y", [("-x", Decimal(-5)), ("y", Decimal(3))]),
        ("max(x, y) * 2", [("max(x, y) * 2", Decimal(10))]),
        ("  x  ", [("x", Decimal(5))]),
    ],
)
def test_terms_of_other_shapes(text, expected):
    assert parse(text).terms({"x": 5, "y": 3}) == expected


def test_a_name_spelled_like_the_placeholder_is_an_ordinary_name():
    # given a caller whose names include "_i", the placeholder that stands for if(
    formula = formula_parse("_i + if(_i > 1, 1, 2)", allowed_names=["_i"])

    # when it is evaluated, then "_i" is the value and if( the conditional
    assert formula.evaluate({"_i": 5}) == Decimal(6)
    with pytest.raises(FormulaError) as caught:
        formula_parse("_i(1)", allowed_names=["_i"])
    assert str(caught.value) == (
        "unknown function '_i' at column 1 (functions are min, max, ceil, floor, round, if)"
    )


# -- refusals: what and where ---------------------------------------------------------------

FUNCTIONS_HINT = "(functions are min, max, ceil, floor, round, if)"
NESTED_33 = "(" * 33 + "x" + ")" * 33
REFUSALS = [
    # size and shape, before anything is parsed
    ("", "the formula is empty", None),
    ("  \n\t ", "the formula is empty", None),
    ("x" * 2001, "the formula is 2,001 characters long; the limit is 2,000", None),
    (NESTED_33, "nesting deeper than 32 levels at column 33", (1, 33)),
    ("-" * 40 + "x", "nesting deeper than 32 levels at column 33", (1, 33)),
    ("+".join(["x"] * 200), "the formula has 399 parts; the limit is 256", None),
    ("min(x, y", "'(' was never closed at column 4", (1, 4)),
    ("x)", "unmatched ')' at column 2", (1, 2)),
    ("(x]", "']' does not match '(' at column 3", (1, 3)),
    ("min([x)]", "')' does not match '[' at column 7", (1, 7)),
    ("x\0", "invalid character '\\x00' at column 2", (1, 2)),
    ("x # a note", "comments ('#') are not allowed at column 3", (1, 3)),
    # names, with the closest suggestion
    (
        "input_tokens * rate_inn + output_tokens * rate_out",
        "unknown name 'rate_inn' at column 16 (did you mean 'rate_in'?)",
        (1, 16),
    ),
    (
        "Input_tokens",
        "unknown name 'Input_tokens' at column 1 (did you mean 'input_tokens'?)",
        (1, 1),
    ),
    (
        "x +\n  rate_inn",
        "unknown name 'rate_inn' at line 2, column 3 (did you mean 'rate_in'?)",
        (2, 3),
    ),
    (
        "min + 1",
        "unknown name 'min' at column 1 (min is a function: call it like min(...))",
        (1, 1),
    ),
    ("secret", "unknown name 'secret' at column 1", (1, 1)),
    # escapes and everything outside the grammar
    ("__import__('os')", "text in quotes is not allowed at column 12", (1, 12)),
    ("__import__(os)", f"unknown function '__import__' at column 1 {FUNCTIONS_HINT}", (1, 1)),
    ("x.__class__", "attribute access ('.') is not allowed at column 1", (1, 1)),
    ("x[0]", "subscripts ('[...]') are not allowed at column 1", (1, 1)),
    (
        "(lambda: 1)()",
        "only min, max, ceil, floor, round and if can be called at column 2",
        (1, 2),
    ),
    ("lambda: 1", "lambda is not allowed at column 1", (1, 1)),
    ("[x for x in y]", "comprehensions are not allowed at column 1", (1, 1)),
    ("{x: 1 for x in y}", "comprehensions are not allowed at column 1", (1, 1)),
    ("min(x for x in y)", "generator expressions are not allowed at column 4", (1, 4)),
    ("f'{x}'", "text in quotes is not allowed at column 2", (1, 2)),
    ("b'x'", "text in quotes is not allowed at column 2", (1, 2)),
    ("(x := 1)", "assignment (':=') is not allowed at column 2", (1, 2)),
    ("min(*x, y)", "starred arguments ('*') are not allowed at column 5", (1, 5)),
    ("[1, 2]", "lists, sets and dicts are not allowed at column 1", (1, 1)),
    ("x, y", "a comma may only separate a function's arguments at column 1", (1, 1)),
    # operators
    (
        "9**9**9",
        "operator '**' is not allowed at column 2 (write the multiplication out, e.g. x * x)",
        (1, 2),
    ),
    ("x // 2", "operator '//' is not allowed at column 3 (use floor(a / b))", (1, 3)),
    ("x % 2", "operator '%' is not allowed at column 3", (1, 3)),
    ("x & y", "operator '&' is not allowed at column 3", (1, 3)),
    ("x << 2", "operator '<<' is not allowed at column 3", (1, 3)),
    ("x @ y", "operator '@' is not allowed at column 3", (1, 3)),
    ("~x", "operator '~' is not allowed at column 1", (1, 1)),
    ("if(x is y, 1, 2)", "operator 'is' is not allowed at column 6", (1, 6)),
    ("if(x in y, 1, 2)", "operator 'in' is not allowed at column 6", (1, 6)),
    # literals
    ("True", "True is not allowed at column 1 (write a comparison such as x > 0)", (1, 1)),
    ("None", "None is not allowed at column 1 (write a comparison such as x > 0)", (1, 1)),
    ("1j", "complex numbers are not allowed at column 1", (1, 1)),
    ("...", "'...' is not allowed at column 1", (1, 1)),
    ("1e99999999999999999999", "number out of range at column 1", (1, 1)),
    # functions and their arguments
    ("abs(x)", f"unknown function 'abs' at column 1 {FUNCTIONS_HINT}", (1, 1)),
    ("IF(x > 1, 1, 2)", "unknown function 'IF' at column 1 (did you mean 'if'?)", (1, 1)),
    ("mni(x, y)", "unknown function 'mni' at column 1 (did you mean 'min'?)", (1, 1)),
    ("min(x)", "min() takes 2 or more arguments at column 1", (1, 1)),
    ("ceil(x, y)", "ceil() takes 1 argument at column 1", (1, 1)),
    ("round(x, 1, 2)", "round() takes 1 or 2 arguments at column 1", (1, 1)),
    ("round(x, 13)", "round() places must be a whole number from 0 to 12 at column 10", (1, 10)),
    ("round(x, -1)", "round() places must be a whole number from 0 to 12 at column 10", (1, 10)),
    ("round(x, 1.5)", "round() places must be a whole number from 0 to 12 at column 10", (1, 10)),
    ("round(x, y)", "round() places must be a whole number from 0 to 12 at column 10", (1, 10)),
    ("round(x, ndigits=2)", "round() takes no keyword arguments at column 10", (1, 10)),
    ("if(x > 1, 2)", "if() takes 3 arguments: if(condition, then, else) at column 1", (1, 1)),
    # conditions and numbers are not interchangeable
    ("if(x, 1, 2)", "a condition must be a comparison at column 4 (for example x > 0)", (1, 4)),
    ("x if y else z", "a condition must be a comparison at column 6 (for example x > 0)", (1, 6)),
    (
        "if(True, 1, 2)",
        "True is not allowed at column 4 (write a comparison such as x > 0)",
        (1, 4),
    ),
    (
        "x > 1",
        "a condition is not a number at column 1 (use it in if(condition, then, else))",
        (1, 1),
    ),
    (
        "x and y",
        "a condition is not a number at column 1 (use it in if(condition, then, else))",
        (1, 1),
    ),
    # syntax, in the parser's words where they are clear
    ("x +", "invalid syntax at column 4", (1, 4)),
    ("x = 1", "invalid syntax at column 1 (use '==' to compare)", (1, 1)),
    ("x y", "invalid syntax. Perhaps you forgot a comma? at column 1", (1, 1)),
]


@pytest.mark.parametrize(("text", "message", "position"), REFUSALS)
def test_a_formula_outside_the_grammar_is_refused_saying_what_and_where(text, message, position):
    # when the text is checked
    with pytest.raises(FormulaError) as caught:
        parse(text)

    # then the error says what is wrong, and where
    assert str(caught.value) == message
    assert caught.value.position == position
    assert caught.value.text == text


@pytest.mark.parametrize(
    ("text", "values", "message", "position"),
    [
        ("x / y", {"x": 1, "y": 0}, "division by zero in 'x / y' at column 3", (1, 3)),
        (
            "(x + 1) / (y - 1)",
            {"x": 1, "y": 1},
            "division by zero in '(x + 1) / (y - 1)' at column 9",
            (1, 9),
        ),
        ("x + y", {"x": 1}, "no value for 'y'", None),
        ("x + y + z", {}, "no value for 'x', 'y', 'z'", None),
        ("x * 2", {"x": "abc"}, "the value of 'x' is not a number: 'abc'", None),
        ("x * 2", {"x": Decimal("NaN")}, "the value of 'x' is not a number: Decimal('NaN')", None),
        ("x * 2", {"x": "Infinity"}, "the value of 'x' is not a number: 'Infinity'", None),
        ("x * 2", {"x": 1.5}, "the value of 'x' must be a number, not float", None),
        ("x * 2", {"x": True}, "the value of 'x' must be a number, not bool", None),
        ("x * 1e999999", {"x": 10}, "a number is out of range (Overflow)", None),
        (
            "round(x, 2)",
            {"x": Decimal("1e60")},
            "a number is out of range (InvalidOperation)",
            None,
        ),
    ],
)
def test_evaluation_errors_are_formula_errors(text, values, message, position):
    # given a formula that checked fine
    formula = parse(text)

    # when it is evaluated with these values
    with pytest.raises(FormulaError) as caught:
        formula.evaluate(values)

    # then the error names the problem
    assert str(caught.value) == message
    assert caught.value.position == position


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x" * 1_000_000, "the formula is 1,000,000 characters long; the limit is 2,000"),
        (
            "(" * 100_000 + "x" + ")" * 100_000,
            "the formula is 200,001 characters long; the limit is 2,000",
        ),
        ("(" * 1000 + "x" + ")" * 999, "nesting deeper than 32 levels at column 33"),
        ("-" * 1999 + "x", "the formula has 2000 parts; the limit is 256"),
        ("not " * 499 + "x", "the formula has 500 parts; the limit is 256"),
        ("x" + ".y" * 999, "the formula has 1000 parts; the limit is 256"),
        ("x" + "(x)" * 666, "the formula has 1333 parts; the limit is 256"),
        ("x<" * 999 + "x", "the formula has 1001 parts; the limit is 256"),
    ],
)
def test_pathological_text_is_refused_with_a_formula_error_and_nothing_else(text, message):
    # when a megabyte, or deep nesting within the length limit, is checked,
    # then it is a FormulaError (no RecursionError, no MemoryError)
    with pytest.raises(FormulaError) as caught:
        parse(text)
    assert str(caught.value) == message


def test_the_module_is_pure_python_and_never_runs_text_as_code():
    # given the module's source
    tree = ast.parse(inspect.getsource(formula_module))

    # then it imports no Django and calls none of eval, exec, compile or __import__
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    assert not {name for name in imported if name.split(".")[0] == "django"}
    assert not called & {"eval", "exec", "compile", "__import__"}


# -- properties -----------------------------------------------------------------------------

quantities = st.integers(min_value=0, max_value=10**12) | st.decimals(
    min_value=0, max_value=10**6, places=6, allow_nan=False, allow_infinity=False
)
rates = st.decimals(min_value=0, max_value=100, places=12, allow_nan=False, allow_infinity=False)


@given(a=rates, b=rates, c=rates, x=quantities, y=quantities, z=quantities)
def test_a_linear_formula_equals_the_same_sum_done_directly_in_decimal(a, b, c, x, y, z):
    formula = formula_parse("a*x + b*y + c*z", allowed_names=["a", "b", "c", "x", "y", "z"])

    with localcontext(Context(prec=200)):
        expected = a * x + b * y + c * z

    assert formula.evaluate({"a": a, "b": b, "c": c, "x": x, "y": y, "z": z}) == expected


@given(inputs=quantities, outputs=quantities, cached=quantities)
def test_a_price_with_all_rates_zero_costs_nothing(inputs, outputs, cached):
    formula = parse(STANDARD)
    zero = {"rate_in": Decimal(0), "rate_out": 0, "rate_cached": "0.000"}
    values = {"input_tokens": inputs, "output_tokens": outputs, "cached_input_tokens": cached}

    assert formula.evaluate({**values, **zero}) == Decimal(0)


def _combined(children):
    pair = st.tuples(children, children)
    return st.one_of(
        pair.map(lambda p: f"({p[0]} + {p[1]})"),
        pair.map(lambda p: f"{p[0]} * {p[1]}"),
        pair.map(lambda p: f"min({p[0]}, {p[1]})"),
        pair.map(lambda p: f"max({p[0]}, {p[1]})"),
        children.map(lambda c: f"ceil({c})"),
        children.map(lambda c: f"round({c}, 2)"),
        pair.map(lambda p: f"if({p[0]} > {p[1]}, {p[0]}, {p[1]} * 2)"),
    )


non_negative_formulas = st.recursive(
    st.sampled_from(["x", "y", "z", "0", "1.5", "2e-6"]), _combined, max_leaves=12
)


@given(text=non_negative_formulas, x=quantities, y=quantities, z=rates)
def test_sums_products_min_and_max_of_non_negative_values_are_never_negative(text, x, y, z):
    assert parse(text).evaluate({"x": x, "y": y, "z": z}) >= 0


@settings(max_examples=500)
@given(text=st.text(max_size=300))
def test_any_text_either_parses_or_raises_a_formula_error(text):
    try:
        formula = parse(text)
    except FormulaError:
        return
    assert isinstance(formula, Formula)


# Pieces of formulas and of things a formula must not be, glued at random.
OPERANDS = ["x", "y", "0", "1", "0.5", "2e3", "_i", "é"]
OPERATORS = ["+", "-", "*", "/", "**", "<", "==", " and ", " not ", " if ", " else "]
PUNCTUATION = ["(", ")", ",", ".", "[", "]", ":", " ", "\n", "lambda"]
CALLS = ["if(", "min(", "max(", "round(", "ceil("]
TOKENS = OPERANDS + OPERATORS + PUNCTUATION + CALLS


@settings(max_examples=1000)
@given(parts=st.lists(st.sampled_from(TOKENS), max_size=40), x=quantities, y=quantities)
def test_formula_shaped_text_parses_and_evaluates_or_raises_a_formula_error(parts, x, y):
    with contextlib.suppress(FormulaError):
        formula = formula_parse("".join(parts), allowed_names=["x", "y", "_i"])
        assert isinstance(formula.evaluate({"x": x, "y": y, "_i": 1}), Decimal)


def test_text_python_would_only_warn_about_is_refused_quietly(recwarn):
    with pytest.raises(FormulaError) as error:
        formula_parse("1if input_tokens else 0", allowed_names=["input_tokens"])

    assert str(error.value) == "invalid decimal literal at column 1"
    assert [str(warning.message) for warning in recwarn] == []
