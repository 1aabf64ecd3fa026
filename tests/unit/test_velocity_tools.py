"""Velocity tools and Java's String methods (SPEC §10, issue 13 item 3): pure rendering, no database.

``$mathTool``, ``$numberTool`` and ``$dateTool`` are in every render's namespace, and every string a
template sees answers Java's String methods. Each group cites the page its expectations come from.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tessera.admin.messaging_pages import render_preview
from tessera.messaging import velocity_tools
from tessera.messaging.templates import MAX_OUTPUT_CHARS, RenderFailed, check, render
from tessera.messaging.velocity_tools import MAX_STRING_CHARS

#: Thursday 5 March 2020, 14:07:09.042 UTC: what ``$dateTool`` takes for now in these tests.
NOW = datetime(2020, 3, 5, 14, 7, 9, 42000, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(velocity_tools, "now", lambda: NOW)


def rendered(source: str, **data: Any) -> str:
    check(source)
    return render(source, data)


# --- eSputnik's own examples ----------------------------------------------------------------------
# "Using Velocity Features in Yespo": https://yespo.io/support/using-velocity-features-yespo
# (the same page: https://docs.esputnik.com/docs/using-velocity-features-in-esputnik).


def test_documented_arithmetic() -> None:
    """ "Arithmetic operations": add, sub, mul, div of two variables (the page shows no results)."""
    source = "#set($v1 = $data.get('v1'))#set($v2 = $data.get('v2'))" + " ".join(
        f"$mathTool.{name}($v1, $v2)" for name in ("add", "sub", "mul", "div")
    )
    assert rendered(source, v1=10, v2=4) == "14 6 40 2.5"
    assert rendered(source, v1="10", v2="4") == "14 6 40 2.5"  # values from jsonParam are strings


def test_documented_number_formatting() -> None:
    """ "Number formatting": ``integer`` and money with two decimals. ``integer`` is NumberTool's:
    the nearest whole number (half-even) with grouping, whatever "without rounding" means there."""
    assert rendered("$numberTool.integer($data.get('v1'))", v1=1234.56) == "1,235"
    assert rendered("$numberTool.integer($data.get('v1'))", v1=17) == "17"
    assert rendered("$!numberTool.format('#.00',$data.get('v1'))", v1=1234.5) == "1234.50"
    assert rendered("$!numberTool.format('#.00',$data.get('v1'))", v1="99.999") == "100.00"


def test_documented_current_date_and_time_stamp() -> None:
    """ "Date displaying in message". Without a pattern the page does not say what is written:
    Tessera writes dd.MM.yyyy."""
    assert rendered("$!dateTool.currentDate()") == "05.03.2020"
    assert rendered("$!dateTool.currentTimeStamp()") == "1583417229042"
    assert rendered("$!dateTool.currentDate('dd.MM.yyyy HH:mm:ss', 'GMT+3')") == "05.03.2020 17:07:09"


def test_documented_format_date() -> None:
    """A Unix time stamp in milliseconds, "for example, 1495479520000", made readable (in UTC)."""
    assert (
        rendered("$!dateTool.formatDate('dd.MM.yyyy',$!data.get('date'))", date=1495479520000) == "22.05.2017"
    )
    assert (
        rendered("$!dateTool.formatDate('yyyy-MM-dd HH:mm:ss',$!data.get('date'))", date=1495479520000)
        == "2017-05-22 18:58:40"
    )
    assert (
        rendered("$!dateTool.formatDate('dd.MM.yyyy',$!data.get('date'))", date="1495479520000")
        == "22.05.2017"
    )


@pytest.mark.parametrize("entered", ["22/05/2017 18:58:40", "2017-05-22T18:58:40", "2017-05-22T18:58:40Z"])
def test_documented_format_in_contact_timezone(entered: str) -> None:
    """The three ISO 8601 forms the page lists. Tessera keeps no contact time zone and the
    organisation's is UTC, so the date is written as it was entered."""
    source = "$!dateTool.formatInContactTimezone('dd.MM.yyyy HH:mm', $data.get('at'))"
    assert rendered(source, at=entered) == "22.05.2017 18:58"


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("addYears($!data.get('date'),2)", "01/01/2022 12:00"),
        ("addMonths($!data.get('date'),5)", "01/06/2020 12:00"),
        ("addDays($!data.get('date'),15)", "16/01/2020 12:00"),
        ("addHours($!data.get('date'),7)", "01/01/2020 19:00"),
        ("addMinutes($!data.get('date'),15)", "01/01/2020 12:15"),
        ("addDays($!data.get('date'),-1)", "31/12/2019 12:00"),  # "if the second argument is negative"
    ],
)
def test_documented_operations_with_dates(call: str, expected: str) -> None:
    """ "Operations with dates", from "date":"01/01/2020 12:00"."""
    assert rendered(f"$!dateTool.{call}", date="01/01/2020 12:00") == expected


