"""The server as `make run` starts it: nginx in front of gunicorn, on the test database, through real sockets.

Also the make and command-line entry points: signals, a busy port, malformed settings, `make superuser`.
Each server here is a real `make run`, in a session of its own (as a terminal's job is a process group), on a
port the system picks; a class starts it once.
"""

import contextlib
import http.client
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test import SimpleTestCase, TestCase, TransactionTestCase

from hospital.models import AuditEvent
from scripts import serving

BASE_DIR = Path(settings.BASE_DIR)
STARTUP_SECONDS = 90
STOP_SECONDS = 30
# The bound the issue states: a stalled client must not delay anyone else's answer by more than this.
HEALTH_BOUND_SECONDS = 1.0
STALLED_CLIENTS = 64
STRONG_PASSWORD = "correct-horse-battery-staple"


def test_database_url() -> str:
    """The test runner's database, for servers started as separate processes (they see committed data)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="") + (":" + quote(db["PASSWORD"], safe="") if db["PASSWORD"] else "")
    host = quote(db["HOST"] or "", safe="")  # a socket directory is a path: percent-encoded
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{credentials}@{host}{port}/{quote(db['NAME'], safe='')}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def environment(**overrides: str | None) -> dict[str, str]:
    """This process's environment for a command, without the outer make's state; None removes a variable."""
    env = {name: value for name, value in os.environ.items() if name not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    env.update({"DATABASE_URL": test_database_url(), "LOG_LEVEL": "INFO"})
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def make(*args: str, env: dict[str, str], timeout: float = 120, stdin=subprocess.DEVNULL):
    """Run a make target to its end: (exit status, output)."""
    finished = subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=BASE_DIR,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return finished.returncode, finished.stdout + finished.stderr


def process_table() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, start time): the start time tells a process from a later one given the same pid."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":  # a zombie has stopped; only its parent has yet to notice
                    table[int(entry.name)] = (int(fields[1]), fields[19])
    return table


def command_line(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    return ""


class MakeRun:
    """`make run` in a session of its own, as a terminal runs a job, with its output in a file."""

    def __init__(self, *, port: int | None = None, **overrides: str | None):
        self.port = port or free_port()
        self.env = environment(**{"PORT": str(self.port), "WEB_CONCURRENCY": "2", **overrides})
        self.log = Path(tempfile.mkstemp(prefix="make-run-", suffix=".log")[1])
        self.process: subprocess.Popen | None = None

    def start(self) -> "MakeRun":
        return self.launch().wait_until_serving()

    def launch(self) -> "MakeRun":
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                ["make", "--no-print-directory", "run"],
                cwd=BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def wait_until_serving(self) -> "MakeRun":
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"make run exited ({self.process.returncode}):\n{self.output()}")
            with contextlib.suppress(OSError):
                if self.request("GET", "/api/health/", timeout=5)[0] == 200:
                    return self
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"make run did not serve within {STARTUP_SECONDS} s:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_bytes().decode(errors="replace")

    def request(self, method: str, path: str, *, headers=None, body=None, source="127.0.0.1", timeout=10.0):
        """(status, headers, body bytes) of one request from `source`, a loopback address of our choosing."""
        client = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout, source_address=(source, 0))
        try:
            client.request(method, path, body=body, headers=headers or {})
            response = client.getresponse()
            return response.status, response.headers, response.read()
        finally:
            client.close()

    def raw(self, data: bytes) -> tuple[int, str, bytes]:
        """Send bytes as they are; (status, Content-Type, body) of the answer, read up to its Content-Length."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(data)
            answer = b""
            while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
            head, _, body = answer.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            fields = {name.lower(): value for name, _, value in (line.partition(": ") for line in lines[1:])}
            while len(body) < int(fields["content-length"]) and (chunk := sock.recv(65536)):
                body += chunk
        return int(lines[0].split()[1]), fields.get("content-type", ""), body

    def processes(self) -> set[tuple[int, str]]:
        """(pid, start time) of make and everything under it: dev.py, gunicorn and its workers, nginx and its."""
        table = process_table()
        tree = {self.process.pid}
        while more := {pid for pid, (parent, _) in table.items() if parent in tree} - tree:
            tree |= more
        return {(pid, table[pid][1]) for pid in tree if pid in table}

    def signal_job(self, signum: int) -> None:
        """As a terminal signals its foreground job: the whole process group (make and dev.py)."""
        os.killpg(self.process.pid, signum)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal_job(signal.SIGTERM)
            try:
                self.process.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.unlink(missing_ok=True)


