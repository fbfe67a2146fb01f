"""Inline a parametrised statement's `$n` arguments as SQL literals, for a client that takes plain SQL.

The Node reference exporter reads one SQL file and cannot bind parameters, so the benchmark gives it
ExportHub's own query with each `$n` replaced by a literal. Every value becomes a quoted literal with
PostgreSQL's `quote_literal` semantics (quotes doubled; a value with a backslash written as E'...'
with the backslashes doubled, so it reads the same whatever `standard_conforming_strings` says), which
like a bound parameter has no type of its own until the query's casts give it one. Lists become
array literals ('{"a","b"}'), NULL stays NULL. `$n` inside string literals, quoted identifiers,
dollar-quoted strings and comments is left alone.
"""

from __future__ import annotations

import datetime
import decimal
import math
import re
import uuid
from collections.abc import Sequence
from typing import Any

# What the scanner steps over whole: quoted strings and identifiers, dollar quotes, comments; or a $n.
_TOKEN = re.compile(
    r"""
    (?P<skip>
        (?<![A-Za-z0-9_$])[eE]'(?:[^'\\]|\\.|'')*'  # E'...' (backslash escapes), not date'...'
      | '(?:[^']|'')*'                    # '...'
      | "(?:[^"]|"")*"                    # "identifier"
      | (?<![A-Za-z0-9_$])(?P<dollar>\$(?:[A-Za-z_][A-Za-z_0-9]*)?\$).*?(?P=dollar)  # $tag$...$tag$
      | --[^\n]*                          # line comment
      | /\*.*?\*/                         # block comment (not nested: our queries have none)
    )
    | (?<![A-Za-z0-9_$])\$(?P<param>[0-9]+)
    """,
    re.VERBOSE | re.DOTALL,
)


def inline_parameters(sql: str, args: Sequence[Any]) -> str:
    """`sql` with every `$n` replaced by the literal of args[n-1]; an unknown `$n` is an error."""

    def replace(match: re.Match[str]) -> str:
        if match.group("param") is None:
            return match.group(0)
        n = int(match.group("param"))
        if not 1 <= n <= len(args):
            raise ValueError(f"${n} has no argument ({len(args)} given)")
        return quote_literal(args[n - 1])

    return _TOKEN.sub(replace, sql)


def quote_literal(value: Any) -> str:
    """The SQL literal of a Python value: NULL, or the value's text in quotes (see the module docstring)."""
    if value is None:
        return "NULL"
    return _quote_text(_text(value))


def _text(value: Any) -> str:
    """PostgreSQL's text input form of a value (what asyncpg would send for it)."""
    if isinstance(value, bool):  # before int: bool is an int
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | decimal.Decimal | uuid.UUID):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)
    if isinstance(value, datetime.date | datetime.time):  # datetime is a date
        return value.isoformat()
    if isinstance(value, list | tuple):
        return _array_text(value)
    raise TypeError(f"no SQL literal for {type(value).__name__}")


def _array_text(values: Sequence[Any]) -> str:
    """Array input syntax: every element double-quoted, `"` and `\\` backslash-escaped; NULL bare."""
    items = []
    for v in values:
        if v is None:
            items.append("NULL")
        elif isinstance(v, list | tuple):
            items.append(_array_text(v))
        else:
            text = _text(v)
            items.append('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return "{" + ",".join(items) + "}"


def _quote_text(text: str) -> str:
    if "\x00" in text:
        raise ValueError("PostgreSQL text cannot hold a NUL character")
    quoted = text.replace("'", "''")
    if "\\" in text:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return "'" + quoted + "'"
