"""The streaming XLSX writer makes the reference's (openpyxl's, tests/oracles/xlsx_openpyxl.py) workbook
cell for cell: both writers get the same rows, openpyxl loads both files, and every sheet, cell, format
and layout detail must match."""

import datetime as dt
import gc
import itertools
import pathlib
import threading
import zipfile
import zoneinfo
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exporthub.catalog import Column, ColumnType, load_catalog
from exporthub.formats import Writer, open_writer
from exporthub.formats.xlsx import row_code
from exporthub.formats.xlsx import writer as xlsx_writer
from exporthub.formats.xlsx.compressor import Compressor
from exporthub.formats.xlsx.writer import StreamingXlsxWriter
from tests.oracles.xlsx_openpyxl import OpenpyxlXlsxWriter

PAYROLL = load_catalog().resources["payroll"]

UTC = dt.UTC
T = ColumnType
ALL_TYPES = (T.TEXT, T.INTEGER, T.DECIMAL, T.MONEY, T.DATE, T.DATETIME, T.BOOLEAN)
COLUMNS = tuple(Column(f"c{n}", kind.value.title(), kind, f"r.c{n}", 8 + n) for n, kind in enumerate(ALL_TYPES))


def open_xlsx(which: str, path: pathlib.Path, columns: Any, **options: Any) -> Writer:
    """ "stream": the production writer, as exports open it; "oracle": the openpyxl reference."""
    if which == "oracle":
        zone = options.pop("time_zone", None)
        return OpenpyxlXlsxWriter(path, columns, time_zone=zoneinfo.ZoneInfo(zone) if zone else None, **options)
    return open_writer("xlsx", path, columns, **options)


def write(which: str, path: pathlib.Path, columns: Any, batches: list[list[tuple]], **options: Any) -> None:
    writer = open_xlsx(which, path, columns, **options)
    assert isinstance(writer, Writer)
    for batch in batches:
        writer.write_rows(batch)
    writer.close()


def cell_facts(cell: Any) -> tuple:
    value = cell.value
    return (
        type(value).__name__,
        repr(value),  # -0.0 is not 0.0 here
        cell.data_type,
        cell.number_format,
        cell.font.b,
        cell.font.name,
        cell.font.sz,
        cell.is_date,
    )


MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"
SPACE = "{http://www.w3.org/XML/1998/namespace}space"


def raw_cells(path: pathlib.Path) -> list[dict[str, tuple]]:
    """Each sheet's cells as parsed from the XML, style ids aside: what openpyxl does not show, such
    as xml:space="preserve" (Excel trims text without it)."""
    sheets = []
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        names = sorted(
            (name for name in archive.namelist() if name.startswith("xl/worksheets/sheet")),
            key=lambda name: int(name.removeprefix("xl/worksheets/sheet").removesuffix(".xml")),
        )
        for name in names:
            cells = {}
            for cell in etree.fromstring(archive.read(name)).iter(f"{MAIN}c"):
                text = cell.find(f"{MAIN}is/{MAIN}t")
                value = cell.findtext(f"{MAIN}v")
                cells[cell.get("r")] = (
                    cell.get("t", "n"),
                    None if text is None else (text.text, text.get(SPACE)),
                    None if value is None else float(value),
                )
            sheets.append(cells)
    return sheets


def assert_same_workbook(path: pathlib.Path, reference: pathlib.Path) -> None:
    assert raw_cells(path) == raw_cells(reference)
    ours, theirs = openpyxl.load_workbook(path), openpyxl.load_workbook(reference)
    assert ours.sheetnames == theirs.sheetnames
    for mine, ref in zip(ours.worksheets, theirs.worksheets, strict=True):
        assert mine.freeze_panes == ref.freeze_panes == "A2"
        assert mine.auto_filter.ref == ref.auto_filter.ref
        assert (mine.max_row, mine.max_column) == (ref.max_row, ref.max_column)
        widths = {key: (dim.width, dim.customWidth) for key, dim in ref.column_dimensions.items()}
        assert {key: (dim.width, dim.customWidth) for key, dim in mine.column_dimensions.items()} == widths
        assert sorted(mine._cells) == sorted(ref._cells)  # the same cells exist (None is no cell)
        for key, cell in ref._cells.items():
            assert cell_facts(mine._cells[key]) == cell_facts(cell), cell.coordinate


