"""Templates in flows: step inputs and conditions are Jinja over the trigger and earlier steps' outputs.

One locked-down sandbox (`jinja2.sandbox.ImmutableSandboxedEnvironment`, `StrictUndefined`, no
autoescape) renders them. Beyond Jinja's own sandbox (no ``_``-attributes, no internals of
functions, frames or types, no mutation of lists and dicts, ``str.format`` sandboxed):

- Statements: output, ``if``, ``for`` (not ``recursive``), ``set x = …`` and ``with``. Macros, call
  and filter blocks, block assignments, ``extends``/``include``/``import`` and namespaces are
  refused when the template is checked, so nothing can recurse or carry state across loop turns.
- Globals: ``range`` (at most `RANGE_MAX` items) and ``dict``; no ``lipsum``, ``cycler``,
  ``joiner``, ``namespace``. Calls: only those globals, ``loop.cycle``/``loop.changed`` and plain
  methods of strings (``lower``, ``split``, ``replace``, ``join``, ``format``, …), dicts (``get``,
  ``items``, ``keys``, ``values``) and lists (``index``, ``count``).
- Sizes: a template's source is at most `SOURCE_MAX` characters and renders to at most `OUTPUT_MAX`
  (a native value: about that much JSON); everything a template builds on the way — literals,
  ``~``, ``+``, ``*`` (``'a' * 10**9`` is refused before it is computed), ``%`` and ``format``
  (widths above `WIDTH_MAX` refused), filter and method results — stays under `VALUE_MAX`; integers
  under `INT_BITS_MAX` bits (``10**10**10`` is refused, not computed).
- Work: at most `LOOP_MAX` loop turns and `TIME_MAX` seconds per `render`/`condition` call.
- Lookups on dicts prefer the key to the method: ``output.items`` is the data's ``items`` field
  when it has one (Jinja would answer ``dict.items``), the method only when it has none.

Filters: Jinja's (minus the HTML ones ``safe``, ``forceescape``, ``urlize``, ``xmlattr`` and
``random``), with ``tojson`` writing plain JSON (``indent`` up to 8), and two more:
``localtime(tz='UTC', fmt=None)`` (an ISO 8601 time, a date, or unix seconds shown in a timezone —
``{{ trigger.event.start_time | localtime('Europe/Berlin', '%H:%M') }}``; no `fmt` gives ISO 8601)
and ``fromjson`` (JSON text to data).

A string that is exactly one expression (``"{{ trigger.chat_id }}"``, whitespace around allowed)
renders to the expression's value — an int stays an int, a dict a dict — and any other string
with ``{{`` or ``{%`` to text. Errors raise `TemplateError` naming the field:
``steps[2].inputs.text: 'trigger.event' has no attribute 'titel'``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import re
import time
import types
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, MappingView
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NoReturn, cast
from zoneinfo import ZoneInfo

from jinja2 import nodes
from jinja2.environment import Template
from jinja2.exceptions import FilterArgumentError, SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import TemplateError as JinjaError
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.parser import Parser
from jinja2.runtime import Context, LoopContext, StrictUndefined, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from jinja2.utils import missing, pass_environment
from jinja2.visitor import NodeTransformer

from chronary.timeutil import valid_timezone

SOURCE_MAX = 16 * 1024
OUTPUT_MAX = 64 * 1024
TOTAL_MAX = 256 * 1024  # all the templates of one render() call together
VALUE_MAX = 1_000_000  # characters plus items of any value built while rendering
RANGE_MAX = 10_000
LOOP_MAX = 100_000
INT_BITS_MAX = 4096
WIDTH_MAX = 1000
TIME_MAX = 1.0
DEPTH_MAX = 64  # nesting of a native value


class TemplateError(Exception):
    """A template that cannot be checked or rendered; `where` names the field (``steps[2].inputs.text``)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}" if where else message)
        self.where = where
        self.message = message


class _Exceeded(Exception):
    """A limit hit while rendering (not a ValueError: some filters swallow those)."""


class _Bad(Exception):
    """A template refused when compiled; the caller adds where."""


class _Missing(UndefinedError):
    def __init__(self, message: str | None, obj: Any, name: Any) -> None:
        super().__init__(message)
        self.obj = obj
        self.name = name


