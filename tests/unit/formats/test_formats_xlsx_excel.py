"""`formats/xlsx/excel.py` has what the XLSX writer needs of openpyxl without importing it: each piece
must equal openpyxl's own, and a worker that loads the writers must not load openpyxl."""

import datetime as dt
import math
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.compat import safe_string
from openpyxl.styles.numbers import BUILTIN_FORMATS
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.writer.theme import theme_xml

from exporthub.formats.xlsx import excel


def test_every_column_letter_is_openpyxls() -> None:
    assert [excel.column_letter(n) for n in range(1, excel.MAX_COLUMN + 1)] == [
        get_column_letter(n) for n in range(1, excel.MAX_COLUMN + 1)
    ]
    for bad in (0, -1, excel.MAX_COLUMN + 1):
        with pytest.raises(ValueError, match="Invalid column index"):
            excel.column_letter(bad)


@given(st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True)))
def test_number_texts_are_openpyxls(value: float) -> None:
    assert excel.number_text(value) == safe_string(value)


EDGES = [dt.date(1899, 12, 30) + dt.timedelta(days=d) for d in (0, 1, 2, 59, 60, 61, 62, 63, 70)]


@given(
    st.one_of(
        st.sampled_from(EDGES),
        st.dates(min_value=dt.date(1899, 12, 30)),
        st.datetimes(min_value=dt.datetime(1899, 12, 30)),
        st.datetimes(min_value=dt.datetime(1900, 2, 27), max_value=dt.datetime(1900, 3, 2)),
    )
)
def test_serials_are_openpyxls(value: dt.date) -> None:
    ours, theirs = excel.excel_serial(value), to_excel(value)
    assert ours == theirs or math.isclose(ours, theirs, rel_tol=0, abs_tol=0)
    assert excel.number_text(ours) == safe_string(theirs)


def test_the_builtin_formats_and_the_theme_are_openpyxls() -> None:
    assert excel.BUILTIN_FORMATS == BUILTIN_FORMATS
    assert excel.BUILTIN_FORMAT_IDS["#,##0.00"] == 4 and "yyyy-mm-dd" not in excel.BUILTIN_FORMAT_IDS
    assert excel.theme_xml() == theme_xml


def test_loading_the_writers_does_not_import_openpyxl() -> None:
    """openpyxl (with lxml, Pillow, numpy) was 29 MiB of an idle worker."""
    code = (
        "import sys; from exporthub.formats import load_writers; load_writers(); "
        "import exporthub.worker.run; "
        "print(sorted(m for m in ('openpyxl', 'lxml', 'PIL', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
