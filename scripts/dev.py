"""Local set-up behind `make run` and `make test`: a secret key, a database, then the server or a command.

    python scripts/dev.py serve          migrate, collect static files, serve with gunicorn
    python scripts/dev.py run -- CMD...  run CMD with DATABASE_URL pointing at a ready database

The database is DATABASE_URL (environment or .env) when set; it is created if missing. Otherwise a
private PostgreSQL from the `pgserver` package runs with its data under .data/pg, and is stopped again
when the last command using it exits. Ctrl-C or SIGTERM stops everything this script started.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent
load_dotenv(BASE_DIR / ".env", override=False)
DATA_DIR = Path(os.environ.get("DATA_DIR", "").strip() or BASE_DIR / ".data")
EMBEDDED_PGDATA = DATA_DIR / "pg"
EMBEDDED_DATABASE = "healthcare"


def say(message: str) -> None:
    print(f"[dev] {message}", flush=True)


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
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    ensure_secret_key()
    server = None
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        server, url = start_embedded_postgres()
    ensure_database_exists(url)
    return server, {**os.environ, "DATABASE_URL": url}


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Run a command; pass SIGINT/SIGTERM on to it and wait for it to finish."""
    child = subprocess.Popen(command, env=env, cwd=BASE_DIR)

    def forward(signum, _frame):
        if child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    return child.wait()


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], env=env, cwd=BASE_DIR, check=True)


def serve(env: dict[str, str]) -> int:
    manage("migrate", "--noinput", env=env)
    manage("collectstatic", "--noinput", "--verbosity", "0", env=env)
    host, port = env.get("HOST", "127.0.0.1"), env.get("PORT", "8000")
    print(
        f"""
  healthcare-backend is starting on http://{host}:{port}
    API        http://{host}:{port}/api/
    API docs   http://{host}:{port}/api/docs/
    Admin      http://{host}:{port}/admin/   (create an account with: make superuser)
  Press Ctrl-C to stop.
""",
        flush=True,
    )
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    return run_child([gunicorn, "--config", "gunicorn.conf.py", "healthcare.wsgi"], env)


def interrupt(_signum, _frame):
    raise KeyboardInterrupt


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, interrupt)
    if argv[:1] == ["serve"]:
        action = serve
    elif argv[:2] == ["run", "--"] and len(argv) > 2:

        def action(env):
            return run_child(argv[2:], env)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    server, env = prepare()
    try:
        return action(env)
    except subprocess.CalledProcessError as error:
        return error.returncode
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
