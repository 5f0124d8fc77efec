"""The formula language: how billing ops write a price, checked once and evaluated exactly.

Pure Python, no Django.  A formula is one expression over an event's metrics and
a price's named rates::

    input_tokens * rate_in + output_tokens * rate_out + cached_input_tokens * rate_cached
    if(input_tokens > 200000, input_tokens * rate_long, input_tokens * rate_in)
    max(ceil(output_tokens / 1000), 1) * rate_per_1k

``formula_parse(text, allowed_names=...)`` checks the text (when a price is saved)
and returns a :class:`Formula`; ``evaluate(values)`` prices one event, and
``terms(values)`` splits a top-level sum into its addends for a live preview.

Grammar: everything not in this table is refused with a :class:`FormulaError`
=============  ================================================================
numbers        ``12``, ``0.1``, ``1_000``, ``2.5e-6``: read from the source text
               into ``Decimal``, never through float, so ``0.1`` is exactly 0.1
names          only the caller's ``allowed_names`` (the metrics and the rates)
arithmetic     ``a + b``, ``a - b``, ``a * b``, ``a / b``, ``-a``, ``+a``, ``( )``
functions      ``min(a, b, ...)``, ``max(a, b, ...)`` (two or more arguments),
               ``ceil(x)``, ``floor(x)``, ``round(x)``, ``round(x, places)``
conditional    ``if(condition, then, else)``, the spelling to teach; Python's
               ``then if condition else other`` is accepted and means the same
conditions     ``< <= > >= == !=``, chained as in Python (``0 < x <= 10`` is
               ``0 < x and x <= 10``), ``and``, ``or``, ``not``; a condition is
               only ever the first part of a conditional, never a number
=============  ================================================================

``if`` is a Python keyword, so before parsing, the token ``if`` followed by ``(``
where an operand may start (at the beginning, after an operator, ``(``, ``,`` or
a keyword such as ``else``) becomes a placeholder name of the same length; after
a value it stays Python's conditional, so ``a if (x > 0) else b`` works too.
A formula may span lines.  Refused: ``**`` (so ``9**9**9`` never runs), ``//``,
``%``, bit operators, attribute access, subscripts, strings, comments,
``True``/``False``/``None`` (write a comparison), lambdas, comprehensions,
``:=``, ``*args``, keyword arguments and every other call.  Limits: 2,000
characters (counted before parsing), 32 levels of brackets or operations (a run
such as ``a + b - c`` or ``a * b / c`` is one level however long it is) and 256
expression nodes.  An error says what and where: :class:`FormulaError` carries a
1-based (line, column) and often a hint; ``input_tokens * rate_inn`` gives
``unknown name 'rate_inn' at column 16 (did you mean 'rate_in'?)``.

Evaluation is in ``Decimal`` with 50 significant digits, so sums and products of
billing quantities (a billion tokens at $0.0000025) are exact; only a division
with an endless expansion is rounded, at the 50th digit.  The result is not
rounded: money is rounded once, on the invoice line.  ``round(x, places)``
(places 0 to 12, default 0) rounds half away from zero (ROUND_HALF_UP:
``round(2.5) = 3``, ``round(-2.5) = -3``): the commercial rule that finance and
customers check with a calculator, symmetric so a credit mirrors its charge
(Python's own ``round`` goes half to even).  ``ceil``/``floor`` go toward +/-
infinity.  Division by zero, a missing or non-numeric value and a number out of
range raise :class:`FormulaError` too.  The checked tree is compiled once into
closures: evaluating does no parsing and no dispatch on node types.

Why our own allow-list: the text comes from people, so it never reaches ``eval``,
``exec`` or ``compile``.  General-purpose sandboxes such as simpleeval and asteval
have had escapes and CVEs because they start from Python and take things away;
this module starts from nothing and lets in only the nodes listed above.
"""

import ast
import bisect
import difflib
import io
import keyword
import operator
import re
import tokenize
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_UP,
    Context,
    Decimal,
    DecimalException,
    DivisionByZero,
    InvalidOperation,
    Overflow,
    localcontext,
)
from typing import TypeAlias, TypeVar

