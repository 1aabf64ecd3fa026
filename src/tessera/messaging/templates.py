"""Velocity templates through airspeed, made safe for data we do not control (SPEC §8).

airspeed looks a name up as ``obj[name]`` before ``getattr(obj, name)``, so a plain dict whose
payload has a key called ``get`` would break ``$data.get('code')``. Templates see the data only
through ``TemplateData``/``TemplateList``, whose single lookup is the ``get`` method. airspeed
also lets a template reach Python internals (``$x.__class__...``): templates containing ``__`` or
``._`` are refused when saved, and nothing but plain data is ever passed in. Two ways round that
check are refused too: ``#evaluate`` compiles a string at render time (one the template builds, or
one taken from the data), and ``str.format`` walks the attributes its format string names
(``{0.__init__.__globals__}``), a string the data can supply. ``.format`` is refused in the source
except as ``$numberTool.format``, and every string a template calls a method on is a
``JavaString``, which has no ``format`` or ``format_map`` at all (so ``#set($numberTool = ...)``
gains nothing).

Every render sees eSputnik's tools, ``$mathTool``, ``$numberTool`` and ``$dateTool``, and Java's
String methods on its strings (``velocity_tools.py``, SPEC §10).

``$!promocodes.issue('<group>')`` puts a code of the group in a delivery (SPEC §10, "Codes in
campaigns"). A render only shows codes: the worker claims them before it renders, from the group
names the message's templates name (``promocode_groups``), and hands them in. So the group is a
quoted name in the template, never a value computed at render time, and every call is rendered:
``check`` refuses any other use of ``$promocodes``, and calls in comments or unparsed blocks.

A render is also bounded, so that one partner's template cannot hold a worker or the admin's
preview: at most ``MAX_LOOP_ITERATIONS`` ``#foreach`` iterations in all (``[1..1000000000]`` is a
lazy range, and nested loops multiply) and ``MAX_OUTPUT_CHARS`` characters written.
"""

from __future__ import annotations

import bisect
import contextvars
import functools
import io
import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

import airspeed

from tessera.messaging.velocity_tools import ToolFailed, java_string, tools

#: Checked in this order; the first found is the one reported.
FORBIDDEN = tuple(
    re.compile(pattern, re.IGNORECASE)
    for pattern in (r"__", r"\._", r"#\{?evaluate\b", r"(?<!numberTool)\.format\b|\.format_map\b")
)


def _forbidden(source: str) -> re.Match[str] | None:
    for pattern in FORBIDDEN:
        found = pattern.search(source)
        if found is not None:
            return found
    return None


#: A code handed out at send time: ``$!promocodes.issue('Spring sale')`` (or ``${...}``, or the name
#: in double quotes). The name holds none of ``\ # $``: airspeed unescapes or interprets them when
#: it renders, so the code claimed and the code asked for would be for different names.
_ISSUE_CALL = re.compile(r"""(?<!\\)\$!?\{?promocodes\.issue\(\s*(?:'([^'\\#$\n]*)'|"([^"\\#$\n]*)")\s*\)""")
#: Every way a template can name the code tool: each must be the start of an ``_ISSUE_CALL``.
_REFERENCE = re.compile(r"\$!?\{?promocodes\b|\bpromocodes\s*\.\s*issue\b")
#: What Velocity never renders: line and block comments, unparsed blocks.
_NOT_RENDERED = re.compile(r"##[^\n]*|#\*.*?\*#|#\[\[.*?\]\]#", re.DOTALL)
ISSUE_NEEDS_NAME = (
    "promocodes.issue is written $!promocodes.issue('Spring sale'): the group's name in quotes,"
    " without \\, # or $"
)
ISSUE_NOT_RENDERED = (
    "promocodes.issue takes a code from its group for every message, so it may not stand in a"
    " comment or an unparsed block"
)
#: Groups one template may take codes from, and the longest name a group has.
MAX_GROUPS = 10
MAX_GROUP_NAME = 128


def _issue_calls(source: str) -> tuple[set[str], tuple[int, str] | None]:
    """The groups a template's ``$!promocodes.issue`` calls name, and its first misuse of the
    tool (the offset and why), if any."""
    hidden = [match.span() for match in _NOT_RENDERED.finditer(source)]
    calls = list(_ISSUE_CALL.finditer(source))
    starts = [call.start() for call in calls]
    names: set[str] = set()
    for reference in _REFERENCE.finditer(source):
        at = reference.start()
        index = bisect.bisect_right(starts, at) - 1
        if index < 0 or at >= calls[index].end():
            return names, (at, ISSUE_NEEDS_NAME)
        call = calls[index]
        if any(start <= call.start() < end for start, end in hidden):
            return names, (at, ISSUE_NOT_RENDERED)
        name = call.group(1) if call.group(1) is not None else call.group(2)
        if not 0 < len(name) <= MAX_GROUP_NAME or not name.isprintable():
            return names, (at, f"a promo-code group's name is 1 to {MAX_GROUP_NAME} printable characters")
        names.add(name)
        if len(names) > MAX_GROUPS:
            return names, (at, f"a template may take codes from at most {MAX_GROUPS} promo-code groups")
    return names, None


def promocode_groups(*sources: str | None) -> tuple[str, ...]:
    """The promo-code groups checked templates take a code from, each once, in name order. A
    group named anywhere in the message is claimed for every delivery, under ``#if`` or not."""
    return tuple(sorted({name for source in sources if source for name in _issue_calls(source)[0]}))


class TemplateRefused(ValueError):
    """A template cannot be saved: a syntax error (with line and column) or a forbidden sequence."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line
        self.column = column


class RenderFailed(ValueError):
    """One delivery's template could not be rendered with its data."""