def assert_same_as_reference(tmp_path: pathlib.Path, columns: Any, batches: list[list[tuple]], **options: Any) -> None:
    write("oracle", tmp_path / "reference.xlsx", columns, batches, **options)
    write("stream", tmp_path / "stream.xlsx", columns, batches, **options)
    assert_same_workbook(tmp_path / "stream.xlsx", tmp_path / "reference.xlsx")


# --- random rows over every column type, with odd values and values of unexpected types -------------

EXACT = 10**15
FORMULAS = ["=1+2", "+1", "-1", "@A1", "\t=x", "\r=x", '=HYPERLINK("http://x","y")', "#N/A", "="]
FORMULAS += [" =1+2", "\u00a0+1", "\u3000-1", "\n@A1", " \r\n=x", "\uff1d1+2", "\uff0b1", "\u3000\uff20A1"]
texts = st.one_of(
    st.text(max_size=30),
    st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=12),  # control characters, & < > ...
    st.lists(st.sampled_from(["_x0041_", "_x", "_", "x00", "A_", "\r\n", " ", "😀", "\ufffe", "&"])).map("".join),
    st.sampled_from(
        [*FORMULAS, "_x0041_", "a_x000D_b", "_x0041_x0042_", " padded ", "\x00\x01", "\ud800", "😀", "]]>"]
    ),
    st.builds(lambda unit, n: unit * n, st.sampled_from(["x", "😀", "a😀", "_x0041_"]), st.integers(16_000, 33_000)),
)
integers = st.one_of(
    st.integers(-EXACT, EXACT),
    st.sampled_from([EXACT - 1, -EXACT + 1, EXACT, -EXACT, 2**63 - 1, -(2**63), 0, 10**20]),
)
decimals = st.one_of(
    st.decimals(min_value=Decimal("-9999999999999.99"), max_value=Decimal("9999999999999.99"), places=2),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.decimals(places=6, min_value=-(10**9), max_value=10**9),
    st.sampled_from(
        [
            Decimal(v)
            for v in ("8.03", "0.07", "-0.00", "1E+3", "1.5E+20", "NaN", "NaN123", "-Infinity", "1E+400", "1E-7")
        ]
    ),
)
dates = st.one_of(
    st.dates(min_value=dt.date(1900, 1, 1)),
    st.dates(min_value=dt.date(1899, 12, 1), max_value=dt.date(1900, 3, 2)),  # Excel's 1900 leap-year bug
    st.dates(max_value=dt.date(1899, 12, 31)),  # before Excel's calendar: text
)
zones: st.SearchStrategy[Any] = st.one_of(
    st.just(UTC),
    st.none(),
    st.integers(-14 * 60, 14 * 60).map(lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))),
)
datetimes = st.one_of(
    st.datetimes(min_value=dt.datetime(1899, 12, 31), timezones=zones),
    st.datetimes(min_value=dt.datetime(1900, 2, 27), max_value=dt.datetime(1900, 3, 2), timezones=zones),
    st.builds(
        lambda day, second, micro: (
            dt.datetime.combine(day, dt.time(), tzinfo=UTC) + dt.timedelta(seconds=second, microseconds=micro)
        ),
        st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(9999, 12, 30)),
        st.sampled_from([0, 1, 59, 3599, 43_200, 86_399]),
        st.sampled_from([0, 1, 499_999, 500_000, 999_999]),
    ),
    st.sampled_from([dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), dt.datetime(1, 1, 1, tzinfo=UTC)]),
)
anything = st.one_of(texts, integers, decimals, dates, datetimes, st.booleans(), st.floats())
VALUES = {
    T.TEXT: texts,
    T.INTEGER: integers,
    T.DECIMAL: decimals,
    T.MONEY: decimals,
    T.DATE: dates,
    T.DATETIME: datetimes,
    T.BOOLEAN: st.booleans(),
}


