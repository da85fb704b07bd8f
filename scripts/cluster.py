"""`make cluster`: the app as several instances on one machine, with everything they share, as in production.

    python scripts/cluster.py            start it all; Ctrl-C (or SIGTERM) stops it all, in order

    nginx on $HOST:$PORT ──> instance 1, 2, 3 (gunicorn, each on its own 127.0.0.1 port)
                                  │ writes, and reads just after a write    │ other reads      │ throttles,
                                  v                                         v                  v revocations
                             PostgreSQL primary ──(streaming)──> PostgreSQL replica          Redis

PostgreSQL runs from the binaries of the embedded `pgserver` package (the same for primary and replica, as
streaming replication needs), with its data under .data/cluster/: the primary's is kept between runs, the
replica is copied afresh from it (pg_basebackup -R) at every start. Redis keeps nothing on disk. nginx has no
active health checks in its open-source version: a thread here (HealthChecks) asks each instance for
/api/ready/ every 200 ms and, when an answer changes, rewrites the upstream (`down` for an instance that is
not ready) and reloads nginx gracefully. Every process is a child of this one, in a session of its own,
stopped in order on Ctrl-C and sent SIGTERM by the kernel should this process die without doing so.

Importable: scripts/cluster_drill.py and benchmarks/cluster.py start the same Cluster in-process.
"""

import contextlib
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import dev
import serving

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE = "healthcare"
INSTANCES = 3
READY_PATH = "/api/ready/"
CHECK_INTERVAL_SECONDS = 0.2
CHECK_TIMEOUT_SECONDS = 1.0
DRAIN_SECONDS = 2  # each instance answers /api/ready/ 503 this long after SIGTERM, then stops
WEB_CONCURRENCY = 2  # gunicorn workers per instance: three instances share the machine's cores
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 20
# The instances' servers in nginx. max_fails=0: during an outage of the database they share, every instance
# answers reads 503; nginx would count them all failed and answer 502 to everything for fail_timeout. The health
# checks decide instead, and a request that cannot connect is passed to the next instance anyway.
UPSTREAM_OPTIONS = "max_fails=0"


def say(message: str) -> None:
    print(f"[cluster] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Accept": "application/json"})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def start_child(command: list[str], *, log: Path, env: dict | None = None, user: str | None = None):
    """A child in a session of its own that dies with this process (serving.own_session_dying_with_parent).

    The kernel sends that SIGTERM when the *thread* that started the child ends: call this from the main
    thread (or one that lives as long as the cluster).
    """
    with log.open("ab") as output:
        return subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=env,
            user=user,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            preexec_fn=serving.own_session_dying_with_parent,
        )


def tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------- PostgreSQL


class PostgresBinaries:
    """pgserver's PostgreSQL, run as the user pgserver runs it as: PostgreSQL refuses to run as root."""

    def __init__(self):
        # pgserver, on import, looks for the user's runtime directory, which a bare shell may not define.
        if "XDG_RUNTIME_DIR" not in os.environ:
            runtime_dir = dev.DATA_DIR / "run"
            runtime_dir.mkdir(parents=True, exist_ok=True)
            runtime_dir.chmod(0o700)
            os.environ["XDG_RUNTIME_DIR"] = str(runtime_dir)
        from pgserver import _commands, utils

        self.bin = Path(_commands.POSTGRES_BIN_PATH)
        self.user = None
        if os.geteuid() == 0:
            import stat

            self.user = "pgserver"
            utils.ensure_user_exists(self.user)
            readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            utils.ensure_prefix_permissions(self.bin)
            utils.ensure_folder_permissions(self.bin, readable)
            utils.ensure_folder_permissions(self.bin.parent / "lib", readable)
            self._utils = utils

    def own(self, directory: Path) -> None:
        """An empty or existing data directory, private to PostgreSQL's user, reachable through its parents."""
        directory.mkdir(parents=True, exist_ok=True)
        if self.user is not None:
            import pwd

            entry = pwd.getpwnam(self.user)
            self._utils.ensure_prefix_permissions(directory)
            os.chown(directory, entry.pw_uid, entry.pw_gid)
        directory.chmod(0o700)

    def run(self, program: str, *args: str, log: Path) -> None:
        with log.open("ab") as output:
            finished = subprocess.run(
                [str(self.bin / program), *args], user=self.user, cwd="/", stdout=output, stderr=subprocess.STDOUT
            )
        if finished.returncode != 0:
            raise RuntimeError(f"{program} failed (exit status {finished.returncode}):\n{tail(log)}")


