"""Benchmark (not a test): the list pages at scale on PostgreSQL, as a viewer and as an admin.

    .venv/bin/python tests/benchmarks/pages.py [--runs 300000] [--stopped 100000]

1. A database of its own on the PostgreSQL server that BENCH_DATABASE_URL (or DATABASE_URL,
   else postgres://postgres@127.0.0.1:5432/postgres) names, created here and dropped at the
   end whatever happens; no other database is touched.
2. Six accounts, 40 users, 300,000 runs (spread over a year, twelve clusters named or given
   as ARNs, every status) and 100,000 stopped tasks, then VACUUM ANALYZE (what autovacuum
   leaves) and the last hour rewritten as the collector and the runs keep doing (`settle`).
3. Django configured as deployed (DEBUG off), pages fetched through Django's test client: a
   viewer member of two accounts and a superuser, each page 3 times to warm up, then 40 times.

Prints one line per page, then one JSON object (p50 and p95 in milliseconds per page and
user, the goal for p95, 100 ms, and the load average before and after); first, per user, the
baseline measured the same way in the same run: `/session`, the session probe (middleware,
session and user, no page), whose wall clock is what the machine's load adds to any request. Per page also: `cpu`,
the median CPU time of this process per request (Django's share), and `db`, the summed
EXPLAIN ANALYZE execution times of the page's statements, each the best of three (the database's share): both move
far less with the machine's load than the wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.deployed import deployed_environ

REQUESTS = 40
GOAL_MS = 100
ACCOUNTS = 6
USERS = 40
CLUSTERS = 12

BASELINE_URL = "/session"
PAGES = {
    "runs": "/runs/",
    "runs_page_3": "/runs/?page=3",
    "runs_failed": "/runs/?status=failed",
    "runs_cluster": "/runs/?cluster=cluster-07",
    "runs_user": "/runs/?user=user-05",
    "stopped": "/stopped/",
    "stopped_filtered": "/stopped/?category=out-of-memory&cluster=bench-03&range=7d",
    "stopped_7d": "/stopped/?range=7d&chart=7d",  # the widest default-able window: what a per-hour summary would serve
}


def _url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}")).replace("postgres://", "postgresql://", 1)


def _admin(base: str):
    import psycopg

    return psycopg.connect(_url(base, "postgres"), autocommit=True)


_SEEDED_COLUMNS = (
    "account_id region cluster task_arn container command command_sealed command_sha256 mode role_arn"
    " runbook_name requested_by_id reason status exit_code end_reason bytes_out cols rows time_limit_seconds"
    " created_at started_at ended_at runner_id"
).split()


def _other_columns() -> list:
    """The run's other NOT NULL columns (added since this was written, e.g. a shell's flags):
    seeded with the field's default, so the seed follows the model's migrations."""
    from ecsportal.runs.models import Run

    return [
        f for f in Run._meta.concrete_fields if f.column not in _SEEDED_COLUMNS and not f.null and not f.primary_key
    ]


def seed_runs(count: int) -> None:
    """Runs straight in SQL (generate_series): 300,000 ORM inserts would be most of the run."""
    from django.db import connection

    from ecsportal.accounts.models import AwsAccount
    from ecsportal.runs.models import RunStatus

    statuses = [s for s, _ in RunStatus.choices]
    columns = ", ".join(_SEEDED_COLUMNS + [f.column for f in _other_columns()])
    extra = "".join(", %s" for _ in _other_columns())
    with connection.cursor() as cursor:
        sql = """
            INSERT INTO runs_run (<columns>)
            SELECT a.id, 'eu-west-1',
                CASE WHEN n %% 3 = 0
                    THEN 'arn:aws:ecs:eu-west-1:' || a.account_id || ':cluster/cluster-' || lpad((n %% %s)::text, 2, '0')
                    ELSE 'cluster-' || lpad((n %% %s)::text, 2, '0') END,
                'arn:aws:ecs:eu-west-1:' || a.account_id || ':task/c/' || md5(n::text),
                'app', 'echo ' || n, '', md5(n::text) || md5(n::text), 'shell', '', '',
                u.id, '', (%s::text[])[1 + n %% %s], 0, '', n %% 100000, 120, 32, 900,
                now() - (n || ' minutes')::interval * 1.75, now() - (n || ' minutes')::interval * 1.75,
                now() - (n || ' minutes')::interval * 1.75 + interval '5 seconds', ''<extra>
            FROM generate_series(1, %s) AS n
            JOIN (SELECT id, account_id, row_number() OVER (ORDER BY id) - 1 AS k FROM accounts_awsaccount) a
                ON a.k = n %% %s
            JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS k FROM auth_user WHERE username LIKE 'user-%%') u
                ON u.k = (n * 7) %% %s
            """
        cursor.execute(
            sql.replace("<columns>", columns).replace("<extra>", extra),  # the model's own column names
            [
                CLUSTERS,
                CLUSTERS,
                statuses,
                len(statuses),
                *[f.get_db_prep_save(f.get_default(), connection) for f in _other_columns()],
                count,
                AwsAccount.objects.count(),
                USERS,
            ],
        )


def seed(runs: int, stopped: int) -> tuple[object, object]:
    from django.contrib.auth import get_user_model

    from ecsportal.accounts.models import AwsAccount, Membership, Role
    from tests.benchmarks import stopped_scan

    User = get_user_model()
    accounts = [
        AwsAccount.objects.create(name=f"Account {i}", account_id=f"{100000000000 + i}", regions=["eu-west-1"])
        for i in range(ACCOUNTS)
    ]
    users = [User(username=f"user-{i:02d}") for i in range(USERS)]
    User.objects.bulk_create(users)
    users = list(User.objects.filter(username__startswith="user-").order_by("pk"))
    Membership.objects.bulk_create(
        Membership(user=user, account=accounts[i % ACCOUNTS], role=Role.OPERATOR) for i, user in enumerate(users)
    )
    viewer = User.objects.create_user("bench-viewer", password="x")
    Membership.objects.create(user=viewer, account=accounts[0], role=Role.VIEWER)
    Membership.objects.create(user=viewer, account=accounts[1], role=Role.VIEWER)
    admin = User.objects.create_superuser("bench-admin", password="x")
    seed_runs(runs)
    stopped_scan.HISTORY_ROWS = stopped
    stopped_scan.fill_history(accounts[0])  # ends with ANALYZE
    return viewer, admin


def settle() -> None:
    """The tables as a deployment's would be: autovacuum has been by after the bulk inserts
    (PostgreSQL 13+ vacuums insert-only tables too), so older pages are all-visible; then the
    collector rewrites every stopped task of the last hour on each pass (its upsert sets
    `last_seen_at`), which leaves those pages not all-visible, and new runs keep arriving."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute(
            "UPDATE stopped_stoppedtask SET last_seen_at = now() WHERE stopped_at > now() - interval '1 hour'"
        )
        cursor.execute("UPDATE runs_run SET ended_at = ended_at WHERE created_at > now() - interval '1 hour'")