# The export's zone: none (UTC, unnamed), or one with half hours, a half-hour DST, local mean time
# in seconds (Dublin before 1880: -00:25:21), or beyond the date line.
EXPORT_ZONES = [
    None,
    "UTC",
    "Asia/Tokyo",
    "America/St_Johns",
    "Australia/Lord_Howe",
    "Europe/Dublin",
    "Pacific/Kiritimati",
]


@st.composite
def exports(draw: st.DrawFn) -> tuple[tuple[Column, ...], list[list[tuple]], str, int, str | None]:
    kinds = draw(st.lists(st.sampled_from(ALL_TYPES), min_size=1, max_size=9))
    labels = st.one_of(st.sampled_from(["Name", "Pay & <tax>", " x ", "=SUM(A1)"]), st.text(max_size=12))
    columns = tuple(
        Column(f"c{n}", draw(labels), kind, f"r.c{n}", draw(st.integers(1, 60))) for n, kind in enumerate(kinds)
    )

    def value(kind: ColumnType) -> st.SearchStrategy[Any]:
        return st.one_of(st.none(), VALUES[kind], VALUES[kind], anything)  # mostly the column's own type

    rows = draw(st.lists(st.tuples(*(value(kind) for kind in kinds)), max_size=14))
    cuts = sorted(draw(st.lists(st.integers(0, len(rows)), max_size=3)))
    bounds = [0, *cuts, len(rows)]
    batches = [rows[a:b] for a, b in itertools.pairwise(bounds)]
    title = draw(st.one_of(st.sampled_from(["Payroll", "History", "Q1: pay/roll", "Bob's pay"]), st.text(max_size=40)))
    return columns, batches, title, draw(st.integers(1, 6)), draw(st.sampled_from(EXPORT_ZONES))


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(export=exports())
def test_random_exports_are_cell_for_cell_the_reference(
    tmp_path: pathlib.Path, export: tuple[tuple[Column, ...], list[list[tuple]], str, int, str | None]
) -> None:
    columns, batches, title, max_rows, zone = export
    assert_same_as_reference(tmp_path, columns, batches, title=title, max_rows_per_sheet=max_rows, time_zone=zone)


def numeric_text(value: Any) -> Any:
    """A Decimal as PostgreSQL's `numeric::text` spells it (plain digits, never an exponent)."""
    if not isinstance(value, Decimal):
        return value
    if value.is_nan():
        return "NaN"
    if value.is_infinite():
        return "-Infinity" if value < 0 else "Infinity"
    return format(value, "f")


@settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    rows=st.lists(
        st.tuples(
            st.one_of(st.none(), decimals),
            st.one_of(st.none(), decimals),
            st.one_of(st.none(), texts),
        ),
        max_size=20,
    ),
    zone=st.sampled_from(EXPORT_ZONES),
)
def test_numeric_text_cells_are_the_reference_of_their_decimals(
    tmp_path: pathlib.Path, rows: list[tuple], zone: str | None
) -> None:
    """The XLSX query selects money and decimal columns as numeric::text (`prepared=True`): the
    file must be the reference's for the Decimals those texts spell. (Prepared dates and datetimes
    are held to the reference with PostgreSQL's own rows: tests/integration/test_xlsx_prepared_cells.py.)"""
    columns = (
        Column("pay", "Pay", T.MONEY, "r.pay", 12),
        Column("hours", "Hours", T.DECIMAL, "r.hours", 8),
        Column("note", "Note", T.TEXT, "r.note", 10),
    )
    # PostgreSQL's NaN has no payload (Decimal("NaN123")): the reference gets the NaN it can store.
    rows = [tuple(Decimal("NaN") if isinstance(v, Decimal) and v.is_nan() else v for v in row) for row in rows]
    as_text = [tuple(numeric_text(v) for v in row) for row in rows]
    write("oracle", tmp_path / "reference.xlsx", columns, [rows], time_zone=zone)
    write("stream", tmp_path / "stream.xlsx", columns, [as_text], time_zone=zone, prepared=True)
    assert_same_workbook(tmp_path / "stream.xlsx", tmp_path / "reference.xlsx")


