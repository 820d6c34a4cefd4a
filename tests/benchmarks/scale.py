"""Scale-out under load: many concurrent runs, each watched from the other web process.

Not a test: ``python tests/benchmarks/scale.py`` from the repository root. With
DATABASE_URL=postgres://… and REDIS_URL=redis://… it uses those servers (a database of its own
is created on that server and dropped afterwards, and the channel prefix is
ECSPORTAL_CHANNEL_PREFIX + "-bench"); without them it starts a PostgreSQL and a Redis of its
own (`tests/faults/servers.py`). Every portal process serves as deployed, DEBUG off.

``--rounds 200x1,500x0.2`` (the default) measures 200 runs of 1 MB, then 500 runs of 0.2 MB;
``--modes multi`` leaves out the one-process mode.

Three measurements in one run, on the same local AWS (moto) and SSM agent emulator, which
`manage.py demo --aws-only` serves in processes of its own: `--emulator-processes` (default one
per core) emulator processes, as a fleet of agents (`ecsportal.ssm.fleet`); one emulator serving
every session on one event loop was the slowest part of the bench (read directly, p99 5–76 s):

- **direct**: every stream read straight from the emulator with `SsmClient` (no portal), the
  baseline the portal's figures are compared with;
- **multi**: 2 daphne processes and 2 `runsworker` processes (worker mode, Redis,
  PostgreSQL); run i is started through one daphne process (the run form, as the operator)
  and watched over WebSocket from the other one;
- **single**: everything in one process: one daphne, the in-process runner, the in-memory
  channel layer, the same PostgreSQL; runs started and watched through it.

Each run prints `--mb` of output at a steady pace over `--seconds`, in units of one timestamped
line (``L <time.time()>``) plus padding to 1,000 bytes. The commands wait for a gate (a file
on this machine, where the emulator runs them) that the benchmark opens once every run's
session is open, so no run is still starting while the others print. Per mode:

- seconds: from the gate's moment until the last viewer saw its run finished (≥ `--seconds`);
- bytes lost: bytes each run printed that its viewer never received (must be 0): all of the
  output for a run that succeeded, what the portal stored for one that did not (such runs are
  counted apart, with their end reasons);
- p99 added latency: the 99th percentile of a line's arrival minus its timestamp, for lines
  that arrived live, minus the same percentile read directly from the emulator (null when no
  viewer was connected live at all);
- CPU seconds of each part (from /proc; the emulator's processes with the commands they ran,
  the direct client), and lines per CPU second of each: unlike latency on a shared machine,
  these do not depend on what else runs.

``SCALE_BENCH_PYSPY=<dir>``: py-spy records each portal process during each portal phase
(raw collapsed stacks, ``<dir>/<round>-<mode>-<process>.txt``).

Viewers behave as the run page does: a socket that fails is opened again a second later from
the last seq received (counted as reconnects); what was missed meanwhile comes from the
database, so it is not lost, but its lines are not counted as live.

The helpers for latency (`LineClock`, `percentile`, `direct_run`) are the relay benchmark's.
The last line of output is one JSON object: per round and mode `failed_runs`, `bytes_lost`,
`viewers_saw_end` (of `viewers`), `p99_ms_multi` (added p99 in the multi mode), and the totals
`failed_runs` and `bytes_lost` over every round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.benchmarks.relay import LineClock, direct_run, percentile
from tests.deployment import Deployment, login, start_run, watch

UNIT = 1000  # bytes of terminal output per line unit: "L <ts>\r\n" + padding line
STREAM = (
    "import os,sys,time\n"
    "gate=sys.argv[1]; units=int(sys.argv[2]); seconds=float(sys.argv[3]); size=int(sys.argv[4])\n"
    "while not os.path.exists(gate): time.sleep(0.2)\n"
    "start=float(open(gate).read())\n"
    "pad=b'p'*(size-21-2)+b'\\n'\n"
    "out=sys.stdout.buffer\n"
    "time.sleep(max(0.0,start-time.time()))\n"
    "for i in range(units):\n"
    "    due=start+i*seconds/units; wait=due-time.time()\n"
    "    if wait>0: time.sleep(wait)\n"
    "    out.write(b'L %17.6f\\n' % time.time()); out.write(pad); out.flush()\n"
)
"""The command every run prints with: it waits for the gate file (the emulator runs it on this
machine), reads from it the moment to start, then prints `units` lines at a steady pace."""


class Gate:
    """The moment every run starts printing, written to a file the commands wait for. The portal
    phase opens it once every run's session is open (all RUNNING, or ended): under load the
    last runs took longer to start than any fixed allowance, and the ones still connecting while
    the others printed met an emulator saturated by their output (harness, not product)."""

    def __init__(self) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="scale-gate-")) / "open"

    def open(self, delay: float = 1.0) -> float:
        start = time.time() + delay
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(f"{start:.6f}")
        temporary.rename(self.path)  # atomic: a command never reads half a number
        return start


TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int, *, children: bool = False) -> float:
    """CPU time (user + system) of one process, with its reaped children's when asked; 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return (utime + stime + (cutime + cstime if children else 0)) / TICKS


