"""The Velocity tools eSputnik's templates use, and Java's String methods (SPEC §10).

eSputnik documents them on one page, "Using Velocity Features"
(https://yespo.io/support/using-velocity-features-yespo, the same text as
https://docs.esputnik.com/docs/using-velocity-features-in-esputnik): ``$mathTool`` and
``$numberTool`` are Apache Velocity Tools' MathTool and NumberTool under eSputnik's names, and
behave here as those classes do (apache/velocity-tools, ``generic/MathTool.java``,
``NumberTool.java``, ``ConversionUtils.java``); ``$dateTool`` is eSputnik's own, built from the
page's signatures and examples, with Java's ``SimpleDateFormat`` patterns.

Two kinds of failure, as in Java: input the data got wrong (a number that is not one, a date that
does not parse, a division by zero) gives null, so ``$!`` renders nothing and ``$`` the reference,
as Velocity Tools do; a mistake in the template itself (an unknown pattern letter, time zone or
unit, an index out of range) raises ``ToolFailed``, which fails the render with its reason as
Java's exception fails Velocity's.

Numbers are formatted for en_US and dates are in UTC: Velocity takes both from its JVM, which
eSputnik does not document, and Tessera has no organisation time zone (docs/decisions.md).
"""

from __future__ import annotations

import calendar
import functools
import json
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

#: The longest string a tool or string method may make: templates.MAX_OUTPUT_CHARS.
MAX_STRING_CHARS = 2_000_000
#: Patterns, regular expressions and zone names longer than this are not cached: they come from
#: the data, and a cache of them would hold the renderer's memory.
CACHED_KEY_CHARS = 200

_Result = TypeVar("_Result")


class _cached(Generic[_Result]):  # lower case: a decorator, like lru_cache
    """``lru_cache`` for the short keys templates write; long ones are worked out each time."""

    def __init__(self, function: Callable[[str], _Result]) -> None:
        self._function = function
        self._cached = functools.lru_cache(maxsize=256)(function)

    def __call__(self, key: str) -> _Result:
        return self._cached(key) if len(key) <= CACHED_KEY_CHARS else self._function(key)

    def cache_info(self) -> Any:
        return self._cached.cache_info()


class ToolFailed(ValueError):
    """A tool refuses what the template asks, as Java would throw: the render fails with this."""


def now() -> datetime:
    """The moment ``$dateTool`` reads (tests replace it)."""
    return datetime.now(UTC)


# --- values as Java shows them --------------------------------------------------------------------


class JavaBoolean(int):
    """A boolean a string method answers: true in ``#if``, rendered ``true``/``false`` as in Java."""

    __slots__ = ()

    def __str__(self) -> str:
        return "true" if self else "false"

    __repr__ = __str__


TRUE, FALSE = JavaBoolean(1), JavaBoolean(0)


def _boolean(value: bool) -> JavaBoolean:
    return TRUE if value else FALSE


class JavaInteger(int):
    """An Integer or Long a tool answers, with the methods templates call on Java numbers."""

    __slots__ = ()

    def intValue(self) -> JavaInteger:
        return JavaInteger(_wrap32(int(self)))

    def longValue(self) -> JavaInteger:
        return self

    def doubleValue(self) -> JavaDouble:
        return JavaDouble(_double(int(self)))

    def toString(self) -> JavaString:
        return JavaString(str(int(self)))


class JavaDouble(float):
    """A Double a tool answers: rendered as Java's ``Double.toString`` (``3.0``, ``1.0E7``)."""

    __slots__ = ()

    def __str__(self) -> str:
        return java_double_str(self)

    __repr__ = __str__

    def intValue(self) -> JavaInteger:
        return JavaInteger(_saturate(float(self), INT_MIN, INT_MAX))

    def longValue(self) -> JavaInteger:
        return JavaInteger(_saturate(float(self), LONG_MIN, LONG_MAX))

    def doubleValue(self) -> JavaDouble:
        return self

    def toString(self) -> JavaString:
        return JavaString(java_double_str(self))


