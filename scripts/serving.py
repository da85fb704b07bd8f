"""nginx in front of gunicorn: how `make run` serves the app, and how `make bench` measures it.

gunicorn listens on a unix socket in a private temporary directory; nginx listens on HOST:PORT and passes it
only whole requests (deploy/nginx.conf.template says why). Both run as children of the calling process, each
in a session of its own: a terminal's Ctrl-C or hang-up reaches only the caller, which stops them in order
(Stack.stop), and the kernel sends them SIGTERM should the caller die without doing so.
"""

import contextlib
import ctypes
import errno
import http.client
import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
NGINX_TEMPLATE = BASE_DIR / "deploy" / "nginx.conf.template"
PLACEHOLDER = re.compile(r"\{\{ (\w+) \}\}")
# Paths go into nginx's configuration unquoted; a temporary directory's name never needs quoting.
SAFE_PATH = re.compile(r"[\w./-]+")
PR_SET_PDEATHSIG = 1
# The login pool's niceness: under load its password hashes take the CPU the app's workers leave.
LOGIN_NICENESS = 10
STOP_TIMEOUT_SECONDS = 15


def find_nginx() -> str | None:
    """Debian installs nginx in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


def authority(host: str, port: int) -> str:
    """host:port as nginx's `listen` and URLs write it: an IPv6 address in brackets."""
    with contextlib.suppress(ValueError):
        if ipaddress.ip_address(host).version == 6:
            return f"[{host}]:{port}"
    return f"{host}:{port}"