from .money import RATED_PLACES

MAX_LENGTH = 2_000
MAX_DEPTH = 32
MAX_NODES = 256
MAX_PLACES = RATED_PLACES  # round(x, places): no finer than a rated amount
FUNCTIONS = ("min", "max", "ceil", "floor", "round", "if")

_CONTEXT = Context(prec=50, traps=[InvalidOperation, DivisionByZero, Overflow])
_IF = "_i"  # as long as "if", so every position in the text stays where it was
_SCANNED = re.compile(r"[()\[\]{}#'\"\x00\ud800-\udfff]")
_CLOSES = {")": "(", "]": "[", "}": "{"}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt,
            ast.GtE: operator.ge, ast.Eq: operator.eq, ast.NotEq: operator.ne}  # fmt: skip
_SYMBOLS = {ast.Pow: "**", ast.FloorDiv: "//", ast.Mod: "%", ast.MatMult: "@", ast.BitAnd: "&",
            ast.BitOr: "|", ast.BitXor: "^", ast.LShift: "<<", ast.RShift: ">>",
            ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}  # fmt: skip
_HINTS = {"**": "write the multiplication out, e.g. x * x", "//": "use floor(a / b)"}
_REFUSED = {
    ast.Attribute: "attribute access ('.') is not allowed",
    ast.Subscript: "subscripts ('[...]') are not allowed",
    ast.Lambda: "lambda is not allowed",
    **dict.fromkeys((ast.ListComp, ast.SetComp, ast.DictComp), "comprehensions are not allowed"),
    ast.GeneratorExp: "generator expressions are not allowed",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.Starred: "starred arguments ('*') are not allowed",
    ast.Tuple: "a comma may only separate a function's arguments",
    **dict.fromkeys((ast.List, ast.Set, ast.Dict), "lists, sets and dicts are not allowed"),
}

Env = dict[str, Decimal]
Fn = Callable[[Env], Decimal]
Values = Mapping[str, Decimal | int | str]
#: A node the parser placed, that an error can point at: an expression or a keyword argument.
Node: TypeAlias = ast.expr | ast.keyword
R = TypeVar("R")  # what running the formula gives: its value, or its terms
Comparison = Callable[[Decimal, Decimal], bool]  # <, <=, >, >=, == or != on two operands


class FormulaError(ValueError):
    """A formula that cannot be used: ``message`` says what is wrong, ``position`` where.

    ``position`` is (line, column), both 1-based, or None when the problem is not
    at one place; ``text`` is the formula and ``hint`` an optional suggestion.
    """

    def __init__(
        self,
        message: str,
        *,
        position: tuple[int, int] | None = None,
        text: str = "",
        hint: str | None = None,
    ):
        super().__init__(message)
        self.message, self.position, self.text, self.hint = message, position, text, hint

    def __str__(self) -> str:
        where = ""
        if self.position is not None:
            line, column = self.position
            many = "\n" in self.text or line > 1
            where = f" at line {line}, column {column}" if many else f" at column {column}"
        return self.message + where + (f" ({self.hint})" if self.hint else "")


