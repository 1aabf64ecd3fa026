"""Velocity templates (SPEC §8, issue item 5): pure rendering and checking, no database.

Templates see the data only through an object whose single lookup is ``get``; a render failure is
a ``RenderFailed`` (the worker turns it into that one delivery's failure); ``check`` refuses, when a
message is saved, syntax errors (with line and column) and anything that reaches Python internals.
"""

from __future__ import annotations

from typing import Any

import pytest

from tessera.messaging import templates
from tessera.messaging.templates import RenderFailed, TemplateRefused, check, render

ORDER: dict[str, Any] = {
    "code": "ABC-123",
    "name": "Олена",
    "total": 3,
    "customer": {"first": "Ann", "address": {"city": "Kyiv"}},
    "items": [{"sku": "A-1", "qty": 2}, {"sku": "B-2", "qty": 1}, {"sku": "C-3", "qty": 5}],
    "tags": ["new", "vip"],
}


# --- what item 5 lists -------------------------------------------------------------------------------


def test_the_seed_variable() -> None:
    assert render("Your code: $!data.get('code')", ORDER) == "Your code: ABC-123"
    assert render("Your code: $data.get('code')", {"code": "ABC-123"}) == "Your code: ABC-123"


def test_nested_get() -> None:
    assert render("$data.get('customer').get('first')", ORDER) == "Ann"
    assert render("$data.get('customer').get('address').get('city')", ORDER) == "Kyiv"
    assert render("$!data.get('customer').get('address').get('zip')|", ORDER) == "|"


@pytest.mark.parametrize(
    ("total", "expected"),
    [(5, "many"), (2, "two"), (0, "none")],
)
def test_if_elseif_else(total: int, expected: str) -> None:
    source = "#if($data.get('total') > 2)many#elseif($data.get('total') == 2)two#{else}none#end"
    assert render(source, {"total": total}) == expected


def test_if_on_a_missing_key_is_false() -> None:
    assert render("#if($data.get('nope'))yes#{else}no#end", ORDER) == "no"


def test_foreach_with_velocity_count() -> None:
    source = "#foreach($item in $data.get('items'))$velocityCount. $item.get('sku') x$item.get('qty')\n#end"
    assert render(source, ORDER) == "1. A-1 x2\n2. B-2 x1\n3. C-3 x5\n"


def test_foreach_joining_with_velocity_count() -> None:
    source = "#foreach($tag in $data.get('tags'))#if($velocityCount > 1), #end$tag#end"
    assert render(source, ORDER) == "new, vip"


def test_foreach_over_a_missing_key_renders_nothing() -> None:
    assert render("[#foreach($i in $data.get('nope'))x#end]", ORDER) == "[]"


def test_set() -> None:
    assert render("#set($c = $data.get('code'))[$c][$c]", ORDER) == "[ABC-123][ABC-123]"
    assert render("#set($n = $data.get('total') + 1)$n", ORDER) == "4"
    assert render("#set($city = $data.get('customer').get('address').get('city'))$city", ORDER) == "Kyiv"


def test_non_ascii_data() -> None:
    assert render("Привіт, $data.get('name')!", ORDER) == "Привіт, Олена!"


# --- the data object: a key named get, missing keys, arrays ------------------------------------------


def test_a_key_named_get_does_not_break_lookups() -> None:
    """With a plain dict airspeed would find ``data['get']`` (a string) before the ``get`` method."""
    data = {"get": "not a method", "code": "ABC-123", "nested": {"get": 1, "x": "deep"}}
    assert render("$data.get('code')", data) == "ABC-123"
    assert render("$data.get('get')", data) == "not a method"
    assert render("$data.get('nested').get('x') $data.get('nested').get('get')", data) == "deep 1"


def test_missing_keys_are_quiet_with_the_bang() -> None:
    assert render("[$!data.get('missing')]", ORDER) == "[]"
    assert render("[$!data.get('missing').get('deeper')]", ORDER) == "[]"


def test_missing_keys_without_the_bang_show_the_reference() -> None:
    """Velocity's own behaviour: a quiet reference needs ``$!``."""
    assert render("[$data.get('missing')]", ORDER) == "[$data.get('missing')]"