def still_running(processes: set[tuple[int, str]]) -> list[str]:
    table = process_table()
    return [command_line(pid) or str(pid) for pid, started in processes if table.get(pid, (0, ""))[1] == started]


class ServedLikeMakeRunTests(TransactionTestCase):
    """One `make run` on the test database, shared by the tests of this class."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.server = MakeRun().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()  # before the test database is dropped: the server holds connections to it
        super().tearDownClass()

    def assert_json_error(self, status, content_type, body, expected_status):
        self.assertEqual(status, expected_status, body)
        self.assertTrue(content_type.startswith("application/json"), content_type)
        self.assertIsInstance(json.loads(body)["detail"], str)

    def test_health_answers_within_a_second_while_64_clients_stall_in_their_headers(self):
        stalled = []
        try:
            for _ in range(STALLED_CLIENTS):
                sock = socket.create_connection(("127.0.0.1", self.server.port), timeout=5)
                sock.sendall(b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Unfinished: ")
                stalled.append(sock)
            for _ in range(3):
                started = time.monotonic()
                status, _, _ = self.server.request("GET", "/api/health/", timeout=HEALTH_BOUND_SECONDS)
                self.assertEqual(status, 200)
                self.assertLess(time.monotonic() - started, HEALTH_BOUND_SECONDS)
        finally:
            for sock in stalled:
                sock.close()

    def test_an_over_long_request_line_gets_a_json_414(self):
        path = "/api/patients/?search=" + "a" * 9000
        self.assert_json_error(*self.server.raw(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()), 414)

    def test_an_over_long_header_gets_a_json_431(self):
        header = "X-Long: " + "a" * 9000
        request = f"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n\r\n"
        self.assert_json_error(*self.server.raw(request.encode()), 431)

    def test_header_lines_nginx_accepts_are_served(self):
        # The longest header line nginx passes on (8190 characters), and an X-Forwarded-For that grows on the
        # way by the address nginx appends to it: gunicorn, behind, must accept both.
        request = (
            "GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"X-Forwarded-For: {'1' * 8169}\r\nX-Other: {'a' * 8181}\r\n\r\n"
        )
        status, content_type, _ = self.server.raw(request.encode())
        self.assertEqual((status, content_type), (200, "application/json"))

    def test_a_body_over_the_limit_gets_a_json_413(self):
        request = b"POST /api/patients/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 2000000\r\n\r\n"
        self.assert_json_error(*self.server.raw(request), 413)

    def test_a_header_value_gunicorn_refuses_gets_json_too(self):
        request = b"GET /api/health/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Control: a\x01b\r\nConnection: close\r\n\r\n"
        self.assert_json_error(*self.server.raw(request), 400)

    def test_a_request_line_outside_ascii_gets_a_json_400_and_stays_out_of_the_log(self):
        request = "GET /api/patients/?search=Quigleyé HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        status, content_type, body = self.server.raw(request.encode())
        self.assert_json_error(status, content_type, body, 400)
        self.assertIn("percent-encode", json.loads(body)["detail"])
        self.assertNotIn("Quigley", self.server.output())

    def test_a_spoofed_x_forwarded_for_does_not_change_the_audited_client_ip(self):
        body = json.dumps({"username": "nobody", "password": "not-the-password"})
        headers = {"Content-Type": "application/json", "X-Forwarded-For": "203.0.113.9"}
        # From 127.0.0.2: a client address that is neither nginx's nor the default one.
        status, response_headers, _ = self.server.request(
            "POST", "/api/auth/login/", headers=headers, body=body, source="127.0.0.2"
        )
        self.assertEqual(status, 401)
        event = AuditEvent.objects.get(request_id=response_headers["X-Request-ID"])
        self.assertEqual(event.client_ip, "127.0.0.2")

    def test_the_app_answers_through_nginx_with_its_own_headers(self):
        status, headers, body = self.server.request("GET", "/api/health/")
        self.assertEqual((status, json.loads(body)["status"]), (200, "ok"))
        self.assertEqual(headers["Cache-Control"], "no-store")
        self.assertRegex(headers["X-Request-ID"], r"^[0-9a-f]{32}$")
        self.assertEqual(self.server.request("GET", "/static/admin/css/base.css")[0], 200)

    def test_logins_are_served_by_the_login_pool_at_a_lower_cpu_priority(self):
        """LOGIN_CONCURRENCY's default: one more gunicorn, niced, whose worker does the logins' password hashing."""
        gunicorns = {pid for pid, _ in self.server.processes() if "--bind" in command_line(pid)}
        table = process_table()
        pools = {}
        for pid in gunicorns:
            if table[pid][0] not in gunicorns:  # a master (its workers have the same command line)
                pools["login" if "gunicorn-login.sock" in command_line(pid) else "app"] = pid
        self.assertEqual(set(pools), {"app", "login"})
        body = json.dumps({"username": "nobody", "password": "not-the-password"})

        def log_in() -> None:
            status, _, answer = self.server.request(
                "POST", "/api/auth/login/", headers={"Content-Type": "application/json"}, body=body
            )
            self.assertEqual(status, 401, answer)

        log_in()  # answered once the pool's worker has booted (the app's answering health says nothing of it)
        table = process_table()

        def workers(pool: str) -> list[int]:
            return [pid for pid, (parent, _) in table.items() if parent == pools[pool]]

        def niceness(pid: int) -> int:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])

        def cpu_ticks(pool: str) -> int:
            return sum(
                sum(map(int, Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]))
                for pid in workers(pool)
            )

        self.assertEqual(len(workers("login")), 1)
        self.assertEqual([niceness(pid) for pid in (pools["login"], *workers("login"))], [10, 10])
        self.assertEqual({niceness(pid) for pid in (pools["app"], *workers("app"))}, {0})
        before = cpu_ticks("login")
        for _ in range(3):  # an unknown account still costs one password hash (Django's timing defence)
            log_in()
        # Three hashes of about a quarter of a second each: CPU the login pool's worker used, not the app's.
        self.assertGreater(cpu_ticks("login") - before, os.sysconf("SC_CLK_TCK") * 0.3)


class NginxOwnErrorsTests(SimpleTestCase):
    """The errors nginx writes itself, with gunicorn absent: JSON in the API's shape, never nginx's HTML."""

    def test_a_missing_app_server_gets_a_json_502_and_nginx_own_paths_a_json_404(self):
        nginx = serving.find_nginx()
        port = free_port()
        with tempfile.TemporaryDirectory(prefix="nginx-test-") as runtime_dir:
            config = Path(runtime_dir) / "nginx.conf"
            config.write_text(
                serving.nginx_config(
                    listen=f"127.0.0.1:{port}",
                    runtime_dir=Path(runtime_dir),
                    app_sockets=[Path(runtime_dir) / "absent.sock"],
                )
            )
            process = subprocess.Popen([nginx, "-p", runtime_dir, "-c", str(config), "-e", "stderr"])
            try:
                answers = {}
                deadline = time.monotonic() + 10
                while len(answers) < 2 and time.monotonic() < deadline:
                    with contextlib.suppress(OSError):
                        for path in ("/api/patients/?search=x", "/.nginx-error"):
                            client = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
                            client.request("GET", path)
                            response = client.getresponse()
                            answers[path] = (response.status, response.headers, response.read())
                            client.close()
                    time.sleep(0.05)
            finally:
                serving.stop_process(process, signal.SIGQUIT)
        for path, expected in (("/api/patients/?search=x", 502), ("/.nginx-error", 404)):
            status, headers, body = answers[path]
            self.assertEqual(status, expected, body)
            self.assertEqual(headers["Content-Type"], "application/json")
            self.assertEqual(headers["Cache-Control"], "no-store")
            self.assertIsInstance(json.loads(body)["detail"], str)


class StoppingTests(SimpleTestCase):
    """Closing the terminal, Ctrl-C and SIGTERM each stop everything `make run` started, so it can start again."""

    databases = {"default"}  # so that the test database exists for the servers; this process does not query

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.data_dir = tempfile.TemporaryDirectory(prefix="make-run-data-")
        # Started together, to save time: on the test database, and one on an embedded PostgreSQL of its own.
        cls.runs = {
            "SIGINT": MakeRun(WEB_CONCURRENCY="1"),
            "SIGTERM": MakeRun(WEB_CONCURRENCY="1"),
            "SIGHUP": MakeRun(WEB_CONCURRENCY="1", DATABASE_URL=None, DATA_DIR=cls.data_dir.name),
        }
        try:
            for run in cls.runs.values():
                run.launch()
            for run in cls.runs.values():
                run.wait_until_serving()
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        for run in cls.runs.values():
            run.stop()
        cls.data_dir.cleanup()
        super().tearDownClass()

    def assert_signal_stops_everything(self, signum: int, run: MakeRun, *, more=frozenset()) -> None:
        processes = run.processes() | more
        names = " ".join(command_line(pid) for pid, _ in processes)
        self.assertIn("nginx: master", names)
        self.assertIn("gunicorn", names)
        run.signal_job(signum)
        run.process.wait(STOP_SECONDS)
        self.assertEqual(still_running(processes), [])
        self.assertNotEqual(run.process.returncode, 0)

    def test_sigint_stops_everything(self):
        self.assert_signal_stops_everything(signal.SIGINT, self.runs["SIGINT"])

    def test_sigterm_stops_everything(self):
        self.assert_signal_stops_everything(signal.SIGTERM, self.runs["SIGTERM"])

    def test_sighup_stops_everything_with_the_embedded_postgresql_and_make_run_starts_again(self):
        run = self.runs["SIGHUP"]
        table = process_table()
        postgres = {(pid, table[pid][1]) for pid in table if self.data_dir.name in command_line(pid)}
        self.assertTrue(any("postgres" in command_line(pid) for pid, _ in postgres))
        self.assert_signal_stops_everything(signal.SIGHUP, run, more=postgres)
        again = MakeRun(port=run.port, WEB_CONCURRENCY="1", DATABASE_URL=None, DATA_DIR=self.data_dir.name)
        self.runs["again"] = again
        again.start()


class EntryPointTests(SimpleTestCase):
    """A busy port or a malformed variable: one line saying what to change, a non-zero exit, no traceback."""

    databases = {"default"}  # so that the test database exists for the commands; this process does not query

    def assert_one_error_line(self, status: int, output: str, *words: str) -> str:
        self.assertNotEqual(status, 0, output)
        self.assertNotIn("Traceback", output)
        lines = [line for line in output.splitlines() if line.strip() and not line.startswith("make: ***")]
        self.assertEqual(len(lines), 1, output)
        self.assertTrue(lines[0].startswith("error: "), output)
        for word in words:
            self.assertIn(word, lines[0])
        return lines[0]

    def test_a_port_in_use_is_reported_before_anything_starts(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            status, output = make("run", env=environment(PORT=str(port)), timeout=60)
        self.assert_one_error_line(status, output, f"port {port}", "already in use", f"PORT={port + 1} make run")

    def test_make_run_names_a_malformed_variable(self):
        for name, value in (("PAGE_SIZE", "abc"), ("PORT", "abc"), ("DEBUG", "maybe"), ("DATABASE_URL", "mysql://x")):
            with self.subTest(name=name):
                status, output = make("run", env=environment(**{name: value}), timeout=60)
                self.assert_one_error_line(status, output, name)

    def test_make_test_names_a_malformed_database_url(self):
        status, output = make("test", env=environment(DATABASE_URL="mysql://x"), timeout=60)
        self.assert_one_error_line(status, output, "DATABASE_URL", "PostgreSQL")

    def test_manage_py_names_a_malformed_variable(self):
        finished = subprocess.run(
            [sys.executable, "manage.py", "check"],
            cwd=BASE_DIR,
            env=environment(PAGE_SIZE="abc"),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assert_one_error_line(finished.returncode, finished.stdout + finished.stderr, "PAGE_SIZE", "'abc'")

    def test_gunicorn_names_a_malformed_variable(self):
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        with tempfile.TemporaryDirectory(prefix="gunicorn-test-") as runtime_dir:
            bind = f"unix:{runtime_dir}/app.sock"
            for command in (
                [gunicorn, "--config", "gunicorn.conf.py", "--bind", bind, "healthcare.wsgi"],
                # Without the project's configuration, the app itself stops gunicorn (no worker restarts).
                [
                    gunicorn,
                    "--config",
                    "/dev/null",
                    "--no-control-socket",
                    "--bind",
                    bind,
                    "--workers",
                    "1",
                    "healthcare.wsgi",
                ],
            ):
                with self.subTest(command=command[2]):
                    finished = subprocess.run(
                        command,
                        cwd=BASE_DIR,
                        env=environment(DEBUG="maybe"),
                        capture_output=True,
                        text=True,
                        timeout=60,
                        check=False,
                    )
                    output = finished.stdout + finished.stderr
                    self.assertNotEqual(finished.returncode, 0, output)
                    self.assertNotIn("Traceback", output)
                    self.assertIn("error: DEBUG must be one of", output)


class SuperuserTests(TransactionTestCase):
    """`make superuser`: an account from the command line without a prompt, or a loud failure."""

    def test_it_creates_a_superuser_from_the_command_line_without_a_terminal(self):
        env = environment(DJANGO_SUPERUSER_PASSWORD=STRONG_PASSWORD)
        status, output = make("superuser", "USERNAME=clinicadmin", "EMAIL=admin@example.org", env=env)
        self.assertEqual(status, 0, output)
        user = get_user_model().objects.get(username="clinicadmin")
        self.assertTrue(user.is_superuser and user.is_staff)
        self.assertEqual(user.email, "admin@example.org")
        self.assertTrue(user.check_password(STRONG_PASSWORD))

    def test_without_a_terminal_or_a_username_it_fails_and_creates_nothing(self):
        # A USERNAME exported by the session (desktops and sudo do) is not taken for the account's name.
        env = environment(DJANGO_SUPERUSER_PASSWORD=STRONG_PASSWORD, USERNAME="session-user", EMAIL="me@example.org")
        status, output = make("superuser", env=env)
        self.assertNotEqual(status, 0, output)
        self.assertIn("no terminal to prompt on", output)
        self.assertIn("USERNAME=... EMAIL=...", output)
        self.assertFalse(get_user_model().objects.exists())

    def test_without_a_password_or_with_a_weak_one_it_fails_and_creates_nothing(self):
        for password, message in ((None, "no DJANGO_SUPERUSER_PASSWORD given"), ("password", "too common")):
            with self.subTest(password=password):
                env = environment(DJANGO_SUPERUSER_PASSWORD=password)
                status, output = make("superuser", "USERNAME=clinicadmin", "EMAIL=admin@example.org", env=env)
                self.assertNotEqual(status, 0, output)
                self.assertIn(message, output)
                self.assertFalse(get_user_model().objects.exists())


class SuperuserCommandTests(TestCase):
    """The same rules in-process (`manage.py superuser`), where each branch is quick to reach."""

    def call(self, *args: str, stdin=None, **env: str):
        with mock.patch.dict(os.environ, env):
            call_command("superuser", *args, stdin=stdin or io.StringIO(), stdout=io.StringIO())

    def test_username_email_and_password_make_a_superuser_without_a_prompt(self):
        self.call(
            "--username", "clinicadmin", "--email", "admin@example.org", DJANGO_SUPERUSER_PASSWORD=STRONG_PASSWORD
        )
        self.assertTrue(get_user_model().objects.get(username="clinicadmin").check_password(STRONG_PASSWORD))

    def test_the_environment_can_name_the_account(self):
        env = {"DJANGO_SUPERUSER_USERNAME": "envadmin", "DJANGO_SUPERUSER_EMAIL": "env@example.org"}
        self.call(DJANGO_SUPERUSER_PASSWORD=STRONG_PASSWORD, **env)
        self.assertTrue(get_user_model().objects.get(username="envadmin").is_superuser)

    def test_it_refuses_what_it_cannot_do_without_a_prompt(self):
        cases = (
            ((), {}, "no username or DJANGO_SUPERUSER_PASSWORD given"),
            (("--username", "clinicadmin"), {}, "no DJANGO_SUPERUSER_PASSWORD given"),
            (("--noinput",), {"DJANGO_SUPERUSER_PASSWORD": STRONG_PASSWORD}, "no username given"),
            (("--username", "clinicadmin", "--email", "a@example.org"), {"DJANGO_SUPERUSER_PASSWORD": "clinicadmin"}),
        )
        for args, env, *message in cases:
            with self.subTest(args=args), self.assertRaisesMessage(CommandError, message[0] if message else "similar"):
                self.call(*args, **env)
        self.assertFalse(get_user_model().objects.exists())

    def test_with_a_terminal_it_prompts_as_django_does(self):
        terminal = mock.Mock(isatty=lambda: True)
        with (
            mock.patch("builtins.input", side_effect=["termadmin", "term@example.org"]),
            mock.patch("getpass.getpass", return_value=STRONG_PASSWORD),
        ):
            self.call(stdin=terminal)
        self.assertTrue(get_user_model().objects.get(username="termadmin").check_password(STRONG_PASSWORD))