@dataclass(frozen=True)
class Formula:
    """A checked formula: ``text`` as typed, ``names`` every metric and rate it uses."""

    text: str
    names: frozenset[str]
    _root: Fn = field(repr=False, compare=False)
    _terms: tuple[tuple[str, Fn], ...] = field(repr=False, compare=False)

    def evaluate(self, values: Values) -> Decimal:
        """The formula's value for these metrics and rates: exact, not rounded."""
        return self._run(self._root, values)

    def evaluate_decimals(self, values: Mapping[str, Decimal]) -> Decimal:
        """:meth:`evaluate` for values that are finite Decimals already, one for every name
        the formula uses (as ``pricing.rating.event_values`` gives them), so they are not
        checked again: the rating engine calls it for every event."""
        return self._computed(self._root, values)  # type: ignore[arg-type]  # only read

    def terms(self, values: Values) -> list[tuple[str, Decimal]]:
        """Each addend of a top-level sum as (its text, its signed value); they sum to the total.

        ``a + b - c`` gives ``[("a", a), ("b", b), ("c", -c)]``; a formula that is
        not a sum is one term, its whole text.
        """
        return self._run(lambda env: [(text, fn(env)) for text, fn in self._terms], values)

    def _run(self, fn: Callable[[Env], R], values: Values) -> R:
        env: Env = {}
        missing: list[str] = []
        for name in self.names:
            if name not in values:
                missing.append(f"'{name}'")
            elif type(value := values[name]) is Decimal and value.is_finite():
                env[name] = value
            else:
                env[name] = _decimal(name, value, self.text)
        if missing:
            raise FormulaError(f"no value for {', '.join(sorted(missing))}", text=self.text)
        return self._computed(fn, env)

    def _computed(self, fn: Callable[[Env], R], env: Env) -> R:
        """`fn` of these checked values, in the formula's decimal context."""
        with localcontext(_CONTEXT):
            try:
                return fn(env)
            except DecimalException as error:
                kind = type(error).__name__
                raise FormulaError(f"a number is out of range ({kind})", text=self.text) from None


def _decimal(name: str, value: object, text: str) -> Decimal:
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if not isinstance(value, Decimal | str):
        kind = type(value).__name__
        raise FormulaError(f"the value of '{name}' must be a number, not {kind}", text=text)
    try:
        number = Decimal(value)
    except DecimalException:
        number = None
    if number is None or not number.is_finite():
        raise FormulaError(f"the value of '{name}' is not a number: {value!r}", text=text)
    return number


