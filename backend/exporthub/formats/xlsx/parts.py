"""The package parts: every XML part of the .xlsx but the rows themselves.

A sheet is its head (columns, frozen pane, header row: `sheet_head`), the rows (`row_code`), and its
tail (autofilter, margins: `sheet_tail`); the other parts are written once the sheets are known
(styles, workbook with the sheet names and autofilter ranges, relationships, content types, document
properties, openpyxl's default theme). They are the reference's (openpyxl's) parts, but for style
ids and docProps; `sheet_title` makes the names Excel accepts.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence

from exporthub.catalog import Column
from exporthub.formats.sanitize import XML_ILLEGAL_RE, excel_text
from exporthub.formats.xlsx.cells import escape_attribute, escape_text, inline_string
from exporthub.formats.xlsx.excel import BUILTIN_FORMAT_IDS, column_letter, number_text, theme_xml

MAX_SHEET_TITLE = 31
DEFAULT_TITLE = "Export"
THEME_XML: str = theme_xml()  # openpyxl's default theme, as the reference writes it

_SHEET_FORBIDDEN_RE = re.compile(r"[\[\]:*?/\\]")

_HEADER_STYLE = 1  # cellXfs 0 is the default, 1 the bold header; then one per number format

_MAIN_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def sheet_title(title: str, number: int = 1) -> str:
    """An Excel sheet name: at most 31 characters, none of []:*?/\\, no leading or trailing quote,
    not "History"; sheets after the first get " (n)"."""
    name = _SHEET_FORBIDDEN_RE.sub("-", XML_ILLEGAL_RE.sub("", title))
    name = " ".join(name.split()).strip("' ") or DEFAULT_TITLE
    if name.casefold() == "history":  # reserved by Excel
        name = f"{name} export"
    suffix = f" ({number})" if number > 1 else ""
    return name[: MAX_SHEET_TITLE - len(suffix)].rstrip("' ") + suffix


def styles_xml(formats: Sequence[str]) -> tuple[str, dict[str, int]]:
    """styles.xml with the default and bold-header xfs, then one xf per number format; returns the
    xml and each format's xf id."""
    custom: dict[str, int] = {}
    xfs = [
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>',
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>',
    ]
    ids: dict[str, int] = {}
    for number_format in formats:
        if number_format in ids:
            continue
        builtin = BUILTIN_FORMAT_IDS.get(number_format)
        fmt_id = builtin if builtin is not None else custom.setdefault(number_format, 164 + len(custom))
        ids[number_format] = len(xfs)
        xfs.append(f'<xf numFmtId="{fmt_id}" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>')
    num_fmts = "".join(
        f'<numFmt numFmtId="{fmt_id}" formatCode="{escape_attribute(code)}"/>' for code, fmt_id in custom.items()
    )
    xml = (
        f'{_XML_DECL}<styleSheet xmlns="{_MAIN_NS}">'
        + (f'<numFmts count="{len(custom)}">{num_fmts}</numFmts>' if custom else "")
        + '<fonts count="2"><font><name val="Calibri"/><family val="2"/><color theme="1"/><sz val="11"/>'
        '<scheme val="minor"/></font><font><b val="1"/></font></fonts>'
        '<fills count="2"><fill><patternFill/></fill><fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        f'<cellXfs count="{len(xfs)}">{"".join(xfs)}</cellXfs>'
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        '<tableStyles count="0" defaultTableStyle="TableStyleMedium9" defaultPivotStyle="PivotStyleLight16"/>'
        "</styleSheet>"
    )
    return xml, ids


def workbook_xml(sheets: Sequence[tuple[str, str]]) -> str:
    """sheets: (title, autofilter range such as "$A$1:$G$5")."""
    entries = "".join(
        f'<sheet name="{escape_attribute(title)}" sheetId="{n}" state="visible" r:id="rId{n}"/>'
        for n, (title, _) in enumerate(sheets, start=1)
    )
    names = "".join(
        f'<definedName name="_xlnm._FilterDatabase" localSheetId="{n}" hidden="1">'
        f"{escape_text(_quote_sheet(title))}!{ref}</definedName>"
        for n, (title, ref) in enumerate(sheets)
    )
    return (
        f'{_XML_DECL}<workbook xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}"><workbookPr/>'
        '<bookViews><workbookView visibility="visible" minimized="0" showHorizontalScroll="1" '
        'showVerticalScroll="1" showSheetTabs="1" tabRatio="600" firstSheet="0" activeTab="0" '
        'autoFilterDateGrouping="1"/></bookViews>'
        f"<sheets>{entries}</sheets><definedNames>{names}</definedNames>"
        '<calcPr calcId="124519" fullCalcOnLoad="1"/></workbook>'
    )