@dataclass
class PostgresNode:
    """One PostgreSQL server on a private 127.0.0.1 port (no unix socket: no directory to share)."""

    name: str
    binaries: PostgresBinaries
    data_dir: Path
    port: int
    log: Path
    process: subprocess.Popen | None = None

    def url(self, database: str = DATABASE) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = DATABASE, **options):
        import psycopg

        return psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname=database, **options)

    def start(self) -> None:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": "",
            "wal_level": "replica",
            "max_wal_senders": "5",
            "wal_keep_size": "256MB",  # the replica catches up after a pause without a replication slot
            "hot_standby": "on",
            "hot_standby_feedback": "on",  # long reads on the replica are not cancelled by the primary's vacuum
        }
        options = [f"--{key.replace('_', '-')}={value}" for key, value in settings.items()]
        self.process = start_child(
            [str(self.binaries.bin / "postgres"), "-D", str(self.data_dir), *options],
            log=self.log,
            user=self.binaries.user,
        )

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"PostgreSQL {self.name} stopped (exit status {self.process.returncode}):\n{tail(self.log)}"
                )
            try:
                self.connect("postgres", connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL {self.name} did not start within {timeout:.0f} s") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, transactions rolled back."""
        if self.process is not None:
            serving.stop_process(self.process, signal.SIGINT, STOP_TIMEOUT_SECONDS)


# ------------------------------------------------------------------------------------------------ Redis


@dataclass
class Redis:
    port: int
    log: Path
    process: subprocess.Popen | None = None
    paused: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        redis_server = shutil.which("redis-server") or "/usr/bin/redis-server"
        # Nothing on disk (a cache and counters that live minutes), and never an eviction: a throttle counter
        # or a revocation pushed out by other keys would be a hole, so a full Redis refuses writes instead.
        self.process = start_child(
            [
                redis_server,
                *("--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"),
                *("--maxmemory", "256mb", "--maxmemory-policy", "noeviction", "--dir", str(self.log.parent)),
            ],
            log=self.log,
        )
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{tail(self.log)}")
            time.sleep(0.05)

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel and never answered, as with a hung server."""
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        if self.process is not None:
            if self.paused:
                self.resume()
            serving.stop_process(self.process, signal.SIGTERM, STOP_TIMEOUT_SECONDS)


# --------------------------------------------------------------------------------------------- instances


@dataclass
class Instance:
    """One gunicorn (master and workers), as the contract of the app says an instance is started."""

    number: int
    port: int
    env: dict[str, str]
    log: Path
    metrics_dir: Path
    process: subprocess.Popen | None = None

    @property
    def name(self) -> str:
        return f"instance {self.number}"

    def start(self) -> None:
        # Prometheus's multiprocess files belong to one run of one instance: stale ones would add up.
        shutil.rmtree(self.metrics_dir, ignore_errors=True)
        self.metrics_dir.mkdir(parents=True)
        gunicorn = str(Path(sys.executable).parent / "gunicorn")
        command = [gunicorn, "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}", "healthcare.wsgi"]
        self.process = start_child(command, log=self.log, env=self.env)

    def ready(self) -> bool:
        return readiness(self.port) == READY

    def wait_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} stopped (exit status {self.process.returncode}):\n{tail(self.log)}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} was not ready within {timeout:.0f} s:\n{tail(self.log)}")
            time.sleep(0.1)

    def terminate(self) -> None:
        """SIGTERM to the master: it drains (DRAIN_SECONDS), then stops gracefully."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """Until the master has exited; SIGKILL after `timeout`. No second SIGTERM: it would cut the drain short."""
        if self.process is not None:
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL to the master and its workers at once (its own session: one process group); returns once the
        port refuses connections (a dying worker keeps the listening socket, and its queue, a moment longer)."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                except OSError:
                    return
                time.sleep(0.005)


# ---------------------------------------------------------------------------------------- health checks


READY, DRAINING, UNREADY, UNREACHABLE = "ready", "draining", "not ready", "unreachable"


def readiness(port: int) -> str:
    try:
        status, body = http_get(port, READY_PATH, CHECK_TIMEOUT_SECONDS)
    except (OSError, http.client.HTTPException):
        return UNREACHABLE
    if status == 200:
        return READY
    return DRAINING if b"draining" in body else UNREADY


def routed_instances(states: dict[int, str]) -> set[int]:
    """The instances nginx may send requests to: the ready ones. When none is ready (the database or Redis,
    which they share, is down), every one that is neither draining nor gone: each then answers for itself
    (503 with Retry-After, or what it can serve), which beats nginx's 502 for everything."""
    ready = {number for number, state in states.items() if state == READY}
    if ready:
        return ready
    alive = {number for number, state in states.items() if state == UNREADY}
    return alive or set(states)


class HealthChecks(threading.Thread):
    """Polls every instance's /api/ready/; on a change, marks the others `down` in nginx and reloads it."""

    def __init__(self, cluster: "Cluster"):
        super().__init__(name="health-checks", daemon=True)
        self.cluster = cluster
        self.stopping = threading.Event()
        self.states: dict[int, str] = {}
        self.routed: set[int] = set()
        self.changes: list[tuple[float, str]] = []  # (monotonic time, what changed), for the drill
        self.lock = threading.Lock()

    def check_once(self) -> None:
        states = {instance.number: readiness(instance.port) for instance in self.cluster.instances}
        routed = routed_instances(states)
        with self.lock:
            if states != self.states:
                changed = [
                    f"{n} {self.states.get(n, 'new')} -> {s}" for n, s in states.items() if self.states.get(n) != s
                ]
                self.changes.append((time.monotonic(), "; ".join(changed)))
                self.states = states
            if routed != self.routed:
                self.cluster.write_nginx_config(routed)
                self.cluster.reload_nginx()
                self.routed = routed
                self.changes.append((time.monotonic(), f"nginx routes to {sorted(routed)}"))

    def run(self) -> None:
        while not self.stopping.wait(CHECK_INTERVAL_SECONDS):
            try:
                self.check_once()
            except Exception as error:  # keep checking: nginx must follow the instances
                say(f"health check failed: {error!r}")

    def wait_routed(self, expected: set[int], timeout: float = 10.0) -> float:
        """Seconds until nginx routes to exactly `expected` (RuntimeError after `timeout`)."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            with self.lock:
                if self.routed == expected:
                    return time.monotonic() - started
            time.sleep(0.02)
        raise RuntimeError(f"nginx routes to {sorted(self.routed)}, not {sorted(expected)}, after {timeout:.0f} s")

    def stop(self) -> None:
        self.stopping.set()
        if self.is_alive():
            self.join(5)


# ------------------------------------------------------------------------------------------------ cluster


@dataclass
class Cluster:
    """Everything `make cluster` runs. start() then stop(); stop() also undoes a start() that failed halfway."""

    data_dir: Path  # PostgreSQL's data (primary/, replica/) and the logs (logs/)
    host: str = "127.0.0.1"
    port: int = 8000
    instances_count: int = INSTANCES
    web_concurrency: int = WEB_CONCURRENCY
    drain_seconds: int = DRAIN_SECONDS
    app_env: dict[str, str] = field(default_factory=dict)  # added to every instance's environment
    proxies_in_front: int = 0  # trusted proxies in front of nginx (NUM_PROXIES of `make run`)

    def __post_init__(self):
        self.logs = self.data_dir / "logs"
        self.runtime_dir: Path | None = None
        self.primary: PostgresNode | None = None
        self.replica: PostgresNode | None = None
        self.redis: Redis | None = None
        self.instances: list[Instance] = []
        self.nginx: subprocess.Popen | None = None
        self.health: HealthChecks | None = None

    # -------------------------------------------------------------------------------------------- start

    def start(self) -> None:
        if serving.find_nginx() is None:
            raise RuntimeError("nginx is not installed (`make cluster` installs it; Debian: apt-get install nginx)")
        if shutil.which("redis-server") is None and not Path("/usr/bin/redis-server").exists():
            raise RuntimeError("redis-server is not installed (`make cluster` installs it; Debian: redis-server)")
        self.logs.mkdir(parents=True, exist_ok=True)
        # Private to this user; 0711 so that nginx's workers, which drop root's privileges, reach their files.
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="healthcare-cluster-"))
        self.runtime_dir.chmod(0o711)
        self.start_postgres()
        self.redis = Redis(free_port(), self.logs / "redis.log")
        self.redis.start()
        env = self.instance_env_base()
        say("migrating the primary ...")
        migrate = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "--verbosity", "0"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"migrate failed:\n{migrate.stdout}{migrate.stderr}")
        with mock.patch.dict(os.environ, env, clear=True):
            static_root = Path(dev.read_settings()["STATIC_ROOT"])
        with contextlib.redirect_stdout(sys.stderr):
            dev.collect_static(env, static_root)
        for number in range(1, self.instances_count + 1):
            port = free_port()
            instance = Instance(
                number,
                port,
                {**env, "PORT": str(port), "PROMETHEUS_MULTIPROC_DIR": str(self.runtime_dir / f"metrics-{number}")},
                self.logs / f"instance-{number}.log",
                self.runtime_dir / f"metrics-{number}",
            )
            self.instances.append(instance)
            instance.start()
        say(f"starting {self.instances_count} instances ({self.web_concurrency} gunicorn workers each) ...")
        for instance in self.instances:
            instance.wait_ready()
        self.write_nginx_config({instance.number for instance in self.instances})
        self.nginx = start_child(
            [serving.find_nginx(), "-p", str(self.runtime_dir), "-c", str(self.nginx_conf), "-e", "stderr"],
            log=self.logs / "nginx.log",
        )
        self.health = HealthChecks(self)
        self.health.check_once()
        self.health.start()
        self.wait_serving()

    def start_postgres(self) -> None:
        binaries = PostgresBinaries()
        primary_dir, replica_dir = self.data_dir / "primary", self.data_dir / "replica"
        self.primary = PostgresNode("primary", binaries, primary_dir, free_port(), self.logs / "primary.log")
        if not (primary_dir / "PG_VERSION").exists():
            say(f"creating the primary's data directory ({primary_dir}) ...")
            shutil.rmtree(primary_dir, ignore_errors=True)
            binaries.own(primary_dir)
            binaries.run(
                "initdb",
                *("-D", str(primary_dir), "-U", "postgres", "--auth=trust", "--encoding=utf8"),
                log=self.primary.log,
            )
        binaries.own(primary_dir)
        say(f"starting the PostgreSQL primary on 127.0.0.1:{self.primary.port} ...")
        self.primary.start()
        self.primary.wait_ready()
        with self.primary.connect("postgres", autocommit=True) as connection:
            if not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE]).fetchone():
                connection.execute(f"CREATE DATABASE {DATABASE}")
        # The replica is copied afresh every time: nothing to reconcile with a primary that moved on meanwhile.
        self.replica = PostgresNode("replica", binaries, replica_dir, free_port(), self.logs / "replica.log")
        shutil.rmtree(replica_dir, ignore_errors=True)
        binaries.own(replica_dir)
        say(f"copying the primary to the replica (pg_basebackup -R), then starting it on 127.0.0.1:{self.replica.port}")
        binaries.run(
            "pg_basebackup",
            *("-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres", "-D", str(replica_dir)),
            *("-R", "-X", "stream", "--checkpoint=fast"),
            log=self.replica.log,
        )
        self.replica.start()
        self.replica.wait_ready()

    def instance_env_base(self) -> dict[str, str]:
        """The environment every instance shares (the contract's variables); PORT and the metrics dir differ."""
        return {
            **os.environ,
            "DATABASE_URL": self.primary.url(),
            "DATABASE_REPLICA_URL": self.replica.url(),
            "REDIS_URL": self.redis.url,
            "DRAIN_SECONDS": str(self.drain_seconds),
            "WEB_CONCURRENCY": str(self.web_concurrency),
            "HOST": "127.0.0.1",
            # nginx is one more proxy in front of each instance (as with make run).
            "NUM_PROXIES": str(self.proxies_in_front + 1),
            **self.app_env,
        }

    # ------------------------------------------------------------------------------------------- nginx

    @property
    def nginx_conf(self) -> Path:
        return self.runtime_dir / "nginx.conf"

    def write_nginx_config(self, routed: set[int]) -> None:
        """The upstream with every instance, those not in `routed` marked down; replaced atomically."""
        servers = [
            f"127.0.0.1:{instance.port} {UPSTREAM_OPTIONS}" + ("" if instance.number in routed else " down")
            for instance in self.instances
        ]
        text = serving.nginx_config(
            listen=serving.authority(self.host, self.port),
            runtime_dir=self.runtime_dir,
            app_servers=servers,
            behind_proxy=self.proxies_in_front > 0,
        )
        new = self.nginx_conf.with_suffix(".new")
        new.write_text(text)
        new.replace(self.nginx_conf)

    def reload_nginx(self) -> None:
        """SIGHUP: nginx starts workers with the new configuration; the old ones finish their requests."""
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGHUP)

    @property
    def url(self) -> str:
        return f"http://{serving.local_authority(self.host, self.port)}"

    def wait_serving(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        host, port = serving.local_authority(self.host, self.port).rsplit(":", 1)
        while time.monotonic() < deadline:
            if self.nginx.poll() is not None:
                raise RuntimeError(
                    f"nginx stopped (exit status {self.nginx.returncode}):\n{tail(self.logs / 'nginx.log')}"
                )
            connection = http.client.HTTPConnection(host.strip("[]"), int(port), timeout=5)
            try:
                connection.request("GET", "/api/health/")
                if connection.getresponse().status == 200:
                    return
            except OSError:
                pass
            finally:
                connection.close()
            time.sleep(0.1)
        raise RuntimeError(f"nginx did not answer on {self.url} within {timeout:.0f} s")

    # ------------------------------------------------------------------------------------------ state

    def exited(self) -> str | None:
        """What stopped on its own, if anything did (instances restarted by the drill are not asked)."""
        for name, process in (
            ("nginx", self.nginx),
            ("redis-server", self.redis and self.redis.process),
            ("the PostgreSQL primary", self.primary and self.primary.process),
            ("the PostgreSQL replica", self.replica and self.replica.process),
        ):
            if process is not None and process.poll() is not None:
                return f"{name} stopped (exit status {process.returncode})"
        return None

    def banner(self) -> str:
        instances = "\n".join(
            f"    instance {i.number}   http://127.0.0.1:{i.port}   gunicorn, {self.web_concurrency} workers, "
            f"log {i.log}"
            for i in self.instances
        )
        return f"""
  healthcare-backend cluster, serving on {self.url}  (nginx in front of {len(self.instances)} instances)
    nginx        {self.url}   health checks every {CHECK_INTERVAL_SECONDS * 1000:.0f} ms on {READY_PATH}
{instances}
    PostgreSQL   primary  {self.primary.url()}   (data {self.primary.data_dir})
                 replica  {self.replica.url()}   (streaming from the primary)
    Redis        {self.redis.url}   (nothing kept on disk)
    Logs         {self.logs}/
  Press Ctrl-C to stop everything.
"""

    # ------------------------------------------------------------------------------------------- stop

    def stop(self) -> None:
        """nginx first (nothing new comes in), the health checks, the instances (all draining at once), then
        what they use: Redis, the replica, the primary."""
        if self.nginx is not None:
            serving.stop_process(self.nginx, signal.SIGQUIT)
        if self.health is not None:
            self.health.stop()
        for instance in self.instances:
            instance.terminate()
        for instance in self.instances:
            instance.wait_stopped()
        for component in (self.redis, self.replica, self.primary):
            if component is not None:
                component.stop()
        if self.runtime_dir is not None:
            shutil.rmtree(self.runtime_dir, ignore_errors=True)


def main() -> int:
    for signum in dev.STOP_SIGNALS:
        signal.signal(signum, dev.Stopping.handle)
    dev.DATA_DIR.mkdir(parents=True, exist_ok=True)
    dev.ensure_secret_key()
    try:
        config = dev.read_settings()
    except dev.ImproperlyConfigured as error:
        return dev.fail(str(error))
    if problem := serving.listen_problem(config["HOST"], config["PORT"]):
        return dev.fail(problem.replace("make run", "make cluster"))
    cluster = Cluster(
        data_dir=dev.DATA_DIR / "cluster",
        host=config["HOST"],
        port=config["PORT"],
        web_concurrency=int(os.environ.get("WEB_CONCURRENCY") or WEB_CONCURRENCY),
        drain_seconds=int(os.environ.get("DRAIN_SECONDS") or DRAIN_SECONDS),
        proxies_in_front=config["REST_FRAMEWORK"]["NUM_PROXIES"],
    )
    try:
        cluster.start()
        if not dev.Stopping.requested():
            print(cluster.banner(), flush=True)
        while not dev.Stopping.requested():
            if problem := cluster.exited():
                return dev.fail(f"{problem}; stopping the rest")
            # As a process supervisor would: an instance that died (kill -9, a crash) is started again; the
            # health checks route to it once it is ready.
            for instance in cluster.instances:
                if instance.process.poll() is not None:
                    say(f"{instance.name} exited (status {instance.process.returncode}); starting it again")
                    instance.start()
            time.sleep(0.2)
        return dev.Stopping.exit_status()
    except (RuntimeError, subprocess.CalledProcessError) as error:
        return dev.fail(str(error))
    finally:
        say("stopping: nginx, the instances, Redis, the replica, the primary ...")
        cluster.stop()
        say("stopped")


if __name__ == "__main__":
    sys.exit(main())