def seeded() -> tuple[object, object]:
    """The viewer and the admin of a database seeded before (--keep)."""
    from django.contrib.auth import get_user_model

    User = get_user_model()
    return User.objects.get(username="bench-viewer"), User.objects.get(username="bench-admin")


def timings_ms(client: object, url: str, status: int = 200) -> tuple[float, float, float]:
    """(p50, p95, median CPU) over REQUESTS fetches, after three to warm up. The CPU time is
    this process's alone (Django's share, not the database's): on a shared, loaded machine it
    moves far less than the wall-clock figures."""
    for _ in range(3):
        answer = client.get(url)
        assert answer.status_code == status, (url, answer.status_code)
    times, cpu = [], []
    for _ in range(REQUESTS):
        started, started_cpu = time.perf_counter(), time.process_time()
        answer = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
        assert answer.status_code == status
    return statistics.median(times), statistics.quantiles(times, n=20)[-1], statistics.median(cpu)


def database_ms(client: object, url: str) -> tuple[float, int]:
    """The page's statements run again under EXPLAIN ANALYZE: their summed execution times, each
    the best of three (the database's share, far less sensitive to the machine's load than the
    wall clock), and how many there are."""
    from django.db import connection

    caught: list[tuple[str, object]] = []

    def catch(execute, sql, params, many, context):
        caught.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(catch):
        client.get(url)
    total = 0.0
    with connection.cursor() as cursor:
        for sql, params in caught:
            runs = []
            for _ in range(3):  # the best of three: a statement's own cost, not a stall of the machine's
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
                runs.append(cursor.fetchone()[0][0]["Execution Time"])
            total += min(runs)
    return total, len(caught)