def test_documented_operations_with_dates_in_other_formats() -> None:
    assert (
        rendered(
            "$!dateTool.addYears($!data.get('customDate'),2,'HH:mm yyyy-dd-MM')",
            customDate="12:00 2020-30-04",
        )
        == "12:00 2022-30-04"
    )
    data = {"dateTime": "2020-05-01T00:00"}
    pattern = "\"yyyy-MM-dd'T'HH:mm\""
    assert (
        rendered(f"$!dateTool.addDays($!data.get('dateTime'), 2, {pattern},'dd-MM-yyyy')", **data)
        == "03-05-2020"
    )
    assert (
        rendered(f"$!dateTool.addHours($!data.get('dateTime'), 7, {pattern},'dd/MM HH:mm')", **data)
        == "01/05 07:00"
    )
    assert rendered(f"$!dateTool.addMinutes($!data.get('dateTime'), 2, {pattern},'HH:mm')", **data) == "00:02"


@pytest.mark.parametrize(
    ("unit", "expected"),
    [("YEARS", "1"), ("MONTHS", "16"), ("DAYS", "490"), ("HOURS", "11760"), ("MINUTES", "705600")],
)
def test_documented_diff(unit: str, expected: str) -> None:
    """ "firstDate":"01/01/2019", "secondDate":"05/05/2020"."""
    source = (
        "#set($firstDate = $data.get('firstDate'))#set($secondDate = $data.get('secondDate'))"
        f"$!dateTool.diff($!firstDate,$!secondDate,'{unit}')"
    )
    assert rendered(source, firstDate="01/01/2019", secondDate="05/05/2020") == expected


def test_documented_diff_in_a_custom_format() -> None:
    """The later date first: the difference is never negative."""
    source = (
        "#set($customDate1 = $data.get('customDate1'))#set($customDate2 = $data.get('customDate2'))"
        "$!dateTool.diff($!customDate1,$!customDate2,'HH:mm dd/MM/yyyy','MINUTES')"
    )
    assert rendered(source, customDate1="17:15 05/05/2020", customDate2="10:05 01/01/2019") == "706030"


def test_documented_string_methods() -> None:
    """ "Working with strings" and the comparisons of "Comparison"."""
    assert rendered("$!data.get('var').length()", var="Hello") == "5"
    assert rendered("$!data.get('var').substring(1, 3)", var="Hello") == "el"
    assert rendered("$!data.get('var').replace('l','L')", var="Hello") == "HeLLo"
    assert rendered('#set ($example = "UkRaInE")\n$example.toUpperCase()\n$example.toLowerCase()') == (
        "UKRAINE\nukraine"
    )
    compare = "#set($firstString = $data.get('a'))#set($secondString = $data.get('b'))"
    assert rendered(compare + "$!firstString.equals($!secondString)", a="Kyiv", b="KYIV") == "false"
    assert rendered(compare + "$!firstString.equalsIgnoreCase($!secondString)", a="Kyiv", b="KYIV") == "true"
    assert rendered(
        compare + "#if($firstString.equalsIgnoreCase($secondString))same#end", a="Kyiv", b="kyiv"
    ) == ("same")


# --- MathTool as Velocity Tools have it -----------------------------------------------------------
# https://velocity.apache.org/tools/devel/generic/MathTool.html and apache/velocity-tools
# velocity-tools-generic/src/main/java/org/apache/velocity/tools/generic/MathTool.java (matchType).


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # An Integer when the result is whole and no argument had a point, else a Double.
        ("add(1, 2)", "3"),
        ("add(1, 2.0)", "3.0"),
        ("add(1, 2, 3)", "6"),
        ("add('1', '2')", "3"),
        ("add('1.5', 1)", "2.5"),
        ("add('3.0', 1)", "4"),  # Java's parser reads "3.0" as the Long 3
        ("add('1,000', 1)", "1001"),  # en_US grouping
        ("add('12 EUR', 1)", "13"),  # NumberFormat.parse stops at the first non-digit
        ("add(2147483647, 1)", "2147483648"),  # a Long past Integer's range
        ("sub(10, 2.5)", "7.5"),
        ("sub(3, 5)", "-2"),
        ("mul(2, 2.5)", "5.0"),
        ("mul('1E200', '1E200')", "Infinity"),
        ("div(7, 2)", "3.5"),
        ("div(6, 3)", "2"),
        ("div(6.0, 3)", "2.0"),
        ("div(1, 3)", "0.3333333333333333"),
        ("div(1, 10000)", "1.0E-4"),  # Double.toString
        ("mul(1000, 10000.5)", "1.00005E7"),
        ("max(3, 7.5)", "7.5"),
        ("max(-5, -3)", "-3"),  # MathTool starts from Double.MIN_VALUE, a bug Tessera leaves out
        ("min(-3, 2)", "-3"),
        ("abs(-4)", "4"),
        ("abs(-4.5)", "4.5"),
        ("pow(2, 10)", "1024"),
        ("pow(2, -1)", "0.5"),
        # The javadoc's own examples: idiv and mod work on intValue().
        ("idiv('5.1', 3)", "1"),
        ("idiv(6, '3.9')", "2"),
        ("mod('5.1', 3)", "2"),
        ("mod(6, '3.9')", "0"),
        ("idiv(-7, 2)", "-3"),  # Java truncates towards zero
        ("mod(-7, 3)", "-1"),
        ("ceil(1.2)", "2"),
        ("floor(-1.2)", "-2"),
        ("round(2.5)", "2"),  # Math.rint: halves to even
        ("round(3.5)", "4"),
        ("roundTo(2, 3.14159)", "3.14"),
        ("roundTo(0, 3.14159)", "3.1"),  # MathTool never rounds to fewer than one place
        ("toNumber('42')", "42"),
        ("toInteger('3.7')", "3"),
        ("toDouble(2)", "2.0"),
        ("add(1, 2).intValue()", "3"),
        ("div(7, 2).intValue()", "3"),
        ("div(7, 2).toString()", "3.5"),
    ],
)
def test_math_tool(expression: str, expected: str) -> None:
    assert rendered(f"$mathTool.{expression}") == expected