def test_numeric_text_that_spells_no_number_is_a_text_cell(tmp_path: pathlib.Path) -> None:
    columns = (Column("pay", "Pay", T.MONEY, "r.pay", 12),)
    write("stream", tmp_path / "odd.xlsx", columns, [[("",), ("12 EUR",), ("1234.50",)]], prepared=True)
    sheet = openpyxl.load_workbook(tmp_path / "odd.xlsx").active
    assert [sheet[f"A{n}"].value for n in (2, 3, 4)] == [None, "12 EUR", 1234.5]
    with pytest.raises(ValueError, match="XLSX only"):
        open_writer("pdf", tmp_path / "x.pdf", columns, prepared=True)


# --- the edges, one by one -------------------------------------------------------------------------


def test_edge_values_are_the_reference(tmp_path: pathlib.Path) -> None:
    pst = dt.timezone(dt.timedelta(hours=-8))
    rows = [
        (
            "Ada",
            7,
            Decimal("7.50"),
            Decimal("1234.56"),
            dt.date(2024, 1, 31),
            dt.datetime(2024, 1, 31, tzinfo=UTC),
            True,
        ),
        ("a\rb\r\nc\td", EXACT - 1, Decimal("8.03"), Decimal("0.07"), dt.date(1900, 1, 1), None, False),
        (" lead", -EXACT + 1, Decimal("8192.01"), Decimal("9999999999999.99"), dt.date(1900, 2, 28), None, None),
        ("trail ", EXACT, Decimal("-0.00"), Decimal("1E+3"), dt.date(1900, 3, 1), None, None),
        ("_x0041_", 2**63, Decimal("NaN"), Decimal("Infinity"), dt.date(1899, 12, 31), None, None),
        ("", True, Decimal("1E+400"), 12, dt.date(9999, 12, 31), dt.datetime(1, 1, 1, tzinfo=UTC), "yes"),
        ("\x00\x0b", 1.5, 3, -7, dt.datetime(2024, 1, 31, 23, 59, 59, 999_999, tzinfo=UTC), dt.date(2024, 2, 1), 1),
        (12, "n/a", 1.25, float("nan"), "soon", dt.datetime(2024, 3, 1, 0, 30, tzinfo=pst), None),
        ("x" * 40_000, None, None, None, None, dt.datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), None),
        ("😀" * 20_000, None, None, None, None, dt.datetime(1900, 2, 28, 23, 59, 59), None),
        ("=1+2", None, None, None, None, dt.datetime(1900, 3, 1, 0, 0, 1, 500_000), None),
        ("&<>\"'", None, Decimal("0.000001"), Decimal("-1234.5678"), None, dt.datetime(1899, 12, 31, 23, 59), None),
        # 16 digits: above 2**53 an integer text would be read as an exact int, the reference's is rounded
        (None, None, Decimal("9779964911340083"), Decimal("-9007199254740993.0"), None, None, None),
        (None, None, Decimal("0.09999999999999999"), Decimal("123456789012345.6"), None, None, None),
        (None, None, Decimal("1234567890123456.7"), Decimal("0.1000000000000000055511151231257827"), None, None, None),
    ]
    assert_same_as_reference(tmp_path, COLUMNS, [rows[:5], rows[5:]], title="Edges")
    assert_same_as_reference(tmp_path, COLUMNS, [rows[:5], rows[5:]], title="Edges", time_zone="Asia/Tokyo")