def slowest_queries(client: object, url: str, top: int = 3) -> list[tuple[float, str]]:
    """The slowest statements of one request (for --profile)."""
    from django.db import connection

    timed: list[tuple[float, str]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            timed.append(((time.perf_counter() - started) * 1000, sql))

    with connection.execute_wrapper(timer):
        client.get(url)
    return sorted(timed, reverse=True)[:top]


def python_profile(user: object, url: str) -> None:
    import cProfile
    import pstats

    from django.test import Client

    client = Client()
    client.force_login(user)
    for _ in range(3):
        client.get(url)
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(10):
        client.get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def measure(users: dict[str, object], *, profile: bool = False) -> dict[str, float]:
    from django.test import Client

    results = {}
    for who, user in users.items():
        client = Client()
        client.force_login(user)
        # The baseline, measured the same way in the same run: the session probe (middleware,
        # session and user, no page). Its wall clock under the machine's load is the floor.
        p50, p95, cpu = timings_ms(client, BASELINE_URL, status=204)
        results.update({f"baseline_{who}_p50_ms": round(p50, 1), f"baseline_{who}_p95_ms": round(p95, 1)})
        results[f"baseline_{who}_cpu_ms"] = round(cpu, 1)
        print(f"{who:6} {BASELINE_URL + ' (baseline)':60} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  cpu {cpu:6.1f} ms")
        for name, url in PAGES.items():
            p50, p95, cpu = timings_ms(client, url)
            db, queries = database_ms(client, url)
            results[f"{name}_{who}_p50_ms"] = round(p50, 1)
            results[f"{name}_{who}_p95_ms"] = round(p95, 1)
            results[f"{name}_{who}_cpu_ms"] = round(cpu, 1)
            results[f"{name}_{who}_db_ms"] = round(db, 2)
            print(
                f"{who:6} {url:60} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  cpu {cpu:6.1f} ms"
                f"  db {db:6.2f} ms in {queries} statements",
                flush=True,
            )
            if profile:
                for ms, sql in slowest_queries(client, url):
                    print(f"        {ms:7.1f} ms  {sql[:300]}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300_000)
    parser.add_argument("--stopped", type=int, default=100_000)
    parser.add_argument("--profile", action="store_true", help="print each page's slowest statements")
    parser.add_argument("--cprofile", metavar="URL", help="print where Django's time goes for one page")
    parser.add_argument(
        "--cprofile-as", choices=("admin", "viewer"), default="admin", help="whose page --cprofile profiles"
    )
    parser.add_argument(
        "--keep",
        metavar="NAME",
        help="use (and keep) the database NAME: seeded on the first run, reused as it is after (for EXPLAIN)",
    )
    args = parser.parse_args()
    base = os.environ.get("BENCH_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""
    if not base.startswith("postgres"):
        base = "postgres://postgres@127.0.0.1:5432/postgres"
    database = args.keep or f"ecsportal_bench_pages_{os.getpid()}"
    with _admin(base) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{database}"')
    try:
        os.environ.update(deployed_environ())
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
                "DATABASE_URL": _url(base, database).replace("postgresql://", "postgres://", 1),
                "ECSPORTAL_STOPPED_COLLECT_INTERVAL": "0",
                "ECSPORTAL_APPROVAL_SWEEP_SECONDS": "0",
                "ECSPORTAL_RUN_SWEEP_SECONDS": "0",
                "DJANGO_LOG_LEVEL": "WARNING",
            }
        )
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)
        started = time.perf_counter()
        viewer, admin = seeded() if exists else seed(args.runs, args.stopped)
        settle()
        print(f"seeded {args.runs} runs and {args.stopped} stopped tasks in {time.perf_counter() - started:.0f} s")
        if args.cprofile:
            python_profile(viewer if args.cprofile_as == "viewer" else admin, args.cprofile)
        load_before = [round(x, 2) for x in os.getloadavg()]
        results = measure({"viewer": viewer, "admin": admin}, profile=args.profile)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep:
            with _admin(base) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    load = {"before": load_before, "after": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps({"runs": args.runs, "stopped_tasks": args.stopped, "goal_ms": GOAL_MS, "load": load, **results}))


if __name__ == "__main__":
    main()