def child_pids(parent: int) -> list[int]:
    """The live children of one process."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == parent:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def postgres_pids(postmaster: int) -> list[int]:
    """The postmaster and its live children (backends, the WAL writer, …)."""
    return [postmaster, *child_pids(postmaster)]


def emulator_pids(deployment: Deployment) -> list[int]:
    """The emulator fleet's processes: the children of the local-AWS process that are Python
    (`demo --emulator-processes`; with one, the emulator is a thread of that process)."""
    pids = []
    for pid in child_pids(deployment.procs["aws"].pid):
        try:
            if b"ecsportal.ssm.fleet" in Path(f"/proc/{pid}/cmdline").read_bytes():
                pids.append(pid)
        except OSError:
            continue
    return pids


class CpuMeter:
    """CPU seconds spent by each part of the deployment between `start()` and `stop()`: the portal
    processes, local AWS (moto and the emulator, with the commands it ran), and, when the
    benchmark started them, Redis and PostgreSQL (with the backends that ended meanwhile)."""

    def __init__(self, deployment: Deployment, portal: list[str], own: list) -> None:
        self.deployment, self.portal, self.own = deployment, portal, own
        self.emulators = emulator_pids(deployment)
        self.before: dict[str, float] = {}
        self.used: dict[str, float] = {}

    def read(self) -> dict[str, float]:
        procs = self.deployment.procs
        out = {
            "portal": sum(cpu_seconds(procs[name].pid) for name in self.portal),
            # of which the runs workers' (where runs execute; none in one process)
            "workers": sum(cpu_seconds(procs[name].pid) for name in self.portal if "worker" in name),
            # moto, and the emulator when it is a thread there (its commands are reaped children)
            "aws": cpu_seconds(procs["aws"].pid, children=True),
        }
        if self.emulators:  # the fleet's processes, each with the commands it ran
            out["emulator"] = sum(cpu_seconds(pid, children=True) for pid in self.emulators)
        for server in self.own:
            if getattr(server, "proc", None) is not None:
                out["redis"] = cpu_seconds(server.proc.pid)
            elif hasattr(server, "data"):
                pid_file = server.data / "postmaster.pid"
                if pid_file.exists():
                    postmaster = int(pid_file.read_text().split()[0])
                    out["postgres"] = cpu_seconds(postmaster, children=True) + sum(
                        cpu_seconds(pid) for pid in postgres_pids(postmaster)[1:]
                    )
        return out

    def start(self) -> None:
        self.before = self.read()

    def stop(self) -> None:
        after = self.read()  # the portal processes are still up: stop() comes before stop_process
        self.used = {key: round(after[key] - self.before.get(key, 0.0), 2) for key in after}


def table_counters(deployment: Deployment) -> dict[str, tuple[int, ...]]:
    """Per table: index and sequential scans, rows inserted, updated (what the commits were)."""
    rows = deployment.sql(
        "SELECT relname, coalesce(idx_scan, 0) + seq_scan, n_tup_ins, n_tup_upd FROM pg_stat_user_tables"
    )
    return {name: tuple(int(v) for v in values) for name, *values in rows}


def table_deltas(before: dict[str, tuple[int, ...]], after: dict[str, tuple[int, ...]], seconds: float) -> str:
    """The busiest tables over the phase, per second: scans, inserts, updates."""
    deltas = {
        name: tuple((a - b) / max(seconds, 1e-9) for a, b in zip(values, before.get(name, (0, 0, 0)), strict=True))
        for name, values in after.items()
    }
    busiest = sorted(deltas.items(), key=lambda item: -sum(item[1]))[:6]
    return ", ".join(f"{name} {s:.0f} scans/{i:.0f} ins/{u:.0f} upd" for name, (s, i, u) in busiest if sum((s, i, u)))


def database_counters(deployment: Deployment) -> tuple[int, int, int, int]:
    """Transactions committed, rows inserted, rows updated, connections opened (sessions) in the
    benchmark's database so far."""
    ((commits, inserted, updated, sessions),) = deployment.sql(
        "SELECT xact_commit, tup_inserted, tup_updated, sessions FROM pg_stat_database "
        "WHERE datname = current_database()"
    )
    return int(commits), int(inserted), int(updated), int(sessions)