def test_datetimes_in_a_zone_are_its_wall_time_and_the_header_names_it(tmp_path: pathlib.Path) -> None:
    rows = [
        (dt.datetime(2024, 3, 1, 0, 0, tzinfo=UTC),),  # 09:00 in Tokyo
        (dt.datetime(2024, 3, 1, 9, 0),),  # naive: a wall time already, as the export's query gives it
        (dt.datetime(9999, 12, 30, 20, 0, tzinfo=UTC),),  # past the range a zone shows: stays UTC
    ]
    columns = (Column("createdAt", "Created at", T.DATETIME, "r.created_at", 20),)
    for which in ("oracle", "stream"):
        write(which, tmp_path / f"{which}.xlsx", columns, [rows], time_zone="Asia/Tokyo")
        sheet = openpyxl.load_workbook(tmp_path / f"{which}.xlsx").active
        assert sheet["A1"].value == "Created at (Asia/Tokyo)"
        assert [sheet[f"A{n}"].value for n in (2, 3, 4)] == [
            dt.datetime(2024, 3, 1, 9, 0),
            dt.datetime(2024, 3, 1, 9, 0),
            dt.datetime(9999, 12, 30, 20, 0),
        ]
        assert sheet["A2"].is_date and sheet["A2"].number_format == "yyyy-mm-dd hh:mm:ss"


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC"])
def test_utc_datetimes_in_the_utc_zone_take_the_fast_path(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, zone: str
) -> None:
    """UTC is every account's default zone: its datetimes must not go through `cell_xml` one by one
    (that was half of a 500,000-row export's time), and still read back as the reference writes them."""
    rows = [
        (dt.datetime(2024, 3, 1, 9, 30, 15, 250, tzinfo=UTC),),
        (dt.datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC),),
    ]
    columns = (Column("paidAt", "Paid at", T.DATETIME, "r.paid_at", 20),)
    write("oracle", tmp_path / "oracle.xlsx", columns, [rows], time_zone=zone)

    def slow(*args: Any) -> str:
        raise AssertionError(f"cell_xml called for {args[1]!r}")

    monkeypatch.setattr(row_code, "cell_xml", slow)
    write("stream", tmp_path / "stream.xlsx", columns, [rows], time_zone=zone)
    sheets = [openpyxl.load_workbook(tmp_path / f"{which}.xlsx").active for which in ("oracle", "stream")]
    assert [[cell_facts(c) for c in row] for row in sheets[1].iter_rows()] == [
        [cell_facts(c) for c in row] for row in sheets[0].iter_rows()
    ]
    assert sheets[1]["A1"].value == f"Paid at ({zone})"
    assert sheets[1]["A3"].value == dt.datetime(2026, 10, 31, 23, 59, 59)


def test_formula_like_text_is_an_inline_string_kept_as_is_like_the_reference(tmp_path: pathlib.Path) -> None:
    """In every column, text that CSV would prefix with `'` (white space or full-width signs too) is a
    string cell of the very text: the cell type, not a prefix, keeps it inert."""
    rows = [(text, text, None, None, None, None, text) for text in FORMULAS]
    assert_same_as_reference(tmp_path, COLUMNS, [rows], title="Formulas")
    cells = raw_cells(tmp_path / "stream.xlsx")[0]
    for n, text in enumerate(FORMULAS, start=2):
        for letter in "ABG":
            kind, (value, _space), _number = cells[f"{letter}{n}"]
            assert (kind, value) == ("inlineStr", text), (letter, text)
    with zipfile.ZipFile(tmp_path / "stream.xlsx") as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")