@pytest.mark.parametrize(
    "expression",
    [
        "div(1, 0)",
        "div(1, '0')",
        "div(1, 0.0)",
        "idiv(1, 0)",
        "mod(1, 0)",
        "add('abc', 1)",
        "add('', 1)",
        "add(' 1', 1)",  # Java's parser does not skip spaces
        "add(true, 1)",
        "add($data.get('missing'), 1)",
        "add($data.get('items'), 1)",
        "abs('-')",
    ],
)
def test_math_tool_answers_null_for_what_is_not_a_number(expression: str) -> None:
    """Velocity Tools throw nothing: the result is null, so ``$!`` renders nothing and ``$`` the
    reference itself, and the render goes on."""
    data = {"items": [1, 2]}
    assert rendered(f"[$!mathTool.{expression}]", **data) == "[]"
    assert rendered(f"[$mathTool.{expression}]", **data) == f"[$mathTool.{expression}]"


def test_math_on_data_values() -> None:
    source = "$mathTool.mul($data.get('price'), $data.get('qty'))"
    assert rendered(source, price="19.99", qty=3) == "59.97"
    assert rendered(source, price=20, qty="3") == "60"
    assert rendered(
        "#set($total = $mathTool.add($data.get('a'), $data.get('b')))Total: $total", a=2, b=3
    ) == ("Total: 5")


# --- NumberTool and DecimalFormat -----------------------------------------------------------------
# https://velocity.apache.org/tools/3.1/apidocs/org/apache/velocity/tools/generic/NumberTool.html,
# apache/velocity-tools ConversionUtils.getNumberFormat, and java.text.DecimalFormat's pattern syntax
# (https://docs.oracle.com/javase/8/docs/api/java/text/DecimalFormat.html), for en_US.


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("integer(1234.5)", "1,234"),  # half-even: to the even neighbour
        ("integer(1235.5)", "1,236"),
        ("integer(-2.5)", "-2"),
        ("integer('7')", "7"),
        ("number(1234.5678)", "1,234.568"),
        ("number(1)", "1"),
        ("currency(1234.5)", "$1,234.50"),
        ("currency(-0.5)", "-$0.50"),
        ("percent(0.256)", "26%"),
        ("percent('0.5')", "50%"),
        ("format(1234.5678)", "1,234.568"),  # the default format is the number style
        ("format('INTEGER', 2.5)", "2"),  # style names in any case, as Java compares them
        ("format('currency', 3)", "$3.00"),
        ("toNumber('2.50')", "2.5"),
    ],
)
def test_number_tool_styles(expression: str, expected: str) -> None:
    assert rendered(f"$numberTool.{expression}") == expected


