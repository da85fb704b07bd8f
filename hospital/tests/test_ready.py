"""Readiness (/api/ready/) and graceful shutdown: the checks, and a real gunicorn draining after SIGTERM."""

import http.client
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db import connection
from django.test import TransactionTestCase
from django.urls import reverse
from rest_framework import status

from hospital.draining import drain_marker
from hospital.tests.base import ApiTestCase
from hospital.tests.redis_server import RedisServer
from hospital.tests.test_server import environment, free_port
from hospital.views import ReadyView

READY_URL = reverse("ready")
HEALTH_URL = reverse("health")


class ReadyTests(ApiTestCase):
    def setUp(self):
        super().setUp()
        ReadyView.migrations_applied = False
        self.addCleanup(setattr, ReadyView, "migrations_applied", False)

    def test_it_is_ready_when_the_database_answers_and_every_migration_is_applied(self):
        response = self.client.get(READY_URL)

        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json(), {"status": "ready", "database": "ok", "migrations": "ok"})

    def test_an_unapplied_migration_makes_it_not_ready(self):
        with connection.cursor() as cursor:  # rolled back with the test
            cursor.execute(
                "DELETE FROM django_migrations WHERE app = 'hospital' AND name = "
                "(SELECT max(name) FROM django_migrations WHERE app = 'hospital')"
            )

        response = self.client.get(READY_URL)

        self.assertEqual(response.status_code, status.HTTP_503_SERVICE_UNAVAILABLE)
        self.assertEqual(response.json(), {"status": "not ready", "database": "ok", "migrations": "pending"})

    def test_while_draining_it_answers_503_and_health_stays_200(self):
        marker = drain_marker(os.getppid())  # as gunicorn's master marks itself (gunicorn.conf.py)
        marker.touch()
        self.addCleanup(marker.unlink, missing_ok=True)

        response = self.client.get(READY_URL)
        self.assertEqual(response.status_code, status.HTTP_503_SERVICE_UNAVAILABLE)
        self.assertEqual(response.json(), {"status": "draining"})
        self.assertEqual(self.client.get(HEALTH_URL).status_code, status.HTTP_200_OK)

    def test_it_needs_no_token_and_is_not_throttled(self):
        for _ in range(70):  # past ANON_THROTTLE_RATE
            self.assertEqual(self.client.get(READY_URL).status_code, status.HTTP_200_OK)


class ReadyWithRedisTests(ApiTestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.redis = RedisServer()
        cls.redis.start()
        cls.addClassCleanup(cls.redis.stop)
        cls.enterClassContext(cls.redis.settings())

    def test_it_checks_redis_when_redis_url_is_set(self):
        response = self.client.get(READY_URL)
        self.assertEqual(response.status_code, status.HTTP_200_OK)
        self.assertEqual(response.json()["redis"], "ok")

        self.redis.stop()
        try:
            with self.assertLogs("hospital.redis_store", "WARNING"):
                response = self.client.get(READY_URL)
        finally:
            self.redis.start()
        self.assertEqual(response.status_code, status.HTTP_503_SERVICE_UNAVAILABLE)
        self.assertEqual(
            response.json(), {"status": "not ready", "database": "ok", "redis": "unavailable", "migrations": "ok"}
        )


class GunicornDrainTests(TransactionTestCase):
    """gunicorn as production starts it (gunicorn.conf.py), on the test database (a transaction test case, so
    that the runner creates it), told to stop with SIGTERM."""

    DRAIN_SECONDS = 2

    def get(self, port: int, path: str, *, parse=json.loads) -> tuple[int, dict]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, parse(response.read())
        finally:
            connection.close()

    def wait_for(self, condition, timeout=60.0):
        deadline = time.monotonic() + timeout
        while not condition():
            self.assertLess(time.monotonic(), deadline, "timed out")
            time.sleep(0.05)

    def test_sigterm_makes_ready_answer_503_for_drain_seconds_while_requests_are_served_then_it_stops(self):
        port = free_port()
        metrics_dir = Path(self.enterContext(tempfile.TemporaryDirectory()))
        gunicorn = str(Path(settings.BASE_DIR) / ".venv/bin/gunicorn")
        server = subprocess.Popen(  # noqa: S603 (our own gunicorn, as the README starts it)
            [gunicorn, "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", "healthcare.wsgi"],
            cwd=settings.BASE_DIR,
            env=environment(
                DRAIN_SECONDS=str(self.DRAIN_SECONDS),
                WEB_CONCURRENCY="1",
                LOG_LEVEL="WARNING",
                PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.addCleanup(lambda: server.poll() is None and (server.kill(), server.wait()))

        def answers() -> bool:
            try:
                return self.get(port, READY_URL)[0] == status.HTTP_200_OK
            except OSError:
                return False

        self.wait_for(answers)
        # The workers' counters, added up from PROMETHEUS_MULTIPROC_DIR (prometheus-client's multiprocess mode).
        metrics_status, metrics = self.get(port, "/metrics", parse=bytes.decode)
        self.assertEqual(metrics_status, status.HTTP_200_OK)
        self.assertIn('healthcare_http_requests_total{method="GET",route="api/ready/",status="200"} 1.0', metrics)
        self.assertTrue(any(metrics_dir.iterdir()))
        server.send_signal(signal.SIGTERM)

        self.wait_for(lambda: self.get(port, READY_URL) == (503, {"status": "draining"}), timeout=5)
        self.assertTrue(drain_marker(server.pid).exists())
        self.assertEqual(self.get(port, HEALTH_URL), (200, {"status": "ok", "database": "ok"}))
        self.assertEqual(self.get(port, reverse("patient-list"))[0], status.HTTP_401_UNAUTHORIZED)

        self.assertEqual(server.wait(timeout=self.DRAIN_SECONDS + 30), 0)
        self.assertFalse(drain_marker(server.pid).exists())