def local_authority(host: str, port: int) -> str:
    """Where this machine reaches a server listening on host:port (a wildcard address means loopback)."""
    return authority({"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host), port)  # noqa: S104 (a name, not a bind)


def listen_problem(host: str, port: int) -> str | None:
    """Why nginx could not listen on host:port, or None: checked before anything slow starts."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return f"HOST={host} is neither an IP address nor a name this machine resolves."
    for family, kind, protocol, _, address in addresses:
        with socket.socket(family, kind, protocol) as probe:
            # As nginx binds: a socket of a server just stopped (TIME_WAIT) does not count.
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    return (
                        f"port {port} on {host} is already in use (another `make run`?). "
                        f"Choose another port: PORT={port + 1 if port < 65535 else 8001} make run"
                    )
                if error.errno == errno.EACCES:
                    return f"no permission to listen on port {port} (below 1024: root only). Choose another PORT."
                return f"cannot listen on {authority(host, port)}: {error.strerror}. Check HOST and PORT."
    return None


def nginx_config(
    *,
    listen: str,
    runtime_dir: Path,
    app_sockets: list[Path] = (),
    app_servers: list[str] = (),
    login_sockets: list[Path] = (),
    behind_proxy: bool = False,
) -> str:
    """The template, filled in. The upstream: `app_sockets` (unix sockets) and `app_servers` (nginx `server`
    lines without the word, e.g. "127.0.0.1:8001 max_fails=0 down"). `login_sockets`: the login pool's, if any
    (else logins go to the app's upstream servers). `behind_proxy`: a trusted proxy in front says whether the
    client used https."""
    for path in (runtime_dir, *app_sockets, *login_sockets):
        if not SAFE_PATH.fullmatch(str(path)):
            raise RuntimeError(f"unexpected characters in {path}; set TMPDIR to a plain path")
    servers = [f"unix:{path}" for path in app_sockets] + list(app_servers)
    login_servers = [f"unix:{path}" for path in login_sockets] or servers
    values = {
        "listen": listen,
        "runtime_dir": str(runtime_dir),
        "worker_processes": "1",  # ample for one machine's gunicorn workers (see benchmarks/TUNING.md)
        "upstream_servers": "\n".join(f"        server {server};" for server in servers),
        "login_upstream_servers": "\n".join(f"        server {server};" for server in login_servers),
        "forwarded_proto": "$http_x_forwarded_proto" if behind_proxy else "$scheme",
    }
    return PLACEHOLDER.sub(lambda match: values[match[1]], NGINX_TEMPLATE.read_text())


def own_session_dying_with_parent() -> None:
    """In the child before exec: a session of its own (terminal signals reach only the parent, which stops it
    in order), and SIGTERM when the parent dies, so that not even a killed parent leaves it running."""
    os.setsid()
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def own_session_at_login_priority() -> None:
    """As own_session_dying_with_parent, at a lower CPU priority (LOGIN_NICENESS), for the login pool."""
    own_session_dying_with_parent()
    os.nice(LOGIN_NICENESS)


def stop_process(process: subprocess.Popen, signum: int, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signum)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class Stack:
    """gunicorn serving `wsgi` on a unix socket, behind nginx on host:port; stop() stops both.

    With `login_workers`, a second gunicorn with that many workers, at a lower CPU priority, serves the paths
    that hash a password (deploy/nginx.conf.template routes them to it): a burst of logins then takes the CPU
    the app's workers leave instead of stalling them. 0: the app's workers serve logins too.
    """

    def __init__(
        self,
        *,
        wsgi: str,
        env: dict[str, str],
        host: str,
        port: int,
        behind_proxy: bool = False,
        login_workers: int = 0,
    ):
        self.wsgi, self.env, self.host, self.port = wsgi, env, host, port
        self.behind_proxy = behind_proxy
        self.login_workers = login_workers
        self.runtime_dir: Path | None = None
        self.gunicorn: subprocess.Popen | None = None
        self.login_gunicorn: subprocess.Popen | None = None
        self.nginx: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{local_authority(self.host, self.port)}"

    def start(self, *, output=None) -> None:
        """Start gunicorn, then nginx; `output`: a file for both processes' output (default: inherited)."""
        nginx = find_nginx()
        if nginx is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx; `make run` installs it)")
        # Private to this user; 0711 so that nginx's workers, which drop root's privileges, reach the socket.
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="healthcare-serve-"))
        self.runtime_dir.chmod(0o711)
        app_socket = self.runtime_dir / "gunicorn.sock"
        login_socket = self.runtime_dir / "gunicorn-login.sock"
        config = self.runtime_dir / "nginx.conf"
        config.write_text(
            nginx_config(
                listen=authority(self.host, self.port),
                runtime_dir=self.runtime_dir,
                app_sockets=[app_socket],
                login_sockets=[login_socket] if self.login_workers else (),
                behind_proxy=self.behind_proxy,
            )
        )
        gunicorn = [str(Path(sys.executable).parent / "gunicorn"), "--config", "gunicorn.conf.py"]
        common = {"cwd": BASE_DIR, "stdout": output, "stderr": subprocess.STDOUT if output else None}
        self.gunicorn = subprocess.Popen(
            [*gunicorn, "--bind", f"unix:{app_socket}", self.wsgi],
            env=self.env,
            preexec_fn=own_session_dying_with_parent,
            **common,
        )
        sockets = [app_socket]
        if self.login_workers:
            self.login_gunicorn = subprocess.Popen(
                [*gunicorn, "--workers", str(self.login_workers), "--bind", f"unix:{login_socket}", self.wsgi],
                env=self.env,
                preexec_fn=own_session_at_login_priority,
                **common,
            )
            sockets.append(login_socket)
        # gunicorn's master binds at once (its workers boot after): nginx starts with somewhere to connect to.
        deadline = time.monotonic() + 30
        while not all(path.exists() for path in sockets):
            if self.exited() or time.monotonic() > deadline:
                raise RuntimeError(self.exited() or "gunicorn did not open its socket within 30 s")
            time.sleep(0.05)
        self.nginx = subprocess.Popen(
            [nginx, "-p", str(self.runtime_dir), "-c", str(config), "-e", "stderr"],
            preexec_fn=own_session_dying_with_parent,
            **common,
        )

    def exited(self) -> str | None:
        """The name and exit status of a process that stopped on its own, if one did."""
        for name, process in (
            ("gunicorn", self.gunicorn),
            ("login gunicorn", self.login_gunicorn),
            ("nginx", self.nginx),
        ):
            if process is not None and process.poll() is not None:
                return f"{name} stopped (exit status {process.returncode})"
        return None

    def wait_until_serving(self, timeout: float = 60, *, should_stop=lambda: False) -> None:
        """Until the app answers through nginx (anything but nginx's own 502 while gunicorn's workers boot)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not should_stop():
            if problem := self.exited():
                raise RuntimeError(problem)
            connection = http.client.HTTPConnection(local_authority(self.host, self.port), timeout=5)
            try:
                connection.request("GET", "/api/health/")
                if connection.getresponse().status != http.client.BAD_GATEWAY:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        if not should_stop():
            raise RuntimeError(f"the server did not answer on {self.url} within {timeout:.0f} s")

    def stop(self) -> None:
        """nginx first, so that nothing new reaches gunicorn; both gracefully (requests under way finish)."""
        if self.nginx is not None:
            stop_process(self.nginx, signal.SIGQUIT)
        for process in (self.gunicorn, self.login_gunicorn):
            if process is not None:
                stop_process(process, signal.SIGTERM)
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)
