"""XLSX exports: our own streaming SpreadsheetML, typed and styled cells, one sheet per N rows.

Each sheet has a bold header row, panes frozen below it, an autofilter over header and data, and the
columns' widths. After `max_rows_per_sheet` data rows the export goes on in "<title> (2)", "(3)", ...

Cells, by column type (a value of an unexpected Python type is written as text, see below):
- TEXT: always a string cell (`t="inlineStr"`), so "=SUM(A1)", " =SUM(A1)", "\uff1dSUM(A1)" or "#N/A"
  stays text and nothing is ever a formula (whatever `sanitize.is_formula` says, which is the CSV
  rule); hence no quote prefix as in CSV, the text is kept as is, except that characters
  XML forbids are stripped, `_xHHHH_` is escaped so that Excel shows it literally, and text is cut
  at Excel's 32,767 characters (`sanitize.excel_text`). Empty text is an empty cell.
- INTEGER ("0"), DECIMAL ("#,##0.00##"), MONEY ("#,##0.00"): numbers. Excel numbers are doubles
  shown to 15 significant digits, so an integer of 10**15 or more is written as text to keep every
  digit; Decimals become floats (exact up to 15 significant digits); NaN and infinities are text.
- DATE ("yyyy-mm-dd") and DATETIME ("yyyy-mm-dd hh:mm:ss"): Excel serial dates. Excel has no time
  zone: aware datetimes are converted to UTC and made naive. Fractions of a second are dropped
  (Excel would round them into the displayed second, and 23:59:59.7 would show the next day).
  Dates before 1900-01-01, which Excel cannot show, are ISO text.
- BOOLEAN: boolean cells.

The modules, one idea each: `cells` (one value as cell XML), `row_code` (the row function generated
for an export's columns), `parts` (the package's other XML parts: sheet head and tail, styles,
workbook, relationships), `compressor` (hands the XML to the zip entry, inline or in a thread),
`deflate` (ISA-L's deflate for that entry) and `writer` (`StreamingXlsxWriter`, the `Writer`).
"""
