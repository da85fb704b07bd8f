"""Counting the SQL statements a request runs: for Prometheus (hospital.metrics) and, in benchmarks only, an
`X-Query-Count` response header.

Settings add QueryCountMiddleware only when BENCHMARK_QUERY_COUNT=true, so that `make bench` can read queries per
request from a running server; a default or production process never loads it.
"""

import contextlib
from collections.abc import Iterator

from django.db import DEFAULT_DB_ALIAS, connections

QUERY_COUNT_HEADER = "X-Query-Count"


class StatementCount:
    value = 0


@contextlib.contextmanager
def counting_statements(aliases=(DEFAULT_DB_ALIAS,)) -> Iterator[StatementCount]:
    """Counts the statements run on the connections of `aliases` inside the block."""
    count = StatementCount()

    def count_statement(execute, sql, params, many, context):
        count.value += 1
        return execute(sql, params, many, context)

    with contextlib.ExitStack() as wrappers:
        for alias in aliases:
            wrappers.enter_context(connections[alias].execute_wrapper(count_statement))
        yield count


class QueryCountMiddleware:
    """Outermost, so that it counts every statement, the audit INSERT included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with counting_statements() as count:
            response = self.get_response(request)
        response[QUERY_COUNT_HEADER] = str(count.value)
        return response