OUT_OF_MEMORY = "the template needs more memory than a render may use"
MAX_LOOP_ITERATIONS = 10_000
MAX_OUTPUT_CHARS = 2_000_000

#: Loop iterations the render in progress may still make (None outside a render).
_iterations_left: contextvars.ContextVar[list[int] | None] = contextvars.ContextVar(
    "template_iterations_left", default=None
)


class _CountedNamespace(airspeed.LocalNamespace):  # type: ignore[misc]
    """airspeed makes one of these per ``#foreach`` iteration (and macro call): each is charged
    to the render's budget. Installed as ``airspeed.LocalNamespace``, the name its loops use."""

    def __init__(self, parent: Any) -> None:
        left = _iterations_left.get()
        if left is not None:
            left[0] -= 1
            if left[0] < 0:
                raise RenderFailed(f"the template loops more than {MAX_LOOP_ITERATIONS:,} times")
        super().__init__(parent)


airspeed.LocalNamespace = _CountedNamespace

_look_up = airspeed.NameOrCall.calculate


def _look_up_in_java(self: Any, current_object: Any, loader: Any, top_namespace: Any) -> Any:
    """Every ``$x.name`` airspeed resolves: a string is looked into as a ``JavaString`` (Java's
    methods, and no ``format``), wherever it came from (data, a literal, ``#set``, a result)."""
    return _look_up(self, java_string(current_object), loader, top_namespace)


airspeed.NameOrCall.calculate = _look_up_in_java


class _BoundedOutput(io.StringIO):
    def write(self, text: str) -> int:
        if self.tell() + len(text) > MAX_OUTPUT_CHARS:
            raise RenderFailed(f"the template writes more than {MAX_OUTPUT_CHARS:,} characters")
        return super().write(text)


def wrap(value: Any) -> Any:
    if isinstance(value, Mapping):
        return TemplateData(value)
    if isinstance(value, list | tuple):
        return TemplateList(value)
    return java_string(value)


class TemplateData:
    """A JSON object as templates see it: ``$data.get('key')`` and nothing else."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def get(self, key: Any) -> Any:
        return wrap(self._values.get(str(key)))

    def isEmpty(self) -> bool:
        return not self._values

    def __str__(self) -> str:
        return json.dumps(self._values, ensure_ascii=False)


class TemplateList:
    """A JSON array: ``.get(0)``, ``.size()``, and ``#foreach``."""

    __slots__ = ("_items",)

    def __init__(self, items: list[Any] | tuple[Any, ...]) -> None:
        self._items = items

    def get(self, index: Any) -> Any:
        try:
            return wrap(self._items[int(index)])
        except (IndexError, ValueError, TypeError):
            raise RenderFailed(f"no element {index!r} in a list of {len(self._items)}") from None

    def size(self) -> int:
        return len(self._items)

    def isEmpty(self) -> bool:
        return not self._items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        return (wrap(item) for item in self._items)

    def __str__(self) -> str:
        return json.dumps(list(self._items), ensure_ascii=False)


def check(source: str) -> None:
    """Raises ``TemplateRefused`` unless the template is safe and parses."""
    found = _forbidden(source)
    if found is not None:
        line = source.count("\n", 0, found.start()) + 1
        raise TemplateRefused(f"templates may not contain {found.group()!r}", line=line)
    _, misuse = _issue_calls(source)
    if misuse is not None:
        at, reason = misuse
        raise TemplateRefused(reason, line=source.count("\n", 0, at) + 1)
    _compile(source)


@functools.lru_cache(maxsize=512)
def _compile(source: str) -> airspeed.Template:
    template = airspeed.Template(source)
    try:
        template.ensure_compiled()
    except airspeed.TemplateSyntaxError as error:
        raise TemplateRefused(str(error), line=error.line, column=error.column) from None
    return template


class PromocodeTool:
    """``$promocodes`` in a render: the codes claimed for this delivery, by group name."""

    __slots__ = ("_codes",)

    def __init__(self, codes: Mapping[str, str]) -> None:
        self._codes = codes

    def __str__(self) -> str:
        return ""

    def issue(self, group: Any) -> Any:
        code = self._codes.get(str(group))
        if code is None:
            raise RenderFailed(f"no promo code was claimed from group {str(group)!r} for this message")
        return java_string(code)


def render(source: str | None, data: Mapping[str, Any], codes: Mapping[str, str] | None = None) -> str:
    """Renders with ``$data`` bound to the payload and ``$promocodes`` to the codes claimed for
    this delivery (group name → code). Compiled templates are cached by their text."""
    if not source:
        return ""
    found = _forbidden(source)
    if found is not None:
        raise RenderFailed(f"template contains {found.group()!r}")
    try:
        template = _compile(source)
        output = _BoundedOutput()
        # Made before the budget is set, so the template's own namespace is not charged to it.
        namespace = _CountedNamespace(
            {"data": TemplateData(data), "promocodes": PromocodeTool(codes or {}), **tools()}
        )
        budget = _iterations_left.set([MAX_LOOP_ITERATIONS])
        try:
            template.merge_to(namespace, output)
        finally:
            _iterations_left.reset(budget)
        return output.getvalue()
    except RenderFailed:
        raise
    except MemoryError:
        # In the renderer's child process, whose address space is capped (renderer.py).
        raise RenderFailed(OUT_OF_MEMORY) from None
    except TemplateRefused as error:
        raise RenderFailed(error.reason) from None
    except Exception as error:
        cause = error.__cause__ or error
        if isinstance(cause, RenderFailed):
            raise cause from None
        if isinstance(cause, ToolFailed):
            raise RenderFailed(str(cause)) from None
        if isinstance(cause, MemoryError):
            raise RenderFailed(OUT_OF_MEMORY) from None
        raise RenderFailed(f"{type(cause).__name__}: {cause}") from None
