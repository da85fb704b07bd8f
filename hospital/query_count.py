"""Benchmarks only: the number of SQL statements a request ran, in an `X-Query-Count` response header.

Settings add this middleware only when BENCHMARK_QUERY_COUNT=true, so that `make bench` can read queries per
request from a running server; a default or production process never loads it.
"""

from django.db import connection

QUERY_COUNT_HEADER = "X-Query-Count"


class QueryCountMiddleware:
    """Outermost, so that it counts every statement, the audit INSERT included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        count = 0

        def count_query(execute, sql, params, many, context):
            nonlocal count
            count += 1
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count_query):
            response = self.get_response(request)
        response[QUERY_COUNT_HEADER] = str(count)
        return response