def test_payroll_rows_are_the_reference(tmp_path: pathlib.Path) -> None:
    base = dt.date(2024, 1, 1)
    rows = [
        (
            n,
            f"E{n:05d}",
            "Zoë Müller" if n % 3 else "R&D <lead>",
            "Finance",
            base + dt.timedelta(days=n),
            base + dt.timedelta(days=n + 13),
            base + dt.timedelta(days=n + 17),
            Decimal(n * 37 % 9000) / 100,
            Decimal(n * 7919 % 1_500_000) / 100,
            Decimal(n * 131 % 300_000) / 100,
            Decimal(n * 17 % 50_000) / 100,
            Decimal(n * 7001 % 1_200_000) / 100,
            "EUR",
            ("draft", "paid", "void")[n % 3],
            None if n % 4 else " memo with spaces ",
            dt.datetime(2024, 1, 1, tzinfo=UTC) + dt.timedelta(seconds=n * 7777, microseconds=n * 999),
        )
        for n in range(1, 1_301)
    ]
    # Batches bigger than a compressor chunk and sheets that end inside a batch.
    assert_same_as_reference(tmp_path, PAYROLL.columns, [rows[:1_100], rows[1_100:]], max_rows_per_sheet=500)


def test_rollover_of_three_rows_a_sheet_is_the_reference(tmp_path: pathlib.Path) -> None:
    rows = [(f"row {n}", n, None, Decimal(n), dt.date(2024, 1, n + 1), None, n % 2 == 0) for n in range(8)]
    assert_same_as_reference(tmp_path, COLUMNS, [rows[:5], rows[5:]], title="Timesheets", max_rows_per_sheet=3)
    sheets = openpyxl.load_workbook(tmp_path / "stream.xlsx").worksheets
    assert [sheet.title for sheet in sheets] == ["Timesheets", "Timesheets (2)", "Timesheets (3)"]
    assert [sheet.auto_filter.ref for sheet in sheets] == ["A1:G4", "A1:G4", "A1:G3"]


@pytest.mark.parametrize("rows", [0, 3, 6])
def test_empty_and_exact_multiples_are_the_reference(tmp_path: pathlib.Path, rows: int) -> None:
    assert_same_as_reference(
        tmp_path, COLUMNS, [[("x", n, None, None, None, None, None) for n in range(rows)]], max_rows_per_sheet=3
    )


@pytest.mark.parametrize(
    ("level", "threaded", "use_isal"),
    [(0, True, True), (1, False, True), (3, True, True), (1, True, False), (6, True, True), (9, False, False)],
)
def test_compression_levels_and_the_unthreaded_path(
    tmp_path: pathlib.Path, level: int, threaded: bool, use_isal: bool
) -> None:
    rows = [(f"r{n}", n, Decimal(n) / 8, Decimal(n), dt.date(2024, 1, 1), None, True) for n in range(700)]
    write("oracle", tmp_path / "reference.xlsx", COLUMNS, [rows])
    writer = StreamingXlsxWriter(
        tmp_path / "stream.xlsx", COLUMNS, compresslevel=level, threaded=threaded, use_isal=use_isal
    )
    assert writer._compressor is not None
    assert (writer._compressor._isal_level is not None) is (use_isal and 1 <= level <= 3)
    writer.write_rows(rows)
    writer.close()
    assert_same_workbook(tmp_path / "stream.xlsx", tmp_path / "reference.xlsx")


def test_the_package_has_the_usual_parts(tmp_path: pathlib.Path) -> None:
    write("stream", tmp_path / "out.xlsx", COLUMNS, [[("x", 1, None, None, None, None, None)]], title="Employees")
    with zipfile.ZipFile(tmp_path / "out.xlsx") as archive:
        names = set(archive.namelist())
        workbook = archive.read("xl/workbook.xml").decode()
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
    assert {"[Content_Types].xml", "_rels/.rels", "xl/workbook.xml", "xl/styles.xml"} <= names
    assert "'Employees'!$A$1:$G$2</definedName>" in workbook
    assert '<autoFilter ref="A1:G2"/>' in sheet
    assert sheet.index("</sheetData>") < sheet.index("<autoFilter")
    assert "<f>" not in sheet