@pytest.mark.parametrize(
    ("pattern", "number", "expected"),
    [
        ("#,##0.00", 1234567.891, "1,234,567.89"),
        ("#,##0.00", 0, "0.00"),
        ("#,##0.00", -1234.5, "-1,234.50"),
        ("#.00", 1234.5, "1234.50"),
        ("#.00", 0.5, ".50"),  # Java's own: no 0 before the point in the pattern, none written
        ("0.00", 0.5, "0.50"),
        ("#.##", 0.456, "0.46"),  # '#' only: Java makes the digit before the point a 0
        ("#.##", 2, "2"),
        ("#", 0, "0"),
        ("000", 7, "007"),
        ("#,##0.###", 1234.5, "1,234.5"),
        ("#,##0.00", 1.005, "1.00"),  # the double is just under 1.005
        ("#,##0.00", 0.125, "0.12"),  # an exact tie goes to the even digit
        ("#,##0.00", 0.375, "0.38"),
        ("#,##0.00", 2.675, "2.67"),
        ("0.00", -0.001, "-0.00"),  # Java keeps the sign of a negative that rounds to zero
        ("#,##0.00;(#,##0.00)", -1234.5, "(1,234.50)"),
        ("#,##0.00;(#,##0.00)", 1234.5, "1,234.50"),
        ("'#'#", 5, "#5"),
        ("#,##0.00 'грн'", 99.9, "99.90 грн"),
        ("'It''s '0", 5, "It's 5"),
        ("¤#,##0.00", 5, "$5.00"),
        ("¤¤ #,##0.00", 5, "USD 5.00"),
        ("#%", 0.256, "26%"),
        ("#,##0.0‰", 0.0125, "12.5‰"),
        ("#,##0.", 5, "5."),
        ("#,##,###", 1234567, "1,234,567"),  # Java groups by the last interval
        ("#,##0", 10**20, "100,000,000,000,000,000,000"),
        ("#,##0.00", "1,234.5", "1,234.50"),  # a string from the data, grouping and all
    ],
)
def test_decimal_format_patterns(pattern: str, number: object, expected: str) -> None:
    assert rendered("$numberTool.format($data.get('p'), $data.get('n'))", p=pattern, n=number) == expected


def test_number_tool_answers_null_for_what_is_not_a_number() -> None:
    for value in ("abc", None, True, [1]):
        assert rendered("[$!numberTool.format('#.00', $data.get('v'))]", v=value) == "[]"
    assert rendered("[$!numberTool.integer($data.get('missing'))]") == "[]"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("0#", "malformed number pattern"),
        ("#.0#0", "unexpected '0'"),
        ("#,##0.00.0", "two decimal points"),
        ("#,##0,", "malformed number pattern"),
        ("'abc", "unterminated quote"),
        ("0.###E0", "scientific number patterns"),
        ("#%%", "more than one percent"),
    ],
)
def test_a_malformed_number_pattern_fails_the_render(pattern: str, reason: str) -> None:
    """Java's DecimalFormat throws IllegalArgumentException, which fails a Velocity render."""
    with pytest.raises(RenderFailed, match=reason):
        render("$numberTool.format($data.get('p'), 1)", {"p": pattern})


# --- SimpleDateFormat, letter by letter -----------------------------------------------------------
# https://docs.oracle.com/javase/8/docs/api/java/text/SimpleDateFormat.html, en_US, the pattern the
# eSputnik page points to. The moment is NOW: Thursday 5 March 2020, 14:07:09.042 UTC.


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("G", "AD"),
        ("y", "2020"),
        ("yy", "20"),
        ("yyyy", "2020"),
        ("yyyyy", "02020"),
        ("YYYY", "2020"),  # week year
        ("M", "3"),
        ("MM", "03"),
        ("MMM", "Mar"),
        ("MMMM", "March"),
        ("LLLL", "March"),
        ("w", "10"),  # en_US weeks start on Sunday; week 1 holds 1 January
        ("W", "1"),
        ("D", "65"),
        ("DDD", "065"),
        ("d", "5"),
        ("dd", "05"),
        ("F", "1"),
        ("E", "Thu"),
        ("EEE", "Thu"),
        ("EEEE", "Thursday"),
        ("u", "4"),
        ("a", "PM"),
        ("H", "14"),
        ("HH", "14"),
        ("k", "14"),
        ("K", "2"),
        ("KK", "02"),
        ("h", "2"),
        ("hh", "02"),
        ("m", "7"),
        ("mm", "07"),
        ("s", "9"),
        ("ss", "09"),
        ("S", "42"),  # milliseconds, as a number
        ("SSS", "042"),
        ("z", "UTC"),
        ("zzzz", "Coordinated Universal Time"),
        ("Z", "+0000"),
        ("X", "Z"),
        ("XXX", "Z"),
        ("yyyy-MM-dd'T'HH:mm:ss.SSSXXX", "2020-03-05T14:07:09.042Z"),
        ("EEE, d MMM yyyy HH:mm:ss Z", "Thu, 5 Mar 2020 14:07:09 +0000"),
        ("h 'o''clock' a", "2 o'clock PM"),
        ("''", "'"),
        ("'T'", "T"),
        ("dd.MM.yyyy, HH:mm", "05.03.2020, 14:07"),
        ("Дата: dd/MM", "Дата: 05/03"),  # letters outside ASCII are text
    ],
)
def test_simple_date_format_letters(pattern: str, expected: str) -> None:
    assert rendered("$dateTool.currentDate($data.get('p'))", p=pattern) == expected


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        ("2020-03-05T00:05:00Z", "00 24 0 12 AM"),
        ("2020-03-05T12:05:00Z", "12 12 0 12 PM"),
        ("2020-03-05T23:05:00Z", "23 23 11 11 PM"),
    ],
)
def test_the_four_hour_letters_around_midnight_and_noon(at: str, expected: str) -> None:
    assert rendered("$dateTool.formatDate('HH k K h a', $data.get('at'))", at=at) == expected


