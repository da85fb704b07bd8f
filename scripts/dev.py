"""Local set-up behind `make run` and `make test`: checked settings, a secret key, a database, then the server or a
command.

    python scripts/dev.py serve          migrate, collect static files, serve: nginx on $HOST:$PORT, gunicorn behind it
    python scripts/dev.py run -- CMD...  run CMD with DATABASE_URL pointing at a ready database

The settings are read first, as the app reads them: a malformed variable is one line naming it (exit status 1),
before anything starts. The database is DATABASE_URL (environment or .env) when set; it is created if missing.
Otherwise a private PostgreSQL from the `pgserver` package runs with its data under .data/pg, and is stopped
again when the last command using it exits. Ctrl-C, SIGTERM and SIGHUP (the terminal closing) stop everything
this script started: nginx, gunicorn and the embedded PostgreSQL.
"""

import contextlib
import fcntl
import json
import os
import runpy
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock
from urllib.parse import quote

import serving
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(1, str(BASE_DIR))  # for the settings, read here before anything starts (read_settings)
load_dotenv(BASE_DIR / ".env", override=False)
DATA_DIR = Path(os.environ.get("DATA_DIR", "").strip() or BASE_DIR / ".data")
EMBEDDED_PGDATA = DATA_DIR / "pg"
EMBEDDED_DATABASE = "healthcare"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Stands in for the embedded database's URL while the settings are checked, before that database starts.
PLACEHOLDER_DATABASE_URL = "postgres://postgres@localhost/not-started-yet"


def say(message: str, *, prefix: str = "[dev] ", file=sys.stdout) -> None:
    with contextlib.suppress(OSError):  # the terminal is gone (SIGHUP): stopping matters more than saying so
        print(f"{prefix}{message}", file=file, flush=True)


def fail(problem: str) -> int:
    say(problem, prefix="error: ", file=sys.stderr)
    return 1


class Stopping:
    """The first of SIGINT, SIGTERM or SIGHUP, recorded by the handler; the main flow stops at its next step.

    A handler that raised instead could interrupt the start of a process or the clean-up itself, and leave
    something running. A signal is also passed on to a command run in the foreground (`run --`).
    """

    signum: int | None = None
    child: subprocess.Popen | None = None

    @classmethod
    def handle(cls, signum, _frame) -> None:
        cls.signum = cls.signum or signum
        if cls.child is not None and cls.child.poll() is None:
            cls.child.send_signal(signum)

    @classmethod
    def requested(cls) -> bool:
        return cls.signum is not None

    @classmethod
    def exit_status(cls) -> int:
        return 128 + cls.signum


def read_settings() -> dict:
    """The app's settings as its processes will read them; raises ImproperlyConfigured naming a bad variable."""
    environment = {}
    if not os.environ.get("DATABASE_URL", "").strip():
        environment["DATABASE_URL"] = PLACEHOLDER_DATABASE_URL
    with mock.patch.dict(os.environ, environment):
        return runpy.run_path(str(BASE_DIR / "healthcare" / "settings.py"))


def ensure_secret_key() -> None:
    """Generate a random SECRET_KEY once, unless one is configured; settings read it from .data/."""
    if os.environ.get("SECRET_KEY", "").strip():
        return
    key_file = DATA_DIR / "secret_key"
    if not key_file.exists():
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(64))
        say(f"generated a random SECRET_KEY into {key_file}")


def forget_dead_handles() -> None:
    """pgserver counts the processes using a server in a file; drop those killed without cleaning up."""
    handles = EMBEDDED_PGDATA / ".handle_pids.json"
    if not handles.exists():
        return
    try:
        pids = json.loads(handles.read_text())
    except ValueError:
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and Path(f"/proc/{pid}").exists()]
    handles.write_text(json.dumps(alive))


def start_embedded_postgres():
    """Start (or join) the private PostgreSQL under .data/pg; it stops when its last user exits."""
    # pgserver keeps its lock file in the user's runtime directory, which a bare shell may not define.
    # It must be private (0700), or platformdirs warns and falls back to /tmp.
    if "XDG_RUNTIME_DIR" not in os.environ:
        runtime_dir = DATA_DIR / "run"
        runtime_dir.mkdir(parents=True, exist_ok=True)
        runtime_dir.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
    import pgserver

    EMBEDDED_PGDATA.parent.mkdir(exist_ok=True)
    forget_dead_handles()
    say(f"starting the embedded PostgreSQL (data in {EMBEDDED_PGDATA}) ...")
    server = pgserver.get_server(EMBEDDED_PGDATA, cleanup_mode="stop")
    socket_dir = server.get_postmaster_info().socket_dir
    url = f"postgres://postgres@{quote(str(socket_dir), safe='')}/{EMBEDDED_DATABASE}"
    (DATA_DIR / "database_url").write_text(url + "\n")
    return server, url