def test_a_row_of_the_wrong_width_keeps_the_rows_before_it_like_the_reference(tmp_path: pathlib.Path) -> None:
    good = [("x", n, None, None, None, None, None) for n in range(3)]
    for which in ("oracle", "stream"):
        writer = open_xlsx(which, tmp_path / f"{which}.xlsx", COLUMNS)
        with pytest.raises(ValueError, match="a row has 2 values for 7 columns"):
            writer.write_rows([*good, ("x", 1)])
        writer.write_rows(good)
        writer.close()
    assert_same_workbook(tmp_path / "stream.xlsx", tmp_path / "oracle.xlsx")


def compressor_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "xlsx-compressor"]


@pytest.mark.parametrize("threaded", [True, False])
def test_close_abort_and_write_after_them(tmp_path: pathlib.Path, threaded: bool) -> None:
    before = len(compressor_threads())
    writer = StreamingXlsxWriter(tmp_path / "a.xlsx", COLUMNS, threaded=threaded)
    writer.write_rows([("x", 1, None, None, None, None, None)])
    writer.close()
    writer.close()
    writer.abort()  # no-op after close
    assert openpyxl.load_workbook(tmp_path / "a.xlsx").active["A2"].value == "x"
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([])

    writer = StreamingXlsxWriter(tmp_path / "b.xlsx", COLUMNS, max_rows_per_sheet=2, threaded=threaded)
    writer.write_rows([("x", n, None, None, None, None, None) for n in range(5)])
    writer.abort()
    writer.abort()
    (tmp_path / "b.xlsx").unlink()  # what the caller does
    with pytest.raises(ValueError, match="closed"):
        writer.write_rows([])
    assert len(compressor_threads()) == before


@pytest.mark.parametrize("threaded", [True, False])
def test_a_failure_in_compression_surfaces_and_abort_still_works(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, threaded: bool
) -> None:
    handle = Compressor._handle

    def failing(self: Any, item: Any) -> None:
        if type(item) is bytes and item.startswith(b"<row "):  # rows, not the sheet's head
            raise OSError("disk full")
        handle(self, item)

    monkeypatch.setattr(Compressor, "_handle", failing)
    before = len(compressor_threads())
    writer = StreamingXlsxWriter(tmp_path / "out.xlsx", COLUMNS, threaded=threaded)
    rows = [("x", n, None, None, None, None, None) for n in range(2_000)]

    def feed() -> None:
        for _ in range(10):  # a queued chunk fails: a later write_rows, or close, reports it
            writer.write_rows(rows)
        writer.close()

    with pytest.raises(OSError, match="disk full"):
        feed()
    with pytest.raises(OSError, match="disk full"):  # a broken file is never closed as if complete
        writer.close()
    writer.abort()
    writer.abort()
    assert len(compressor_threads()) == before


def test_big_text_is_handed_over_in_bounded_pieces(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    handle = Compressor._handle

    def measuring(self: Any, item: Any) -> None:
        if type(item) is bytes:
            sizes.append(len(item))
        handle(self, item)

    monkeypatch.setattr(Compressor, "_handle", measuring)
    monkeypatch.setattr(xlsx_writer, "CHUNK_BYTES", 100_000)
    rows = [("x" * 30_000, n, None, None, None, None, None) for n in range(40)]
    write("stream", tmp_path / "out.xlsx", COLUMNS, [rows])
    assert max(sizes) < 100_000 + 30_100  # a piece ends with the row that uses up the budget
    assert openpyxl.load_workbook(tmp_path / "out.xlsx").active.max_row == 41


def test_a_dropped_writer_releases_its_file_and_thread(tmp_path: pathlib.Path) -> None:
    before = len(compressor_threads())
    writer = StreamingXlsxWriter(tmp_path / "out.xlsx", COLUMNS, threaded=True)
    writer.write_rows([("x", 1, None, None, None, None, None)])
    del writer  # no ResourceWarning nor zipfile complaint (filterwarnings=error turns those into failures)
    gc.collect()
    assert len(compressor_threads()) == before