def test_week_of_year_and_week_year_at_the_turn_of_the_year() -> None:
    """31 December 2019 is a Tuesday in the week holding 1 January 2020: week 1 of 2020."""
    assert rendered("$dateTool.formatDate('w YYYY yyyy', '2019-12-31T10:00:00')") == "1 2020 2019"
    assert rendered("$dateTool.formatDate('w', '2019-12-28T10:00:00')") == "52"


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        ("yyyy-qq", "unknown letter 'q'"),
        ("dd.MM.yyyy 'at", "unterminated quote"),
        ("XXXX", "'X' repeated more than 3 times"),
    ],
)
def test_a_bad_date_pattern_fails_the_render(pattern: str, reason: str) -> None:
    """SimpleDateFormat throws IllegalArgumentException for these."""
    with pytest.raises(RenderFailed, match=reason):
        render("$dateTool.currentDate($data.get('p'))", {"p": pattern})


# --- time zones -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        ("UTC", "14:07 UTC +0000 Z Z"),
        ("GMT", "14:07 GMT +0000 Z Z"),
        ("GMT+3", "17:07 GMT+03:00 +0300 +03:00 +03"),  # the form eSputnik's page uses
        ("GMT+03:00", "17:07 GMT+03:00 +0300 +03:00 +03"),
        ("GMT-0530", "08:37 GMT-05:30 -0530 -05:30 -05"),
        ("UTC+2", "16:07 GMT+02:00 +0200 +02:00 +02"),
        ("+01:00", "15:07 GMT+01:00 +0100 +01:00 +01"),
        ("Europe/Kiev", "16:07 EET +0200 +02:00 +02"),  # winter
        ("Europe/Kyiv", "16:07 EET +0200 +02:00 +02"),
        ("America/New_York", "09:07 EST -0500 -05:00 -05"),
        ("Asia/Kolkata", "19:37 IST +0530 +05:30 +05"),
        # The tz database has no abbreviation for Istanbul (Java has TRT): named by its offset.
        ("Europe/Istanbul", "17:07 GMT+03:00 +0300 +03:00 +03"),
    ],
)
def test_time_zones(zone: str, expected: str) -> None:
    assert rendered("$dateTool.currentDate('HH:mm z Z XXX X', $data.get('zone'))", zone=zone) == expected


def test_summer_time() -> None:
    source = "$dateTool.formatDate('dd.MM HH:mm z', $data.get('at'), 'Europe/Kiev')"
    assert rendered(source, at=1593615600000) == "01.07 18:00 EEST"  # 2020-07-01 15:00 UTC
    assert rendered(source, at=1583417229042) == "05.03 16:07 EET"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Kyiv", "GMT+25", "../../etc/passwd", ""])
def test_an_unknown_time_zone_fails_the_render(zone: str) -> None:
    """Java's TimeZone would quietly use GMT: a wrong hour in every message is worse than a
    render that says why it failed."""
    with pytest.raises(RenderFailed, match="unknown time zone"):
        render("$dateTool.currentDate('HH:mm', $data.get('zone'))", {"zone": zone})