def ensure_database_exists(url: str) -> None:
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
        "connect_timeout": 5,
    }
    params = {key: value for key, value in params.items() if value is not None}
    try:
        psycopg.connect(dbname=config["NAME"], **params).close()
        return
    except psycopg.OperationalError:
        pass  # most likely missing: create it from the maintenance database (a real outage fails there too)
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as connection:
        exists = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if not exists:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
            say(f"created database {config['NAME']!r}")


def prepare() -> tuple[object | None, dict[str, str]]:
    """Return the embedded server (or None) and the environment for child processes."""
    server = None
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        server, url = start_embedded_postgres()
    ensure_database_exists(url)
    return server, {**os.environ, "DATABASE_URL": url}


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Run a command in the foreground (it may prompt); signals are passed on to it (Stopping.handle)."""
    Stopping.child = subprocess.Popen(command, env=env, cwd=BASE_DIR)
    return Stopping.child.wait()


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=BASE_DIR, check=True)


def collect_static(env: dict[str, str], static_root: Path) -> None:
    """collectstatic, one at a time per checkout: two `make run`s at once would rewrite the same files together
    (and make test starts several). The lock is the static directory itself, so nothing else is left behind."""
    static_root.mkdir(parents=True, exist_ok=True)
    directory = os.open(static_root, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
    finally:
        os.close(directory)  # releases the lock


def serve(env: dict[str, str], config: dict) -> int:
    manage("migrate", "--noinput", env=env)
    collect_static(env, Path(config["STATIC_ROOT"]))
    if Stopping.requested():
        return Stopping.exit_status()
    # nginx is one more proxy in front of gunicorn. Behind others, it passes on the scheme they report.
    proxies = config["REST_FRAMEWORK"]["NUM_PROXIES"]
    stack = serving.Stack(
        wsgi="healthcare.wsgi",
        env={**env, "NUM_PROXIES": str(proxies + 1)},
        host=config["HOST"],
        port=config["PORT"],
        behind_proxy=proxies > 0,
        login_workers=config["LOGIN_CONCURRENCY"],
    )
    try:
        stack.start()
        stack.wait_until_serving(should_stop=Stopping.requested)
        if not Stopping.requested():
            url = stack.url
            workers = f"{config['WEB_CONCURRENCY']} gunicorn worker" + ("s" if config["WEB_CONCURRENCY"] > 1 else "")
            if config["LOGIN_CONCURRENCY"]:
                workers += f" and {config['LOGIN_CONCURRENCY']} for logins"
            say(
                f"""
  healthcare-backend is serving on {url}  (nginx, with {workers} behind it)
    API        {url}/api/
    API docs   {url}/api/docs/
    Admin      {url}/admin/   (create an account with: make superuser)
  Press Ctrl-C to stop.
""",
                prefix="",
            )
        while not Stopping.requested():
            if problem := stack.exited():
                return fail(f"{problem}; stopping the rest")
            time.sleep(0.2)
        return Stopping.exit_status()
    except RuntimeError as error:
        return fail(str(error))
    finally:
        stack.stop()


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        action = serve
    elif argv[:2] == ["run", "--"] and len(argv) > 2:

        def action(env, _config):
            return run_child(argv[2:], env)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    for signum in STOP_SIGNALS:
        signal.signal(signum, Stopping.handle)
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    ensure_secret_key()
    try:
        config = read_settings()
    except ImproperlyConfigured as error:
        return fail(str(error))
    if action is serve:
        problem = serving.listen_problem(config["HOST"], config["PORT"])
        if problem is None and serving.find_nginx() is None:
            problem = "nginx is not installed: `make run` installs it (Debian: apt-get install nginx)"
        if problem:
            return fail(problem)
    server, env = prepare()
    try:
        if Stopping.requested():
            return Stopping.exit_status()
        return action(env, config)
    except subprocess.CalledProcessError as error:
        return error.returncode
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