def test_arrays_get_and_size() -> None:
    assert render("$data.get('tags').get(0)/$data.get('tags').get(1)", ORDER) == "new/vip"
    assert render("$data.get('items').get(2).get('sku')", ORDER) == "C-3"
    assert render("$data.get('items').size() $data.get('tags').size()", ORDER) == "3 2"


def test_a_missing_index_fails_the_render() -> None:
    with pytest.raises(RenderFailed, match=r"no element 5 in a list of 2"):
        render("$data.get('tags').get(5)", ORDER)


def test_a_non_numeric_index_fails_the_render() -> None:
    with pytest.raises(RenderFailed, match=r"no element 'x' in a list of 3"):
        render("$data.get('items').get('x')", ORDER)


def test_other_errors_while_rendering_fail_the_render_with_their_reason() -> None:
    with pytest.raises(RenderFailed, match=r"ZeroDivisionError"):
        render("#set($x = $data.get('total') / 0)$x", ORDER)
    with pytest.raises(RenderFailed, match=r"no loader"):
        render("#parse('other.vm')", ORDER)


def test_objects_and_arrays_render_as_json() -> None:
    assert render("$data.get('customer').get('address')", ORDER) == '{"city": "Kyiv"}'
    assert render("$data.get('tags')", ORDER) == '["new", "vip"]'


def test_the_data_object_offers_nothing_but_get() -> None:
    assert render("$data.keys()", ORDER) == "$data.keys()"
    assert render("$data.items()", ORDER) == "$data.items()"
    assert render("$data.isEmpty() $data.get('nested').isEmpty()", {"nested": {}}) == "False True"


def test_empty_templates_render_empty() -> None:
    assert render(None, ORDER) == ""
    assert render("", ORDER) == ""


def test_data_is_never_evaluated_as_a_template() -> None:
    data = {"evil": "$data.get('code') #set($x = 1)"}
    assert render("$data.get('evil')", data) == data["evil"]


# --- check(): what a message may be saved with -----------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "$data.get('code')",
        "#if($data.get('a'))A#elseif($data.get('b'))B#{else}C#end",
        "#foreach($i in $data.get('items'))$velocityCount $i.get('sku')#end",
        "#set($c = $data.get('code'))$c",
        "plain text, no Velocity at all",
    ],
)
def test_check_accepts_good_templates(source: str) -> None:
    check(source)


@pytest.mark.parametrize(
    ("source", "line"),
    [
        ("$data.__class__", 1),
        ("Hello\n$data._values", 2),
        ("$data.get('code').__class__.__mro__", 1),
        ("one\ntwo\n#set($x = $data.get('a').__init__)", 3),
    ],
)
def test_check_refuses_reaching_python_internals(source: str, line: int) -> None:
    with pytest.raises(TemplateRefused, match=r"may not contain '(__|\._)'") as refused:
        check(source)
    assert refused.value.line == line


@pytest.mark.parametrize(
    "source",
    [
        # #evaluate compiles a string at render time: taken from the data, it would get round the
        # source check entirely ($data.__init__.__globals__ ... os.system).
        "#evaluate($data.get('t'))",
        "#set($u = '_')#evaluate(\"$u\")",
        # str.format walks attribute names in its format string, which the data can supply:
        # '{0.__init__.__globals__[airspeed].os.environ}' would print the process's environment.
        "$data.get('f').format($data)",
        "#set($f = $data.get('f').format_map)$f",
    ],
)
def test_check_refuses_the_ways_round_the_internals_check(source: str) -> None:
    with pytest.raises(TemplateRefused, match=r"may not contain"):
        check(source)
    with pytest.raises(RenderFailed, match=r"template contains"):
        render(source, {"t": "$data.__class__", "f": "{0.__init__.__globals__}"})


def test_render_refuses_internals_too() -> None:
    """A template stored before ``check`` existed (or written to the database directly)."""
    with pytest.raises(RenderFailed, match=r"template contains '\._'"):
        render("$data.get('x')._values", ORDER)