# --- dates: what the data gets wrong, and what Java does with it ----------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "addDays('not a date', 1)",
        "addDays('01/01/2020', 'x')",
        "addDays('01/01/2020', 1.5)",
        "addDays($data.get('missing'), 1)",
        "addDays(20200101, 1)",
        "addYears('01/01/2020', 99999)",
        "diff('01/01/2020', 'soon', 'DAYS')",
        "formatDate('dd.MM.yyyy', 'soon')",
        "formatDate('dd.MM.yyyy', $data.get('missing'))",
        "formatDate('dd.MM.yyyy', $data.get('huge'))",
        "formatInContactTimezone('dd.MM.yyyy', 'tomorrow')",
    ],
)
def test_a_date_the_data_got_wrong_is_null(expression: str) -> None:
    assert rendered(f"[$!dateTool.{expression}]", huge=1e300) == "[]"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("addDays('31/02/2020', 0)", "02/03/2020"),  # SimpleDateFormat is lenient by default
        ("addMonths('31/01/2020', 1)", "29/02/2020"),  # the day is kept within the month
        ("addYears('29/02/2020', 1)", "28/02/2021"),
        ("addDays('01/01/2020 12:00 and more', 1)", "02/01/2020 12:00"),  # Java reads a prefix
        ("addDays('20200101', 1, 'yyyyMMdd')", "20200102"),  # adjacent fields read by width
        ("addDays('5 Mar 2020', 1, 'd MMM yyyy')", "6 Mar 2020"),
        ("addDays('Thursday, 5 march 2020', 1, 'EEEE, d MMMM yyyy')", "Friday, 6 March 2020"),
        ("addHours('05/03/2020 11:30 PM', 1, 'dd/MM/yyyy hh:mm a')", "06/03/2020 12:30 AM"),
        ("addHours('2020-05-01T10:00+03:00', 1, \"yyyy-MM-dd'T'HH:mmXXX\", 'HH:mm XXX')", "08:00 Z"),
        ("addDays('01/01/20', 1, 'dd/MM/yy')", "02/01/20"),
        ("formatDate('yyyy-MM-dd HH:mm', '2017-03-08T09:30:00+02:00')", "2017-03-08 07:30"),
        ("diff('01/01/2020', '02/01/2020', 'dd/MM/yyyy', 'days')", "1"),
        ("diff('01/01/2020', '15/01/2020', 'WEEKS')", "2"),
        ("diff('31/01/2020', '29/02/2020', 'MONTHS')", "0"),
        # Java's century for 'yy': from 80 years before now (5 March 1940) to 20 years after.
        ("addDays('31/12/39', 1, 'dd/MM/yy', 'yyyy-MM-dd')", "2040-01-01"),
        ("addDays('01/01/41', 1, 'dd/MM/yy', 'yyyy-MM-dd')", "1941-01-02"),
        ("addDays('01/03/40', 1, 'dd/MM/yy', 'yyyy-MM-dd')", "2040-03-02"),  # before 5 March 1940
        ("addDays('06/03/40', 1, 'dd/MM/yy', 'yyyy-MM-dd')", "1940-03-07"),
    ],
)
def test_dates_as_java_reads_and_writes_them(expression: str, expected: str) -> None:
    assert rendered(f"$dateTool.{expression}") == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("diff('01/01/2020', '02/01/2020', 'DECADES')", "unknown unit 'DECADES'"),
        ("addDays('01/01/2020', 1, 'ww/yyyy')", "letter 'w' cannot be used to read a date"),
        ("addDays('01/01/2020', 1, 'dd/MM/yyyy', 'dd/qq')", "unknown letter 'q'"),
        ("currentDate('dd', 'UTC', 'more')", "takes a pattern and a time zone"),
        # Java builds the format before it reads anything: a missing date does not hide a bad pattern.
        ("addDays($data.get('missing'), 1, 'dd/MM/yyyy', 'qq')", "unknown letter 'q'"),
        ("formatDate('qq', $data.get('missing'))", "unknown letter 'q'"),
        ("diff($data.get('missing'), '01/01/2020', 'ww', 'DAYS')", "letter 'w' cannot be used to read"),
        ("formatDate(5, 0)", "5 is not a date pattern"),
    ],
)
def test_a_mistake_in_the_template_fails_the_render(expression: str, reason: str) -> None:
    with pytest.raises(RenderFailed, match=reason):
        render(f"$dateTool.{expression}", {})


# --- Java's String methods, on every string a template sees ---------------------------------------
# https://docs.oracle.com/javase/8/docs/api/java/lang/String.html


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("length()", "13"),
        ("isEmpty()", "false"),
        ("substring(7)", "World!"),
        ("substring(0, 5)", "Hello"),
        ("substring(13)", ""),
        ("replace('l', 'L')", "HeLLo, WorLd!"),
        ("replace('', '-')", "-H-e-l-l-o-,- -W-o-r-l-d-!-"),
        ("toUpperCase()", "HELLO, WORLD!"),
        ("toLowerCase()", "hello, world!"),
        ("equals('Hello, World!')", "true"),
        ("equals('hello, world!')", "false"),
        ("equalsIgnoreCase('hello, world!')", "true"),
        ("equalsIgnoreCase('hello')", "false"),
        ("contains('World')", "true"),
        ("startsWith('Hell')", "true"),
        ("startsWith('llo', 2)", "true"),
        ("endsWith('!')", "true"),
        ("indexOf('o')", "4"),
        ("indexOf('o', 5)", "8"),
        ("indexOf('z')", "-1"),
        ("lastIndexOf('o')", "8"),
        ("lastIndexOf('o', 7)", "4"),
        ("charAt(4)", "o"),
        ("concat('?')", "Hello, World!?"),
        ("matches('[A-Za-z, !]+')", "true"),
        ("matches('Hello')", "false"),  # the whole string, as Java's matches
        ("replaceAll('([A-Za-z]+), ([A-Za-z]+)', '$2, $1')", "World, Hello!"),
        ("replaceAll('[aeiou]', '*')", "H*ll*, W*rld!"),
        ("replaceFirst('l+', 'L')", "HeLo, World!"),
        ("replaceAll('o', '\\$')", "Hell$, W$rld!"),
        ("toString()", "Hello, World!"),
        ("split(', ').size()", "2"),
        ("split(', ').get(1)", "World!"),
        ("zfill(15)", "00Hello, World!"),  # Python's own methods are still there, as before
    ],
)
def test_string_methods(expression: str, expected: str) -> None:
    assert rendered(f"$data.get('s').{expression}", s="Hello, World!") == expected