class _Undefined(StrictUndefined):
    """StrictUndefined whose error remembers the object looked into, to name its path."""

    __slots__ = ()

    def __init__(
        self, hint: str | None = None, obj: Any = missing, name: str | None = None, exc: Any = UndefinedError
    ) -> None:
        if exc is UndefinedError and hint is None and obj is not missing:
            exc = functools.partial(_Missing, obj=obj, name=name)
        super().__init__(hint, obj, name, exc)


# --- the budget of one render() / condition() call --------------------------------------------------


@dataclass
class _Budget:
    deadline: float = field(default_factory=lambda: time.monotonic() + TIME_MAX)
    loops: int = LOOP_MAX
    total: int = TOTAL_MAX

    def clock(self) -> None:
        if time.monotonic() > self.deadline:
            raise _Exceeded(f"takes longer than {TIME_MAX:g} s to render")

    def turn(self) -> None:
        self.loops -= 1
        if self.loops < 0:
            raise _Exceeded(f"loops run more than {LOOP_MAX} times")
        self.clock()

    def spend(self, size: int) -> None:
        self.total -= size
        if self.total < 0:
            raise _Exceeded(f"the templates render to more than {TOTAL_MAX} characters together")


_BUDGET: ContextVar[_Budget | None] = ContextVar("chronary_template_budget", default=None)


def _budget() -> _Budget:
    # outside render() (Jinja folding constants at compile time) each check gets a fresh budget
    return _BUDGET.get() or _Budget()


@contextlib.contextmanager
def _budgeted() -> Iterator[_Budget]:
    budget = _Budget()
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


# --- sizes ------------------------------------------------------------------------------------------


def _measure(value: Any, limit: int = VALUE_MAX) -> int:
    """The expanded size of a value (characters + items, shared parts counted each time), up to `limit`."""
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item) + 2
        elif isinstance(item, dict):
            total += 2 + 2 * len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += 2 + len(item)
            if total <= limit:
                stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += item.bit_length() // 3 + 1
        else:
            total += 4
        if total > limit:
            raise _Exceeded(f"builds a value larger than {limit} characters")
    return total


def _sized(value: Any) -> Any:
    if isinstance(value, str):
        if len(value) > VALUE_MAX:
            raise _Exceeded(f"builds a text longer than {VALUE_MAX} characters")
        return value if type(value) is str else str(value)  # Markup (from escape) becomes text
    if isinstance(value, dict | list | tuple | set | frozenset):
        _measure(value)
    return value


def _width(value: Any, what: str) -> None:
    if isinstance(value, int) and value > WIDTH_MAX:
        raise _Exceeded(f"{what} {value} is wider than {WIDTH_MAX}")


def _grows(size: int, what: str) -> None:
    if size > VALUE_MAX:
        raise _Exceeded(f"{what} would build a text longer than {VALUE_MAX} characters")


_PERCENT = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?.", re.DOTALL)
_DIGITS = re.compile(r"\d+")


def _check_percent(fmt: str) -> None:
    for match in _PERCENT.finditer(fmt):
        for part in match.groups():
            if part == "*":
                raise _Exceeded("'*' widths are not supported in % formats")
            if part is not None:
                _width(int(part), "the % format width")


# --- what the compiled templates call ---------------------------------------------------------------


def _loop(iterable: Any) -> Iterator[Any]:
    budget = _budget()
    for item in iterable:
        budget.turn()
        yield item


def _concat(*parts: Any) -> str:
    texts = [str(part) for part in parts]
    _grows(sum(map(len, texts)), "'~'")
    return "".join(texts)


def _value(value: Any) -> Any:
    _measure(value)
    return value


def _range(*args: int) -> range:
    rng = range(*args)
    if len(rng) > RANGE_MAX:
        raise _Exceeded(f"range() of {len(rng)} items: at most {RANGE_MAX}")
    return rng


_GUARDS = {"_loop": _loop, "_concat": _concat, "_value": _value}


def _guard(name: str, node: nodes.Node, *args: Any) -> nodes.Call:
    return nodes.Call(nodes.ImportedName(f"{__name__}.{name}"), list(args), [], None, None, lineno=node.lineno)