@pytest.mark.parametrize(
    ("source", "line", "column", "expected"),
    [
        ("Hello\n#if($data.get('a')\nx#end", 2, 19, "expected ) in parenthesized expression"),
        ("a\nb $data.get('x'", 2, 16, "expected ) in parameter list"),
        ("#foreach($i)\n#end", 1, 12, "expected in in foreach directive"),
        ("#if($data.get('a'))x", 1, 21, "expected #else, #elseif or #end"),
        ("text\n\n#end", 3, 1, "expected block element"),
    ],
)
def test_syntax_errors_come_with_line_and_column(source: str, line: int, column: int, expected: str) -> None:
    with pytest.raises(TemplateRefused) as refused:
        check(source)
    assert (refused.value.line, refused.value.column) == (line, column)
    assert expected in refused.value.reason
    assert refused.value.reason.startswith(f"line {line}, column {column}:")


def test_a_syntax_error_at_render_time_is_a_render_failure() -> None:
    with pytest.raises(RenderFailed, match=r"line 1, column 21"):
        render("#if($data.get('a'))x", ORDER)


@pytest.mark.parametrize(
    "source",
    [
        "#foreach($i in [1..1000000000])#end",
        "#foreach($i in [1..200])#foreach($j in [1..200])#end#end",
        "#foreach($i in [1000000000..1])$i#end",
        "#foreach($i in $data.get('many'))#foreach($j in $data.get('many'))#end#end",
    ],
)
def test_a_render_loops_at_most_ten_thousand_times(source: str) -> None:
    with pytest.raises(RenderFailed, match="loops more than 10,000 times"):
        render(source, {"many": list(range(1000))})


def test_a_render_writes_at_most_two_million_characters() -> None:
    with pytest.raises(RenderFailed, match="writes more than 2,000,000 characters"):
        render("#foreach($i in [1..5000])" + "x" * 500 + "#end", {})


def test_the_budget_is_per_render() -> None:
    loop = "#foreach($i in [1..6000])#end done"
    assert [render(loop, {}) for _ in range(3)] == [" done"] * 3
    assert render("#foreach($i in [1..10000])#end$!data.get('a')", {"a": "ok"}) == "ok"


# --- Velocity tools and Java's String methods (SPEC §10; the tools are tested in test_velocity_tools.py)


def test_every_render_has_eSputniks_tools() -> None:
    source = "$mathTool.add(1, 2) $numberTool.integer(2.5) $dateTool.diff('01/01/2020', '03/01/2020', 'DAYS')"
    assert render(source, {}) == "3 2 2"


def test_data_strings_answer_java_methods_and_python_ones_as_before() -> None:
    assert render("$data.get('name').toUpperCase() $data.get('name').length()", ORDER) == "ОЛЕНА 5"
    assert render("$data.get('code').zfill(9) $data.get('code').lower()", ORDER) == "00ABC-123 abc-123"
    assert render("$data.get('items').get(0).get('sku').substring(2)", ORDER) == "1"


def test_numberTool_format_is_the_one_format_a_template_may_name() -> None:
    check("$!numberTool.format('#.00', $data.get('total')) ${numberTool.format('#.00', 1)}")
    assert render("$!numberTool.format('#.00', $data.get('total'))", ORDER) == "3.00"
    for source in (
        "$data.get('f').format(1)",
        "$numberTool.format_map",
        "$dateTool.format('x')",
        "$x.FORMAT()",
    ):
        with pytest.raises(TemplateRefused, match=r"(?i)may not contain '\.format"):
            check(source)


def test_a_string_has_no_format_even_under_the_tools_name() -> None:
    """What the source check lets through finds no ``str.format`` at render time."""
    source = "#set($numberTool = $data.get('f'))$numberTool.format($data)"
    check(source)
    assert render(source, {"f": "{0.__init__.__globals__}"}) == "$numberTool.format($data)"


def test_a_tool_that_refuses_fails_the_render_with_its_reason() -> None:
    with pytest.raises(RenderFailed, match=r"^unknown time zone 'Nowhere'$"):
        render("$dateTool.currentDate('HH:mm', 'Nowhere')", {})
    with pytest.raises(RenderFailed, match=r"^substring\(0, 99\) is outside a string of length 7$"):
        render("$data.get('code').substring(0, 99)", ORDER)


# --- codes in campaigns: $!promocodes.issue('<group>') (SPEC §10) ---------------------------------