def test_java_trim_removes_control_characters_and_spaces_only() -> None:
    assert rendered("[$data.get('s').trim()]", s="\t  padded \n") == "[padded]"
    assert rendered("[$data.get('s').trim()]", s="\u00a0kept\u00a0") == "[\u00a0kept\u00a0]"


def test_split_as_java_splits() -> None:
    """A regular expression; trailing empty strings dropped unless a limit is given."""
    # airspeed's quoted strings take no \s: a character class does the same.
    source = "#foreach($part in $data.get('s').split('[ ]*,[ ]*'))[$part]#end"
    assert rendered(source, s="a , b,c,,") == "[a][b][c]"
    assert rendered("$data.get('s').split(',', -1).size()", s="a,b,,") == "4"
    assert rendered("$data.get('s').split(',', 2).get(1)", s="a,b,c") == "b,c"
    assert rendered("#foreach($c in $data.get('s').split(''))<$c>#end", s="abc") == "<a><b><c>"
    assert rendered("$data.get('s').split('x').get(0)", s="abc") == "abc"


def test_every_string_has_the_methods() -> None:
    """Data values, literals, interpolated strings, #set results, loop items and tool results."""
    assert rendered("#set($s = 'literal')$s.toUpperCase()") == "LITERAL"
    assert rendered("#set($n = $data.get('n'))#set($s = \"Dear $n\")$s.length()", n="Ann") == "8"
    assert (
        rendered("#foreach($t in $data.get('tags'))$t.toUpperCase() #end", tags=["new", "vip"]) == "NEW VIP "
    )
    assert rendered("$data.get('a').get('b').substring(1)", a={"b": "xyz"}) == "yz"
    assert rendered("$dateTool.currentDate('MMMM').toUpperCase()") == "MARCH"
    assert rendered("$numberTool.currency(5).replace('$', 'USD ')") == "USD 5.00"
    assert rendered("$data.get('s').trim().toUpperCase().substring(0, 3)", s=" abcdef ") == "ABC"
    assert rendered("#set($s = $data.get('a') + $data.get('b'))$s.toLowerCase()", a="A", b="B") == "ab"


def test_string_comparisons_in_conditions() -> None:
    source = "#if($data.get('s').startsWith('VIP') && !$data.get('s').isEmpty())vip#{else}regular#end"
    assert rendered(source, s="VIP-1") == "vip"
    assert rendered(source, s="R-1") == "regular"


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("substring(2, 99)", r"substring\(2, 99\) is outside a string of length 3"),
        ("substring(2, 1)", r"substring\(2, 1\) is outside"),
        ("substring(-1)", r"substring\(-1, 3\) is outside"),
        ("charAt(3)", r"charAt\(3\) is outside a string of length 3"),
        ("contains($data.get('missing'))", r"contains\(\) was given null"),
        ("replace($data.get('missing'), 'x')", r"replace\(\) was given null"),
        ("split('[')", "bad regular expression"),
        ("replaceAll('a', '$1')", "no group 1"),
    ],
)
def test_what_java_throws_fails_the_render(expression: str, reason: str) -> None:
    """An index out of range or a null argument throws in Java, and fails the Velocity render."""
    with pytest.raises(RenderFailed, match=reason):
        render(f"$data.get('s').{expression}", {"s": "abc"})


def test_arguments_velocity_cannot_convert_leave_the_reference() -> None:
    assert rendered("$data.get('s').substring('x')", s="abc") == "$data.get('s').substring('x')"
    assert rendered("[$!data.get('s').charAt($data.get('missing'))]", s="abc") == "[]"
    assert rendered("$data.get('s').equals($data.get('missing'))", s="abc") == "false"
    assert rendered("$data.get('s').indexOf(98)", s="abc") == "1"  # indexOf(int ch)


# --- nothing new reaches Python -------------------------------------------------------------------


def test_no_string_has_format_whatever_the_template_calls_it() -> None:
    """The source check lets ``$numberTool.format`` through; a template that rebinds the name to a
    string still finds no ``str.format`` there, so '{0.__init__.__globals__}' stays text."""
    data = {"f": "{0.__init__.__globals__}", "fs": ["{0.__class__}"]}
    for source in (
        "#set($numberTool = $data.get('f'))[$!numberTool.format($data)]",
        "#foreach($numberTool in $data.get('fs'))[$!numberTool.format($data)]#end",
        "#set($numberTool = 'x{0}')[$!numberTool.format($data)]",
    ):
        check(source)
        assert render(source, data) == "[]"


