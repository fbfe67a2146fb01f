import datetime as dt
import re
from decimal import Decimal

import pytest
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from exporthub.catalog import ColumnType
from exporthub.formats.sanitize import (
    EXCEL_MAX_TEXT,
    XML_ILLEGAL_RE,
    display_text,
    excel_text,
    is_formula,
    neutralize_formula,
)


def excel_decode(text: str) -> str:
    """What Excel shows for a string cell: `_xHHHH_` sequences decoded, left to right."""
    return re.sub(r"_x([0-9A-Fa-f]{4})_", lambda m: chr(int(m[1], 16)), text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("=SUM(A1:A2)", "'=SUM(A1:A2)"),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@cmd", "'@cmd"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("a=b", "a=b"),
        ("'already", "'already"),
        ("", ""),
        # white space before a formula character: space, NBSP, ideographic space, LF, CR, tab
        (" =x", "' =x"),
        ("\u00a0+1", "'\u00a0+1"),
        ("\u3000-1", "'\u3000-1"),
        ("\n@cmd", "'\n@cmd"),
        (" \u00a0\u3000\n\r\t=x", "' \u00a0\u3000\n\r\t=x"),
        # full-width = + - @ (U+FF1D, U+FF0B, U+FF0D, U+FF20), first or after white space
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20cmd", "'\uff20cmd"),
        ("\u3000\uff1d1", "'\u3000\uff1d1"),
        # not formulas: white space alone or before anything else, other spaces, other full-width signs
        (" ", " "),
        (" \u00a0\u3000\n", " \u00a0\u3000\n"),
        (" x=1", " x=1"),
        ("\u2003=1", "\u2003=1"),
        ("\x0b=1", "\x0b=1"),
        ("\u200b=1", "\u200b=1"),
        ("\uff03x", "\uff03x"),
        ("a\uff1d1", "a\uff1d1"),
    ],
)
def test_neutralize_formula(text: str, expected: str) -> None:
    assert neutralize_formula(text) == expected
    assert is_formula(text) is (expected != text)


def test_xml_illegal_covers_openpyxl_and_keeps_tab_newline_cr() -> None:
    for code in range(0x20):
        char = chr(code)
        if ILLEGAL_CHARACTERS_RE.match(char):
            assert XML_ILLEGAL_RE.match(char)
    assert excel_text("a\tb\nc\rd") == "a\tb\nc\rd"
    assert excel_text("a\x00b\x07c\x0bd\x1fe\ufffef\uffffg") == "abcdefg"
    assert excel_text("é€😀\ud7ff\ue000") == "é€😀\ud7ff\ue000"


@pytest.mark.parametrize(
    "text",
    ["_x0041_", "a_x000D_b", "_x0041_x0042_", "__x0041__", "_X0041_", "_x004g_", "_x005F_", "_x00a1_"],
)
def test_excel_text_escapes_ooxml_sequences_so_excel_shows_them_literally(text: str) -> None:
    assert excel_decode(excel_text(text)) == text


def test_excel_text_truncates_to_excel_limit_in_utf16_units() -> None:
    assert excel_text("x" * 40_000) == "x" * EXCEL_MAX_TEXT
    assert excel_text("x" * EXCEL_MAX_TEXT) == "x" * EXCEL_MAX_TEXT
    emoji = excel_text("😀" * 20_000)  # two UTF-16 units each
    assert emoji == "😀" * (EXCEL_MAX_TEXT // 2)
    mixed = excel_text("a" + "😀" * 20_000)
    assert len(mixed.encode("utf-16-le")) // 2 <= EXCEL_MAX_TEXT
    assert len(mixed.encode("utf-16-le")) // 2 >= EXCEL_MAX_TEXT - 1


@pytest.mark.parametrize(
    ("value", "column_type", "expected"),
    [
        (None, ColumnType.TEXT, ""),
        ("x", ColumnType.TEXT, "x"),
        (True, ColumnType.BOOLEAN, "true"),
        (False, ColumnType.BOOLEAN, "false"),
        (42, ColumnType.INTEGER, "42"),
        (-(10**20), ColumnType.INTEGER, "-100000000000000000000"),
        (Decimal("1E+3"), ColumnType.DECIMAL, "1000"),
        (Decimal("0.00001"), ColumnType.DECIMAL, "0.00001"),
        (Decimal("1.50"), ColumnType.DECIMAL, "1.50"),
        (1e-05, ColumnType.DECIMAL, "0.00001"),
        (Decimal("12.5"), ColumnType.MONEY, "12.50"),
        (Decimal("-12.5"), ColumnType.MONEY, "-12.50"),
        (Decimal("1E+3"), ColumnType.MONEY, "1000.00"),
        (7, ColumnType.MONEY, "7.00"),
        (dt.date(2024, 1, 31), ColumnType.DATE, "2024-01-31"),
        (dt.datetime(2024, 1, 31, 9, 30, tzinfo=dt.UTC), ColumnType.DATETIME, "2024-01-31T09:30:00+00:00"),
        (
            dt.datetime(2024, 1, 31, 9, 30, 0, 250, tzinfo=dt.UTC),
            ColumnType.DATETIME,
            "2024-01-31T09:30:00.000250+00:00",
        ),
        (
            dt.datetime(2024, 1, 31, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            ColumnType.DATETIME,
            "2024-01-30T23:00:00+00:00",
        ),
        (dt.datetime(2024, 1, 31, 9, 30), ColumnType.DATETIME, "2024-01-31T09:30:00+00:00"),  # naive = UTC
    ],
)
def test_display_text(value: object, column_type: ColumnType, expected: str) -> None:
    assert display_text(value, column_type) == expected


def test_the_characters_excel_refuses_are_openpyxls() -> None:
    """Spelled out in sanitize (so that CSV exports never load openpyxl), and still openpyxl's."""
    from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

    from exporthub.formats.sanitize import OPENPYXL_ILLEGAL

    assert ILLEGAL_CHARACTERS_RE.pattern == OPENPYXL_ILLEGAL
