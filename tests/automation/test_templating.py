"""Flow templates: native values, text, errors naming the field, conditions, filters, and the sandbox."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chronary.services.automation import templating
from chronary.services.automation.templating import TemplateError, check, check_condition, condition, render

CONTEXT: dict[str, Any] = {
    "trigger": {
        "chat_id": 4242,
        "type": "event.created",
        "event": {
            "title": "Standup",
            "calendar_id": "cal_x",
            "start_time": "2026-01-15T08:30:00Z",
            "attendees": ["ann@example.com", "bob@example.com"],
        },
        "flags": {"urgent": True, "note": None},
    },
    "steps": {
        "lookup": {"output": {"count": 2, "items": [{"name": "a", "done": True}, {"name": "b", "done": False}]}},
        "empty": {"output": {"count": 0, "items": []}},
    },
}


def _error(value: Any, where: str = "steps[2].inputs.text") -> TemplateError:
    with pytest.raises(TemplateError) as info:
        render(value, CONTEXT, where)
    return info.value


# --- native values and text -------------------------------------------------------------------------


def test_a_lone_expression_keeps_its_native_value() -> None:
    out = render(
        {
            "chat_id": "{{ trigger.chat_id }}",
            "event": "{{ trigger.event }}",
            "who": "{{ trigger.event.attendees }}",
            "urgent": "{{ trigger.flags.urgent }}",
            "note": "{{ trigger.flags.note }}",
            "sum": "{{ steps.lookup.output.count + 1 }}",
            "ratio": "{{ steps.lookup.output.count / 4 }}",
        },
        CONTEXT,
        "steps[0].inputs",
    )
    assert out == {
        "chat_id": 4242,
        "event": CONTEXT["trigger"]["event"],
        "who": ["ann@example.com", "bob@example.com"],
        "urgent": True,
        "note": None,
        "sum": 3,
        "ratio": 0.5,
    }
    assert type(out["chat_id"]) is int


def test_whitespace_and_trim_markers_around_the_expression_still_give_the_value() -> None:
    assert render("  {{   trigger.chat_id   }}\n", CONTEXT, "x") == 4242
    assert render("{{- trigger.chat_id -}}", CONTEXT, "x") == 4242


def test_built_values_become_plain_data() -> None:
    assert render("{{ {'id': trigger.chat_id, 'tags': ['a', 'b']} }}", CONTEXT, "x") == {"id": 4242, "tags": ["a", "b"]}
    assert render("{{ range(3) }}", CONTEXT, "x") == [0, 1, 2]
    assert render("{{ steps.lookup.output.items | map(attribute='name') }}", CONTEXT, "x") == ["a", "b"]
    assert render("{{ (1, 2) }}", CONTEXT, "x") == [1, 2]
    assert render("{{ dict(a=1) }}", CONTEXT, "x") == {"a": 1}


def test_other_template_strings_render_to_text() -> None:
    text = "Hi {{ trigger.event.title }}: {{ steps.lookup.output.count }} items"
    assert render(text, CONTEXT, "x") == "Hi Standup: 2 items"
    assert render("{{ trigger.chat_id }}{{ trigger.chat_id }}", CONTEXT, "x") == "42424242"
    assert render("id {{ trigger.chat_id }}", CONTEXT, "x") == "id 4242"
    loop = (
        "{% for i in steps.lookup.output.items %}{{ loop.index }}.{{ i.name }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    assert render(loop, CONTEXT, "x") == "1.a, 2.b"
    assert render("{% if trigger.flags.urgent %}URGENT{% else %}calm{% endif %}", CONTEXT, "x") == "URGENT"
    assert render("{% set n = steps.lookup.output.count * 10 %}{{ n }}", CONTEXT, "x") == "20"
    assert render("line\n{{ trigger.event.title }}\n", CONTEXT, "x") == "line\nStandup\n"


def test_walks_dicts_and_lists_and_leaves_everything_else_alone() -> None:
    value = {
        "n": 3,
        "flag": False,
        "none": None,
        "plain": "no template here {# not one either #}",
        "{{ trigger.chat_id }}": "key left alone",
        "list": ["{{ trigger.event.title }}", 7, {"deep": "{{ trigger.chat_id }}"}],
    }
    assert render(value, CONTEXT, "steps[1].inputs") == {
        "n": 3,
        "flag": False,
        "none": None,
        "plain": "no template here {# not one either #}",
        "{{ trigger.chat_id }}": "key left alone",
        "list": ["Standup", 7, {"deep": 4242}],
    }
    assert render(12, CONTEXT, "x") == 12
    assert render("", CONTEXT, "x") == ""


def test_dict_fields_win_over_dict_methods() -> None:
    data = {"out": {"items": [1, 2], "keys": "k", "values": {"a": 1}}}
    assert render("{{ out.items }}", data, "x") == [1, 2]
    assert render("{{ out.keys }}", data, "x") == "k"
    assert render("{{ out.values.a }}", data, "x") == 1
    assert render("{{ out['items'] | length }}", data, "x") == 2
    assert render("{{ trigger.flags.items() | list }}", CONTEXT, "x") == [["urgent", True], ["note", None]]
    assert render("{{ trigger.flags.get('missing', 'dflt') }}", CONTEXT, "x") == "dflt"


def test_undefined_is_strict_but_default_and_defined_work() -> None:
    assert render("{{ trigger.nope | default('fallback') }}", CONTEXT, "x") == "fallback"
    assert render("{% if trigger.nope is defined %}y{% else %}n{% endif %}", CONTEXT, "x") == "n"
    assert render("{{ trigger.flags.note is none }}", CONTEXT, "x") is True


# --- errors name the field --------------------------------------------------------------------------


def test_a_missing_attribute_names_the_field_and_the_path() -> None:
    exc = _error("Hello {{ trigger.event.titel }}")
    assert exc.where == "steps[2].inputs.text"
    assert exc.message == "'trigger.event' has no attribute 'titel'"
    assert str(exc) == "steps[2].inputs.text: 'trigger.event' has no attribute 'titel'"


def test_nested_fields_and_list_items_extend_the_where() -> None:
    exc = _error({"to": ["{{ trigger.chat_id }}", "{{ steps.lookup.output.items[5] }}"]}, "steps[3].inputs")
    assert exc.where == "steps[3].inputs.to[1]"
    assert exc.message == "'steps.lookup.output.items' has no element 5"
    exc = _error({"a b": "{{ nope }}"}, "steps[0].inputs")
    assert exc.where == 'steps[0].inputs["a b"]'
    assert exc.message == "'nope' is undefined"


def test_a_shared_object_is_named_by_the_path_the_template_used() -> None:
    event = {"title": "x"}
    data = {"trigger": {"data": {"object": event}, "object": event, "event": event}}
    for path in ("trigger.event", "trigger.object", "trigger.data.object"):
        with pytest.raises(TemplateError) as info:
            render(f"{{{{ {path}.titel }}}}", data, "f")
        assert info.value.message == f"'{path}' has no attribute 'titel'"
    with pytest.raises(TemplateError) as info:
        render("{% for e in trigger.events %}{{ e.titel }}{% endfor %}", {"trigger": {"events": [{"a": 1}]}}, "f")
    assert info.value.message == "'trigger.events[0]' has no attribute 'titel'"


def test_native_values_fail_on_undefined_too() -> None:
    assert _error("{{ trigger.event.titel }}").message == "'trigger.event' has no attribute 'titel'"
    assert _error("{{ [trigger.nope] }}").message == "'trigger' has no attribute 'nope'"


def test_python_errors_are_reported_as_template_errors() -> None:
    assert _error("{{ 1 / 0 }}").message == "ZeroDivisionError: division by zero"
    assert _error("{{ trigger.chat_id ~ }}").message.startswith("template syntax error:")
    exc = _error("first\n{% if %}")
    assert exc.message.startswith("template syntax error: line 2: ")


def test_printing_a_method_is_refused_rather_than_leaking_its_repr() -> None:
    assert "is a function" in _error("title: {{ trigger.event.title.upper }}").message
    assert "not data" in _error("{{ trigger.event.title.upper }}").message
    assert render("{{ trigger.event.title.upper() }}", CONTEXT, "x") == "STANDUP"


def test_check_compiles_without_rendering_and_names_the_field() -> None:
    check({"text": "Hi {{ trigger.whatever_is_fine_at_save_time }}", "n": 1}, "steps[0].inputs")
    check("no template", "x")
    with pytest.raises(TemplateError) as info:
        check({"text": "ok", "list": ["{{ a }}", "{% for x in y %}"]}, "steps[4].inputs")
    assert info.value.where == "steps[4].inputs.list[1]"
    assert info.value.message.startswith("template syntax error:")
    with pytest.raises(TemplateError) as info:
        check({"f": "{{ x | no_such_filter }}"}, "steps[0].inputs")
    assert info.value.where == "steps[0].inputs.f"
    assert "no_such_filter" in info.value.message


@pytest.mark.parametrize(
    ("source", "refused"),
    [
        ("{% macro f() %}x{% endmacro %}", "macros"),
        ("{% call f() %}x{% endcall %}", "call blocks"),
        ("{% filter upper %}x{% endfilter %}", "filter blocks"),
        ("{% set x %}x{% endset %}", "block assignments"),
        ("{% block b %}x{% endblock %}", "blocks"),
        ("{% extends 'x' %}", "extends"),
        ("{% include 'x' %}", "include"),
        ("{% import 'x' as y %}", "import"),
        ("{% from 'x' import y %}", "import"),
        ("{% set ns = namespace() %}{% set ns.a = 1 %}", "namespace attributes"),
        ("{% for x in y recursive %}{{ loop(x) }}{% endfor %}", "recursive loops"),
    ],
)
def test_statements_that_could_recurse_or_carry_state_are_refused_at_check_time(source: str, refused: str) -> None:
    with pytest.raises(TemplateError) as info:
        check(source, "steps[0].inputs.text")
    assert info.value.message.startswith(refused)
    assert info.value.where == "steps[0].inputs.text"


def test_a_template_source_is_capped() -> None:
    long = "{{ 1 }}" + "x" * templating.SOURCE_MAX
    with pytest.raises(TemplateError) as info:
        check(long, "f")
    assert info.value.message == f"the template is longer than {templating.SOURCE_MAX} characters"


# --- conditions -------------------------------------------------------------------------------------


def test_conditions_evaluate_to_bools() -> None:
    expr = "trigger.event.calendar_id == 'cal_x' and steps.lookup.output.count > 0"
    assert condition(expr, CONTEXT, "steps[1].condition") is True
    assert condition("steps.empty.output.count > 0", CONTEXT, "c") is False
    assert condition("'ann@example.com' in trigger.event.attendees", CONTEXT, "c") is True
    assert condition("trigger.nope is defined", CONTEXT, "c") is False
    assert condition("{{ trigger.chat_id == 4242 }}", CONTEXT, "c") is True
    assert condition("steps.lookup.output.items", CONTEXT, "c") is True
    assert condition("steps.empty.output.items", CONTEXT, "c") is False


def test_a_filtered_sequence_condition_asks_whether_anything_is_left() -> None:
    assert condition("steps.lookup.output.items | selectattr('done')", CONTEXT, "c") is True
    assert condition("steps.lookup.output.items | selectattr('name', 'equalto', 'zz')", CONTEXT, "c") is False


def test_condition_errors_name_the_condition() -> None:
    with pytest.raises(TemplateError) as info:
        condition("trigger.event.titel == 'x'", CONTEXT, "steps[1].condition")
    assert str(info.value) == "steps[1].condition: 'trigger.event' has no attribute 'titel'"
    with pytest.raises(TemplateError) as info:
        condition("trigger.chat_id ==", CONTEXT, "trigger.config.condition")
    assert info.value.where == "trigger.config.condition"
    assert info.value.message.startswith("template syntax error:")


def test_check_condition_at_save_time() -> None:
    check_condition("trigger.a == 1 and steps.b.output.ok", "trigger.config.condition")
    for bad, message in [
        ("a ==", "template syntax error:"),
        ("a b", "template syntax error: unexpected 'b' after the expression"),
        ("   ", "the condition is empty"),
        ("{% if a %}", "template syntax error:"),
    ]:
        with pytest.raises(TemplateError) as info:
            check_condition(bad, "flow.steps[0].condition")
        assert info.value.where == "flow.steps[0].condition"
        assert info.value.message.startswith(message)
    with pytest.raises(TemplateError) as info:
        check_condition(42, "c")  # type: ignore[arg-type]
    assert info.value.message == "a condition must be an expression string"


# --- filters ----------------------------------------------------------------------------------------


def test_localtime_shows_iso_times_in_a_timezone() -> None:
    winter = "{{ trigger.event.start_time | localtime('Europe/Berlin', '%H:%M') }}"
    assert render(winter, CONTEXT, "x") == "09:30"
    summer = {"t": "2026-07-15T08:30:00+00:00"}
    assert render("{{ t | localtime('Europe/Berlin', '%H:%M') }}", summer, "x") == "10:30"
    assert render("{{ t | localtime('America/New_York') }}", summer, "x") == "2026-07-15T04:30:00-04:00"
    assert render("{{ t | localtime }}", summer, "x") == "2026-07-15T08:30:00+00:00"
    assert render("{{ 1767225600 | localtime('Asia/Tokyo', '%Y-%m-%d %H:%M') }}", {}, "x") == "2026-01-01 09:00"
    assert render("{{ '2026-03-01' | localtime('Asia/Tokyo', '%d.%m.') }}", {}, "x") == "01.03."
    assert render("{{ '2026-03-01T10:00:00' | localtime('Europe/Berlin', '%H') }}", {}, "x") == "11"


def test_localtime_errors() -> None:
    assert _error("{{ trigger.event.start_time | localtime('Mars/Olympus') }}").message == (
        "localtime: unknown timezone 'Mars/Olympus'"
    )
    assert _error("{{ 'soon' | localtime }}").message == "localtime: 'soon' is not an ISO 8601 time"


def test_tojson_writes_plain_json_and_fromjson_reads_it() -> None:
    data = {"v": {"name": "Café <b>", "n": [1, 2]}}
    assert render("{{ v | tojson }}", data, "x") == '{"name": "Café <b>", "n": [1, 2]}'
    assert json.loads(render("{{ v | tojson(2) }}", data, "x")) == data["v"]
    assert render("{{ '[1, {\"a\": 2}]' | fromjson }}", {}, "x") == [1, {"a": 2}]
    assert _error("{{ trigger | tojson(100) }}").message == "tojson indent: 0 to 8"


def test_string_filters_and_methods_work_within_their_limits() -> None:
    cases = {
        "{{ steps.lookup.output.items | map(attribute='name') | join(', ') }}": "a, b",
        "{{ 'a-b-c' | replace('-', '+') }}": "a+b+c",
        "{{ 'a-b-c'.replace('-', '') }}": "abc",
        "{{ '%s has %d' | format('x', 2) }}": "x has 2",
        "{{ '%s/%05d' % ('x', 7) }}": "x/00007",
        "{{ '{:>4}|{}'.format('a', 1) }}": "   a|1",
        "{{ '{a}'.format_map({'a': 5}) }}": "5",
        "{{ 'ab' | center(6) }}": "  ab  ",
        "{{ 'a\nb' | indent(2, true) }}": "  a\n  b",
        "{{ 'x' * 3 }}": "xxx",
        "{{ 'A&B' | e }}": "A&amp;B",
        "{{ ', '.join(trigger.event.attendees) }}": "ann@example.com, bob@example.com",
        "{{ 'one two three' | wordcount }}": 3,
        "{{ [3, 1, 2] | sort | first }}": 1,
        "{{ 'a,b'.split(',') | length }}": 2,
        "{{ 2 ** 10 }}": 1024,
        "{{ 'ab'.ljust(4) ~ '|' }}": "ab  |",
    }
    for source, expected in cases.items():
        assert render(source, CONTEXT, "x") == expected, source


def test_only_listed_methods_and_globals_may_be_called() -> None:
    for source, name in [
        ("{{ 'x'.encode() }}", "'str.encode'"),
        ("{{ 'x'.expandtabs(4) }}", "'str.expandtabs'"),
        ("{{ dict.fromkeys([1], 2) }}", "'dict.fromkeys'"),
    ]:
        assert _error(source).message == f"{name} cannot be called in a flow template", source
    # the attr filter hands out the same sandboxed str.format (Jinja 3.1.6's fix) with its size checks
    assert render("{{ ('<{0}>' | attr('format'))(1) }}", {}, "x") == "<1>"
    assert "unsafe" in _error("{{ ('{0.__class__}' | attr('format'))(1) }}").message
    assert "wider than" in _error("{{ ('{:>99999}' | attr('format'))(1) }}").message
    assert _error("{{ lipsum(1) }}").message == "'lipsum' is undefined"
    assert _error("{{ namespace() }}").message == "'namespace' is undefined"


# --- the sandbox ------------------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ self.__init__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ lipsum.__globals__ }}",
    "{{ range.__globals__ }}",
    "{{ dict.__init__.__globals__ }}",
    "{{ dict.mro() }}",
    "{{ ''.format.__self__ }}",
    "{{ ''.format.__globals__ }}",
    "{{ '{0.__class__.__mro__}'.format('') }}",
    "{{ '{0.__globals__}'.format(range) }}",
    "{{ ('{0.' ~ '__class__}').format(1) }}",
    "{{ '{0[__class__]}'.format(trigger) }}",
    "{{ '%s'.format_map.__self__ }}",
    "{{ ('{0.__class__}' | attr('format'))(1) }}",
    "{{ trigger | attr('__class__') }}",
    "{{ trigger['__class__'] }}",
    "{{ steps.lookup.output.items | map(attribute='__class__') | list }}",
    "{{ trigger.event.attendees.append('x') }}",
    "{{ trigger.flags.update({'a': 1}) }}",
    "{{ trigger.flags.pop('urgent') }}",
    "{{ (trigger.flags.items() | list)[0].__class__ }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('touch {marker}').read() }}",
    "{{ ''.__class__.__mro__[1].__subclasses__()[0]('touch {marker}') }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_python_internals_are_out_of_reach(source: str, tmp_path: Path) -> None:
    marker = tmp_path / "escaped"
    template = source.replace("{marker}", str(marker))
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render({"text": template}, CONTEXT, "steps[0].inputs")
    assert time.monotonic() - started < 1.0
    assert info.value.where == "steps[0].inputs.text"
    assert any(word in info.value.message for word in ("unsafe", "undefined", "cannot be called", "has no attribute"))
    assert "<class" not in info.value.message and "object at 0x" not in info.value.message
    assert not marker.exists()


@pytest.mark.parametrize(
    "expr",
    [
        "''.__class__.__mro__",
        "cycler.__init__.__globals__",
        "range.__globals__",
        "''.format.__self__",
        "'{0.__class__}'.format(1)",
        "trigger.flags.update({'a': 1})",
        "range(10**9) | list",
        "'a' * 10**9",
    ],
)
def test_conditions_run_in_the_same_sandbox(expr: str) -> None:
    with pytest.raises(TemplateError) as info:
        condition(expr, CONTEXT, "steps[0].condition")
    assert info.value.where == "steps[0].condition"
    assert CONTEXT["trigger"]["flags"] == {"urgent": True, "note": None}


BOMBS = [
    ("{{ range(10**9) | list }}", "range() of 1000000000 items"),
    ("{{ 'a' * 10**9 }}", "'*' would build a text longer than"),
    ("{{ 10**9 * 'a' }}", "'*' would build a text longer than"),
    ("{{ [1, 2] * 10**9 }}", "'*' would build a text longer than"),
    ("{{ 9 ** 9999999 }}", "'**' would build an integer of more than 4096 bits"),
    ("{% set a = 2 ** 4000 %}{{ a * a }}", "'*' would build an integer of more than 4096 bits"),
    ("{{ 'a' | center(10**9) }}", "center width 1000000000 is wider than 1000"),
    ("{{ 'a'.ljust(10**9) }}", "ljust width 1000000000 is wider than 1000"),
    ("{{ 'a'.zfill(10**9) }}", "zfill width 1000000000 is wider than 1000"),
    ("{{ '{:>999999999}'.format(1) }}", "the format width 999999999 is wider than 1000"),
    ("{{ '{0:>{1}}'.format(1, 10**9) }}", "the format width 1000000000 is wider than 1000"),
    ("{{ '%999999999d' % 1 }}", "the % format width 999999999 is wider than 1000"),
    ("{{ '%*d' % (999999999, 1) }}", "'*' widths are not supported in % formats"),
    ("{{ '%.999999999f' | format(1.5) }}", "the % format width 999999999 is wider than 1000"),
    ("{{ ('{0}' * 10000).format('x' * 100000) }}", "format would build a text longer than"),
    ("{{ 'ab' | replace('', 'x' * 900000) }}", "replace would build a text longer than"),
    ("{{ 'ab'.replace('', 'x' * 900000) }}", "replace would build a text longer than"),
    ("{{ range(10000) | join('x' * 1000) }}", "join would build a text longer than"),
    ("{{ ('x' * 1000).join(range(10000) | map('string')) }}", "join would build a text longer than"),
    ("{{ ('a\n' * 5000) | indent(500) }}", "indent would build a text longer than"),
    ("{{ ('a ' * 5000) | wordwrap(1, wrapstring='x' * 900) }}", "wordwrap would build a text longer than"),
    ("{{ trigger | batch(10**9) }}", "batch size 1000000000"),
    ("{{ trigger | slice(10**9) }}", "slice count 1000000000"),
    ("{% set a = 'x' * 300000 %}{{ a ~ a ~ a ~ a }}", "'~' would build a text longer than"),
    ("{% set a = 'x' * 600000 %}{{ a + a }}", "'+' would build a text longer than"),
    (
        "{% set a = ['x' * 1000] * 100 %}{% set b = [a, a, a, a, a, a, a, a, a, a, a] %}{{ b | length }}",
        "builds a value larger than",
    ),
    ("{% set a = ['x' * 1000] * 100 %}{% set b = a + a + a + a + a + a + a + a + a + a + a %}", "builds a value larger"),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "loops run more than 100000 times",
    ),
    (
        "{% for a in 'x' * 1000 %}{% for b in 'x' * 1000 %}{% endfor %}{% endfor %}",
        "loops run more than 100000 times",
    ),
    ("{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}", "renders to more than 65536 characters"),
    ("{{ 'x' * 70000 }}", "gives a value larger than 65536 characters"),
]


@pytest.mark.parametrize(("source", "message"), BOMBS)
def test_resource_bombs_fail_fast_without_running(source: str, message: str) -> None:
    started = time.monotonic()
    exc = _error(source)
    assert time.monotonic() - started < 1.5
    assert message in exc.message
    assert exc.where == "steps[2].inputs.text"


def test_all_templates_of_one_render_share_one_output_budget() -> None:
    one = "{{ 'x' * 60000 }}"
    assert len(render({"a": one, "b": one}, {}, "x")["a"]) == 60000
    with pytest.raises(TemplateError) as info:
        render({"a": one, "b": one, "c": one, "d": one, "e": one}, {}, "steps[0].inputs")
    assert info.value.where == "steps[0].inputs.e"
    assert info.value.message == f"the templates render to more than {templating.TOTAL_MAX} characters together"


def test_the_wall_clock_budget_stops_slow_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(templating, "TIME_MAX", 0.05)
    big = {"rows": [{"n": i} for i in range(5000)]}
    slow = "{% for i in range(5000) %}{% set s = rows | sort(attribute='n', reverse=true) %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        render(slow, big, "x")
    assert time.monotonic() - started < 1.0
    assert info.value.message == "takes longer than 0.05 s to render"


def test_moderate_work_is_fine() -> None:
    assert render("{% for i in range(1000) %}{{ i % 10 }}{% endfor %}", {}, "x") == "0123456789" * 100
    assert render("{{ range(10000) | sum }}", {}, "x") == 49995000
    assert render("{{ ('ab' * 1000) | length }}", {}, "x") == 2000
    assert render("{{ (2 ** 4000) | string | length }}", {}, "x") == 1205
