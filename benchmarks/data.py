"""Benchmark data: a college-size year of lesson marks as canonical CSV extracts.

10,000 students, 300 staff, 250,000 lessons and 5,000,000 marks (20 students a
lesson), deterministic, written once into a cache folder and reused.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

STUDENTS = 10_000
LESSONS = 250_000
MARKS_PER_LESSON = 20


def college_year(folder: Path, marks: int = LESSONS * MARKS_PER_LESSON) -> Path:
    """Write students/staff/lessons/marks CSVs for ``marks`` marks; return the folder."""
    lessons = max(1, marks // MARKS_PER_LESSON)
    stamp = folder / f"DONE-{marks}"
    if stamp.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT 'STU' || lpad(i::VARCHAR, 6, '0') AS student_id,
        'Forename' || i AS forename, 'Surname' || (i % 977) AS surname,
        CASE WHEN i % 50 = 0 THEN 'L01' ELSE 'C01' END AS status, '16-19' AS cohort,
        CASE WHEN i % 2 = 0 THEN '12' ELSE '13' END AS year_group,
        '07400 ' || lpad((100000 + i)::VARCHAR, 6, '0') AS mobile
        FROM range({STUDENTS}) t(i)) TO '{folder / "students.csv"}' (HEADER)""")
    con.execute(f"""COPY (SELECT 'T' || i AS staff_id, 'Teacher' AS forename,
        'Staff' || i AS surname, 'staff' || i || '@example.org' AS email
        FROM range(300) t(i)) TO '{folder / "staff.csv"}' (HEADER)""")
    con.execute(f"""COPY (SELECT 'LES' || i AS lesson_id,
        strftime(DATE '2025-09-01' + (i // 1300)::INTEGER, '%Y-%m-%d') AS date,
        lpad((9 + i % 6)::VARCHAR, 2, '0') || ':00' AS start_time,
        lpad((10 + i % 6)::VARCHAR, 2, '0') || ':00' AS end_time, 'lesson' AS kind,
        ((i % 6) + 1)::VARCHAR AS period, 'T' || (i % 300) AS staff_id,
        strftime(DATE '2025-09-01' + (i // 1300)::INTEGER, '%Y-%m-%d') || ' '
          || lpad((9 + i % 6)::VARCHAR, 2, '0') || ':05' AS register_taken_at
        FROM range({lessons}) t(i)) TO '{folder / "lessons.csv"}' (HEADER)""")
    # Each lesson has 20 distinct students: (lesson * 37 + k * 499) mod STUDENTS.
    con.execute(f"""COPY (SELECT 'LES' || l AS lesson_id,
        'STU' || lpad(((l * 37 + k * 499) % {STUDENTS})::VARCHAR, 6, '0') AS student_id,
        CASE WHEN (l + k) % 23 = 0 THEN 'O' WHEN (l + k) % 41 = 0 THEN 'L'
             WHEN (l + k) % 97 = 0 THEN 'I' ELSE '/' END AS mark,
        CASE WHEN (l + k) % 41 = 0 THEN '7' END AS minutes_late,
        CASE WHEN (l + k) % 500 = 0 THEN 'late bus' END AS comment,
        strftime(DATE '2025-09-01' + (l // 1300)::INTEGER, '%Y-%m-%d') || ' '
          || lpad((9 + l % 6)::VARCHAR, 2, '0') || ':0' || (k % 10)::VARCHAR AS recorded_at,
        'T' || (l % 300) AS recorded_by
        FROM range({lessons}) a(l), range({MARKS_PER_LESSON}) b(k)
        ORDER BY l, k) TO '{folder / "marks.csv"}' (HEADER)""")
    con.close()
    stamp.write_text("ok")
    return folder