def formula_parse(text: str, *, allowed_names: Iterable[str]) -> Formula:
    """Check ``text`` against the grammar and the names it may use; raise FormulaError if not."""
    if not isinstance(text, str):
        raise TypeError(f"a formula is text, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        size = f"{len(text):,} characters long; the limit is {MAX_LENGTH:,}"
        raise FormulaError(f"the formula is {size}", text=text)
    if not text.strip():
        raise FormulaError("the formula is empty", text=text)
    return _Compiler(text, frozenset(allowed_names)).formula()


class _Compiler:
    """Checks one formula's text and tree, and turns the tree into closures."""

    def __init__(self, text: str, allowed: frozenset[str]):
        self.text, self.allowed = text, allowed
        self.names: set[str] = set()
        self.source = text.replace("\r\n", "\n").replace("\r", "\n")
        self.lines = self.source.split("\n")
        self.starts = [0]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def formula(self) -> Formula:
        self.scan()
        # In brackets on lines of their own, a formula may span lines and start with
        # spaces; line n of the text is line n + 1 of what the parser sees.
        source, renamed = _rename_if_calls(f"(\n{self.source}\n)")
        self.if_calls = {self.offset(row, column, in_bytes=False) for row, column in renamed}
        try:
            with warnings.catch_warnings():
                # "1if" would parse with a SyntaxWarning on stderr; as an error, the parser
                # raises a SyntaxError with its position instead.
                warnings.simplefilter("error", SyntaxWarning)
                tree = ast.parse(source, mode="eval")
        except SyntaxError as error:
            message, hint = error.msg, None
            if message.startswith("invalid syntax. Maybe you meant '=='"):
                message, hint = "invalid syntax", "use '==' to compare"
            at = self.offset(error.lineno or 1, (error.offset or 1) - 1, in_bytes=False)
            raise self.fail(message, at, hint) from None
        except (RecursionError, MemoryError):  # the parser's own stack; not seen under the limits
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", None) from None
        count = sum(isinstance(node, ast.expr) for node in ast.walk(tree))
        if count > MAX_NODES:
            raise self.fail(f"the formula has {count} parts; the limit is {MAX_NODES}", None)
        node = tree.body
        with localcontext(_CONTEXT):
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub):
                root, parts = self.run(node, 1)
            else:
                root = self.number(node, 1)
                parts = [(node, root)]
        terms = tuple((self.segment(part), fn) for part, fn in parts)
        return Formula(self.text, frozenset(self.names), _root=root, _terms=terms)

    def scan(self) -> None:
        """Brackets, quotes, comments and bad characters, before the parser sees the text."""
        opened = []
        for match in _SCANNED.finditer(self.source):
            char, at = match.group(), match.start()
            if char in "([{":
                opened.append((char, at))
                if len(opened) > MAX_DEPTH:
                    raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", at)
            elif char in _CLOSES:
                if not opened:
                    raise self.fail(f"unmatched '{char}'", at)
                if (opener := opened.pop()[0]) != _CLOSES[char]:
                    raise self.fail(f"'{char}' does not match '{opener}'", at)
            elif char == "#":
                raise self.fail("comments ('#') are not allowed", at)
            elif char in "'\"":
                raise self.fail("text in quotes is not allowed", at)
            else:
                raise self.fail(f"invalid character {char!r}", at)
        if opened:
            raise self.fail(f"'{opened[-1][0]}' was never closed", opened[-1][1])

    # -- where things are ----------------------------------------------------------------
    def offset(self, lineno: int, column: int, *, in_bytes: bool = True) -> int:
        """The parser's (line, column) as an offset in the text; it counts columns in bytes."""
        if lineno < 2:  # the opening bracket
            return 0
        if lineno > len(self.lines) + 1:  # the closing bracket: the end of the text
            return len(self.source)
        line = self.lines[lineno - 2]
        if in_bytes and not line.isascii():
            column = len(line.encode()[:column].decode())
        return self.starts[lineno - 2] + min(column, len(line))

    def at(self, node: Node) -> int:
        return self.offset(node.lineno, node.col_offset)

    def segment(self, node: Node) -> str:
        return self.source[self.at(node) : self.offset(*_end(node))]

    def between(self, left: Node, right: Node, symbol: str) -> int:
        """Where the operator between two operands is, so an error points at it."""
        start = self.offset(*_end(left))
        found = self.source.find(symbol, start, self.at(right))
        return self.at(left) if found < 0 else found

    def fail(self, message: str, where: int | Node | None, hint: str | None = None) -> FormulaError:
        position = None
        if where is not None:
            at = where if isinstance(where, int) else self.at(where)
            line = bisect.bisect_right(self.starts, at)
            position = (line, at - self.starts[line - 1] + 1)
        return FormulaError(message, position=position, text=self.text, hint=hint)

    # -- the tree ------------------------------------------------------------------------
    def number(self, node: ast.expr, depth: int) -> Fn:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", node)
        match node:
            case ast.Constant(value=bool() | None as value):
                raise self.fail(f"{value} is not allowed", node, "write a comparison such as x > 0")
            case ast.Constant(value=int() | float() as value):
                literal = value if type(value) is int else self.segment(node)  # not the float
                try:  # the unary plus rounds past 50 digits, as arithmetic does
                    number = +Decimal(literal)
                except DecimalException:
                    raise self.fail("number out of range", node) from None
                return lambda env: number
            case ast.Constant(value=complex()):
                raise self.fail("complex numbers are not allowed", node)
            case ast.Constant():
                raise self.fail(f"{self.segment(node)!r} is not allowed", node)
            case ast.Name(id=name) if name in self.allowed:
                self.names.add(name)
                return lambda env: env[name]
            case ast.Name(id=name):
                raise self.fail(f"unknown name '{name}'", node, self.suggest(name))
            case ast.BinOp(op=ast.Add() | ast.Sub() | ast.Mult() | ast.Div()):
                return self.run(node, depth)[0]
            case ast.BinOp(op=op):
                symbol = _SYMBOLS[type(op)]
                where = self.between(node.left, node.right, symbol)
                raise self.fail(f"operator '{symbol}' is not allowed", where, _HINTS.get(symbol))
            case ast.UnaryOp(op=ast.USub()):
                operand = self.number(node.operand, depth + 1)
                return lambda env: -operand(env)
            case ast.UnaryOp(op=ast.UAdd()):
                return self.number(node.operand, depth + 1)
            case ast.UnaryOp(op=ast.Invert()):
                raise self.fail("operator '~' is not allowed", node)
            case ast.Compare() | ast.BoolOp() | ast.UnaryOp(op=ast.Not()):
                hint = "use it in if(condition, then, else)"
                raise self.fail("a condition is not a number", node, hint)
            case ast.IfExp(test=test, body=body, orelse=orelse):
                return self.conditional(test, body, orelse, depth)
            case ast.Call():
                return self.call(node, depth)
        raise self.fail(_REFUSED.get(type(node), "this expression is not allowed"), node)

    def run(self, node: ast.BinOp, depth: int) -> tuple[Fn, list[tuple[ast.expr, Fn]]]:
        """``a + b - c`` or ``a * b / c``: one level of nesting, folded left to right.

        Also returns each operand with its signed value, which ``terms`` shows for a sum.
        """
        group = ast.Add | ast.Sub if isinstance(node.op, ast.Add | ast.Sub) else ast.Mult | ast.Div
        links = []
        operand: ast.expr = node
        while isinstance(operand, ast.BinOp) and isinstance(operand.op, group):
            links.append(operand)
            operand = operand.left
        fn = self.number(operand, depth + 1)
        parts = [(operand, fn)]
        for binop in reversed(links):
            right = self.number(binop.right, depth + 1)
            parts.append((binop.right, _negated(right) if isinstance(binop.op, ast.Sub) else right))
            fn = self.binary(binop, fn, right)
        return fn, parts

    def binary(self, binop: ast.BinOp, left: Fn, right: Fn) -> Fn:
        match binop.op:
            case ast.Add():
                return lambda env: left(env) + right(env)
            case ast.Sub():
                return lambda env: left(env) - right(env)
            case ast.Mult():
                return lambda env: left(env) * right(env)
        message = f"division by zero in '{self.segment(binop)}'"
        error = self.fail(message, self.between(binop.left, binop.right, "/"))
        position, text = error.position, error.text  # a fresh error for each division by zero

        def divide(env: Env) -> Decimal:
            divisor = right(env)
            if not divisor:
                raise FormulaError(message, position=position, text=text)
            return left(env) / divisor

        return divide

    def call(self, node: ast.Call, depth: int) -> Fn:
        func, args = node.func, node.args
        if not isinstance(func, ast.Name):
            raise self.fail("only min, max, ceil, floor, round and if can be called", func)
        name = "if" if func.id == _IF and self.at(func) in self.if_calls else func.id
        if name not in FUNCTIONS:
            hint = self.suggest(name, FUNCTIONS) or "functions are min, max, ceil, floor, round, if"
            raise self.fail(f"unknown function '{name}'", func, hint)
        if node.keywords:
            raise self.fail(f"{name}() takes no keyword arguments", node.keywords[0])
        for arg in args:
            if type(arg) in _REFUSED:
                raise self.fail(_REFUSED[type(arg)], arg)
        if name == "if":
            if len(args) != 3:
                raise self.fail("if() takes 3 arguments: if(condition, then, else)", node)
            test, then, other = args
            return self.conditional(test, then, other, depth)
        if name in ("min", "max"):
            if len(args) < 2:
                raise self.fail(f"{name}() takes 2 or more arguments", node)
            fns, pick = [self.number(arg, depth + 1) for arg in args], min if name == "min" else max
            return lambda env: pick([fn(env) for fn in fns])
        if len(args) != 1 and not (name == "round" and len(args) == 2):
            takes = "1 or 2 arguments" if name == "round" else "1 argument"
            raise self.fail(f"{name}() takes {takes}", node)
        operand = self.number(args[0], depth + 1)
        if name in ("ceil", "floor"):
            rounding = ROUND_CEILING if name == "ceil" else ROUND_FLOOR
            return lambda env: operand(env).to_integral_value(rounding=rounding)
        places = args[1] if len(args) == 2 else ast.Constant(0)
        match places:
            case ast.Constant(value=int(count)) if type(count) is int and count <= MAX_PLACES:
                pass  # a literal: an operand of unary minus is not a Constant, so count >= 0
            case _:
                limit = f"a whole number from 0 to {MAX_PLACES}"
                raise self.fail(f"round() places must be {limit}", places)
        quantum = Decimal(1).scaleb(-count)
        return lambda env: operand(env).quantize(quantum, rounding=ROUND_HALF_UP)

    def conditional(self, test: ast.expr, then: ast.expr, other: ast.expr, depth: int) -> Fn:
        check = self.condition(test, depth + 1)
        yes, no = self.number(then, depth + 1), self.number(other, depth + 1)
        return lambda env: yes(env) if check(env) else no(env)

    def condition(self, node: ast.expr, depth: int) -> Callable[[Env], bool]:
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH} levels", node)
        match node:
            case ast.Compare(left=left, ops=ops, comparators=comparators):
                operands = [left, *comparators]
                for op, before, after in zip(ops, operands, comparators, strict=False):
                    if type(op) not in _COMPARE:
                        symbol = _SYMBOLS[type(op)]
                        where = self.between(before, after, symbol)
                        raise self.fail(f"operator '{symbol}' is not allowed", where)
                tests = [_COMPARE[type(op)] for op in ops]
                fns = [self.number(operand, depth + 1) for operand in operands]
                return lambda env: _compare(env, fns, tests)
            case ast.BoolOp(op=op, values=values):
                conditions = [self.condition(value, depth + 1) for value in values]
                if isinstance(op, ast.And):
                    return lambda env: all(test(env) for test in conditions)
                return lambda env: any(test(env) for test in conditions)
            case ast.UnaryOp(op=ast.Not(), operand=operand):
                test = self.condition(operand, depth + 1)
                return lambda env: not test(env)
        self.number(node, depth)  # a refused construct says so; a number needs a comparison
        raise self.fail("a condition must be a comparison", node, "for example x > 0")

    def suggest(self, name: str, options: Iterable[str] | None = None) -> str | None:
        if options is None and name in FUNCTIONS:
            return f"{name} is a function: call it like {name}(...)"
        options = sorted(self.allowed if options is None else options)
        same = [option for option in options if option.lower() == name.lower()]
        close = same or difflib.get_close_matches(name, options, n=1)
        return f"did you mean '{close[0]}'?" if close else None


