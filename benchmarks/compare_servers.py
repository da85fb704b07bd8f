"""Server configurations side by side, for mixed load: which WEB_CONCURRENCY, with or without a login pool.

    python -m benchmarks.compare_servers [seconds per round] [rounds]

One private PostgreSQL with the 10k data set of `make bench`, and one server per configuration (nginx in front
of gunicorn, as `make run` starts it), plus a ceiling per worker count. Rounds are interleaved: in each, every
configuration gets the patients list at 8 connections alone, then with 2 logins/s alongside, and every
ceiling the same page alone, so that the machine's other load falls on all of them alike. Prints a Markdown
table of the medians; benchmarks/TUNING.md quotes it.
"""

import contextlib
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks import run as bench
from scripts.fault_tolerance import Postgres, free_port

CONFIGURATIONS = {  # name: (WEB_CONCURRENCY, LOGIN_CONCURRENCY)
    "2 workers": (2, 0),
    "5 workers": (5, 0),
    "2 workers + login pool": (2, 1),
    "5 workers + login pool": (5, 1),
}


def main(seconds: int, rounds: int) -> None:
    with contextlib.ExitStack() as cleanup:
        workdir = Path(tempfile.mkdtemp(prefix="compare-"))
        cleanup.callback(shutil.rmtree, workdir, ignore_errors=True)
        postgres = Postgres(workdir)
        cleanup.callback(postgres.close)
        postgres.create_database()
        secret_key = secrets.token_urlsafe(48)

        def environment(workers: int) -> dict[str, str]:
            return bench.server_environment(postgres, workdir, secret_key, free_port(), WEB_CONCURRENCY=str(workers))

        bench.setup_django(environment(1))
        from django.core.management import call_command

        from hospital.models import User

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        data_set = bench.FULL.data_sets[0]
        ids = bench.prepare_data_set(data_set)
        password = secrets.token_urlsafe(18)
        for username in (bench.STAFF_USERNAME, ids["owner_username"]):
            account = (
                bench.ensure_staff_user() if username == bench.STAFF_USERNAME else User.objects.get(username=username)
            )
            account.set_password(password)
            account.save()
        servers = {}
        for name, (workers, login_workers) in CONFIGURATIONS.items():
            servers[name] = bench.start_server(
                name.replace(" ", "-"),
                "healthcare.wsgi",
                environment(workers),
                workdir,
                "/api/health/",
                cleanup,
                login_workers,
            )
        for workers in sorted({workers for workers, _ in CONFIGURATIONS.values()}):
            servers[f"ceiling, {workers} workers"] = bench.start_server(
                f"ceiling-{workers}",
                "benchmarks.ceiling:application",
                environment(workers),
                workdir,
                "/api/patients/",
                cleanup,
            )
        token = bench.log_in(servers["2 workers"].port, password)
        login = bench.login_body(password, ids["owner_username"])
        alone, together, logins = {}, {}, {}
        for server in servers.values():
            bench.run_wrk(server.port, "/api/patients/", 8, 2, token, None)  # warm-up
        for number in range(rounds):
            for name, server in servers.items():
                alone.setdefault(name, []).append(bench.run_wrk(server.port, "/api/patients/", 8, seconds, token, None))
                if name.startswith("ceiling"):
                    continue
                with bench.LoginLoad(server.port, login, bench.LOGINS_PER_SECOND) as load:
                    together.setdefault(name, []).append(
                        bench.run_wrk(server.port, "/api/patients/", 8, seconds, token, None)
                    )
                logins.setdefault(name, []).extend(load.latencies_ms)
                bench.say(
                    f"round {number + 1} {name}: {alone[name][-1].requests_per_second:.0f} req/s, p99 "
                    f"{alone[name][-1].p99_ms:.1f} ms alone; {together[name][-1].requests_per_second:.0f} req/s, "
                    f"p99 {together[name][-1].p99_ms:.1f} ms with logins (login p50 "
                    f"{statistics.median(load.latencies_ms or [0]):.0f} ms, {load.errors} errors)"
                )

        def median(rounds: list, attribute: str) -> float:
            return statistics.median(getattr(r, attribute) for r in rounds)

        print(
            f"\n{rounds} interleaved rounds of {seconds} s, GET /api/patients/ (10k, 8 connections); medians\n\n"
            "| Configuration | req/s alone | % of its ceiling | p99 alone ms | req/s with 2 logins/s "
            "| p99 with logins ms | login p50 / max ms |\n|---|---|---|---|---|---|---|"
        )
        for name, (workers, _) in CONFIGURATIONS.items():
            ceiling = median(alone[f"ceiling, {workers} workers"], "requests_per_second")
            latencies = sorted(logins[name]) or [0.0]
            rps = median(alone[name], "requests_per_second")
            print(
                f"| {name} | {rps:.0f} | {100 * rps / ceiling:.0f}% | {median(alone[name], 'p99_ms'):.1f} "
                f"| {median(together[name], 'requests_per_second'):.0f} | {median(together[name], 'p99_ms'):.1f} | "
                f"{statistics.median(latencies):.0f} / {latencies[-1]:.0f} |"
            )
        for workers in sorted({workers for workers, _ in CONFIGURATIONS.values()}):
            name = f"ceiling, {workers} workers"
            rps, p99 = median(alone[name], "requests_per_second"), median(alone[name], "p99_ms")
            print(f"| {name} | {rps:.0f} | - | {p99:.1f} | - | - | - |")


if __name__ == "__main__":
    arguments = [int(value) for value in sys.argv[1:3]]
    main(*arguments) if arguments else main(8, 3)
