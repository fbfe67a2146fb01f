-- A staffing company's database, unlike the demo's in every name: teams, staff, shifts and a view.
-- Tenants are companies, keyed by a text code (not a UUID). Deterministic data for two companies.
-- Used by the tests (tests/integration/test_own_data.py) and by the README's "Use it on your own data".

CREATE TABLE teams (
    company    text NOT NULL,
    team_code  text NOT NULL,
    team_name  text NOT NULL,
    PRIMARY KEY (company, team_code)
);

CREATE TABLE staff (
    staff_no      integer PRIMARY KEY,
    company       text NOT NULL,
    full_name     text NOT NULL,
    team_code     text NOT NULL,
    active        boolean NOT NULL,
    started_on    date NOT NULL,
    weekly_hours  integer NOT NULL,
    salary_eur    numeric(12, 2) NOT NULL,
    updated_at    timestamptz NOT NULL,
    FOREIGN KEY (company, team_code) REFERENCES teams
);
CREATE INDEX staff_company ON staff (company, staff_no);

CREATE TABLE shifts (
    shift_id  bigint PRIMARY KEY,
    company   text NOT NULL,
    staff_no  integer NOT NULL REFERENCES staff,
    work_day  date NOT NULL,
    hours     numeric(5, 2) NOT NULL,
    state     text NOT NULL CHECK (state IN ('planned', 'worked', 'cancelled')),
    note      text
);
CREATE INDEX shifts_company_day ON shifts (company, work_day, shift_id);

CREATE VIEW team_headcount AS
SELECT t.company,
       t.team_code,
       t.team_name,
       count(s.staff_no) AS headcount,
       coalesce(avg(s.salary_eur), 0)::numeric(12, 2) AS avg_salary,
       coalesce(bool_or(s.active), false) AS any_active
  FROM teams t
  LEFT JOIN staff s ON s.company = t.company AND s.team_code = t.team_code
 GROUP BY t.company, t.team_code, t.team_name;

INSERT INTO teams VALUES
    ('nw-001', 'OPS', 'Operations'), ('nw-001', 'KIT', 'Kitchen'), ('nw-001', 'FOH', 'Front of house'),
    ('cw-002', 'OPS', 'Operations'), ('cw-002', 'DEL', 'Delivery'), ('cw-002', 'EMPTY', 'Nobody yet');

-- 40 staff at Northwind (nw-001), 15 at Contoso (cw-002); names include formula look-alikes (also
-- behind white space, and a full-width equals sign), a comma and quotes, and non-Latin script.
INSERT INTO staff
SELECT n,
       CASE WHEN n <= 40 THEN 'nw-001' ELSE 'cw-002' END,
       CASE n WHEN 3 THEN '=HYPERLINK("http://x","y")' WHEN 7 THEN 'Zoë "Z", Smith' WHEN 11 THEN 'Ελένη Παππά'
              WHEN 13 THEN U&' \00A0=1+1' WHEN 17 THEN U&'\3000\FF1DSUM(A1)' ELSE 'Person ' || n END,
       CASE WHEN n <= 40 THEN (ARRAY['OPS', 'KIT', 'FOH'])[n % 3 + 1] ELSE (ARRAY['OPS', 'DEL'])[n % 2 + 1] END,
       n % 5 <> 0,
       DATE '2020-01-01' + n * 17,
       20 + n % 21,
       (2000 + n * 37.25)::numeric(12, 2),
       TIMESTAMPTZ '2026-01-01 08:00:00+00' + n * INTERVAL '1 hour 1 minute'
  FROM generate_series(1, 55) AS n;

-- 5 shifts per staff member.
INSERT INTO shifts
SELECT s.staff_no * 10 + k,
       s.company,
       s.staff_no,
       DATE '2026-03-01' + (s.staff_no + k * 3) % 28,
       (4 + (s.staff_no + k) % 5 * 1.25)::numeric(5, 2),
       (ARRAY['planned', 'worked', 'cancelled'])[(s.staff_no + k) % 3 + 1],
       CASE WHEN k = 1 THEN 'covers, "late" slot' END
  FROM staff s, generate_series(1, 5) AS k;
