"""Inlining `$n` parameters as literals, for the Node exporter's SQL file.

PostgreSQL itself reads the literals back in tests/integration/test_bench_smoke.py; here the text.
"""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest
from bench.sql_literals import inline_parameters, quote_literal


def test_values_become_quoted_literals_like_quote_literal() -> None:
    assert quote_literal(None) == "NULL"
    assert quote_literal("it's") == "'it''s'"
    assert quote_literal("a\\b") == "E'a\\\\b'"  # a backslash: E'' with it doubled, as quote_literal does
    assert quote_literal("'; DROP TABLE payroll; --") == "'''; DROP TABLE payroll; --'"
    assert quote_literal(42) == "'42'" and quote_literal(True) == "'true'" and quote_literal(False) == "'false'"
    assert quote_literal(decimal.Decimal("1.50")) == "'1.50'" and quote_literal(0.1) == "'0.1'"
    assert quote_literal(float("nan")) == "'NaN'" and quote_literal(float("-inf")) == "'-Infinity'"
    assert quote_literal(datetime.date(2024, 2, 29)) == "'2024-02-29'"
    moment = datetime.datetime(2024, 2, 29, 23, 59, 59, 123456, tzinfo=datetime.UTC)
    assert quote_literal(moment) == "'2024-02-29T23:59:59.123456+00:00'"
    key = uuid.UUID(int=1)
    assert quote_literal(key) == f"'{key}'"


def test_lists_become_array_literals_with_every_element_quoted() -> None:
    assert quote_literal([]) == "'{}'"
    assert quote_literal(["a", "b c", "d,e", "{f}"]) == '\'{"a","b c","d,e","{f}"}\''
    # the array's backslash escapes, then the literal's E'' doubling them
    assert quote_literal(['say "hi"', None, "it's"]) == r"""E'{"say \\"hi\\"",NULL,"it''s"}'"""
    assert quote_literal(["\\"]) == r"""E'{"\\\\"}'"""
    assert quote_literal([[1, 2], [3, None]]) == '\'{{"1","2"},{"3",NULL}}\''
    assert quote_literal(("NULL",)) == "'{\"NULL\"}'"  # the string NULL, quoted, is not a null


def test_parameters_are_replaced_by_number_and_nowhere_else() -> None:
    sql = (
        "SELECT '$1', \"$1\", $q$ $1 $q$, E'\\' $1', $$ $2 $$ -- $1\n"
        "/* $1 */ FROM t WHERE a = $1 AND b = $10 AND c = $2 AND d$1 = date'x'"
    )
    args = ["one", "two", *[f"p{k}" for k in range(3, 10)], "ten"]
    assert inline_parameters(sql, args) == (
        "SELECT '$1', \"$1\", $q$ $1 $q$, E'\\' $1', $$ $2 $$ -- $1\n"
        "/* $1 */ FROM t WHERE a = 'one' AND b = 'ten' AND c = 'two' AND d$1 = date'x'"
    )


def test_a_value_that_looks_like_a_parameter_stays_a_value() -> None:
    assert inline_parameters("SELECT $1, $2", ["$2", "x"]) == "SELECT '$2', 'x'"


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match=r"\$3 has no argument"):
        inline_parameters("SELECT $1, $3", ["a", "b"])
    with pytest.raises(ValueError, match=r"\$0 has no argument"):
        inline_parameters("SELECT $0", ["a"])
    with pytest.raises(ValueError, match="NUL"):
        quote_literal("a\x00b")
    with pytest.raises(TypeError, match="no SQL literal for dict"):
        quote_literal({"a": 1})
    with pytest.raises(TypeError, match="no SQL literal for bytes"):
        quote_literal(b"raw")