def _end(node: Node) -> tuple[int, int]:
    """Where a node ends: the parser sets it on every node (it is None only on a node made
    by hand, such as round()'s default places, which no error points at)."""
    assert node.end_lineno is not None and node.end_col_offset is not None
    return node.end_lineno, node.end_col_offset


def _negated(fn: Fn) -> Fn:
    return lambda env: -fn(env)


def _compare(env: Env, fns: list[Fn], tests: Sequence[Comparison]) -> bool:
    """A chain ``a < b <= c``: each operand is evaluated once, and only while it matters."""
    left = fns[0](env)
    for test, fn in zip(tests, fns[1:], strict=True):
        right = fn(env)
        if not test(left, right):
            return False
        left = right
    return True


def _rename_if_calls(source: str) -> tuple[str, set[tuple[int, int]]]:
    """Rename each ``if(`` where an operand may start; return the (row, column)s renamed."""
    if "if" not in source:
        return source, set()
    tokens = []
    try:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER):
                tokens.append(token)
    except (tokenize.TokenError, SyntaxError):
        pass  # the parser reports the same problem, with a better message
    lines, renamed = source.split("\n"), set()
    for before, token, after in zip([None, *tokens], tokens, tokens[1:], strict=False):
        if token.string != "if" or token.type != tokenize.NAME or after.string != "(":
            continue
        if before is None or before.type == tokenize.OP:
            starts_operand = before is None or before.string not in (")", "]", "}")
        else:
            literal = before.string in ("True", "False", "None")
            starts_operand = keyword.iskeyword(before.string) and not literal
        if starts_operand:
            row, column = token.start
            lines[row - 1] = lines[row - 1][:column] + _IF + lines[row - 1][column + 2 :]
            renamed.add((row, column))
    return "\n".join(lines), renamed
