import csv
import datetime as dt
import os
import pathlib
import subprocess
import sys
from decimal import Decimal

import pytest

import exporthub
from exporthub.catalog import Column, ColumnType
from exporthub.formats import Writer, open_writer

COLUMNS = (
    Column("name", "Name", ColumnType.TEXT, "r.name", 20),
    Column("count", "Count", ColumnType.INTEGER, "r.count", 8),
    Column("hours", "Hours", ColumnType.DECIMAL, "r.hours", 8),
    Column("pay", "Pay", ColumnType.MONEY, "r.pay", 12),
    Column("day", "Day", ColumnType.DATE, "r.day", 12),
    Column("at", "At", ColumnType.DATETIME, "r.at", 20),
    Column("ok", "OK", ColumnType.BOOLEAN, "r.ok", 6),
)
UTC = dt.UTC


def write_csv(path: pathlib.Path, rows: list[tuple], *, bom: bool = True, batch: int = 2) -> None:
    writer = open_writer("csv", path, COLUMNS, title="ignored", csv_bom=bom)
    assert isinstance(writer, Writer)
    for start in range(0, len(rows), batch):
        writer.write_rows(rows[start : start + batch])
    writer.close()


def read_csv(path: pathlib.Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.reader(file))


def test_header_and_typed_values(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    rows = [
        (
            "Ada",
            7,
            Decimal("7.50"),
            Decimal("1234.5"),
            dt.date(2024, 1, 31),
            dt.datetime(2024, 1, 31, 9, 30, tzinfo=UTC),
            True,
        ),
        (
            None,
            -3,
            Decimal("1E+3"),
            Decimal("-12.5"),
            dt.date(1, 1, 1),
            dt.datetime(2024, 1, 31, 9, 30, 0, 250, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            False,
        ),
        (None, None, None, None, None, None, None),
    ]
    write_csv(path, rows)
    assert read_csv(path) == [
        ["Name", "Count", "Hours", "Pay", "Day", "At", "OK"],
        ["Ada", "7", "7.50", "1234.50", "2024-01-31", "2024-01-31T09:30:00+00:00", "true"],
        ["", "-3", "1000", "-12.50", "0001-01-01", "2024-01-31T14:30:00.000250+00:00", "false"],
        ["", "", "", "", "", "", ""],
    ]


@pytest.mark.parametrize("bom", [True, False])
def test_bom_and_crlf(tmp_path: pathlib.Path, bom: bool) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, [("é", 1, None, None, None, None, None)], bom=bom)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") is bom
    body = raw.removeprefix(b"\xef\xbb\xbf")
    assert body == b"Name,Count,Hours,Pay,Day,At,OK\r\n\xc3\xa9,1,,,,,\r\n"


def test_rfc4180_quoting(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    texts = ["a,b", 'say "hi"', "line1\nline2", "cr\rhere", "crlf\r\nhere", "plain", " padded "]
    write_csv(path, [(text, None, None, None, None, None, None) for text in texts])
    raw = path.read_bytes().decode("utf-8-sig")
    assert '"a,b",,,,,,\r\n' in raw
    assert '"say ""hi""",,,,,,\r\n' in raw
    assert '"line1\nline2",,,,,,\r\n' in raw
    assert "plain,,,,,,\r\n" in raw
    assert [row[0] for row in read_csv(path)[1:]] == texts


def test_formula_like_text_is_prefixed_but_typed_numbers_are_not(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    formulas = ["=1+2", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x","y")']
    rows: list[tuple] = [(text, -5, Decimal("-1.25"), Decimal("-12.5"), None, None, None) for text in formulas]
    rows.append(("a=b", None, None, None, None, None, None))
    write_csv(path, rows)
    data = read_csv(path)[1:]
    assert [row[0] for row in data] == [*("'" + text for text in formulas), "a=b"]
    assert all(row[1:4] == ["-5", "-1.25", "-12.50"] for row in data[:-1])


def test_text_in_a_typed_column_is_neutralised_too(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, [(12, "=cmd", "-x", "n/a", "soon", "-later", "=yes")])
    assert read_csv(path)[1] == ["12", "'=cmd", "'-x", "n/a", "soon", "'-later", "'=yes"]


# White space (space, NBSP, ideographic space, LF, CR, tab) before a formula character, and the
# full-width signs (U+FF1D, U+FF0B, U+FF0D, U+FF20), are formulas too; white space before anything
# else is not.
SPACED_FORMULAS = [" =1+2", "\u00a0+1", "\u3000-1", "\n@SUM(A1)", " \t\r\n=x", "\uff1d1+2", "\uff0b1", "\u3000\uff20c"]
NOT_FORMULAS = [" ", " x", "\u3000\u3000", "\n", "\u2003=1", "\uff03x"]


def test_white_space_or_a_full_width_sign_before_a_formula_is_prefixed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    texts = SPACED_FORMULAS + NOT_FORMULAS
    write_csv(path, [(text, None, None, None, None, None, "\u3000=" + text) for text in texts])
    data = read_csv(path)[1:]
    assert [row[0] for row in data] == ["'" + text for text in SPACED_FORMULAS] + NOT_FORMULAS
    assert [row[6] for row in data] == ["'\u3000=" + text for text in texts]  # text in a typed column


def test_a_formula_like_column_label_is_prefixed(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    columns = (Column("a", " =Label", ColumnType.TEXT, "r.a"), Column("b", "\uff0bLabel", ColumnType.INTEGER, "r.b"))
    writer = open_writer("csv", path, columns, title="ignored")
    writer.close()
    assert read_csv(path) == [["' =Label", "'\uff0bLabel"]]


def test_control_characters_are_kept(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    text = "a\x00b\x07c\x1bd\ufffe"
    write_csv(path, [(text, None, None, None, None, None, None)])
    assert read_csv(path)[1][0] == text


def test_empty_export_has_the_header(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    write_csv(path, [])
    assert read_csv(path) == [["Name", "Count", "Hours", "Pay", "Day", "At", "OK"]]


def test_header_is_written_on_open_and_complete_after_close(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    writer = open_writer("csv", path, COLUMNS)
    assert path.exists()
    writer.write_rows([("x", 1, None, None, None, None, None)])
    writer.close()
    writer.close()  # idempotent
    writer.abort()  # no-op after close
    assert len(read_csv(path)) == 2
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([("x", 1, None, None, None, None, None)])


def test_abort_releases_the_file(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "out.csv"
    writer = open_writer("csv", path, COLUMNS)
    writer.write_rows([("x", 1, None, None, None, None, None)])
    writer.abort()
    writer.abort()
    path.unlink()  # what the caller does
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([])


def test_a_row_of_the_wrong_width_is_refused(tmp_path: pathlib.Path) -> None:
    writer = open_writer("csv", tmp_path / "out.csv", COLUMNS)
    with pytest.raises(ValueError, match="2 values for 7 columns"):
        writer.write_rows([("x", 1)])
    writer.abort()


def test_the_csv_path_does_not_load_openpyxl(tmp_path: pathlib.Path) -> None:
    """A CSV export (COPY or the writer) imports neither openpyxl nor lxml: a fresh interpreter writes
    one and looks at sys.modules."""
    code = (
        "import sys, pathlib\n"
        "import exporthub.exports.copy_csv, exporthub.formats.csv_copy\n"
        "from exporthub.catalog import Column, ColumnType\n"
        "from exporthub.formats import open_writer\n"
        "w = open_writer('csv', pathlib.Path(sys.argv[1]), [Column('a', 'A', ColumnType.TEXT, 'r.a')])\n"
        "w.write_rows([['=x']])\n"
        "w.close()\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'openpyxl', 'lxml'}))\n"
    )
    backend = pathlib.Path(exporthub.__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(backend), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "out.csv"
    result = subprocess.run(
        [sys.executable, "-c", code, str(out)], env=env, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
    assert out.read_bytes() == "\ufeffA\r\n'=x\r\n".encode()