def _quote_sheet(title: str) -> str:
    return "'" + title.replace("'", "''") + "'"


def workbook_rels(sheets: int) -> str:
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    items = [
        f'<Relationship Id="rId{n}" Type="{rel}/worksheet" Target="worksheets/sheet{n}.xml"/>'
        for n in range(1, sheets + 1)
    ]
    items.append(f'<Relationship Id="rId{sheets + 1}" Type="{rel}/styles" Target="styles.xml"/>')
    items.append(f'<Relationship Id="rId{sheets + 2}" Type="{rel}/theme" Target="theme/theme1.xml"/>')
    return f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">{"".join(items)}</Relationships>'


def content_types(sheets: int) -> str:
    sml = "application/vnd.openxmlformats-officedocument.spreadsheetml"
    overrides = [
        ("/xl/workbook.xml", f"{sml}.sheet.main+xml"),
        ("/xl/styles.xml", f"{sml}.styles+xml"),
        ("/xl/theme/theme1.xml", "application/vnd.openxmlformats-officedocument.theme+xml"),
        ("/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"),
        ("/docProps/app.xml", "application/vnd.openxmlformats-officedocument.extended-properties+xml"),
        *((f"/xl/worksheets/sheet{n}.xml", f"{sml}.worksheet+xml") for n in range(1, sheets + 1)),
    ]
    return (
        f'{_XML_DECL}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + "".join(f'<Override PartName="{part}" ContentType="{kind}"/>' for part, kind in overrides)
        + "</Types>"
    )


ROOT_RELS = (
    f'{_XML_DECL}<Relationships xmlns="{_PKG_REL_NS}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/metadata/'
    'core-properties" Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'extended-properties" Target="docProps/app.xml"/>'
    "</Relationships>"
)
APP_XML = (
    f'{_XML_DECL}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/extended-properties">'
    "<Application>ExportHub</Application></Properties>"
)


def core_xml(now: dt.datetime) -> str:
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'{_XML_DECL}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><dc:creator>ExportHub</dc:creator>'
        f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
        f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified></cp:coreProperties>'
    )


def sheet_head(columns: Sequence[Column]) -> str:
    """A sheet's XML up to and including its header row, and the opening of its data."""
    cols = "".join(
        f'<col min="{n}" max="{n}" width="{number_text(column.width)}" customWidth="1"/>'
        for n, column in enumerate(columns, start=1)
    )
    header = []
    for n, column in enumerate(columns, start=1):
        ref, label = f"{column_letter(n)}1", excel_text(column.label)
        style = f' s="{_HEADER_STYLE}"'
        # An empty label is still a (bold, empty) cell in the reference.
        header.append(inline_string(ref, style, label) if label else f'<c r="{ref}"{style} t="inlineStr"></c>')
    return (
        f'{_XML_DECL}<worksheet xmlns="{_MAIN_NS}" xmlns:r="{_REL_NS}">'
        '<sheetPr><outlinePr summaryBelow="1" summaryRight="1"/><pageSetUpPr/></sheetPr>'
        '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft"'
        ' state="frozen"/><selection pane="bottomLeft" activeCell="A1" sqref="A1"/></sheetView></sheetViews>'
        f'<sheetFormatPr baseColWidth="8" defaultRowHeight="15"/><cols>{cols}</cols>'
        f'<sheetData><row r="1">{"".join(header)}</row>'
    )


def sheet_tail(last_column: str, last_row: int) -> str:
    """The end of a sheet's XML: its autofilter over header and data, and page margins."""
    return (
        f'</sheetData><autoFilter ref="A1:{last_column}{last_row}"/>'
        '<pageMargins left="0.75" right="0.75" top="1" bottom="1" header="0.5" footer="0.5"/></worksheet>'
    )
