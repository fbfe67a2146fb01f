// Copied unchanged (below this comment) from shared/perf/node_sql.js, the seed's exporter kept for benchmarks;
// bench/node_reference.py runs it on the SQL ExportHub runs. Packages: package.json here (`make bench-node`).
// The seed's Node reference exporter, for side-by-side benchmarks: pg + pg-cursor (5,000 rows per read, in one
// REPEATABLE READ transaction) -> ExcelJS streaming WorkbookWriter (commit per row) or csv-stringify
// (escape_formulas, BOM), as the seed's export service does.
// usage: PGDATABASE=db [PGHOST=127.0.0.1] [PGPORT=5432] [PGUSER=postgres] node node_sql.js xlsx|csv SQLFILE OUT
// Needs NODE_PATH (or a node_modules beside it) with pg@8 pg-cursor@2 csv-stringify@6 exceljs@4.
// Prints one line: node_<format> rows=N maxrss_mb=M
'use strict';
const fs = require('fs');
const { once } = require('events');
const { Client, types } = require('pg');
const Cursor = require('pg-cursor');

types.setTypeParser(1700, (v) => (v === null ? null : parseFloat(v))); // numeric -> JS number
const BATCH = 5000;

async function* batches(client, sql) {
  await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
  const cursor = client.query(new Cursor(sql));
  for (;;) {
    const b = await cursor.read(BATCH);
    if (b.length === 0) break;
    yield b;
  }
  await cursor.close();
  await client.query('COMMIT');
}

async function xlsx(client, sql, out) {
  const ExcelJS = require('exceljs');
  const wb = new ExcelJS.stream.xlsx.WorkbookWriter({ filename: out, useStyles: true, useSharedStrings: false });
  const sheet = wb.addWorksheet('export');
  let n = 0;
  for await (const b of batches(client, sql)) {
    if (n === 0) sheet.columns = Object.keys(b[0]).map((k) => ({ header: k, key: k, width: 14 }));
    for (const r of b) sheet.addRow(r).commit();
    n += b.length;
  }
  sheet.commit();
  await wb.commit();
  return n;
}

async function csv(client, sql, out) {
  const { stringify } = require('csv-stringify');
  const ws = fs.createWriteStream(out);
  const st = stringify({ header: true, escape_formulas: true, bom: true, cast: { date: (d) => d.toISOString() } });
  st.pipe(ws);
  let n = 0;
  for await (const b of batches(client, sql)) {
    for (const r of b) if (!st.write(r)) await once(st, 'drain');
    n += b.length;
  }
  st.end();
  await once(ws, 'finish');
  return n;
}

(async () => {
  const [format, sqlfile, out] = process.argv.slice(2);
  const sql = fs.readFileSync(sqlfile, 'utf8');
  const client = new Client({
    host: process.env.PGHOST || '127.0.0.1', port: process.env.PGPORT || 5432,
    user: process.env.PGUSER || 'postgres', database: process.env.PGDATABASE,
  });
  await client.connect();
  const n = format === 'xlsx' ? await xlsx(client, sql, out) : await csv(client, sql, out);
  await client.end();
  console.log(`node_${format} rows=${n} maxrss_mb=${(process.resourceUsage().maxRSS / 1024).toFixed(1)}`);
})().catch((e) => { console.error(e); process.exit(1); });
