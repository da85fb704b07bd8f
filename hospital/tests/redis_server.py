"""A private redis-server for the tests that need Redis: on a free port, stopped and started again at will."""

import socket
import subprocess
import time

from django.test import override_settings

from hospital.tests.base import LOCAL_CACHE


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RedisServer:
    """`redis-server` without persistence, with the eviction policy production needs (README: noeviction)."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603 (a fixed command)
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"),
                *("--maxmemory-policy", "noeviction"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def caches(self) -> dict:
        """The test caches with the count cache and the security store in this Redis, as REDIS_URL sets them."""
        return {
            **LOCAL_CACHE,
            "default": {
                "BACKEND": "hospital.redis_store.SharedCountCache",
                "LOCATION": self.url,
                "KEY_PREFIX": "count",
            },
            "security": {
                "BACKEND": "hospital.redis_store.SecurityRedisCache",
                "LOCATION": self.url,
                "KEY_PREFIX": "security",
            },
        }

    def settings(self):
        return override_settings(CACHES=self.caches(), REDIS_URL=self.url)
