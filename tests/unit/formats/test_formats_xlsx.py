"""What an XLSX export holds, cell by cell and sheet by sheet (the spec is the docstring of
exporthub.formats.xlsx), checked on the production writer and on the openpyxl oracle
(tests/oracles/xlsx_openpyxl.py) that test_formats_xlsx_writer.py holds the production writer to."""

import concurrent.futures
import datetime as dt
import pathlib
import re
import zipfile
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import openpyxl
import pytest

from exporthub.catalog import Column, ColumnType
from exporthub.formats import Writer, open_writer
from exporthub.formats.xlsx.parts import sheet_title
from tests.oracles.xlsx_openpyxl import OpenpyxlXlsxWriter

COLUMNS = (
    Column("name", "Name", ColumnType.TEXT, "r.name", 26),
    Column("count", "Count", ColumnType.INTEGER, "r.count", 8),
    Column("hours", "Hours", ColumnType.DECIMAL, "r.hours", 9),
    Column("pay", "Pay", ColumnType.MONEY, "r.pay", 13),
    Column("day", "Day", ColumnType.DATE, "r.day", 12),
    Column("at", "At", ColumnType.DATETIME, "r.at", 20),
    Column("ok", "OK", ColumnType.BOOLEAN, "r.ok", 7),
)
LABELS = [column.label for column in COLUMNS]
WIDTHS = {"A": 26, "B": 8, "C": 9, "D": 13, "E": 12, "F": 20, "G": 7}
UTC = dt.UTC

MakeWriter = Callable[..., Writer]


@pytest.fixture(params=["stream", "oracle"])
def make(request: pytest.FixtureRequest) -> MakeWriter:
    """`make(path, **options)`: the production writer as exports open it, or the openpyxl oracle."""
    if request.param == "oracle":
        return lambda path, **options: OpenpyxlXlsxWriter(path, COLUMNS, **options)
    return lambda path, **options: open_writer("xlsx", path, COLUMNS, **options)


def write_xlsx(make: MakeWriter, path: pathlib.Path, rows: list[tuple], *, batch: int = 2, **options: Any) -> None:
    writer = make(path, **options)
    assert isinstance(writer, Writer)
    for start in range(0, len(rows), batch):
        writer.write_rows(rows[start : start + batch])
    writer.close()


def sheet_xml(path: pathlib.Path, number: int = 1) -> str:
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"xl/worksheets/sheet{number}.xml").decode()


def assert_sheet_layout(sheet: Any, data_rows: int) -> None:
    assert [cell.value for cell in sheet[1]] == LABELS
    assert all(cell.font.b for cell in sheet[1])
    assert all(cell.data_type == "s" for cell in sheet[1])
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref == f"A1:G{data_rows + 1}"
    assert {letter: sheet.column_dimensions[letter].width for letter in WIDTHS} == WIDTHS