def test_the_groups_a_message_takes_codes_from_each_once_in_name_order() -> None:
    subject = "Your code $!promocodes.issue('Spring sale')"
    html = (
        '<p>${promocodes.issue("Welcome")}</p>'
        "<p>$promocodes.issue( 'Spring sale' ) again</p>"
        "#set($c = $promocodes.issue('VIP'))$c"
    )

    assert templates.promocode_groups(subject, html, None, "") == ("Spring sale", "VIP", "Welcome")
    assert templates.promocode_groups("No codes here: $!data.get('promocodes')") == ()


def test_a_render_shows_the_code_claimed_for_its_group_every_time_it_is_named() -> None:
    source = "$!promocodes.issue('Spring sale') / $promocodes.issue('Spring sale').toLowerCase()"

    assert templates.render(source, {}, {"Spring sale": "ABC-1"}) == "ABC-1 / abc-1"


def test_a_render_without_a_claimed_code_for_the_group_fails_with_its_name() -> None:
    with pytest.raises(templates.RenderFailed, match="no promo code was claimed from group 'Spring sale'"):
        templates.render("$!promocodes.issue('Spring sale')", {}, {"Other": "X"})


@pytest.mark.parametrize(
    "source",
    [
        "$!promocodes.issue($data.get('group'))",
        "$!promocodes.issue()",
        "#set($g = 'A')$promocodes.issue($g)",
        "$promocodes.issue",
        '$!promocodes.issue("Sale $data")',  # a name Velocity would interpolate at render time
    ],
)
def test_a_group_name_that_is_not_a_quoted_literal_is_refused_when_saved(source: str) -> None:
    with pytest.raises(templates.TemplateRefused) as refused:
        templates.check(source)

    assert refused.value.reason == templates.ISSUE_NEEDS_NAME
    assert refused.value.line == 1


@pytest.mark.parametrize(
    "source",
    [
        "## $!promocodes.issue('Spring sale')",
        "#* a note\n $!promocodes.issue('Spring sale') *#",
        "#[[ $!promocodes.issue('Spring sale') ]]#",
    ],
)
def test_a_call_velocity_would_not_render_is_refused_it_would_still_take_a_code(source: str) -> None:
    with pytest.raises(templates.TemplateRefused) as refused:
        templates.check(source)

    assert refused.value.reason == templates.ISSUE_NOT_RENDERED


@pytest.mark.parametrize(
    "source",
    [
        "\\$!promocodes.issue('Spring sale')",  # escaped: rendered as text
        "$!data.promocodes.issue('Spring sale')",  # the data's, not the tool
        "Copy promocodes.issue('Spring sale') here",  # text naming it
        "#set($tool = $promocodes)$tool.issue($data.get('g'))",  # the tool under another name
        "$!promocodes.issue('Spring\\sale')",  # airspeed would unescape the name it asks for
        '$!promocodes.issue("Spring #if(true)sale#end")',  # or interpret it
    ],
)
def test_the_tool_is_named_only_by_the_literal_call(source: str) -> None:
    with pytest.raises(templates.TemplateRefused) as refused:
        templates.check(source)

    assert refused.value.reason == templates.ISSUE_NEEDS_NAME


def test_a_group_name_is_one_to_128_printable_characters_and_ten_groups_at_most() -> None:
    for name in ("", "x" * 129, "tab\there"):
        with pytest.raises(templates.TemplateRefused, match="1 to 128 printable characters"):
            templates.check(f"$!promocodes.issue('{name}')")
    ten = "".join(f"$!promocodes.issue('G{n}')" for n in range(10))
    templates.check(ten + "$!promocodes.issue('G0')")
    with pytest.raises(templates.TemplateRefused, match="at most 10 promo-code groups"):
        templates.check(ten + "$!promocodes.issue('G10')")


def test_plain_words_and_a_rendered_tool_show_nothing_of_it() -> None:
    templates.check("Use our promocodes today")
    assert templates.render("[$!promocodes]", {}, {}) == "[]"


def test_the_data_cannot_stand_in_for_the_code_tool() -> None:
    """A payload key named "promocodes" is $data's, never the tool: the render shows the claim."""
    rendered = templates.render(
        "$!promocodes.issue('A') $!data.get('promocodes')", {"promocodes": "fake"}, {"A": "REAL-1"}
    )

    assert rendered == "REAL-1 fake"