def java_double_str(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, magnitude = ("-" if value < 0 else ""), abs(value)
    shortest = Decimal(repr(magnitude))
    if 1e-3 <= magnitude < 1e7:
        text = format(shortest, "f")
        return sign + (text if "." in text else text + ".0")
    parts = shortest.as_tuple()
    exponent = len(parts.digits) + int(parts.exponent) - 1
    digits = "".join(map(str, parts.digits)).rstrip("0") or "0"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{exponent}"


def _text(value: object, method: str) -> str:
    """A String argument: Velocity converts numbers and booleans; null makes Java throw."""
    if isinstance(value, str):
        return value
    if value is None:
        raise ToolFailed(f"{method}() was given null")
    if isinstance(value, bool | JavaBoolean):
        return "true" if value else "false"
    if isinstance(value, float):
        return java_double_str(value)
    return str(value)


def _whole(value: object) -> int | None:
    """An int argument, or None where Velocity would find no method to call."""
    if isinstance(value, bool | JavaBoolean) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _check_size(size: int) -> None:
    if size > MAX_STRING_CHARS:
        raise ToolFailed(f"a string of {size:,} characters is more than a template may build")


def _capped(text: str) -> JavaString:
    _check_size(len(text))
    return JavaString(text)


# --- Java's String methods ------------------------------------------------------------------------

#: What Java's ``trim()`` removes: every character up to the space.
_JAVA_TRIMMED = "".join(chr(code) for code in range(33))


class JavaString(str):
    """A string as templates see it: Python's own methods, as before, and Java's.

    Java's methods answer as Java does (a substring out of range fails the render, ``split`` takes
    a regular expression and drops trailing empty strings), and refuse to make a string longer
    than ``MAX_STRING_CHARS``. ``format`` and ``format_map`` are not there: ``str.format`` walks
    the attributes its format string names, and the data can supply that string.
    """

    __slots__ = ()

    def __getattribute__(self, name: str) -> Any:
        if name in ("format", "format_map"):
            raise AttributeError(name)
        return super().__getattribute__(name)

    def length(self) -> JavaInteger:
        return JavaInteger(len(self))

    def isEmpty(self) -> JavaBoolean:
        return _boolean(not self)

    def isBlank(self) -> JavaBoolean:
        return _boolean(not str.strip(self))

    def toString(self) -> JavaString:
        return self

    def charAt(self, index: object) -> JavaString | None:
        at = _whole(index)
        if at is None:
            return None
        if not 0 <= at < len(self):
            raise ToolFailed(f"charAt({at}) is outside a string of length {len(self)}")
        return JavaString(str.__getitem__(self, at))

    def substring(self, *bounds: object) -> JavaString | None:
        if not 1 <= len(bounds) <= 2:
            raise ToolFailed("substring() takes a begin index and an optional end index")
        begin = _whole(bounds[0])
        end = _whole(bounds[1]) if len(bounds) == 2 else len(self)
        if begin is None or end is None:
            return None
        if begin < 0 or end > len(self) or begin > end:
            raise ToolFailed(f"substring({begin}, {end}) is outside a string of length {len(self)}")
        return JavaString(str.__getitem__(self, slice(begin, end)))

    def replace(self, target: object, replacement: object, count: object = -1) -> JavaString:
        old, new = _text(target, "replace"), _text(replacement, "replace")
        times = _whole(count)
        found = str.count(self, old)
        if times is not None and times >= 0:
            found = min(found, times)
        _check_size(len(self) + found * (len(new) - len(old)))
        return JavaString(str.replace(self, old, new, -1 if times is None else times))

    def replaceAll(self, regex: object, replacement: object) -> JavaString:
        return _regex_replace(self, _text(regex, "replaceAll"), _text(replacement, "replaceAll"), False)

    def replaceFirst(self, regex: object, replacement: object) -> JavaString:
        return _regex_replace(self, _text(regex, "replaceFirst"), _text(replacement, "replaceFirst"), True)

    def matches(self, regex: object) -> JavaBoolean:
        return _boolean(_regex(_text(regex, "matches")).fullmatch(self) is not None)

    def toUpperCase(self) -> JavaString:
        return _capped(str.upper(self))

    def toLowerCase(self) -> JavaString:
        return _capped(str.lower(self))

    def trim(self) -> JavaString:
        return JavaString(str.strip(self, _JAVA_TRIMMED))

    def equals(self, other: object) -> JavaBoolean:
        return _boolean(isinstance(other, str) and str.__eq__(self, other) is True)

    def equalsIgnoreCase(self, other: object) -> JavaBoolean:
        if not isinstance(other, str) or len(other) != len(self):
            return FALSE
        return _boolean(
            all(
                mine == theirs or mine.upper() == theirs.upper() or mine.lower() == theirs.lower()
                for mine, theirs in zip(self, other, strict=True)
            )
        )

    def contains(self, part: object) -> JavaBoolean:
        return _boolean(_text(part, "contains") in self)

    def startsWith(self, prefix: object, offset: object = 0) -> JavaBoolean:
        start = _whole(offset)
        if start is None or not 0 <= start <= len(self):
            return FALSE
        return _boolean(str.startswith(self, _text(prefix, "startsWith"), start))

    def endsWith(self, suffix: object) -> JavaBoolean:
        return _boolean(str.endswith(self, _text(suffix, "endsWith")))

    def indexOf(self, part: object, start: object = 0) -> JavaInteger:
        begin = _whole(start)
        if begin is None:
            begin = 0
        return JavaInteger(str.find(self, _searched(part, "indexOf"), max(begin, 0)))

    def lastIndexOf(self, part: object, start: object = None) -> JavaInteger:
        searched = _searched(part, "lastIndexOf")
        begin = len(self) if start is None else _whole(start)
        if begin is None or begin < 0:
            return JavaInteger(-1)
        return JavaInteger(str.rfind(self, searched, 0, begin + len(searched)))

    def concat(self, other: object) -> JavaString:
        tail = _text(other, "concat")
        _check_size(len(self) + len(tail))
        return JavaString(str.__add__(self, tail))

    def split(self, regex: object, limit: object = 0) -> StringArray:  # type: ignore[override]
        most = _whole(limit)
        return StringArray(_split(self, _text(regex, "split"), 0 if most is None else most))


def java_string(value: Any) -> Any:
    """A plain string as a ``JavaString``; anything else as it is."""
    if isinstance(value, str) and not isinstance(value, JavaString):
        return JavaString(value)
    return value


def _searched(part: object, method: str) -> str:
    """``indexOf(int ch)``: Java takes a number as a character code."""
    if isinstance(part, int) and not isinstance(part, bool | JavaBoolean):
        return chr(part) if 0 <= part <= 0x10FFFF else "\0\0"
    return _text(part, method)


@_cached
def _regex(source: str) -> re.Pattern[str]:
    try:
        return re.compile(source)
    except (re.error, RecursionError, OverflowError) as error:
        raise ToolFailed(f"bad regular expression {source!r}: {error}") from None


#: Java's replacement syntax: ``$1``, ``${name}``, ``\\$`` for a literal dollar.
_REPLACEMENT = re.compile(r"\\(.)|\$(\d+)|\$\{([A-Za-z][A-Za-z0-9]*)\}|(\$)|([^\\$]+)", re.S)


def _replacement(template: str, pattern: re.Pattern[str]) -> list[str | int]:
    parts: list[str | int] = []
    at = 0
    for found in _REPLACEMENT.finditer(template):
        if found.start() != at:
            break
        at = found.end()
        escaped, number, name, dollar, text = found.groups()
        if dollar:
            raise ToolFailed(f"illegal group reference in replacement {template!r}")
        if number:
            # Java takes the first digit, then more while they still name a group.
            group = int(number[0])
            if group > pattern.groups:
                raise ToolFailed(f"no group {group} in {pattern.pattern!r}")
            rest = number[1:]
            while rest and group * 10 + int(rest[0]) <= pattern.groups:
                group, rest = group * 10 + int(rest[0]), rest[1:]
            parts.append(group)
            if rest:
                parts.append(rest)
        elif name:
            if name not in pattern.groupindex:
                raise ToolFailed(f"no group named {name!r} in {pattern.pattern!r}")
            parts.append(pattern.groupindex[name])
        else:
            parts.append(escaped or text)
    if at != len(template):
        raise ToolFailed(f"the replacement {template!r} ends with a lone backslash")
    return parts


def _regex_replace(text: str, regex: str, template: str, first_only: bool) -> JavaString:
    pattern = _regex(regex)
    parts = _replacement(template, pattern)
    pieces: list[str] = []
    size = last = 0
    for found in pattern.finditer(text):
        piece = text[last : found.start()] + "".join(
            part if isinstance(part, str) else found.group(part) or "" for part in parts
        )
        size += len(piece)
        _check_size(size)
        pieces.append(piece)
        last = found.end()
        if first_only:
            break
    pieces.append(text[last:])
    _check_size(size + len(text) - last)
    return JavaString("".join(pieces))


def _split(text: str, regex: str, limit: int) -> list[JavaString]:
    """``String.split``: no leading empty string for a match of nothing at the start, and with a
    limit of 0 no trailing empty strings."""
    parts: list[str] = []
    start = 0
    for found in _regex(regex).finditer(text):
        if limit > 0 and len(parts) == limit - 1:
            break
        if found.end() == 0:
            continue
        parts.append(text[start : found.start()])
        start = found.end()
    if not parts:
        return [JavaString(text)]
    parts.append(text[start:])
    if limit == 0:
        while parts and not parts[-1]:
            parts.pop()
    return [JavaString(part) for part in parts]


class StringArray:
    """What ``split`` answers: ``.get(i)``, ``.size()`` and ``#foreach``, as Velocity shows arrays."""

    __slots__ = ("_items",)

    def __init__(self, items: list[JavaString]) -> None:
        self._items = items

    def get(self, index: object) -> JavaString:
        at = _whole(index)
        if at is None or not 0 <= at < len(self._items):
            raise ToolFailed(f"no element {index!r} in an array of {len(self._items)}")
        return self._items[at]

    def size(self) -> JavaInteger:
        return JavaInteger(len(self._items))

    def isEmpty(self) -> JavaBoolean:
        return _boolean(not self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[JavaString]:
        return iter(self._items)

    def __str__(self) -> str:
        return json.dumps(self._items, ensure_ascii=False)


# --- numbers: what ConversionUtils and MathTool do ------------------------------------------------

INT_MIN, INT_MAX = -(2**31), 2**31 - 1
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1

Number = int | float

#: What ``NumberFormat.parse`` reads for en_US: grouping commas, a point, an exponent; it stops at
#: the first other character, so "12 EUR" is 12, and "EUR 12" is no number.
_PARSED_NUMBER = re.compile(r"(-)?([0-9][0-9,]*)?(?:\.([0-9]*))?(?:E([+-]?[0-9]+))?")


def to_number(value: object) -> Number | None:
    """ConversionUtils.toNumber: a number as it is, a string parsed; anything else is null."""
    if isinstance(value, bool | JavaBoolean):
        return None
    if isinstance(value, int | float):
        return value
    if not isinstance(value, str):
        return None
    found = _PARSED_NUMBER.match(value)
    if found is None or not (found.group(2) or found.group(3)):
        return None
    sign, whole, fraction, exponent = found.groups()
    text = f"{sign or ''}{(whole or '0').replace(',', '')}.{fraction or '0'}e{exponent or '0'}"
    try:
        number = Decimal(text)
        # Like DecimalFormat: a Long when the value is whole and fits, else a Double.
        if number == number.to_integral_value() and LONG_MIN <= number <= LONG_MAX:
            return int(number)
        return float(number)
    except (ArithmeticError, ValueError):
        return None


def _double(number: Number) -> float:
    try:
        return float(number)
    except OverflowError:
        return math.copysign(math.inf, number)


def _saturate(value: float, low: int, high: int) -> int:
    """Java's cast of a double to int or long: NaN is 0, the rest truncated and clamped."""
    if math.isnan(value):
        return 0
    if value >= high:
        return high
    if value <= low:
        return low
    return int(value)


def _wrap32(value: int) -> int:
    return (value + 2**31) % 2**32 - 2**31


def _int_value(number: Number) -> int:
    """``Number.intValue()``."""
    if isinstance(number, float):
        return _saturate(number, INT_MIN, INT_MAX)
    return _wrap32(number)


def _has_point(number: Number) -> bool:
    """Whether Java renders the number with a point: every finite Double does."""
    return isinstance(number, float) and math.isfinite(number)


def _match_type(value: float, inputs: Sequence[Number]) -> JavaInteger | JavaDouble:
    """MathTool.matchType: an Integer (or Long) when the result is whole and no argument had a
    point, else a Double."""
    whole = math.isinf(value) or (math.isfinite(value) and value.is_integer())
    if not whole or any(_has_point(number) for number in inputs):
        return JavaDouble(value)
    if value > INT_MAX or value < INT_MIN:
        return JavaInteger(_saturate(value, LONG_MIN, LONG_MAX))
    return JavaInteger(int(value))


def _numbers(values: Sequence[object]) -> list[Number] | None:
    numbers = [to_number(value) for value in values]
    if any(number is None for number in numbers):
        return None
    return [number for number in numbers if number is not None]


class MathTool:
    """``$mathTool``: Velocity Tools' MathTool. Strings from the data are numbers too; a bad
    number or a division by zero is null, never an exception."""

    __slots__ = ()

    def add(self, *values: object) -> Number | None:
        numbers = _numbers(values)
        if numbers is None:
            return None
        total = 0.0
        for number in numbers:
            total += _double(number)
        return _match_type(total, numbers)

    def sub(self, *values: object) -> Number | None:
        numbers = _numbers(values)
        if not numbers:
            return None
        result = _double(numbers[0])
        for number in numbers[1:]:
            result -= _double(number)
        return _match_type(result, numbers)

    def mul(self, *values: object) -> Number | None:
        numbers = _numbers(values)
        if numbers is None:
            return None
        product = 1.0
        for number in numbers:
            product *= _double(number)
        return _match_type(product, numbers)

    def div(self, *values: object) -> Number | None:
        numbers = _numbers(values)
        if not numbers:
            return None
        quotient = _double(numbers[0])
        for number in numbers[1:]:
            denominator = _double(number)
            if denominator == 0:
                return None
            quotient /= denominator
        return _match_type(quotient, numbers)

    def max(self, *values: object) -> Number | None:
        numbers = _numbers(values)
        if not numbers:
            return None
        return _match_type(max(_double(number) for number in numbers), numbers)

    def min(self, *values: object) -> Number | None:
        numbers = _numbers(values)
        if not numbers:
            return None
        return _match_type(min(_double(number) for number in numbers), numbers)

    def pow(self, base: object, exponent: object) -> Number | None:
        numbers = _numbers((base, exponent))
        if numbers is None:
            return None
        return _match_type(_java_pow(_double(numbers[0]), _double(numbers[1])), numbers)

    def abs(self, value: object) -> Number | None:
        number = to_number(value)
        if number is None:
            return None
        return _match_type(abs(_double(number)), [number])

    def idiv(self, dividend: object, divisor: object) -> Number | None:
        numbers = _numbers((dividend, divisor))
        if numbers is None or _int_value(numbers[1]) == 0:
            return None
        left, right = _int_value(numbers[0]), _int_value(numbers[1])
        quotient = abs(left) // abs(right) * (1 if (left < 0) == (right < 0) else -1)
        return JavaInteger(_wrap32(quotient))

    def mod(self, dividend: object, divisor: object) -> Number | None:
        numbers = _numbers((dividend, divisor))
        if numbers is None or _int_value(numbers[1]) == 0:
            return None
        left, right = _int_value(numbers[0]), _int_value(numbers[1])
        return JavaInteger(int(math.fmod(left, right)))

    def ceil(self, value: object) -> Number | None:
        number = to_number(value)
        if number is None:
            return None
        real = _double(number)
        return JavaInteger(_saturate(math.ceil(real) if math.isfinite(real) else real, INT_MIN, INT_MAX))

    def floor(self, value: object) -> Number | None:
        number = to_number(value)
        if number is None:
            return None
        real = _double(number)
        return JavaInteger(_saturate(math.floor(real) if math.isfinite(real) else real, INT_MIN, INT_MAX))

    def round(self, value: object) -> Number | None:
        """``Math.rint``: halves go to the even neighbour, as Python's ``round`` does."""
        number = to_number(value)
        if number is None:
            return None
        real = _double(number)
        return JavaInteger(_saturate(float(round(real)) if math.isfinite(real) else real, INT_MIN, INT_MAX))

    def roundTo(self, decimals: object, value: object) -> Number | None:
        numbers = _numbers((decimals, value))
        if numbers is None:
            return None
        # MathTool's own arithmetic: ten to the places, but never less than ten.
        delta = 10 ** min(max(_int_value(numbers[0]), 1), 18)
        scaled = _double(numbers[1]) * delta
        rounded = _saturate(math.floor(scaled + 0.5) if math.isfinite(scaled) else scaled, LONG_MIN, LONG_MAX)
        return JavaDouble(rounded / delta)

    def toNumber(self, value: object) -> Number | None:
        number = to_number(value)
        return None if number is None else _as_java(number)

    def toInteger(self, value: object) -> Number | None:
        number = to_number(value)
        return None if number is None else JavaInteger(_int_value(number))

    def toDouble(self, value: object) -> Number | None:
        number = to_number(value)
        return None if number is None else JavaDouble(_double(number))


def _as_java(number: Number) -> JavaInteger | JavaDouble:
    return JavaDouble(number) if isinstance(number, float) else JavaInteger(number)


def _java_pow(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except OverflowError:
        odd = exponent.is_integer() and exponent % 2 == 1
        return -math.inf if base < 0 and odd else math.inf
    except ValueError:
        if base == 0:
            return math.inf
        return math.nan


# --- numbers: DecimalFormat and NumberTool --------------------------------------------------------


@dataclass(frozen=True)
class DecimalFormat:
    """``java.text.DecimalFormat`` with en_US symbols, for the patterns templates use: digits
    ``0`` and ``#``, grouping ``,``, the point, ``%`` and ``‰``, ``¤`` for the dollar sign, quoted
    text and a negative subpattern. Rounding is half-even on the number's exact value, as since
    Java 8. Scientific patterns (``0.###E0``) are not supported."""

    positive_prefix: str
    positive_suffix: str
    negative_prefix: str
    negative_suffix: str
    multiplier: int
    min_integer: int
    min_fraction: int
    max_fraction: int
    grouping: int
    point_always: bool

    def format(self, number: Number) -> str:
        if isinstance(number, float):
            if math.isnan(number):
                return "NaN"
            negative = number < 0 or (number == 0 and math.copysign(1.0, number) < 0)
            scaled = number * self.multiplier
            if math.isinf(scaled):
                return self._affixed(negative, "∞")
            digits = _round_half_even(abs(scaled), self.max_fraction)
        else:
            negative = number < 0
            digits = Decimal(abs(number) * self.multiplier)
        whole, _, fraction = format(digits, "f").partition(".")
        fraction = fraction[: self.max_fraction].rstrip("0").ljust(self.min_fraction, "0")
        whole = whole.lstrip("0").rjust(self.min_integer, "0")
        if self.grouping and len(whole) > self.grouping:
            head = len(whole) % self.grouping or self.grouping
            groups = [whole[:head]] + [
                whole[i : i + self.grouping] for i in range(head, len(whole), self.grouping)
            ]
            whole = ",".join(groups)
        if not whole and not fraction:
            whole = "0"  # as Java: some digit is always shown
        body = whole + ("." + fraction if fraction or self.point_always else "")
        return self._affixed(negative, body)

    def _affixed(self, negative: bool, body: str) -> str:
        if negative:
            return self.negative_prefix + body + self.negative_suffix
        return self.positive_prefix + body + self.positive_suffix


def _round_half_even(value: float, places: int) -> Decimal:
    """Java's DecimalFormat rounds the double's shortest digits; at a tie of those digits the
    exact binary value decides (so 1.005 is 1.00, and 0.125 is 0.12)."""
    quantum = Decimal(1).scaleb(-places)
    context = Context(prec=places + 400, rounding=ROUND_HALF_EVEN)
    shortest = Decimal(repr(value))
    rounded = shortest.quantize(quantum, context=context)
    if context.multiply(context.abs(context.subtract(shortest, rounded)), 2) == quantum:
        rounded = Decimal(value).quantize(quantum, context=context)
    return rounded


#: NumberTool's named styles, as NumberFormat has them for en_US (Java 11+).
NUMBER_STYLES = {
    "default": "#,##0.###",
    "number": "#,##0.###",
    "integer": "#,##0",
    "currency": "¤#,##0.00",
    "percent": "#,##0%",
}


@_cached
def decimal_format(pattern: str) -> DecimalFormat:
    """A style name (any case) or a DecimalFormat pattern; a malformed pattern fails the render,
    as Java's ``IllegalArgumentException`` does."""
    style = NUMBER_STYLES.get(pattern.lower())
    if style is not None:
        return decimal_format(style)
    if not pattern:
        return DecimalFormat("", "", "-", "", 1, 0, 0, 340, 0, False)
    return _parse_decimal_pattern(pattern)


def _parse_decimal_pattern(pattern: str) -> DecimalFormat:
    def refuse(why: str) -> ToolFailed:
        return ToolFailed(f"malformed number pattern {pattern!r}: {why}")

    affixes: list[tuple[str, str]] = []
    counts = (0, 0, 0, -1, -1)  # '#' before the zeros, zeros, '#' after them, grouping, point
    multiplier = 1
    i, n = 0, len(pattern)
    for sub in (0, 1):
        if sub == 1 and i >= n:
            break
        prefix: list[str] = []
        suffix: list[str] = []
        left = zeros = right = 0
        grouping = point = -1
        phase = 0
        while i < n:
            c = pattern[i]
            if phase == 1:
                if c == "#":
                    if zeros > 0:
                        right += 1
                    else:
                        left += 1
                    if grouping >= 0 and point < 0:
                        grouping += 1
                elif c == "0":
                    if right > 0:
                        raise refuse("unexpected '0'")
                    zeros += 1
                    if grouping >= 0 and point < 0:
                        grouping += 1
                elif c == ",":
                    grouping = 0
                elif c == ".":
                    if point >= 0:
                        raise refuse("two decimal points")
                    point = left + zeros + right
                elif c == "E":
                    raise ToolFailed(f"scientific number patterns ({pattern!r}) are not supported")
                else:
                    phase = 2
                    continue
                i += 1
                continue
            affix = prefix if phase == 0 else suffix
            if c == "'":
                if pattern.startswith("''", i):
                    affix.append("'")
                    i += 2
                    continue
                end = i + 1
                while True:
                    if end >= n:
                        raise refuse("unterminated quote")
                    if pattern[end] == "'":
                        if pattern.startswith("''", end):
                            affix.append("'")
                            end += 2
                            continue
                        break
                    affix.append(pattern[end])
                    end += 1
                i = end + 1
                continue
            if c in "#0,.":
                if phase == 2:
                    raise refuse(f"unquoted {c!r} after the number")
                phase = 1
                continue
            if c == ";":
                if phase == 0 or sub == 1:
                    raise refuse("misplaced ';'")
                i += 1
                break
            if c in "%‰":
                if sub == 0:
                    if multiplier != 1:
                        raise refuse("more than one percent or per mille sign")
                    multiplier = 100 if c == "%" else 1000
                affix.append(c)
            elif c == "¤":
                if pattern.startswith("¤¤", i):
                    affix.append("USD")
                    i += 1
                else:
                    affix.append("$")
            else:
                affix.append(c)
            i += 1
        if sub == 0:
            counts = (left, zeros, right, grouping, point)
        affixes.append(("".join(prefix), "".join(suffix)))

    left, zeros, right, grouping, point = counts
    if zeros == 0 and left > 0 and point >= 0:
        # "#.##", "#." and ".##": the digit next to the point is a zero.
        place = point or 1
        right, left, zeros = left - place, place - 1, 1
    if (point < 0 and right > 0) or (point >= 0 and (point < left or point > left + zeros)) or grouping == 0:
        raise refuse("digits out of order")
    total = left + zeros + right
    decimal_at = point if point >= 0 else total
    (positive_prefix, positive_suffix) = affixes[0]
    negative_prefix, negative_suffix = (
        affixes[1] if len(affixes) > 1 else ("-" + positive_prefix, positive_suffix)
    )
    return DecimalFormat(
        positive_prefix=positive_prefix,
        positive_suffix=positive_suffix,
        negative_prefix=negative_prefix,
        negative_suffix=negative_suffix,
        multiplier=multiplier,
        min_integer=decimal_at - left,
        min_fraction=left + zeros - point if point >= 0 else 0,
        max_fraction=total - point if point >= 0 else 0,
        grouping=max(grouping, 0),
        point_always=point in (0, total),
    )


class NumberTool:
    """``$numberTool``: Velocity Tools' NumberTool, en_US. ``format(pattern, n)`` takes a
    DecimalFormat pattern or a style (``integer``, ``number``, ``currency``, ``percent``)."""

    __slots__ = ()

    def format(self, *arguments: object) -> JavaString | None:
        pattern: object
        if len(arguments) == 1:
            pattern, value = "default", arguments[0]
        elif len(arguments) == 2:
            pattern, value = arguments
        else:
            raise ToolFailed("$numberTool.format takes a pattern and a number (a locale is not supported)")
        number = to_number(value)
        if not isinstance(pattern, str) or number is None:
            return None
        return _capped(decimal_format(pattern).format(number))

    def integer(self, value: object) -> JavaString | None:
        """Rounded half-even, with grouping: 1234.5 is "1,234", 1235.5 is "1,236"."""
        return self.format("integer", value)

    def number(self, value: object) -> JavaString | None:
        return self.format("number", value)

    def currency(self, value: object) -> JavaString | None:
        return self.format("currency", value)

    def percent(self, value: object) -> JavaString | None:
        return self.format("percent", value)

    def toNumber(self, value: object) -> Number | None:
        number = to_number(value)
        return None if number is None else _as_java(number)


# --- dates: SimpleDateFormat ----------------------------------------------------------------------

_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: SimpleDateFormat's letters; any other ASCII letter outside quotes is an error, as in Java.
DATE_LETTERS = "GyYMLwWDdFEuaHkKhmsSzZX"
#: The letters a date can be read with (the others only write one).
_READABLE = "yMLdHkKhmsSaEZX"
_NUMERIC = "yYMLwWDdFuHkKhmsS"

DateToken = str | tuple[str, int]


@_cached
def date_pattern(pattern: str) -> tuple[DateToken, ...]:
    """The pattern as literal text and (letter, count) fields."""
    tokens: list[DateToken] = []
    literal: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "'":
            if pattern.startswith("''", i):
                literal.append("'")
                i += 2
                continue
            end = i + 1
            while True:
                if end >= n:
                    raise ToolFailed(f"unterminated quote in the date pattern {pattern!r}")
                if pattern[end] == "'":
                    if pattern.startswith("''", end):
                        literal.append("'")
                        end += 2
                        continue
                    break
                literal.append(pattern[end])
                end += 1
            i = end + 1
        elif c.isascii() and c.isalpha():
            if c not in DATE_LETTERS:
                raise ToolFailed(f"unknown letter {c!r} in the date pattern {pattern!r}")
            end = i
            while end < n and pattern[end] == c:
                end += 1
            if c == "X" and end - i > 3:
                raise ToolFailed(f"'X' repeated more than 3 times in the date pattern {pattern!r}")
            if literal:
                tokens.append("".join(literal))
                literal = []
            tokens.append((c, end - i))
            i = end
        else:
            literal.append(c)
            i += 1
    if literal:
        tokens.append("".join(literal))
    return tuple(tokens)


def format_date(moment: datetime, pattern: str) -> str:
    """``SimpleDateFormat.format`` in English; a moment without a zone is UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    out: list[str] = []
    for token in date_pattern(pattern):
        out.append(token if isinstance(token, str) else _date_field(moment, *token))
    return "".join(out)


def _date_field(moment: datetime, letter: str, count: int) -> str:
    def pad(value: int) -> str:
        return str(value).rjust(count, "0")

    match letter:
        case "G":
            return "AD"
        case "y" | "Y":
            year = moment.year if letter == "y" else _week_year(moment)
            return f"{year % 100:02d}" if count == 2 else pad(year)
        case "M" | "L":
            if count >= 3:
                name = _MONTHS[moment.month - 1]
                return name if count >= 4 else name[:3]
            return pad(moment.month)
        case "d":
            return pad(moment.day)
        case "D":
            return pad(moment.timetuple().tm_yday)
        case "F":
            return pad((moment.day - 1) // 7 + 1)
        case "w":
            return pad(_week_of_year(moment))
        case "W":
            return pad((moment.day - 1 + moment.replace(day=1).isoweekday() % 7) // 7 + 1)
        case "E":
            name = _DAYS[moment.weekday()]
            return name if count >= 4 else name[:3]
        case "u":
            return pad(moment.isoweekday())
        case "a":
            return "AM" if moment.hour < 12 else "PM"
        case "H":
            return pad(moment.hour)
        case "k":
            return pad(moment.hour or 24)
        case "K":
            return pad(moment.hour % 12)
        case "h":
            return pad(moment.hour % 12 or 12)
        case "m":
            return pad(moment.minute)
        case "s":
            return pad(moment.second)
        case "S":
            return pad(moment.microsecond // 1000)
        case "z":
            return _zone_name(moment, count >= 4)
        case "Z":
            return _offset(moment, "")
        case _:  # "X"
            offset = moment.utcoffset() or timedelta(0)
            if not offset:
                return "Z"
            return _offset(moment, "")[:3] if count == 1 else _offset(moment, ":" if count == 3 else "")


def _offset(moment: datetime, separator: str) -> str:
    minutes = int((moment.utcoffset() or timedelta(0)).total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{sign}{hours:02d}{separator}{minutes:02d}"


_LONG_ZONE_NAMES = {"UTC": "Coordinated Universal Time", "GMT": "Greenwich Mean Time"}


def _zone_name(moment: datetime, long: bool) -> str:
    """``z``: the zone's abbreviation (EET, EEST, UTC); a zone whose abbreviation is a number,
    and a fixed offset, are named GMT+03:00 as Java names them. ``zzzz`` spells out UTC and GMT
    only; other zones keep their abbreviation."""
    name = moment.tzname() or ""
    if not name or name[0] in "+-" or name.startswith(("UTC+", "UTC-")):
        return "GMT" + _offset(moment, ":")
    return _LONG_ZONE_NAMES.get(name, name) if long else name


def _week_start(moment: datetime) -> datetime:
    """The Sunday that starts the moment's week (en_US weeks)."""
    return (moment - timedelta(days=moment.isoweekday() % 7)).replace(
        hour=0, minute=0, second=0, microsecond=0
    )


def _week_year(moment: datetime) -> int:
    """en_US: week 1 is the week holding 1 January, so the week's Saturday names its year."""
    return (_week_start(moment) + timedelta(days=6)).year


def _week_of_year(moment: datetime) -> int:
    start = _week_start(moment)
    first = _week_start(start.replace(year=_week_year(moment), month=1, day=1))
    return (start - first).days // 7 + 1


#: Offsets as Java's TimeZone writes them ('GMT+3', 'GMT+03:00', 'GMT+0330'), also after 'UTC'.
_PREFIXED_OFFSET = re.compile(r"(?:GMT|UTC)([+-])([0-9]{1,2})(?::?([0-9]{2}))?")
#: Offsets as java.time writes them: '+03', '+03:00', '+0300'.
_BARE_OFFSET = re.compile(r"([+-])([0-9]{2})(?::?([0-9]{2}))?")


@_cached
def time_zone(name: str) -> tzinfo:
    """An IANA zone ('Europe/Kiev'), UTC or GMT, or an offset ('GMT+3', 'UTC+03:00', '+03:00').
    Any other name fails the render, where Java would quietly use GMT."""
    if name in ("UTC", "Z"):
        return UTC
    if name == "GMT":
        return timezone(timedelta(0), "GMT")
    fixed = _PREFIXED_OFFSET.fullmatch(name) or _BARE_OFFSET.fullmatch(name)
    if fixed is not None:
        sign, hours, minutes = fixed.group(1), int(fixed.group(2)), int(fixed.group(3) or 0)
        if hours > 23 or minutes > 59:
            raise ToolFailed(f"unknown time zone {name!r}")
        offset = timedelta(hours=hours, minutes=minutes)
        return timezone(-offset if sign == "-" else offset, f"GMT{sign}{hours:02d}:{minutes:02d}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ToolFailed(f"unknown time zone {name!r}") from None


def _zone_argument(value: object) -> tzinfo:
    if not isinstance(value, str):
        raise ToolFailed(f"unknown time zone {value!r}")
    return time_zone(str(value))


_MONTH_NAMES = "|".join(_MONTHS) + "|" + "|".join(name[:3] for name in _MONTHS)
_DAY_NAMES = "|".join(_DAYS) + "|" + "|".join(name[:3] for name in _DAYS)


@_cached
def _date_reader(pattern: str) -> tuple[re.Pattern[str], tuple[tuple[str, int], ...]]:
    tokens = date_pattern(pattern)
    parts: list[str] = []
    fields: list[tuple[str, int]] = []
    for index, token in enumerate(tokens):
        if isinstance(token, str):
            parts.append(re.escape(token))
            continue
        letter, count = token
        if letter not in _READABLE:
            raise ToolFailed(
                f"the date pattern letter {letter!r} cannot be used to read a date ({pattern!r})"
            )
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if letter in "ML" and count >= 3:
            expression = f"(?i:{_MONTH_NAMES})"
        elif letter == "E":
            expression = f"(?i:{_DAY_NAMES})"
        elif letter == "a":
            expression = "(?i:AM|PM)"
        elif letter in "ZX":
            expression = "Z|[+-][0-9]{2}(?::?[0-9]{2})?"
        elif (
            isinstance(following, tuple)
            and following[0] in _NUMERIC
            and not (following[0] in "ML" and following[1] >= 3)
        ):
            # Java reads adjacent number fields by their widths: "yyyyMMdd".
            expression = f"[0-9]{{{count}}}"
        else:
            expression = "[0-9]+"
        parts.append(f"({expression})")
        fields.append(token)
    return re.compile("".join(parts)), tuple(fields)


def read_date(text: str, pattern: str) -> datetime | None:
    """``SimpleDateFormat.parse``, lenient as Java's is by default: the pattern must match the
    text's start, and out-of-range fields roll over (31/02 is 2 March). A zone offset in the text
    is honoured; the result is in UTC."""
    regex, fields = _date_reader(pattern)
    found = regex.match(text)
    if found is None:
        return None
    year, month, day, hour, minute, second, millis = 1970, 1, 1, 0, 0, 0, 0
    half_day_hour: int | None = None
    afternoon = ambiguous = False
    offset = timedelta(0)
    try:
        for (letter, count), raw in zip(fields, found.groups(), strict=True):
            if letter == "y":
                year = int(raw)
                if count <= 2 and len(raw) == 2:
                    year, ambiguous = _two_digit_year(year)
            elif letter in "ML":
                month = int(raw) if raw.isdigit() else _month_number(raw)
            elif letter == "d":
                day = int(raw)
            elif letter == "H":
                hour = int(raw)
            elif letter == "k":
                hour = int(raw) % 24
            elif letter in "hK":
                half_day_hour = int(raw) % 12 if letter == "h" else int(raw)
            elif letter == "m":
                minute = int(raw)
            elif letter == "s":
                second = int(raw)
            elif letter == "S":
                millis = int(raw)
            elif letter == "a":
                afternoon = raw.upper() == "PM"
            elif letter in "ZX" and raw.upper() != "Z":
                digits = raw.replace(":", "")
                offset = timedelta(hours=int(digits[1:3]), minutes=int(digits[3:5] or 0))
                offset = -offset if digits[0] == "-" else offset
        if half_day_hour is not None:
            hour = half_day_hour + (12 if afternoon else 0)
        rolled_year, month_index = divmod(year * 12 + month - 1, 12)
        moment = datetime(rolled_year, month_index + 1, 1) + timedelta(
            days=day - 1, hours=hour, minutes=minute, seconds=second, milliseconds=millis
        )
        moment = (moment - offset).replace(tzinfo=UTC)
        if ambiguous and moment < _century_start():
            moment = _shift(moment, "years", 100)
        return moment
    except (ValueError, OverflowError):
        return None


def _month_number(name: str) -> int:
    return [month[:3].lower() for month in _MONTHS].index(name[:3].lower()) + 1


def _century_start() -> datetime:
    return _shift(now(), "years", -80)


def _two_digit_year(two_digits: int) -> tuple[int, bool]:
    """SimpleDateFormat's century: from 80 years ago to 20 years ahead. The year of the window's
    start is ambiguous until the whole date is known (Java then compares the dates)."""
    start = now().year - 80
    year = start // 100 * 100 + two_digits + (100 if two_digits < start % 100 else 0)
    return year, two_digits == start % 100


# --- dates: $dateTool -----------------------------------------------------------------------------

#: What ``currentDate()`` writes without a pattern (eSputnik does not document it).
DEFAULT_DATE_PATTERN = "dd.MM.yyyy"
#: The dates ``addDays`` and the others read without a pattern, tried in this order.
DEFAULT_READ_PATTERNS = ("dd/MM/yyyy HH:mm", "dd/MM/yyyy", "yyyy-MM-dd'T'HH:mm", "yyyy-MM-dd")
#: The dates ``formatInContactTimezone`` reads (ISO 8601 as eSputnik lists it).
CONTACT_READ_PATTERNS = ("dd/MM/yyyy HH:mm:ss", "yyyy-MM-dd'T'HH:mm:ss")
#: ``diff``'s units, as Java's ChronoUnit names them.
DIFF_UNITS = ("YEARS", "MONTHS", "WEEKS", "DAYS", "HOURS", "MINUTES", "SECONDS")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _writing_pattern(value: object) -> str:
    """A pattern to write with, checked before anything is read (Java builds the format first)."""
    if not isinstance(value, str):
        raise ToolFailed(f"{value!r} is not a date pattern")
    date_pattern(str(value))
    return str(value)


def _reading_pattern(value: object) -> str:
    pattern = _writing_pattern(value)
    _date_reader(pattern)
    return pattern


def _read(value: object, patterns: Sequence[str]) -> tuple[datetime, str] | None:
    if not isinstance(value, str):
        return None
    for pattern in patterns:
        moment = read_date(value, pattern)
        if moment is not None:
            return moment, pattern
    return None


def _instant(value: object) -> datetime | None:
    """A moment given as epoch milliseconds (a number, or digits), or as ISO 8601 text."""
    number = value if isinstance(value, int | float) and not isinstance(value, bool | JavaBoolean) else None
    if isinstance(value, str):
        if re.fullmatch(r"-?[0-9]+", value.strip()):
            try:
                number = int(value)
            except ValueError:  # more digits than Python converts
                return None
        else:
            try:
                moment = datetime.fromisoformat(value.strip())
            except ValueError:
                return None
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    if number is None or (isinstance(number, float) and not math.isfinite(number)):
        return None
    try:
        return _EPOCH + timedelta(milliseconds=number)
    except OverflowError:
        return None


def _shift(moment: datetime, unit: str, amount: int) -> datetime:
    if unit in ("years", "months"):
        months = moment.year * 12 + moment.month - 1 + amount * (12 if unit == "years" else 1)
        year, month = divmod(months, 12)
        last_day = calendar.monthrange(year, month + 1)[1]
        return moment.replace(year=year, month=month + 1, day=min(moment.day, last_day))
    return moment + timedelta(**{unit: amount})


def _months_between(earlier: datetime, later: datetime) -> int:
    """ChronoUnit.MONTHS: whole months, a month counted once its day and time are reached."""
    months = (later.year - earlier.year) * 12 + later.month - earlier.month
    if (later.day, later.time()) < (earlier.day, earlier.time()):
        months -= 1
    return months


class DateTool:
    """``$dateTool`` as eSputnik documents it. Dates written by the tool are text in the given
    SimpleDateFormat pattern; ``currentDate`` and ``formatDate`` write in UTC unless a time zone
    is given."""

    __slots__ = ()

    def currentDate(self, *arguments: object) -> JavaString:
        if len(arguments) > 2:
            raise ToolFailed("$dateTool.currentDate takes a pattern and a time zone")
        pattern = _writing_pattern(arguments[0]) if arguments else DEFAULT_DATE_PATTERN
        zone = _zone_argument(arguments[1]) if len(arguments) == 2 else UTC
        return _capped(format_date(now().astimezone(zone), pattern))

    def currentTimeStamp(self) -> JavaInteger:
        return JavaInteger((now() - _EPOCH) // timedelta(milliseconds=1))

    def formatDate(self, *arguments: object) -> JavaString | None:
        """``formatDate(pattern, date[, zone])``: the date in epoch milliseconds (or ISO 8601)."""
        if not 2 <= len(arguments) <= 3:
            raise ToolFailed("$dateTool.formatDate takes a pattern, a date and an optional time zone")
        pattern = _writing_pattern(arguments[0])
        zone = _zone_argument(arguments[2]) if len(arguments) == 3 else UTC
        moment = _instant(arguments[1])
        if moment is None:
            return None
        try:
            return _capped(format_date(moment.astimezone(zone), pattern))
        except (ValueError, OverflowError):
            return None

    def formatInContactTimezone(self, pattern: object, date: object) -> JavaString | None:
        """Tessera keeps no contact time zone, and the organisation's is UTC: the date is read as
        UTC and written as UTC."""
        writing = _writing_pattern(pattern)
        read = _read(date, CONTACT_READ_PATTERNS)
        if read is None:
            return None
        try:
            return _capped(format_date(read[0], writing))
        except (ValueError, OverflowError):
            return None

    def addYears(self, *arguments: object) -> JavaString | None:
        return _add("years", arguments)

    def addMonths(self, *arguments: object) -> JavaString | None:
        return _add("months", arguments)

    def addDays(self, *arguments: object) -> JavaString | None:
        return _add("days", arguments)

    def addHours(self, *arguments: object) -> JavaString | None:
        return _add("hours", arguments)

    def addMinutes(self, *arguments: object) -> JavaString | None:
        return _add("minutes", arguments)

    def diff(self, *arguments: object) -> JavaInteger | None:
        """``diff(date1, date2[, pattern], unit)``: whole units between the dates, never negative."""
        if len(arguments) not in (3, 4):
            raise ToolFailed("$dateTool.diff takes two dates, an optional pattern and a unit")
        unit = arguments[-1]
        if not isinstance(unit, str) or unit.upper() not in DIFF_UNITS:
            raise ToolFailed(f"$dateTool.diff: unknown unit {unit!r} (use one of {', '.join(DIFF_UNITS)})")
        patterns = (_reading_pattern(arguments[2]),) if len(arguments) == 4 else DEFAULT_READ_PATTERNS
        first, second = _read(arguments[0], patterns), _read(arguments[1], patterns)
        if first is None or second is None:
            return None
        earlier, later = sorted((first[0], second[0]))
        match unit.upper():
            case "YEARS":
                return JavaInteger(_months_between(earlier, later) // 12)
            case "MONTHS":
                return JavaInteger(_months_between(earlier, later))
            case "WEEKS":
                return JavaInteger((later - earlier) // timedelta(weeks=1))
            case "DAYS":
                return JavaInteger((later - earlier) // timedelta(days=1))
            case "HOURS":
                return JavaInteger((later - earlier) // timedelta(hours=1))
            case "MINUTES":
                return JavaInteger((later - earlier) // timedelta(minutes=1))
            case _:
                return JavaInteger((later - earlier) // timedelta(seconds=1))


def _add(unit: str, arguments: Sequence[object]) -> JavaString | None:
    """``addDays(date, n[, pattern read[, pattern written]])``: the date is written back in the
    pattern it was read with unless another is given."""
    if not 2 <= len(arguments) <= 4:
        raise ToolFailed(f"$dateTool.add{unit.title()} takes a date, a number and up to two patterns")
    date, amount, *patterns = arguments
    reading = (_reading_pattern(patterns[0]),) if patterns else DEFAULT_READ_PATTERNS
    writing = _writing_pattern(patterns[1]) if len(patterns) == 2 else None
    count = _whole(amount)
    read = _read(date, reading)
    if count is None or read is None:
        return None
    try:
        return _capped(format_date(_shift(read[0], unit, count), writing or read[1]))
    except (ValueError, OverflowError):
        return None


MATH_TOOL = MathTool()
NUMBER_TOOL = NumberTool()
DATE_TOOL = DateTool()


def tools() -> dict[str, Any]:
    """The tools every render's namespace holds, under eSputnik's names."""
    return {"mathTool": MATH_TOOL, "numberTool": NUMBER_TOOL, "dateTool": DATE_TOOL}
