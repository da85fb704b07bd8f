"""Graceful shutdown under gunicorn: from SIGTERM on, /api/ready/ answers 503 "draining" for DRAIN_SECONDS.

A load balancer polls /api/ready/ and stops sending new requests once it fails, while the instance still serves
everything it is sent; only then does gunicorn stop (its graceful_timeout lets requests in flight finish).
gunicorn.conf.py's master writes a marker file named after its pid when SIGTERM arrives; each worker looks for
its parent's (one stat per /api/ready/ request). No gunicorn (runserver, tests): no marker, never draining.
"""

import os
import tempfile
from pathlib import Path


def drain_marker(master_pid: int) -> Path:
    return Path(tempfile.gettempdir()) / f"healthcare-draining-{master_pid}"


def draining() -> bool:
    return drain_marker(os.getppid()).exists()