@pytest.mark.parametrize(
    "source",
    [
        "$mathTool.__class__",
        "$numberTool._parse",
        "$data.get('s').split(',')._items",
        "$numberTool.format_map",
        "$data.get('s').toUpperCase().format(1)",
    ],
)
def test_the_tools_are_no_way_round_the_source_check(source: str) -> None:
    with pytest.raises(RenderFailed, match="template contains"):
        render(source, {"s": "a,b"})


def test_the_tools_offer_only_their_methods() -> None:
    assert rendered("$dateTool.now()") == "$dateTool.now()"
    assert rendered("$mathTool.random(1, 2)") == "$mathTool.random(1, 2)"


def test_the_data_cannot_replace_the_tools() -> None:
    assert rendered("$mathTool.add(1, 2)", mathTool="not a tool") == "3"


# --- budgets --------------------------------------------------------------------------------------


def test_the_string_cap_is_the_output_cap() -> None:
    assert MAX_STRING_CHARS == MAX_OUTPUT_CHARS


def test_long_patterns_from_the_data_are_not_cached() -> None:
    """A pattern, regular expression or zone name is cached only when short: the data's would hold
    the renderer child's memory from one render to the next."""
    cached = velocity_tools.decimal_format.cache_info().currsize
    long_pattern = "#,##0.00" + " kg" * 100
    assert rendered("$numberTool.format($data.get('p'), 1)", p=long_pattern) == "1.00" + " kg" * 100
    assert velocity_tools.decimal_format.cache_info().currsize == cached
    assert rendered("$numberTool.format($data.get('p'), 1)", p="0.0000000") == "1.0000000"
    assert velocity_tools.decimal_format.cache_info().currsize == cached + 1


@pytest.mark.parametrize(
    ("source", "data"),
    [
        ("$data.get('s').replace('x', $data.get('long'))", {"s": "x" * 1000, "long": "y" * 10_000}),
        ("$data.get('s').replaceAll('x', $data.get('long'))", {"s": "x" * 1000, "long": "y" * 10_000}),
        ("#set($s = 'x')#foreach($i in [1..40])#set($s = $s.concat($s))#end$s.length()", {}),
        ("$data.get('s').toUpperCase()", {"s": "ß" * 1_000_001}),  # ß is SS
        ("$numberTool.format($data.get('p'), 1)", {"p": "0" * 2_000_001}),
        ("$dateTool.currentDate($data.get('p'))", {"p": "d" * 2_000_001}),
    ],
)
def test_the_tools_and_string_methods_build_nothing_past_the_cap(source: str, data: dict[str, Any]) -> None:
    """Refused before the string is made, where its length is known in advance."""
    with pytest.raises(RenderFailed, match="more than a template may build"):
        render(source, data)


def test_python_string_growth_is_still_caught_in_process_by_the_output_budget() -> None:
    """In the worker and the preview, the renderer's child process caps memory too
    (tests/integration/test_renderer.py); here the output budget stops what reaches the output."""
    with pytest.raises(RenderFailed, match="writes more than 2,000,000 characters"):
        render("$data.get('a').zfill(50000000)", {"a": "1"})
    with pytest.raises(RenderFailed, match="writes more than 2,000,000 characters"):
        render("#set($s = 'x')#foreach($i in [1..22])#set($s = \"$s$s\")#end$s", {})


def test_the_loop_budget_holds_with_the_tools() -> None:
    with pytest.raises(RenderFailed, match="loops more than 10,000 times"):
        render("#foreach($i in [1..20000])$mathTool.add($i, 1)#end", {})
    with pytest.raises(RenderFailed, match="loops more than 10,000 times"):
        render("#foreach($p in $data.get('s').split(''))#foreach($q in [1..100])#end#end", {"s": "x" * 200})


# --- the admin preview renders with them too ------------------------------------------------------


async def test_the_admin_preview_has_the_tools() -> None:
    sources = {
        "subject": "$mathTool.add($data.get('n'), 1) for $data.get('name').toUpperCase()",
        "text": "$numberTool.format('#,##0.00', $data.get('total')) by $dateTool.addDays('01/01/2020', 1)",
        "html": "$dateTool.currentDate('qq')",
    }
    result = await render_preview(sources, '{"n": "2", "name": "anna", "total": 1234.5}')
    assert result["rendered"] == {"subject": "3 for ANNA", "text": "1,234.50 by 02/01/2020"}
    assert "unknown letter 'q'" in result["problems"]["html"]