def test_typed_cells_cell_by_cell(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    rows = [
        (
            "Ada",
            7,
            Decimal("7.50"),
            Decimal("1234.56"),
            dt.date(2024, 1, 31),
            dt.datetime(2024, 1, 31, 9, 30, 15, 999_999, tzinfo=UTC),
            True,
        ),
        (
            "  padded  ",
            -(10**15) + 1,
            Decimal("-0.25"),
            Decimal("-12.50"),
            dt.date(9999, 12, 31),
            dt.datetime(2024, 1, 31, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            False,
        ),
        (None, None, None, None, None, None, None),
    ]
    write_xlsx(make, path, rows, title="Payroll")
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Payroll"]
    sheet = workbook["Payroll"]
    assert_sheet_layout(sheet, 3)

    a, b, c = sheet[2], sheet[3], sheet[4]
    assert [cell.value for cell in a] == [
        "Ada",
        7,
        7.5,
        1234.56,
        dt.datetime(2024, 1, 31),
        dt.datetime(2024, 1, 31, 9, 30, 15),  # microseconds dropped
        True,
    ]
    assert [cell.data_type for cell in a] == ["s", "n", "n", "n", "d", "d", "b"]
    assert [cell.number_format for cell in a] == [
        "General",
        "0",
        "#,##0.00##",
        "#,##0.00",
        "yyyy-mm-dd",
        "yyyy-mm-dd hh:mm:ss",
        "General",
    ]
    assert not any(cell.font.b for cell in a)
    assert [cell.value for cell in b] == [
        "  padded  ",
        -(10**15) + 1,
        -0.25,
        -12.5,
        dt.datetime(9999, 12, 31),
        dt.datetime(2024, 1, 30, 23, 0),  # converted to UTC, naive
        False,
    ]
    assert [cell.value for cell in c] == [None] * 7


def test_formula_like_text_is_an_inert_string_cell(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    texts = ["=1+2", '=HYPERLINK("http://evil","x")', "+1", "-1", "@SUM(A1)", "#N/A", "#DIV/0!", "=", "\tx"]
    texts += [" =1+2", "\u00a0+1", "\u3000-1", "\n@SUM(A1)", "\r\t=x", "\uff1d1+2", "\u3000\uff20cmd"]
    write_xlsx(make, path, [(text, None, None, None, None, None, None) for text in texts])
    sheet = openpyxl.load_workbook(path).active
    cells = [row[0] for row in sheet.iter_rows(min_row=2)]
    assert [cell.value for cell in cells] == texts  # kept as is: no quote prefix in XLSX
    assert all(cell.data_type == "s" for cell in cells)
    xml = sheet_xml(path)
    assert "<f>" not in xml
    assert "<f " not in xml
    assert len(re.findall(r'<c r="A\d+" t="inlineStr">', xml)) == len(texts)


def test_control_characters_are_stripped_and_text_truncated(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    rows = [
        ("a\x00b\x07c\x0bd\x1be\ufffef\tg\nh", None, None, None, None, None, None),
        ("x" * 40_000, None, None, None, None, None, None),
        ("\x01\x02", None, None, None, None, None, None),  # nothing left: an empty cell
        ("_x0041_", None, None, None, None, None, None),  # Excel would show "A" unless escaped
    ]
    write_xlsx(make, path, rows)
    sheet = openpyxl.load_workbook(path).active
    assert sheet["A2"].value == "abcdef\tg\nh"
    assert sheet["A3"].value == "x" * 32_767
    assert sheet["A4"].value is None
    assert sheet["A5"].value == "_x005F_x0041_"  # openpyxl does not decode what Excel decodes


def test_values_excel_cannot_hold_as_numbers_or_dates_become_text(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    rows = [
        (None, 10**15, Decimal("NaN"), Decimal("Infinity"), dt.date(1899, 12, 31), None, None),
        (None, -(2**63), Decimal("1E+400"), None, None, dt.datetime(1, 1, 1, tzinfo=UTC), None),
    ]
    write_xlsx(make, path, rows)
    sheet = openpyxl.load_workbook(path).active
    assert [(cell.value, cell.data_type) for cell in sheet[2][1:5]] == [
        ("1000000000000000", "s"),
        ("NaN", "s"),
        ("Infinity", "s"),
        ("1899-12-31", "s"),
    ]
    assert sheet["B3"].value == str(-(2**63))
    assert sheet["C3"].value == format(Decimal("1E+400"), "f")
    assert sheet["F3"].value == "0001-01-01T00:00:00+00:00"


def test_unexpected_python_types_are_written_as_text(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(
        make,
        path,
        [(12, "n/a", 1.5, 3, dt.datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC), dt.date(2024, 2, 1), "yes")],
    )
    sheet = openpyxl.load_workbook(path).active
    assert [(cell.value, cell.data_type) for cell in sheet[2]] == [
        ("12", "s"),
        ("n/a", "s"),
        (1.5, "n"),
        (3, "n"),
        (dt.datetime(2024, 1, 31, 23, 59, 59), "d"),  # shown as a date by the column's format
        (dt.datetime(2024, 2, 1), "d"),
        ("yes", "s"),
    ]


def test_rollover_gives_sheets_of_3_3_2_with_the_same_layout(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    rows = [(f"row {n}", n, None, Decimal(n), dt.date(2024, 1, n + 1), None, n % 2 == 0) for n in range(8)]
    write_xlsx(make, path, rows, batch=5, title="Timesheets", max_rows_per_sheet=3)
    workbook = openpyxl.load_workbook(path)
    assert workbook.sheetnames == ["Timesheets", "Timesheets (2)", "Timesheets (3)"]
    names = []
    for sheet, size in zip(workbook.worksheets, (3, 3, 2), strict=True):
        assert_sheet_layout(sheet, size)
        assert sheet.max_row == size + 1
        for row in sheet.iter_rows(min_row=2):
            names.append(row[0].value)
            assert row[1].number_format == "0"
            assert row[3].number_format == "#,##0.00"
            assert row[4].number_format == "yyyy-mm-dd"
    assert names == [f"row {n}" for n in range(8)]
    with zipfile.ZipFile(path) as archive:
        workbook_xml = archive.read("xl/workbook.xml").decode()
    assert workbook_xml.count('name="_xlnm._FilterDatabase"') == 3
    assert '<autoFilter ref="A1:G3"/>' in sheet_xml(path, 3)


def test_exact_multiple_of_the_sheet_size_adds_no_empty_sheet(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(make, path, [("x", n, None, None, None, None, None) for n in range(6)], max_rows_per_sheet=3)
    assert openpyxl.load_workbook(path).sheetnames == ["Export", "Export (2)"]


def test_autofilter_is_in_the_produced_xml(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(make, path, [("x", n, None, None, None, None, None) for n in range(4)], title="Employees")
    xml = sheet_xml(path)
    assert '<autoFilter ref="A1:G5"/>' in xml
    assert xml.index("</sheetData>") < xml.index("<autoFilter")
    assert 'state="frozen"' in xml
    assert 'topLeftCell="A2"' in xml
    with zipfile.ZipFile(path) as archive:
        workbook_xml = archive.read("xl/workbook.xml").decode()
    assert "'Employees'!$A$1:$G$5</definedName>" in workbook_xml


def test_empty_export_has_header_and_filter(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    write_xlsx(make, path, [])
    sheet = openpyxl.load_workbook(path)["Export"]
    assert_sheet_layout(sheet, 0)


@pytest.mark.parametrize(
    ("title", "number", "expected"),
    [
        ("", 1, "Export"),
        ("Payroll", 1, "Payroll"),
        ("Payroll", 2, "Payroll (2)"),
        ("Q1: pay/roll [draft]*?\\", 1, "Q1- pay-roll -draft----"),
        ("'quoted'", 1, "quoted"),
        ("   ", 1, "Export"),
        ("line\nbreak\x00", 1, "line break"),
        ("History", 1, "History export"),
        ("History", 2, "History export (2)"),
        ("A" * 40, 1, "A" * 31),
        ("A" * 40, 12, "A" * 26 + " (12)"),
        ("A" * 29 + " '", 2, "A" * 27 + " (2)"),
    ],
)
def test_sheet_title(title: str, number: int, expected: str) -> None:
    assert sheet_title(title, number) == expected
    assert len(expected) <= 31


def test_long_title_rolls_over_to_distinct_valid_names(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    rows = [("x", n, None, None, None, None, None) for n in range(3)]
    write_xlsx(make, path, rows, title="Compliance records " * 3, max_rows_per_sheet=1)
    names = openpyxl.load_workbook(path).sheetnames
    assert names == [
        "Compliance records Compliance r",
        "Compliance records Complian (2)",
        "Compliance records Complian (3)",
    ]


def test_a_part_file_name_is_fine(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "job-1.xlsx.part"
    write_xlsx(make, path, [("x", 1, None, None, None, None, None)])
    with path.open("rb") as file:  # load_workbook refuses the .part name, the writer does not care
        assert openpyxl.load_workbook(file).active["A2"].value == "x"


def test_batches_from_different_threads(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    """The pipeline calls write_rows through asyncio.to_thread: each batch may run on another thread."""
    path = tmp_path / "out.xlsx"
    writer = make(path, max_rows_per_sheet=7)
    for start in range(0, 20, 4):
        batch = [(f"r{n}", n, None, None, None, None, None) for n in range(start, start + 4)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(writer.write_rows, batch).result()
    writer.close()
    workbook = openpyxl.load_workbook(path)
    values = [row[1].value for sheet in workbook.worksheets for row in sheet.iter_rows(min_row=2)]
    assert values == list(range(20))


def test_close_and_abort_are_idempotent(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    path = tmp_path / "out.xlsx"
    writer = make(path, max_rows_per_sheet=2)
    writer.write_rows([("x", n, None, None, None, None, None) for n in range(5)])
    writer.close()
    writer.close()
    writer.abort()  # no-op after close
    assert len(openpyxl.load_workbook(path).sheetnames) == 3
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([("x", 1, None, None, None, None, None)])

    writer = make(tmp_path / "aborted.xlsx", max_rows_per_sheet=2)
    writer.write_rows([("x", n, None, None, None, None, None) for n in range(5)])
    writer.abort()
    writer.abort()
    (tmp_path / "aborted.xlsx").unlink()  # the caller's job; the handle is closed
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([])


def test_a_row_of_the_wrong_width_is_refused(tmp_path: pathlib.Path, make: MakeWriter) -> None:
    writer = make(tmp_path / "out.xlsx")
    with pytest.raises(ValueError, match="8 values for 7 columns"):
        writer.write_rows([("x", 1, None, None, None, None, None, None)])
    writer.abort()


@pytest.mark.parametrize("max_rows", [0, -1, 1_048_576])
def test_max_rows_per_sheet_is_bounded(tmp_path: pathlib.Path, make: MakeWriter, max_rows: int) -> None:
    with pytest.raises(ValueError, match="max_rows_per_sheet"):
        make(tmp_path / "out.xlsx", max_rows_per_sheet=max_rows)
