"""gunicorn settings for `make run` (and production). Every value can be overridden from the environment."""

import multiprocessing
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() * 2 + 1))
timeout = 30
graceful_timeout = 10
# No access log: the app writes one JSON line per request (hospital.request_log), with the route pattern
# instead of the path and never the query string, whose search terms are patient names.
accesslog = None
# Patient data is never logged; a header-sized limit keeps oversized request lines out of the workers.
limit_request_line = 8190
