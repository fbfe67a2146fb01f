"""CrlfRecords: COPY's LF-terminated CSV -> the reference's CRLF, however the output is cut."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporthub.formats.csv_copy import CrlfRecords

CELL = st.one_of(
    st.sampled_from(["", "\\.", '"', '""', "a,b", 'say "hi"', "two\nlines", "cr\rlf\r\n", "\n", "plain"]),
    st.text(alphabet=st.sampled_from('ab,"\r\n\\. é')),
    # neutralised formulas behind white space: a quote then CR or LF, inside a quoted cell
    st.sampled_from(["'\n=1", "'\r\n+1", "' \u00a0\u3000\n\r\t=x", "'\uff1d1", "'\u3000\uff20cmd", '\'\r"="']),
)


def as_csv(rows: list[list[str]], terminator: str) -> bytes:
    out = io.StringIO()
    csv.writer(out, quoting=csv.QUOTE_MINIMAL, lineterminator=terminator).writerows(rows)
    return out.getvalue().encode()


def as_copy_csv(rows: list[list[str]]) -> bytes:
    """As COPY writes them (empty text having become NULL): quoted when a cell holds , " CR or LF."""

    def cell(text: str) -> str:
        return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\r\n') else text

    return "".join(",".join(cell(c) for c in row) + "\n" for row in rows).encode()


def convert(data: bytes, cuts: list[int], *, only_column: bool = False) -> tuple[bytes, int]:
    records = CrlfRecords(only_column=only_column)
    out, count, start = [], 0, 0
    for end in [*sorted(cuts), len(data)]:
        text, n = records.feed(data[start:end])
        out.append(text)
        count += n
        start = end
    out.append(records.finish())
    assert count == records.records
    return b"".join(out), count


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.lists(CELL, min_size=2, max_size=4), max_size=12),
    cuts=st.lists(st.integers(0, 400), max_size=8),
)
def test_lf_records_become_crlf_records_wherever_the_output_is_cut(rows: list[list[str]], cuts: list[int]) -> None:
    lf = as_copy_csv(rows)
    data, count = convert(lf, [c for c in cuts if c <= len(lf)])
    assert data == as_csv(rows, "\r\n")
    assert count == len(rows)


@settings(max_examples=200, deadline=None)
@given(cells=st.lists(CELL.filter(bool), max_size=12), cuts=st.lists(st.integers(0, 200), max_size=8))
def test_a_single_column_lone_end_marker_is_unquoted_like_the_reference(cells: list[str], cuts: list[int]) -> None:
    # COPY quotes a cell that is exactly \. when it is the row's only cell; Python's csv does not.
    copy_output = b"".join(b'"\\."\n' if c == "\\." else as_copy_csv([[c]]) for c in cells)
    data, count = convert(copy_output, [c for c in cuts if c <= len(copy_output)], only_column=True)
    assert data == as_csv([[c] for c in cells], "\r\n")
    assert count == len(cells)


def test_end_marker_inside_a_longer_cell_stays_quoted() -> None:
    copy_output = b'"a\n""\\."""\n"\\."\n"x\n\\."\n'
    data, count = convert(copy_output, [], only_column=True)
    assert data == b'"a\n""\\."""\r\n\\.\r\n"x\n\\."\r\n'
    assert count == 3


def test_output_ending_inside_a_quoted_cell_is_refused() -> None:
    records = CrlfRecords()
    records.feed(b'1,"open\n')
    with pytest.raises(ValueError, match="inside a record"):
        records.finish()
