"""The cluster's patient-list throughput next to a single instance's; appended to BENCHMARKS.md as "## Cluster".

    python -m benchmarks.cluster             (make bench runs it after benchmarks.run)
    BENCH_QUICK=1 python -m benchmarks.cluster   shorter rounds; into .data/bench/BENCHMARKS-quick.md

Starts `make cluster`'s Cluster (scripts/cluster.py) in a temporary directory, seeds 10k patients in its primary
as benchmarks/run.py does, and runs wrk on GET /api/patients/ at 8 connections, as one staff user, against:

  cluster    nginx in front of the three instances (each with its Redis, replica and primary)
  instance   one of those instances directly, without nginx: gunicorn, Redis and the replica as in the cluster
  make run   nginx in front of one gunicorn (file caches, the primary only), started as make run starts it
             (scripts/serving.py), with as many workers as the cluster has in all (6)

BENCHMARKS.md is rewritten by benchmarks/run.py; this section goes after what it writes (replacing an earlier
"## Cluster" section), so make bench has both.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.run import (
    AUTH_THROTTLE_RATE,
    OUTPUT,
    QUICK,
    OtherLoad,
    Round,
    ensure_staff_user,
    fetch,
    interrupt,
    log_in,
    run_wrk,
    seed,
)

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR / "scripts"))
import cluster as cluster_module  # noqa: E402 (scripts/ is not a package: its modules import each other by name)
import serving  # noqa: E402

CONNECTIONS = 8
PATIENTS = 10_000
PATH = "/api/patients/"
WARMUP_SECONDS = 1 if QUICK else 2
ROUNDS = 1 if QUICK else 3
ROUND_SECONDS = 2 if QUICK else 5
HEADING = "## Cluster"


def say(message: str) -> None:
    print(f"[bench cluster] {message}", flush=True)


@dataclass
class Target:
    name: str
    description: str
    port: int
    workers: int
    median: Round | None = None
    rounds: list[Round] | None = None


def measure(targets: list[Target], token: str, meter: OtherLoad) -> None:
    """Rounds taken in turn (one of each target, then again), so that other processes' load falls on all alike."""
    for target in targets:
        run_wrk(target.port, PATH, CONNECTIONS, WARMUP_SECONDS, token, None)
        target.rounds = []
    for _ in range(ROUNDS):
        for target in targets:
            meter.wait_until_quiet()
            result, other = meter.during(lambda: run_wrk(target.port, PATH, CONNECTIONS, ROUND_SECONDS, token, None))  # noqa: B023
            result.other_load = other
            target.rounds.append(result)
    for target in targets:
        target.median = sorted(target.rounds, key=lambda r: r.requests_per_second)[len(target.rounds) // 2]
        say(
            f"{target.name}: {target.median.requests_per_second:.1f} req/s, p50 {target.median.p50_ms:.1f} ms, "
            f"p99 {target.median.p99_ms:.1f} ms, {target.median.errors} errors"
        )


def section(targets: list[Target], seconds: float, load_average: str) -> str:
    rows = "\n".join(
        f"| {t.name} | {t.description} | {t.workers} | {t.median.requests_per_second:.1f} | {t.median.p50_ms:.2f} | "
        f"{t.median.p99_ms:.2f} | {t.median.errors} | {', '.join(f'{r.requests_per_second:.0f}' for r in t.rounds)} | "
        f"{statistics.mean(r.other_load for r in t.rounds):.0f}% |"
        for t in targets
    )
    by_name = {t.name: t for t in targets}
    cluster, single = by_name["cluster"], by_name["make run"]
    ratio = cluster.median.requests_per_second / single.median.requests_per_second * 100
    other = statistics.mean(r.other_load for t in targets for r in t.rounds)
    if ratio <= 105:
        verdict = (
            "Three instances on two cores are not faster: every worker already competes for the same two cores "
            "with PostgreSQL, so more processes add no capacity. What the difference shows is the cost of the "
            "cluster's parts: the Redis round trips of the throttle, revocation and count-cache checks, the "
            "replica's reads, and nginx spreading requests over three upstreams by TCP."
        )
    else:
        verdict = (
            "The cluster came out ahead here, within the noise of a shared machine (the rounds of each server vary "
            "by as much). Three instances on two cores add no capacity (every worker competes for the same two "
            "cores with PostgreSQL); on a quiet machine the difference is the cost of the cluster's parts (Redis "
            "round trips, replica reads, nginx over TCP)."
        )
    noisy = (
        f" Other processes used {other:.0f}% of the CPU during these rounds on average: compare with care."
        if other > 10
        else ""
    )
    return f"""{HEADING}

Written by `python -m benchmarks.cluster` (`make bench`, after the above) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in \
{seconds / 60:.1f} minutes; load average at the start {load_average}. GET /api/patients/ at {PATIENTS // 1000}k \
patients, {CONNECTIONS} connections, as one staff user (full pages of 50): wrk, one thread, a {WARMUP_SECONDS} s \
warm-up, then the median of {ROUNDS} rounds of {ROUND_SECONDS} s. The cluster is `make cluster`'s \
(scripts/cluster.py): nginx with health-checked upstreams in front of three gunicorn instances, each with \
{cluster_module.WEB_CONCURRENCY} workers, Redis for throttles, revocation and cached counts, reads from the streaming \
replica. Throttles at {AUTH_THROTTLE_RATE}, `DEBUG=false`, every other setting the default. Other load: as above, \
the share of the CPU that processes outside the benchmark used during the rounds.

| Server | What | Workers | req/s | p50 ms | p99 ms | Errors | Rounds req/s | Other load |
|---|---|---|---|---|---|---|---|---|
{rows}

The cluster serves {ratio:.0f}% of a single `make run` stack's requests per second. {verdict}{noisy} The point of \
the cluster is elsewhere: on several machines each instance brings its own cores, and any one part can restart or \
fail without an outage (`make drill`).
"""


def write_section(text: str, path: Path) -> None:
    """After whatever the file holds, in place of an earlier Cluster section."""
    existing = path.read_text() if path.exists() else "# Benchmarks\n"
    match = re.search(rf"^{re.escape(HEADING)}\n.*?(?=^## |\Z)", existing, re.M | re.S)
    if match:
        existing = existing[: match.start()] + existing[match.end() :]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(existing.rstrip("\n") + "\n\n" + text)


def run(cleanup: contextlib.ExitStack) -> str:
    started = time.monotonic()
    load_average = " / ".join(f"{load:.2f}" for load in os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
    app_env = {
        "SECRET_KEY": secrets.token_urlsafe(48),
        "DEBUG": "false",
        "DATA_DIR": str(workdir),
        "LOG_LEVEL": "WARNING",
        "AUTH_THROTTLE_RATE": AUTH_THROTTLE_RATE,
        "ANON_THROTTLE_RATE": AUTH_THROTTLE_RATE,
    }
    cluster = cluster_module.Cluster(data_dir=workdir, port=cluster_module.free_port(), app_env=app_env)
    cleanup.callback(cluster.stop)
    say(f"starting the cluster in {workdir} ...")
    cluster.start()

    os.environ.update(
        {**app_env, "DATABASE_URL": cluster.primary.url(), "DJANGO_SETTINGS_MODULE": "healthcare.settings"}
    )
    import django

    django.setup()
    from django.db import connection

    say(f"seeding {PATIENTS} patients in the primary ...")
    seed(PATIENTS, 500, PATIENTS)
    password = secrets.token_urlsafe(18)
    user = ensure_staff_user()
    user.set_password(password)
    user.save()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()

    # make run's stack: one gunicorn behind nginx, on the primary, without Redis or the replica.
    single_env = {
        **os.environ,
        **app_env,
        "DATABASE_URL": cluster.primary.url(),
        "HOST": "127.0.0.1",
        "PORT": str(cluster_module.free_port()),
        "NUM_PROXIES": "1",
    }
    for name in ("REDIS_URL", "DATABASE_REPLICA_URL", "PROMETHEUS_MULTIPROC_DIR"):
        single_env.pop(name, None)
    # As many workers as the cluster has in all: the same share of a CPU that other processes may also want.
    single_workers = len(cluster.instances) * cluster.web_concurrency
    single_env["WEB_CONCURRENCY"] = str(single_workers)
    stack = serving.Stack(wsgi="healthcare.wsgi", env=single_env, host="127.0.0.1", port=int(single_env["PORT"]))
    cleanup.callback(stack.stop)
    with (workdir / "logs" / "make-run.log").open("w") as output:
        stack.start(output=output)
    stack.wait_until_serving()

    token = log_in(cluster.port, password)
    for port in (cluster.instances[0].port, stack.port):
        status, _, _ = fetch(port, "GET", PATH, token=token)
        if status != 200:
            raise RuntimeError(f"GET {PATH} on :{port} answered {status}")
    targets = [
        Target(
            "cluster",
            "nginx -> 3 instances (Redis, replica)",
            cluster.port,
            len(cluster.instances) * cluster.web_concurrency,
        ),
        Target(
            "instance",
            "one of them, directly (Redis, replica)",
            cluster.instances[0].port,
            cluster.web_concurrency,
        ),
        Target("make run", "nginx -> 1 gunicorn (file caches, primary)", stack.port, single_workers),
    ]
    meter = OtherLoad(os.getpid(), wait_budget_seconds=20 if QUICK else 90)
    measure(targets, token, meter)
    return section(targets, time.monotonic() - started, load_average)


def main() -> int:
    signal.signal(signal.SIGTERM, interrupt)
    if shutil.which("wrk") is None:
        say("wrk is not installed (Debian: apt-get install wrk; `make bench` installs it)")
        return 1
    with contextlib.ExitStack() as cleanup:
        try:
            text = run(cleanup)
        except KeyboardInterrupt:
            say("interrupted; cleaning up ...")
            return 130
        except (RuntimeError, subprocess.CalledProcessError) as error:
            say(f"failed: {error}")
            return 1
    write_section(text, OUTPUT)
    say(f"wrote the {HEADING.lstrip('# ')} section of {OUTPUT.relative_to(BASE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