def profile(deployment: Deployment, names: list[str], label: str) -> list[subprocess.Popen]:
    """With SCALE_BENCH_PYSPY=<dir>: py-spy records each portal process until the phase ends."""
    out = os.environ.get("SCALE_BENCH_PYSPY")
    if not out:
        return []
    Path(out).mkdir(parents=True, exist_ok=True)
    spy = Path(sys.executable).with_name("py-spy")
    return [
        subprocess.Popen(
            [str(spy), "record", "-p", str(deployment.procs[name].pid), "-r", "100", "--nonblocking", "-f", "raw"]
            + ["-o", str(Path(out) / f"{label}-{name}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for name in names
    ]


def stream_command(gate: Gate, units: int, seconds: float) -> str:
    return shlex.join([sys.executable, "-c", STREAM, str(gate.path), str(units), str(seconds), str(UNIT)])


class Tally:
    """What one mode measured: latencies of live lines, bytes short, runs that did not succeed."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.clocks: list[LineClock] = []
        self.lost = 0
        self.failed: list[str] = []
        self.finished: list[float] = []
        self.seconds = 0.0
        self.reconnects = 0
        self.viewers = 0
        self.saw_end = 0  # viewers whose socket said the run had finished
        self.cpu: dict[str, float] = {}  # CPU seconds by part (CpuMeter)
        self.commits = self.inserted = self.updated = self.sessions = 0  # database, over the phase
        self.phase_seconds = 0.0  # from the first run posted to the last viewer's end
        self.load: tuple[float, float] = (0.0, 0.0)  # 1-minute load average at its start and end
        self.chunks = 0  # output messages stored (after coalescing)

    def clock(self) -> LineClock:
        clock = LineClock()
        self.clocks.append(clock)
        return clock

    @property
    def latencies(self) -> list[float]:
        return [v for c in self.clocks for v in c.latencies]


async def direct_phase(
    registration_url: str, key: str, runs: int, units: int, seconds: float, emulators: list[int]
) -> Tally:
    """Every stream read straight from the emulator; `emulators` are its processes' pids (none:
    a thread of the local-AWS process), whose CPU is measured with this process's (the client)."""
    from ecsportal.ssm.emulator import remote_registrar

    emulator = SimpleNamespace(register_session=remote_registrar(registration_url, key))
    tally = Tally(units * UNIT)

    def cpu() -> dict[str, float]:
        own = os.times()
        return {
            "client": own.user + own.system,
            **({"emulator": sum(cpu_seconds(pid, children=True) for pid in emulators)} if emulators else {}),
        }

    before, load_before, began = cpu(), os.getloadavg()[0], time.time()
    gate = Gate()
    start = gate.open(3 + runs * 0.01)  # the direct client connects while they wait
    command = stream_command(gate, units, seconds)

    async def one(i: int) -> None:
        clock, got = tally.clock(), [0]

        def on_data(data: bytes, arrival: float, live: bool) -> None:
            got[0] += len(data)
            clock.feed(data, arrival, live)

        tally.finished.append(await direct_run(emulator, command, f"scale-{i}-{time.time_ns()}", on_data))
        tally.lost += max(0, tally.expected - got[0])

    await asyncio.gather(*(one(i) for i in range(runs)))
    tally.seconds = max(tally.finished) - start
    tally.viewers, tally.saw_end = runs, len(tally.finished)  # a direct read returns at the session's end
    tally.cpu = {part: round(used - before[part], 2) for part, used in cpu().items()}
    tally.phase_seconds = time.time() - began
    tally.load = (round(load_before, 1), round(os.getloadavg()[0], 1))
    return tally


async def portal_phase(deployment: Deployment, pairs: list[tuple[str, str]], args: argparse.Namespace) -> Tally:
    """Run i is started through pairs[i % n][0] and watched from pairs[i % n][1]."""
    names = sorted({name for pair in pairs for name in pair})
    operators = {name: login(deployment.http(name), "operator").cookies for name in names}  # one login each
    viewers = {name: f"sessionid={login(deployment.http(name), 'viewer').cookies['sessionid']}" for name in names}
    target = deployment.exec_target()
    tally = Tally(args.units * UNIT)
    gate = Gate()
    command = stream_command(gate, args.units, args.seconds)
    pks: list[int] = []
    loop = asyncio.get_running_loop()
    pool = ThreadPoolExecutor(8)
    local = threading.local()  # a requests.Session per thread: sessions are not for concurrent use
    started: list[float] = []

    def post(starter: str) -> int:
        import requests

        sessions = local.__dict__.setdefault("sessions", {})
        if starter not in sessions:
            sessions[starter] = requests.Session()
            sessions[starter].trust_env = False
            sessions[starter].cookies.update(operators[starter])
        pk = start_run(sessions[starter], deployment.http(starter), target, command)
        started.append(time.time())
        pks.append(pk)
        return pk

    async def open_gate() -> float:
        """Once every run is posted and past CONNECTING (or `--setup` seconds have passed)."""
        deadline = time.time() + args.setup
        while time.time() < deadline:
            if len(pks) == args.runs:
                ((waiting,),) = await asyncio.to_thread(
                    deployment.sql,
                    "SELECT count(*) FROM runs_run WHERE id = ANY(%s) AND status IN ('queued', 'connecting')",
                    (list(pks),),
                )
                if waiting == 0:
                    break
            await asyncio.sleep(0.5)
        else:
            print(f"warning: the gate opened after {args.setup:g} s with runs still starting", flush=True)
        return gate.open()

    async def one(i: int) -> None:
        starter, viewer = pairs[i % len(pairs)]
        pk = await loop.run_in_executor(pool, post, starter)
        clock = tally.clock()
        tally.viewers += 1
        try:
            watched = await watch(
                deployment.ws(viewer),
                deployment.http(viewer),
                viewers[viewer],
                pk,
                timeout=args.setup + args.seconds + 300,
                on_output=clock.feed,
            )
        except Exception as exc:
            tally.failed.append(f"run {pk}: viewer: {type(exc).__name__}: {exc}")
            received[pk] = (0, "")
            return
        status = watched.last_status
        tally.saw_end += bool(status.get("finished"))
        received[pk] = (len(watched.data), status.get("status", ""))
        if status.get("status") != "succeeded":
            tally.failed.append(f"run {pk}: {status.get('status')}: {status.get('end_reason')}")
        tally.reconnects += watched.reconnects
        tally.finished.append(watched.finished_at or time.time())

    received: dict[int, tuple[int, str]] = {}
    # Every portal process of the phase: the web processes and, in worker mode, the runs workers
    # (counting only the web processes, as this once did, left out where the runs execute).
    portal = [name for name, proc in deployment.procs.items() if name != "aws" and proc.poll() is None]
    meter = CpuMeter(deployment, portal, args.own)
    counters = database_counters(deployment)
    tables = table_counters(deployment)
    meter.start()
    began = time.time()
    load_before = os.getloadavg()[0]
    spies = profile(deployment, portal, args.label)
    gating = asyncio.ensure_future(open_gate())
    await asyncio.gather(*(one(i) for i in range(args.runs)))
    start = await gating
    meter.stop()
    for spy in spies:  # py-spy writes its file on SIGINT
        spy.send_signal(signal.SIGINT)
    for spy in spies:
        spy.wait(60)
    tally.phase_seconds = time.time() - began
    tally.cpu = meter.used
    tally.commits, tally.inserted, tally.updated, tally.sessions = (
        a - b for a, b in zip(database_counters(deployment), counters, strict=True)
    )
    print("  per second:", table_deltas(tables, table_counters(deployment), tally.phase_seconds), flush=True)
    tally.load = (round(load_before, 1), round(os.getloadavg()[0], 1))
    pool.shutdown()
    # Lost: what the command printed (all of it for a run that succeeded; what the portal stored
    # for one that did not) minus what its viewer received.
    stored = dict(
        deployment.sql(
            "SELECT run_id, sum(octet_length(data)) FROM runs_runchunk WHERE run_id = ANY(%s) GROUP BY run_id",
            (list(received),),
        )
    )
    ((chunks,),) = deployment.sql("SELECT count(*) FROM runs_runchunk WHERE run_id = ANY(%s)", (list(received),))
    tally.chunks = int(chunks)
    for pk, (got, status) in received.items():
        printed = tally.expected if status == "succeeded" else int(stored.get(pk, 0))
        tally.lost += max(0, printed - got)
    print(f"  runs posted within {max(started) - began:.1f} s, all started (the gate) after {start - began:.1f} s")
    tally.seconds = (max(tally.finished) if tally.finished else time.time()) - start
    return tally


def _ms(value: float) -> float | None:
    """Rounded, or None (JSON null) when no line arrived live to measure."""
    return None if value != value else round(value, 1)


def summary(name: str, tally: Tally, direct_p99: float) -> dict[str, object]:
    p99 = percentile(tally.latencies, 99)
    return {
        "mode": name,
        "seconds": round(tally.seconds, 2),
        "bytes_lost": tally.lost,
        "p50_ms": _ms(percentile(tally.latencies, 50)),
        "p99_ms": _ms(p99),
        "p99_added_ms": _ms(p99 - direct_p99),
        "lines_live": len(tally.latencies),
        "failed_runs": len(tally.failed),
        "viewers": tally.viewers,
        "viewers_saw_end": tally.saw_end,
        "reconnects": tally.reconnects,
        **capacity(tally),
    }


def capacity(tally: Tally) -> dict[str, object]:
    """Lines (one per UNIT of output, each its own write by the command) and stored output
    messages (chunks, after coalescing) per CPU second of the portal's processes; database
    transactions, rows and connections a second over the phase (from the first run posted to the
    last viewer's end); the CPU seconds of each part; the load average at its start and end."""
    if not tally.cpu:
        return {}
    lines_total = tally.expected // UNIT * tally.viewers
    per_part = {part: round(lines_total / used) for part, used in tally.cpu.items() if used > 0}
    if "portal" not in tally.cpu:  # the direct phase: no portal, no database
        return {"lines": lines_total, "cpu_seconds": tally.cpu, "lines_per_cpu_second": per_part, "load": tally.load}
    portal = tally.cpu.get("portal") or float("nan")
    seconds = max(tally.phase_seconds, 1e-9)
    return {
        "lines": lines_total,
        "chunks": tally.chunks,
        "cpu_seconds": tally.cpu,
        "lines_per_cpu_second": per_part,
        "lines_per_portal_cpu_second": round(lines_total / portal),
        "chunks_per_portal_cpu_second": round(tally.chunks / portal),
        "db_commits_per_second": round(tally.commits / seconds),
        "db_rows_per_second": round(tally.inserted / seconds),
        "db_updates_per_second": round(tally.updated / seconds),
        "db_connections_per_second": round(tally.sessions / seconds),
        "load": tally.load,
    }


def parse_rounds(text: str) -> list[tuple[int, float]]:
    """ "200x1,500x0.2" → [(200, 1.0), (500, 0.2)]: runs × MB each."""
    rounds = []
    for part in text.split(","):
        runs, mb = part.lower().split("x")
        rounds.append((int(runs), float(mb)))
    return rounds


def servers() -> tuple[str, str, list]:
    """DATABASE_URL and REDIS_URL when set, else a PostgreSQL and a Redis of the benchmark's own."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if database_url.startswith(("postgres://", "postgresql://")) and redis_url.startswith("redis"):
        return database_url, redis_url, []
    from tests.faults.servers import LocalPostgres, LocalRedis

    postgres, redis = LocalPostgres(), LocalRedis()
    postgres.start()
    redis.start()
    return postgres.url, redis.url, [postgres, redis]


def report_failures(failed: list[str]) -> None:
    """Every failed run's end reason, grouped (the run's number taken out), the commonest first."""
    groups: dict[str, list[str]] = {}
    for problem in failed:
        run, _, reason = problem.partition(": ")
        groups.setdefault(reason, []).append(run.removeprefix("run "))
    for reason, runs in sorted(groups.items(), key=lambda item: -len(item[1])):
        print(f"   {len(runs)} × {reason} (runs {', '.join(runs[:10])}{' …' if len(runs) > 10 else ''})", flush=True)


def one_round(deployment: Deployment, args: argparse.Namespace, modes: list[str]) -> dict[str, object]:
    print(f"{args.runs} runs × {args.units * UNIT:,} bytes over {args.seconds:g} s each", flush=True)
    direct = asyncio.run(
        direct_phase(
            deployment.env["ECSPORTAL_LOCAL_EXEC_EMULATOR"],
            deployment.env["ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY"],
            args.runs,
            args.units,
            args.seconds,
            emulator_pids(deployment),
        )
    )
    direct_p99 = percentile(direct.latencies, 99)
    print("direct:", json.dumps(summary("direct", direct, direct_p99)), flush=True)
    result: dict[str, object] = {"runs": args.runs, "mb": args.mb}
    if "multi" in modes:
        for name in ("daphne-a", "daphne-b"):
            deployment.start_daphne(name)
        for name in ("runsworker-1", "runsworker-2"):
            deployment.start_worker(name)
        deployment.wait_ready()
        args.label = f"{args.runs}x{args.mb:g}-multi"
        multi = asyncio.run(portal_phase(deployment, [("daphne-a", "daphne-b"), ("daphne-b", "daphne-a")], args))
        result["multi"] = summary("multi", multi, direct_p99)
        result["p99_ms_multi"] = result["multi"]["p99_added_ms"]
        print("multi:", json.dumps(result["multi"]), flush=True)
        report_failures(multi.failed)
        for name in ("daphne-a", "daphne-b", "runsworker-1", "runsworker-2"):
            deployment.stop_process(name)
    if "single" in modes:
        deployment.start_daphne("single", REDIS_URL="", ECSPORTAL_RUNNER_MODE="inprocess")
        deployment.wait_ready()
        args.label = f"{args.runs}x{args.mb:g}-single"
        single = asyncio.run(portal_phase(deployment, [("single", "single")], args))
        result["single"] = summary("single", single, direct_p99)
        result["p99_ms_single"] = result["single"]["p99_added_ms"]
        print("single:", json.dumps(result["single"]), flush=True)
        report_failures(single.failed)
        deployment.stop_process("single")
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", default="200x1,500x0.2", help="runs × MB per run, comma-separated")
    parser.add_argument("--modes", default="multi,single", help="multi, single or both")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long each run takes to print it")
    parser.add_argument(
        "--conn-max-age",
        type=int,
        default=60,
        help="seconds the portal processes keep a database connection (?conn_max_age=N on DATABASE_URL, "
        "as docs/deploy.md deploys); 0: Django opens one per request or database_sync_to_async call",
    )
    parser.add_argument(
        "--emulator-processes",
        type=int,
        default=os.cpu_count() or 1,
        help="SSM agent emulator processes (default: one per core; 1 = a thread of the local-AWS process)",
    )
    parser.add_argument(
        "--setup", type=float, default=0.0, help="at most this long for every run to start (default: by count)"
    )
    args = parser.parse_args()
    modes = args.modes.split(",")
    database_url, redis_url, own = servers()
    workdir = Path(tempfile.mkdtemp(prefix="scale-bench-"))
    print(f"logs in {workdir}", flush=True)
    deployment = Deployment.start(
        workdir=workdir,
        database_url=database_url,
        redis_url=redis_url,
        channel_prefix=os.environ.get("ECSPORTAL_CHANNEL_PREFIX", "ecsportal") + "-bench",
        settings={"ECSPORTAL_APPROVAL_SWEEP_SECONDS": "0", "ECSPORTAL_RUN_TASK_CHECK_SECONDS": "60"},
        label="scalebench",
        debug=False,
        emulator_processes=args.emulator_processes,
        conn_max_age=args.conn_max_age,
    )
    results = []
    setup = args.setup
    args.own = own
    try:
        for runs, mb in parse_rounds(args.rounds):
            args.runs, args.mb = runs, mb
            args.units = max(1, int(mb * 1_000_000 / UNIT))
            args.setup = setup or 60 + runs * 0.5
            results.append(one_round(deployment, args, modes))
    except BaseException:
        print(deployment.logs_tail(), file=sys.stderr)
        raise
    finally:
        deployment.stop()
        for server in own:
            server.close()
    summaries = [r[m] for r in results for m in modes if m in r]
    print(
        json.dumps(
            {
                "rounds": results,
                "failed_runs": sum(s["failed_runs"] for s in summaries),
                "bytes_lost": sum(s["bytes_lost"] for s in summaries),
                "viewers_without_end": sum(s["viewers"] - s["viewers_saw_end"] for s in summaries),
                "p99_ms_multi": max((r["p99_ms_multi"] or 0 for r in results if "p99_ms_multi" in r), default=None),
            }
        )
    )


if __name__ == "__main__":
    main()