class _Guards(NodeTransformer):
    """Route loops, '~' and literals through the size and work checks."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _guard("_loop", node, node.iter)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _guard("_concat", node, *node.nodes)

    def _literal(self, node: nodes.Expr) -> nodes.Node:
        self.generic_visit(node)
        return _guard("_value", node, node)

    def visit_List(self, node: nodes.List) -> nodes.Node:
        return self._literal(node)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        return self._literal(node)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        if node.ctx != "load":  # a target (`for a, b in …`), not a value
            return node
        return self._literal(node)


_NODES = (
    "Template Output TemplateData If For Assign With Name Const List Tuple Dict Pair Keyword CondExpr "
    "Filter Test Call Getitem Getattr Slice Concat Compare Operand And Or Not Neg Pos Add Sub Mul Div FloorDiv Mod Pow"
)
_ALLOWED = frozenset(getattr(nodes, name) for name in _NODES.split())
_REFUSED = {
    nodes.Macro: "macros",
    nodes.CallBlock: "call blocks",
    nodes.FilterBlock: "filter blocks",
    nodes.AssignBlock: "block assignments ({% set x %}…{% endset %})",
    nodes.Block: "blocks",
    nodes.Extends: "extends",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "import",
    nodes.NSRef: "namespace attributes",
    nodes.ScopedEvalContextModifier: "autoescape blocks",
}


def _vet(tree: nodes.Node) -> None:
    for node in (tree, *tree.find_all(nodes.Node)):
        kind = type(node)
        if kind in _REFUSED:
            raise _Bad(f"{_REFUSED[kind]} are not supported in flow templates")
        if kind not in _ALLOWED:
            raise _Bad(f"{kind.__name__} is not supported in flow templates")
        if isinstance(node, nodes.For) and node.recursive:
            raise _Bad("recursive loops are not supported in flow templates")


# --- filters ----------------------------------------------------------------------------------------


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(fn)  # keeps jinja_pass_arg (pass_environment & co.)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        _budget().clock()
        return _sized(fn(*args, **kwargs))

    return guarded


def _center(value: Any, width: int = 80) -> str:
    _width(width, "center width")
    return str(value).center(width)


def _indent(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> str:
    text = str(s)
    step = len(width) if isinstance(width, str) else width
    _width(step, "indent width")
    _grows(len(text) + (text.count("\n") + 1) * max(step, 0), "indent")
    return str(FILTERS["indent"](text, width, first, blank))


@pass_environment
def _join(environment: Any, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    items = list(value)
    if attribute is not None:
        items = list(map(make_attrgetter(environment, attribute), items))
    texts = [str(item) for item in items]
    sep = str(d)
    _grows(sum(map(len, texts)) + len(sep) * max(len(texts) - 1, 0), "join")
    return sep.join(texts)


def _replace_size(text: str, old: str, new: str, count: int | None) -> int:
    hits = text.count(old) if old else len(text) + 1
    if count is not None and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * (len(new) - len(old))


def _replace(s: Any, old: str, new: str, count: int | None = None) -> str:
    text, old, new = str(s), str(old), str(new)
    _grows(_replace_size(text, old, new, count), "replace")
    return text.replace(old, new, -1 if count is None else count)


@pass_environment
def _wordwrap(
    environment: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> str:
    text = str(s)
    lines = len(text) // max(int(width), 1) + text.count("\n") + 1
    _grows(len(text) + lines * len(wrapstring or "\n"), "wordwrap")
    return str(FILTERS["wordwrap"](environment, text, width, break_long_words, wrapstring, break_on_hyphens))


def _batch(value: Any, linecount: int, fill_with: Any = None) -> list[list[Any]]:
    if not isinstance(linecount, int) or not 0 < linecount <= RANGE_MAX:
        raise _Exceeded(f"batch size {linecount!r}: 1 to {RANGE_MAX}")
    return list(FILTERS["batch"](value, linecount, fill_with))


def _slice(value: Any, slices: int, fill_with: Any = None) -> list[list[Any]]:
    if not isinstance(slices, int) or not 0 < slices <= RANGE_MAX:
        raise _Exceeded(f"slice count {slices!r}: 1 to {RANGE_MAX}")
    return list(FILTERS["slice"](value, slices, fill_with))


def _format(value: Any, *args: Any, **kwargs: Any) -> str:
    fmt = str(value)
    _check_percent(fmt)
    if args and kwargs:
        raise FilterArgumentError("format takes positional or keyword arguments, not both")
    return fmt % (kwargs or args)


def _json_default(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Iterator | range) and not isinstance(value, LoopContext):
        return list(value)
    if isinstance(value, MappingView):
        return list(cast(Iterable[Any], value))
    return str(value)


def _tojson(value: Any, indent: int | None = None) -> str:
    if indent is not None and (not isinstance(indent, int) or not 0 <= indent <= 8):
        raise _Exceeded("tojson indent: 0 to 8")
    return json.dumps(value, ensure_ascii=False, indent=indent, default=_json_default)


def _fromjson(value: Any) -> Any:
    text = str(value)
    _grows(len(text), "fromjson")
    return json.loads(text)


def _moment(value: Any) -> datetime | date:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            with contextlib.suppress(ValueError):
                return date.fromisoformat(text)
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(text.replace("z", "Z"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
        raise FilterArgumentError(f"localtime: {value!r} is not an ISO 8601 time")
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    raise FilterArgumentError(f"localtime: a {type(value).__name__} is not a time")


def _localtime(value: Any, tz: str = "UTC", fmt: str | None = None) -> str:
    """An ISO 8601 time (an offset or Z; none means UTC), a date, or unix seconds, shown in `tz`."""
    moment = _moment(value)
    if not isinstance(tz, str) or not valid_timezone(tz):
        raise FilterArgumentError(f"localtime: unknown timezone {tz!r}")
    if fmt is not None and (not isinstance(fmt, str) or len(fmt) > 100):
        raise FilterArgumentError("localtime: the format must be a strftime string of at most 100 characters")
    if isinstance(moment, datetime):
        moment = moment.astimezone(ZoneInfo(tz))  # a date (all-day) has no time to move
    return moment.isoformat() if fmt is None else moment.strftime(fmt)


def _escape(value: Any) -> str:
    return str(FILTERS["escape"](value))


_DROPPED = {"safe", "forceescape", "urlize", "xmlattr", "random"}
_OWN: dict[str, Callable[..., Any]] = {
    "center": _center,
    "indent": _indent,
    "join": _join,
    "replace": _replace,
    "wordwrap": _wordwrap,
    "batch": _batch,
    "slice": _slice,
    "format": _format,
    "tojson": _tojson,
    "fromjson": _fromjson,
    "localtime": _localtime,
    "e": _escape,
    "escape": _escape,
}


# --- method calls -----------------------------------------------------------------------------------

_STR_NAMES = (
    "lower upper strip lstrip rstrip split rsplit splitlines startswith endswith title capitalize casefold "
    "swapcase count find rfind index rindex isdigit isalpha isalnum isspace islower isupper isnumeric "
    "isdecimal istitle partition rpartition removeprefix removesuffix replace join ljust rjust center zfill"
)
_STR_METHODS = frozenset(_STR_NAMES.split())
_METHODS: dict[type, frozenset[str]] = {
    str: _STR_METHODS,
    dict: frozenset({"get", "items", "keys", "values"}),
    list: frozenset({"index", "count"}),
    tuple: frozenset({"index", "count"}),
}
_FUNCTIONS: tuple[Any, ...] = (_range, dict, *_GUARDS.values())
_LOOP_METHODS = frozenset({"cycle", "changed"})


def _str_call(text: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """Refuse the calls that would build a huge string; answer the (possibly materialised) args."""
    if name in {"ljust", "rjust", "center", "zfill"}:
        _width(args[0] if args else kwargs.get("width"), f"{name} width")
    elif name == "replace" and len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        count = args[2] if len(args) > 2 else kwargs.get("count")
        _grows(_replace_size(text, args[0], args[1], count if isinstance(count, int) else None), "replace")
    elif name == "join" and args:
        items = list(args[0])
        _grows(sum(len(i) for i in items if isinstance(i, str)) + len(text) * max(len(items) - 1, 0), "join")
        return (items, *args[1:])
    return args


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_mul(left, right)
        elif operator == "**":
            _check_pow(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_percent(left)
        elif operator == "+" and isinstance(left, str) and isinstance(right, str):
            _grows(len(left) + len(right), "'+'")
        result = super().call_binop(context, operator, left, right)
        if operator == "+" and isinstance(result, list | tuple):
            _measure(result)
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        # data first: `output.items` is the field of a JSON object, not dict.items
        if isinstance(obj, Mapping) and not isinstance(obj, Undefined):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                pass
        return super().getattr(obj, attribute)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if (
            not isinstance(value, types.MethodType | types.BuiltinMethodType)
            or value.__name__ not in ("format", "format_map")
            or not isinstance(value.__self__, str)
        ):
            return None
        fmt: str = str(value.__self__)
        is_map = value.__name__ == "format_map"
        env = self

        def format_(*args: Any, **kwargs: Any) -> str:
            positional: tuple[Any, ...] = args
            named: Mapping[str, Any] = kwargs
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                positional, named = (), args[0]
            return _SizedFormatter(env).vformat(fmt, positional, named)

        format_.chronary_callable = True  # type: ignore[attr-defined]
        return format_

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        _budget().clock()
        if any(__obj is fn for fn in _FUNCTIONS) or getattr(__obj, "chronary_callable", False) is True:
            pass
        elif isinstance(__obj, types.BuiltinMethodType) and __obj.__name__ in _METHODS.get(type(__obj.__self__), ()):
            if type(__obj.__self__) is str:
                args = _str_call(__obj.__self__, __obj.__name__, args, kwargs)
        elif (
            isinstance(__obj, types.MethodType)
            and isinstance(__obj.__self__, LoopContext)
            and __obj.__name__ in _LOOP_METHODS
        ):
            pass
        else:
            raise SecurityError(f"{_describe(__obj)} cannot be called in a flow template")
        return _sized(__context.call(__obj, *args, **kwargs))


class _SizedFormatter(SandboxedFormatter):
    def __init__(self, env: _Environment) -> None:
        super().__init__(env)
        self.size = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        for digits in _DIGITS.findall(format_spec):
            _width(int(digits), "the format width")
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        out = super().format_field(value, format_spec)
        self.size += len(out)
        _grows(self.size, "format")
        return out


def _check_mul(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and isinstance(times, int):
            size = len(seq) if isinstance(seq, str) else _measure(seq)
            _grows(size * max(times, 0), "'*'")
            return
    if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > INT_BITS_MAX:
        raise _Exceeded(f"'*' would build an integer of more than {INT_BITS_MAX} bits")


def _check_pow(base: Any, exponent: Any) -> None:
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and (exponent > INT_BITS_MAX or exponent * math.log2(abs(base)) > INT_BITS_MAX)
    ):
        raise _Exceeded(f"'**' would build an integer of more than {INT_BITS_MAX} bits")


def _describe(obj: Any) -> str:
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or type(obj).__name__
    return repr(str(name))


def _finalize(value: Any) -> Any:
    if not isinstance(value, Undefined) and callable(value):
        raise SecurityError(f"{_describe(value)} is a function, not a value: call it or look the key up with ['…']")
    return value


def _environment() -> _Environment:
    env = _Environment(
        undefined=_Undefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
    )
    env.globals.clear()
    env.globals.update({"range": _range, "dict": dict})
    env.filters = {name: _guarded(fn) for name, fn in FILTERS.items() if name not in _DROPPED}
    env.filters.update({name: _guarded(fn) for name, fn in _OWN.items()})
    return env


_ENV = _environment()


# --- compiling --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Compiled:
    template: Template
    native: bool  # one expression: its value is the result (in `result`)


def _syntax(exc: TemplateSyntaxError, source: str) -> _Bad:
    line = f"line {exc.lineno}: " if "\n" in source and exc.lineno else ""
    return _Bad(f"template syntax error: {line}{exc.message}")


def _build(tree: nodes.Template) -> Template:
    _vet(tree)
    guarded = _Guards().visit(tree)
    guarded.set_environment(_ENV)
    return _ENV.from_string(guarded)


def _result(expr: nodes.Expr) -> nodes.Template:
    return nodes.Template([nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)], lineno=1)


def _single(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly one ``{{ … }}`` (whitespace around allowed)."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts = [n for n in tree.body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())]
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


def _too_long(source: str) -> None:
    if len(source) > SOURCE_MAX:
        raise _Bad(f"the template is longer than {SOURCE_MAX} characters")


@functools.lru_cache(maxsize=1024)
def _compile(source: str) -> _Compiled:
    _too_long(source)
    try:
        tree = _ENV.parse(source)
        expr = _single(tree)
        if expr is not None:
            return _Compiled(_build(_result(expr)), native=True)
        return _Compiled(_build(tree), native=False)
    except TemplateSyntaxError as exc:
        raise _syntax(exc, source) from None
    except RecursionError:
        raise _Bad("the template nests too deeply") from None


_WRAPPED = re.compile(r"\A\s*\{\{(.*)\}\}\s*\Z", re.DOTALL)


@functools.lru_cache(maxsize=1024)
def _compile_condition(source: str) -> Template:
    _too_long(source)
    wrapped = _WRAPPED.match(source)
    text = wrapped.group(1) if wrapped else source  # "{{ a == 1 }}" is read as "a == 1"
    if not text.strip():
        raise _Bad("the condition is empty")
    try:
        parser = Parser(_ENV, text, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise TemplateSyntaxError(
                f"unexpected {parser.stream.current.value!r} after the expression",
                parser.stream.current.lineno,
                None,
                None,
            )
        return _build(_result(expr))
    except TemplateSyntaxError as exc:
        raise _syntax(exc, text) from None
    except RecursionError:
        raise _Bad("the condition nests too deeply") from None


# --- rendering --------------------------------------------------------------------------------------


def _key_path(where: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    text = str(key)
    if text.isidentifier():
        return f"{where}.{text}" if where else text
    return f"{where}[{json.dumps(text, ensure_ascii=False)}]"


def _locate(context: Mapping[str, Any], target: Any, source: str) -> str | None:
    """Where in the context a dict or list lives (for error messages), breadth first, bounded.

    The same object can sit at several paths (`trigger.event` is `trigger.object`): the first one
    the template spells out wins, else the shortest.
    """
    queue: deque[tuple[str, Any]] = deque((str(k), v) for k, v in context.items())
    found: list[str] = []
    for _ in range(20_000):
        if not queue or len(found) >= 20:
            break
        path, value = queue.popleft()
        if value is target:
            found.append(path)
        if isinstance(value, dict):
            queue.extend((_key_path(path, k), v) for k, v in value.items() if isinstance(v, dict | list))
        elif isinstance(value, list):
            queue.extend((_key_path(path, i), v) for i, v in enumerate(value) if isinstance(v, dict | list))
    return next((p for p in found if p in source), found[0] if found else None)


def _message(exc: BaseException, context: Mapping[str, Any], source: str) -> str:
    if isinstance(exc, _Missing) and isinstance(exc.obj, dict | list):
        path = _locate(context, exc.obj, source)
        if path is not None:
            if isinstance(exc.name, str):
                return f"{path!r} has no attribute {exc.name!r}"
            return f"{path!r} has no element {exc.name!r}"
    if isinstance(exc, JinjaError | _Exceeded | _Bad):
        return str(exc.message if isinstance(exc, JinjaError) else exc) or type(exc).__name__
    if isinstance(exc, RecursionError):
        return "nests too deeply"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail(where: str, exc: BaseException, context: Mapping[str, Any], source: str) -> NoReturn:
    raise TemplateError(where, _message(exc, context, source)) from None


def _native(value: Any, room: list[int], depth: int = 0) -> Any:
    """The value as data (JSON-like), spending `room` (characters left)."""
    if depth > DEPTH_MAX:
        raise _Exceeded(f"gives a value nested deeper than {DEPTH_MAX} levels")
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if value is None or isinstance(value, bool | float):
        room[0] -= 5
        out: Any = value
    elif isinstance(value, int):
        room[0] -= value.bit_length() // 3 + 1
        out = value
    elif isinstance(value, str):
        room[0] -= len(value) + 2
        out = str(value)
    elif isinstance(value, Mapping):
        room[0] -= 2
        out = {}
        for k, v in value.items():
            if not isinstance(k, str | int | float | bool) and k is not None:
                raise _Exceeded(f"gives a dict with a {type(k).__name__} key")
            room[0] -= len(str(k)) + 4
            out[k] = _native(v, room, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset | range | MappingView) or (
        isinstance(value, Iterator) and not isinstance(value, LoopContext)
    ):
        room[0] -= 2
        out = []
        for item in cast(Iterable[Any], value):
            room[0] -= 1
            if room[0] < 0:
                break
            out.append(_native(item, room, depth + 1))
    else:
        raise _Exceeded(f"gives a {type(value).__name__}, which is not data")
    if room[0] < 0:
        raise _Exceeded(f"gives a value larger than {OUTPUT_MAX} characters")
    return out


def _run(template: Template, context: Mapping[str, Any]) -> Any:
    ctx = template.new_context(dict(context))
    for _ in template.root_render_func(ctx):
        pass
    return ctx.vars["result"]


def _render_text(compiled: _Compiled, context: Mapping[str, Any], budget: _Budget) -> Any:
    if compiled.native:
        room = [OUTPUT_MAX]
        value = _native(_run(compiled.template, context), room)
        budget.spend(OUTPUT_MAX - room[0])
        return value
    size = 0
    chunks: list[str] = []
    for chunk in compiled.template.root_render_func(compiled.template.new_context(dict(context))):
        size += len(chunk)
        if size > OUTPUT_MAX:
            raise _Exceeded(f"renders to more than {OUTPUT_MAX} characters")
        chunks.append(chunk)
    budget.spend(size)
    return "".join(chunks)


def _is_template(text: str) -> bool:
    return "{{" in text or "{%" in text


def _walk(value: Any, where: str, leaf: Callable[[str, str], Any]) -> Any:
    if isinstance(value, str):
        return leaf(value, where) if _is_template(value) else value
    if isinstance(value, dict):
        return {k: _walk(v, _key_path(where, k), leaf) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, _key_path(where, i), leaf) for i, v in enumerate(value)]
    return value


def render(value: Any, context: Mapping[str, Any], where: str) -> Any:
    """`value` with every template string in it rendered (dicts and lists walked, keys left alone).

    A string that is one ``{{ expression }}`` becomes the expression's value (data: None, bool,
    numbers, str, lists, dicts); other template strings become text; everything else is kept.
    """
    with _budgeted() as budget:

        def leaf(source: str, path: str) -> Any:
            try:
                return _render_text(_compile(source), context, budget)
            except Exception as exc:
                _fail(path, exc, context, source)

        return _walk(value, where, leaf)


def check(value: Any, where: str) -> None:
    """Compile every template string in `value` (as `render` would) without rendering it."""

    def leaf(source: str, path: str) -> None:
        try:
            _compile(source)
        except Exception as exc:
            _fail(path, exc, {}, source)

    _walk(value, where, leaf)


def _truth(value: Any) -> bool:
    if isinstance(value, Iterator) and not isinstance(value, LoopContext):
        # `items | selectattr('done')` is a generator, always truthy: ask whether it yields anything
        return next(value, missing) is not missing
    return bool(value)


def condition(expr: str, context: Mapping[str, Any], where: str) -> bool:
    """Evaluate a Jinja expression (``trigger.event.calendar_id == 'cal_x' and …``) to a bool."""
    if not isinstance(expr, str):
        raise TemplateError(where, "a condition must be an expression string")
    with _budgeted():
        try:
            return _truth(_run(_compile_condition(expr), context))
        except Exception as exc:
            _fail(where, exc, context, expr)


def check_condition(expr: str, where: str) -> None:
    """Compile a condition without evaluating it."""
    if not isinstance(expr, str):
        raise TemplateError(where, "a condition must be an expression string")
    try:
        _compile_condition(expr)
    except Exception as exc:
        _fail(where, exc, {}, expr)


__all__ = ["TemplateError", "check", "check_condition", "condition", "render"]
