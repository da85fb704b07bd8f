"""The ceiling for `GET /api/patients/`: the app's first page, byte for byte, from one query and nothing else.

    gunicorn -c gunicorn.conf.py benchmarks.ceiling:application

No framework, no authentication and no audit row: one raw psycopg query per request, on a connection each
worker opens once and keeps. Served by the same gunicorn configuration as the app, it is how fast this machine
can answer that page at all; `make bench` reports every endpoint as a percentage of its requests/s. It answers
what a staff user sees (every live patient), with the app's body and headers; the harness compares both.
"""

import json
import math
import os
import uuid
from datetime import UTC

import psycopg

PATH = "/api/patients/"
PAGE_SIZE = int(os.environ.get("PAGE_SIZE", "50"))
# The total and the page in one round trip; the LEFT JOIN keeps the total when there is no row.
QUERY = """
SELECT total.n, page.id, page.firstname, page.lastname, page.age, page.gender, page.email, page.created_by_id,
       page.created_at, page.updated_at, page.deleted_at, page.deleted_by_id
FROM (SELECT count(*) AS n FROM hospital_patient WHERE deleted_at IS NULL) AS total
LEFT JOIN LATERAL (
    SELECT * FROM hospital_patient WHERE deleted_at IS NULL ORDER BY id LIMIT %s
) AS page ON true
"""
FIELDS = ("id", "firstname", "lastname", "age", "gender", "email", "created_by")
DATETIME_FIELDS = ("created_at", "updated_at", "deleted_at")
# What Django, DRF and hospital.middleware add to the app's answer (see the harness's header comparison).
STATIC_HEADERS = [
    ("Content-Type", "application/json"),
    ("Allow", "GET, POST, HEAD, OPTIONS"),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
    ("Vary", "origin"),  # django-cors-headers, on every /api/ answer
]

_connection = None


def connection() -> psycopg.Connection:
    """One connection per worker process, opened on its first request (after gunicorn forks)."""
    global _connection
    if _connection is None or _connection.closed:
        _connection = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    return _connection


def drf_datetime(value) -> str | None:
    """As DRF renders a DateTimeField with USE_TZ and TIME_ZONE=UTC."""
    return None if value is None else value.astimezone(UTC).isoformat().removesuffix("+00:00") + "Z"


def page_body(rows) -> bytes:
    patients = []
    for row in rows:
        if row[1] is None:
            continue
        record = dict(zip(FIELDS, row[1:8], strict=True))
        record.update(zip(DATETIME_FIELDS, map(drf_datetime, row[8:11]), strict=True))
        record["deleted_by"] = row[11]
        patients.append(record)
    # DRF's JSONRenderer: compact, UTF-8, with U+2028/U+2029 escaped.
    text = json.dumps(patients, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()


def link_header(environ, total: int) -> str:
    """The app's RFC 8288 `Link` header for page 1 (hospital.pagination)."""
    url = f"{environ['wsgi.url_scheme']}://{environ['HTTP_HOST']}{PATH}"
    last = max(1, math.ceil(total / PAGE_SIZE))
    links = [f'<{url}>; rel="first"']
    if last > 1:
        links.append(f'<{url}?page=2>; rel="next"')
    last_url = url if last == 1 else f"{url}?page={last}"
    links.append(f'<{last_url}>; rel="last"')
    return ", ".join(links)


def application(environ, start_response):
    if environ["PATH_INFO"] != PATH or environ["REQUEST_METHOD"] != "GET":
        start_response("404 Not Found", [("Content-Type", "application/json")])
        return [b'{"detail":"Not found."}']
    rows = connection().execute(QUERY, [PAGE_SIZE]).fetchall()
    body = page_body(rows)
    total = rows[0][0]
    headers = [
        *STATIC_HEADERS,
        ("Link", link_header(environ, total)),
        ("X-Total-Count", str(total)),
        ("Content-Length", str(len(body))),
        ("X-Request-ID", uuid.uuid4().hex),
    ]
    start_response("200 OK", headers)
    return [body]
