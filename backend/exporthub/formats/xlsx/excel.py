"""The few Excel conventions the sheet XML needs, as openpyxl (the reference) has them, without
importing openpyxl.

Why not import them: `import openpyxl` loads the whole package (its reader, lxml, Pillow, and numpy
where installed) for these five things, and that was 29 MiB of an idle worker's 110 MiB, more than an
export's own memory. The reference stays openpyxl: `tests/unit/formats/test_formats_xlsx_excel.py`
holds each of these equal to openpyxl's (every column letter, the serials around 1900-03-01, the
number texts, the built-in formats, the theme), and the writer's tests compare whole files with it.
`theme1.xml` is openpyxl's default theme (MIT licence, Copyright (c) 2010-2024 openpyxl), byte for byte.
"""

from __future__ import annotations

import datetime as dt
import math
from importlib.resources import files

EXCEL_EPOCH = dt.datetime(1899, 12, 30)  # serial 0 of Excel's 1900 date system
EXCEL_EPOCH_UTC = EXCEL_EPOCH.replace(tzinfo=dt.UTC)
EXCEL_EPOCH_ORDINAL = EXCEL_EPOCH.toordinal()
LEAP_BUG_DAYS = 60  # serials up to 1900-02-28 are one less: Excel counts a 29 February 1900
MAX_COLUMN = 18_278  # "ZZZ"

# ECMA-376 Part 1, 18.8.30: the number formats every reader knows by id (openpyxl's BUILTIN_FORMATS).
BUILTIN_FORMATS: dict[int, str] = {
    0: "General",
    1: "0",
    2: "0.00",
    3: "#,##0",
    4: "#,##0.00",
    5: '"$"#,##0_);("$"#,##0)',
    6: '"$"#,##0_);[Red]("$"#,##0)',
    7: '"$"#,##0.00_);("$"#,##0.00)',
    8: '"$"#,##0.00_);[Red]("$"#,##0.00)',
    9: "0%",
    10: "0.00%",
    11: "0.00E+00",
    12: "# ?/?",
    13: "# ??/??",
    14: "mm-dd-yy",
    15: "d-mmm-yy",
    16: "d-mmm",
    17: "mmm-yy",
    18: "h:mm AM/PM",
    19: "h:mm:ss AM/PM",
    20: "h:mm",
    21: "h:mm:ss",
    22: "m/d/yy h:mm",
    37: "#,##0_);(#,##0)",
    38: "#,##0_);[Red](#,##0)",
    39: "#,##0.00_);(#,##0.00)",
    40: "#,##0.00_);[Red](#,##0.00)",
    41: r'_(* #,##0_);_(* \(#,##0\);_(* "-"_);_(@_)',
    42: r'_("$"* #,##0_);_("$"* \(#,##0\);_("$"* "-"_);_(@_)',
    43: r'_(* #,##0.00_);_(* \(#,##0.00\);_(* "-"??_);_(@_)',
    44: r'_("$"* #,##0.00_)_("$"* \(#,##0.00\)_("$"* "-"??_)_(@_)',
    45: "mm:ss",
    46: "[h]:mm:ss",
    47: "mmss.0",
    48: "##0.0E+0",
    49: "@",
}
BUILTIN_FORMAT_IDS: dict[str, int] = {code: number for number, code in BUILTIN_FORMATS.items()}


def column_letter(number: int) -> str:
    """1 -> "A", 27 -> "AA", 18278 -> "ZZZ" (openpyxl's get_column_letter)."""
    if not 1 <= number <= MAX_COLUMN:
        raise ValueError(f"Invalid column index {number}")
    letters = ""
    while number:
        number, remainder = divmod(number - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


def number_text(value: int | float) -> str:
    """A number as the reference writes it in `<v>` (openpyxl's safe_string): "%.16g", nothing for
    NaN or infinity."""
    if math.isnan(value) or math.isinf(value):
        return ""
    return f"{value:.16g}"


def excel_serial(value: dt.date) -> float:
    """A naive datetime or a date as the serial the reference stores (openpyxl's to_excel in the 1900
    system): days since 1899-12-30, one less up to 1900-02-28, plus the time of day / 86400."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    days = (moment - EXCEL_EPOCH).days
    if 0 < days <= LEAP_BUG_DAYS:
        days -= 1
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second + moment.microsecond / 10**6
    return days + seconds / 86400


def theme_xml() -> str:
    """xl/theme/theme1.xml as the reference writes it."""
    return files("exporthub.formats.xlsx").joinpath("theme1.xml").read_text(encoding="utf-8")
