"""The COPY CSV path against the reference CsvWriter, on a real PostgreSQL: byte for byte for every
column type, the catalog's columns of the types its SQL assumes, and a cancelled COPY leaving the
connections usable."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import decimal
import gzip
import hashlib
import uuid
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exporthub.accounts import account_by_slug
from exporthub.catalog import Column, ColumnType, load_catalog
from exporthub.catalog.check import ACCEPTED_TYPES
from exporthub.exports import service
from exporthub.exports.account_scope import AccountScope
from exporthub.exports.copy_csv import copy_csv, csv_cell_sql, csv_text_sql
from exporthub.exports.models import ExportJob, ExportStatus, Filters
from exporthub.exports.pipeline import PipelineConfig, run_export
from exporthub.exports.query import build_export_query
from exporthub.exports.validation import parse_export_request
from exporthub.formats.csv import DELIMITERS, CsvWriter
from exporthub.formats.sanitize import FORMULA_SIGNS, FORMULA_SPACE, neutralize_formula
from exporthub.storage import LocalStorage
from tests.harness import Pauses

HR = load_catalog()  # the HR catalog shipped in the package

RESOURCES = load_catalog().resources  # the HR catalog shipped in the package

T = ColumnType
# One column of each type over a temporary table, as the catalog would describe it.
TABLE_COLUMNS = (
    Column("note", '=Note, "quoted"', T.TEXT, "r.note"),
    Column("n", "Number", T.INTEGER, "r.n"),
    Column("dec", "Decimal", T.DECIMAL, "r.dec"),
    Column("amount", "-Amount", T.MONEY, "r.amount"),
    Column("day", "Day", T.DATE, "r.day"),
    Column("at", "At", T.DATETIME, "r.at"),
    Column("flag", "Flag", T.BOOLEAN, "r.flag"),
)
TABLE_SQL = """CREATE TEMP TABLE IF NOT EXISTS csv_cells (
    id serial PRIMARY KEY, note text, n bigint, dec numeric, amount numeric, day date, at timestamptz, flag boolean
)"""

SPECIAL_TEXT = [
    "",
    "\\.",
    "\\",
    "=1+1",
    "+1",
    "-5",
    "@SUM(A1)",
    "\tTab",
    "\rCR first",
    "a,b",
    'say "hi"',
    '"',
    "two\nlines",
    "crlf\r\ninside",
    "cr\rinside",
    "\n",
    " leading and trailing ",
    " ",
    "'already quoted",
    "bell\x07 and \x1b escape \x7f",
    "emoji 🎉 RTL مرحبا \u2028 \ufeff \uffff",
    " =1+1",
    "\u00a0+1",
    "\u3000-1",
    "\n@cmd",
    " \u00a0\u3000\n\r\t=x",
    "\uff1d1+1",
    "\u3000\uff20cmd",
    " x=1",
    "\u3000",
    "\u2003=1",
    "\uff03x",
]
SPECIAL_NUMBERS = [
    decimal.Decimal(v)
    for v in ("0", "0.00000", "-0.001", "0.005", "-0.005", "0.125", "-0.125", "0.135", "2.675", "1E+30", "-1.5")
] + [decimal.Decimal("NaN"), decimal.Decimal("Infinity"), decimal.Decimal("-Infinity")]
UTC = dt.UTC

text = st.one_of(
    st.sampled_from(SPECIAL_TEXT),
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=20),
    st.text(alphabet=st.sampled_from(',"\r\n\t=+-@\\. ab'), max_size=8),
    # white space and formula signs, ASCII and full-width, and their look-alikes
    st.text(alphabet=st.sampled_from(" \u00a0\u3000\n\r\t\x0b\u2003=+-@\uff1d\uff0b\uff0d\uff20\uff03a'"), max_size=6),
)
numbers = st.one_of(
    st.sampled_from(SPECIAL_NUMBERS),
    st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**40), max_value=10**40),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-(10**10), max_value=10**10),
    st.integers(-(10**60), 10**60).map(decimal.Decimal),
)
offsets = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
moments = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30), timezones=offsets),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.replace(microsecond=0)),
    st.sampled_from([dt.datetime(1, 1, 2, tzinfo=UTC), dt.datetime(9999, 12, 30, 23, 59, 59, 999999, tzinfo=UTC)]),
).filter(lambda d: dt.datetime(1, 1, 1, 12, tzinfo=UTC) <= d <= dt.datetime(9999, 12, 31, 12, tzinfo=UTC))
rows = st.lists(
    st.tuples(
        st.none() | text,
        st.none() | st.integers(-(2**63), 2**63 - 1),
        st.none() | numbers,
        st.none() | numbers,
        st.none() | st.dates() | st.sampled_from([dt.date.min, dt.date.max]),
        st.none() | moments,
        st.none() | st.booleans(),
    ),
    max_size=25,
)
# Which columns, in which order: also a single column (whose empty cell the reference writes as "").
column_choices = st.lists(st.integers(0, len(TABLE_COLUMNS) - 1), min_size=1, max_size=len(TABLE_COLUMNS), unique=True)


# UTC (the writer's default); zones with half and three-quarter hours, a half-hour DST (Lord Howe),
# negative offsets, and local mean times of seconds before standard time (Dublin -00:25:21).
ZONES = ["UTC", "Asia/Tokyo", "America/St_Johns", "Asia/Kathmandu", "Australia/Lord_Howe", "Europe/Dublin"]


async def reference_csv(
    conn: asyncpg.Connection,
    columns: tuple[Column, ...],
    path: Path,
    bom: bool,
    zone: str = "UTC",
    delimiter: str = ",",
) -> bytes:
    records = await conn.fetch(f"SELECT {', '.join(c.sql for c in columns)} FROM csv_cells r ORDER BY r.id")
    writer = CsvWriter(
        path, columns, bom=bom, zone=None if zone == "UTC" else zoneinfo.ZoneInfo(zone), delimiter=delimiter
    )
    writer.write_rows(records)
    writer.close()
    assert writer.sha256() == hashlib.sha256(path.read_bytes()).hexdigest()
    return path.read_bytes()


async def copy_path_csv(
    conn: asyncpg.Connection,
    columns: tuple[Column, ...],
    path: Path,
    bom: bool,
    zone: str = "UTC",
    delimiter: str = ",",
    compress: bool = False,
    cell_sql: Callable[..., str] = csv_cell_sql,
) -> bytes:
    """The file the COPY path writes (decompressed, if gzipped), after checking its checksum. `cell_sql`:
    the cells' SQL, the COPY path's own (`csv_cell_sql`) or the all-text one (`csv_text_sql`)."""
    only = len(columns) == 1
    select_list = ", ".join(cell_sql(c.type, c.sql, only_column=only, time_zone=zone) for c in columns)
    counted: list[int] = []

    async def on_records(n: int) -> None:
        counted.append(n)

    async with conn.transaction(isolation="repeatable_read", readonly=True):
        copied = await copy_csv(
            conn,
            f"SELECT {select_list} FROM csv_cells r ORDER BY r.id",
            (),
            path,
            columns,
            bom=bom,
            copy_timeout=60,
            on_records=on_records,
            time_zone=zone,
            delimiter=delimiter,
            gzip=compress,
        )
    assert copied.rows == sum(counted)
    stored = path.read_bytes()
    assert copied.sha256 == hashlib.sha256(stored).hexdigest()
    return gzip.decompress(stored) if compress else stored


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=rows,
    chosen=column_choices,
    bom=st.booleans(),
    zone=st.sampled_from(ZONES),
    delimiter=st.sampled_from(DELIMITERS),
    compress=st.booleans(),
)
async def test_copy_csv_is_byte_identical_to_the_reference_writer(
    db_conn: asyncpg.Connection,
    tmp_path: Path,
    rows: list[tuple[Any, ...]],
    chosen: list[int],
    bom: bool,
    zone: str,
    delimiter: str,
    compress: bool,
) -> None:
    await db_conn.execute(TABLE_SQL)
    await db_conn.execute("TRUNCATE csv_cells")
    await db_conn.executemany(
        "INSERT INTO csv_cells (note, n, dec, amount, day, at, flag) VALUES ($1, $2, $3, $4, $5, $6, $7)", rows
    )
    columns = tuple(TABLE_COLUMNS[i] for i in chosen)
    expected = await reference_csv(db_conn, columns, tmp_path / "reference.csv", bom, zone, delimiter)
    actual = await copy_path_csv(db_conn, columns, tmp_path / "copy.csv", bom, zone, delimiter, compress)
    assert actual == expected
    # The all-text cells (which other SQL builds on) give the same file.
    as_text = await copy_path_csv(
        db_conn, columns, tmp_path / "text.csv", bom, zone, delimiter, compress, cell_sql=csv_text_sql
    )
    assert as_text == expected


@pytest.mark.parametrize("zone", ZONES[1:])
async def test_datetimes_in_a_zone_are_written_as_python_writes_them_from_year_1_to_9999(
    db_conn: asyncpg.Connection, tmp_path: Path, zone: str
) -> None:
    """Every zone's history (local mean time, each DST change) and its edges: a moment each 61 days and
    7 hours, the range ends (which stay in UTC) and +-infinity."""
    await db_conn.execute(TABLE_SQL)
    await db_conn.execute("TRUNCATE csv_cells")
    await db_conn.execute(
        "INSERT INTO csv_cells (at) SELECT g FROM generate_series("
        "'0001-01-01 12:00+00'::timestamptz, '9999-12-31 11:00+00', interval '61 days 7 hours 13 seconds') g"
        " UNION ALL SELECT unnest(ARRAY['infinity', '-infinity', '0001-01-02 00:00+00',"
        " '0001-01-01 23:59:59.999999+00', '9999-12-30 00:00+00', '9999-12-30 00:00:00.000001+00',"
        " '2024-03-01 00:00+00']::timestamptz[])"
    )
    columns = (TABLE_COLUMNS[5],)
    expected = await reference_csv(db_conn, columns, tmp_path / "reference.csv", False, zone)
    actual = await copy_path_csv(db_conn, columns, tmp_path / "copy.csv", False, zone)
    assert actual == expected
    assert len(expected.splitlines()) > 59_000


async def test_text_cells_are_neutralised_by_the_same_rule_as_in_python(db_conn: asyncpg.Connection) -> None:
    """Every special text, and each white space or sign alone and before a sign or a letter."""
    singles = [*FORMULA_SPACE, *FORMULA_SIGNS, "\x0b", "\u2003", "\u200b", "\uff03", "a", "'"]
    values = [*SPECIAL_TEXT, *singles, *(a + b for a in singles for b in singles)]
    sql = csv_text_sql(T.TEXT, "$1::text")
    for value in values:
        expected = neutralize_formula(value) or None  # COPY writes NULL as an empty cell
        assert await db_conn.fetchval(f"SELECT {sql}", value) == expected, repr(value)


async def test_catalog_columns_have_the_sql_types_the_csv_text_assumes(db_conn: asyncpg.Connection) -> None:
    """csv_text_sql reproduces CsvWriter for these PostgreSQL types; another type needs a new rule."""
    expected = {
        T.TEXT: {"text", "varchar"},
        T.INTEGER: {"int2", "int4", "int8"},
        T.DECIMAL: {"numeric"},
        T.MONEY: {"numeric"},
        T.DATE: {"date"},
        T.DATETIME: {"timestamptz"},
        T.BOOLEAN: {"bool"},
    }
    for column_type, accepted in ACCEPTED_TYPES.items():  # what `catalog check` lets through
        assert accepted <= expected[column_type] | {"name"}, column_type
    for resource in RESOURCES.values():
        keys = tuple(c.key for c in resource.columns)
        query = build_export_query(resource, keys, Filters(), str(uuid.uuid4()))
        statement = await db_conn.prepare(query.select_sql)
        for column, attribute in zip(query.columns, statement.get_attributes(), strict=True):
            assert attribute.type.name in expected[column.type], (resource.key, column.key, attribute.type.name)


async def test_a_cancelled_csv_export_stops_mid_copy_and_leaves_the_connections_usable(
    settings, clean_jobs, tmp_path: Path
) -> None:
    pool = await asyncpg.create_pool(settings.db.url, min_size=2, max_size=2)
    acme = await account_by_slug(pool, "acme")
    assert acme is not None
    request = parse_export_request({"format": "csv", "resource": "payroll", "columns": ["payrollId", "grossPay"]}, HR)
    submitted = await service.submit_export(
        pool, pool, HR, acme, request, idempotency_key=None, max_active=100, idempotency_ttl_seconds=60
    )
    job = submitted.job
    config = PipelineConfig(
        batch_size=500,
        lease_seconds=10,
        link_ttl_seconds=60,
        max_rows_per_sheet=1_048_575,
        max_attempts=1,
        heartbeat_seconds=0.05,
        test_pause_dir=tmp_path / "pauses",  # the COPY waits after its first rows: until the cancel is noticed
    )
    events: list[ExportJob] = []

    async def publish(event: ExportJob) -> None:
        events.append(event)
        if event.processed_rows > 0 and len([e for e in events if e.processed_rows > 0]) == 1:
            await AccountScope(pool, acme.id).jobs.cancel(job.id)

    try:
        status = await run_export(
            job.id,
            pool=pool,
            source=pool,
            catalog=HR,
            storage=LocalStorage(tmp_path / "files"),
            publish=publish,
            config=config,
        )
        assert status is ExportStatus.CANCELLED
        assert (tmp_path / "pauses" / f"{job.id}.paused").exists()  # cancelled while the COPY was held
        final = events[-1]
        assert final.status is ExportStatus.CANCELLED
        assert final.total_rows == 200_000
        assert 0 < max(e.processed_rows for e in events) < final.total_rows
        assert [p for p in (tmp_path / "files").rglob("*") if p.is_file()] == []
        # Both connections (the aborted COPY's and the lease keeper's) are back, idle and usable.
        async with pool.acquire() as first, pool.acquire() as second:
            for conn in (first, second):
                assert not conn.is_in_transaction()
                assert await conn.fetchval("SELECT count(*) FROM export_jobs WHERE id = $1", job.id) == 1
        active = await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'COPY%'"
            " AND state <> 'idle'"
        )
        assert active == 0
    finally:
        await pool.close()


async def test_a_csv_export_cancelled_in_its_last_copy_buffer_ends(settings, clean_jobs, tmp_path: Path) -> None:
    # Few enough rows that the whole COPY (and its end) arrives in one buffer; held after it, then cancelled.
    pool = await asyncpg.create_pool(settings.db.url, min_size=2, max_size=2)
    acme = await account_by_slug(pool, "acme")
    assert acme is not None
    day = await pool.fetchval("SELECT max(pay_date) FROM payroll WHERE account_id = $1 AND status = 'void'", acme.id)
    request = parse_export_request(
        {
            "format": "csv",
            "resource": "payroll",
            "columns": ["payrollId"],
            "filters": {"status": "void", "dateFrom": str(day)},
        },
        HR,
    )
    submitted = await service.submit_export(
        pool, pool, HR, acme, request, idempotency_key=None, max_active=100, idempotency_ttl_seconds=60
    )
    job = submitted.job
    pauses = Pauses(tmp_path / "pauses")
    config = PipelineConfig(
        batch_size=500,
        lease_seconds=10,
        link_ttl_seconds=60,
        max_rows_per_sheet=1_048_575,
        max_attempts=1,
        heartbeat_seconds=0.05,
        test_pause_dir=pauses.path,
    )

    async def publish(event: ExportJob) -> None:
        pass

    run = asyncio.create_task(
        run_export(
            job.id,
            pool=pool,
            source=pool,
            catalog=HR,
            storage=LocalStorage(tmp_path / "files"),
            publish=publish,
            config=config,
        )
    )
    try:
        await pauses.wait_paused(job.id)
        total = await pool.fetchval("SELECT total_rows FROM export_jobs WHERE id = $1", job.id)
        await AccountScope(pool, acme.id).jobs.cancel(job.id)
        # Noticed within a heartbeat (50 ms) when it works; it never ends when it does not.
        done, _ = await asyncio.wait([run], timeout=5)
        assert done, f"a {total}-row CSV export cancelled in its last COPY buffer did not end"
        assert run.result() is ExportStatus.CANCELLED
    finally:
        pool.terminate()  # not close(): the stuck connection would hold it up too
        run.cancel()
        with contextlib.suppress(BaseException):
            await run
