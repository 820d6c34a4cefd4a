"""A several-process deployment on this machine, for the multi-process and fault tests and the benchmarks.

`Deployment.start(...)` creates a PostgreSQL database of its own (on the server DATABASE_URL
names: CI's, or one a fault test started itself, `tests/faults/servers.py`), starts `manage.py
demo --aws-only` (moto, the SSM agent emulator, migrate, the demo seed), then as many daphne
and `runsworker` processes as asked, all on that database and on Redis under a channel prefix
of their own. Each can be stopped as an orchestrator would (`terminate`: SIGTERM, then wait),
killed (`kill`) and started again under the same name. `stop()` kills every process it started
(SIGKILL after a short grace) and drops the database, whatever happened before. Nothing here
imports Django: the processes are black boxes reached over HTTP, WebSocket and SQL.

`debug=False` serves as deployed (DJANGO_DEBUG off, a real secret key, plain HTTP allowed on
loopback): what the benchmarks measure.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "multi-process-demo"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _with_conn_max_age(url: str, seconds: int) -> str:
    if not seconds:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="&".join(filter(None, [parts.query, f"conn_max_age={seconds}"]))))


def _admin_connection(url: str):
    import psycopg

    return psycopg.connect(_with_database(url, "postgres").replace("postgres://", "postgresql://", 1), autocommit=True)


@dataclass
class Deployment:
    workdir: Path
    database_url: str
    database: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    _files: list = field(default_factory=list)

    # -- life cycle ------------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        *,
        workdir: Path,
        database_url: str,
        redis_url: str,
        channel_prefix: str,
        settings: dict[str, str] | None = None,
        label: str = "multiprocess",
        debug: bool = True,
        emulator_processes: int = 1,
        conn_max_age: int = 60,
    ) -> Deployment:
        """Create the database and start local AWS; portal processes are started separately.
        `emulator_processes` > 1 serves the data channels from that many emulator processes
        (`demo --emulator-processes`), for load. The processes keep their database connections
        `conn_max_age` seconds, as docs/deploy.md deploys them (0: one per request)."""
        database = f"{urlsplit(database_url).path.lstrip('/') or 'ecsportal'}_{label}_{os.getpid()}"
        with _admin_connection(database_url) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}"')
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ECSPORTAL_", "DJANGO_", "AWS_", "PYTEST", "DATABASE_URL", "REDIS_URL"))
        }
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "ecsportal.settings",
                **(
                    {"DJANGO_DEBUG": "true"}
                    if debug
                    else {
                        "DJANGO_DEBUG": "false",
                        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
                        "ECSPORTAL_SECRET_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
                        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
                        "DJANGO_SSL_REDIRECT": "false",
                        "DJANGO_SECURE_COOKIES": "false",
                        "DJANGO_HSTS_SECONDS": "0",
                    }
                ),
                "DATABASE_URL": _with_conn_max_age(_with_database(database_url, database), conn_max_age),
                "REDIS_URL": redis_url,
                "ECSPORTAL_CHANNEL_PREFIX": channel_prefix,
                "ECSPORTAL_DEMO_PASSWORD": PASSWORD,
                "ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY": secrets.token_urlsafe(24),
                "ECSPORTAL_RUNNER_MODE": "worker",
                "ECSPORTAL_STOPPED_COLLECT_INTERVAL": "0",
                "ECSPORTAL_INVENTORY_CACHE_SECONDS": "0",
                "ECSPORTAL_SOCKETS_PER_USER": "0",  # scale.py: hundreds of viewers, all one user
                "ECSPORTAL_RUNS_MAX_ACTIVE_PER_USER": "0",  # and hundreds of runs, all one operator's
                "PYTHONUNBUFFERED": "1",
                **(settings or {}),
            }
        )
        plain = _with_database(database_url, database)  # psycopg's own connections: no Django options
        deployment = cls(workdir=workdir, database_url=plain, database=database, env=env)
        deployment._admin_url = database_url
        try:
            deployment._start_aws(emulator_processes)
        except BaseException:
            deployment.stop()
            raise
        return deployment

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
        log_path = self.workdir / f"{name}.log"
        log = open(log_path, "ab")  # a process started again under its name appends
        self._files.append(log)
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.procs[name] = proc
        self.logs[name] = log_path
        return proc

    def _start_aws(self, emulator_processes: int = 1) -> None:
        # The demo (users with known passwords) runs only with DEBUG on; the portal's processes
        # may serve with it off, on the same keys.
        command = [sys.executable, "manage.py", "demo", "--aws-only", f"--emulator-processes={emulator_processes}"]
        proc = self._spawn("aws", command, {**self.env, "DJANGO_DEBUG": "true"})
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            text = self.logs["aws"].read_text(errors="replace")
            if "Press Ctrl-C to stop." in text:
                found = dict(re.findall(r"^\s+([A-Z_]+)=(\S+)$", text, re.MULTILINE))
                for name in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
                    self.env[name] = found[name]
                self.env["ECSPORTAL_LOCAL_EXEC"] = "true"
                self.env["ECSPORTAL_LOCAL_EXEC_EMULATOR"] = found["ECSPORTAL_LOCAL_EXEC_EMULATOR"]
                return
            if proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError("local AWS did not start:\n" + self.log_tail("aws"))

    def start_daphne(self, name: str, **env: str) -> int:
        """A daphne process serving the portal; `env` overrides this deployment's environment."""
        port = free_port()
        self.ports[name] = port
        self._spawn(
            name,
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "ecsportal.asgi:application"],
            {**self.env, **env},
        )
        return port

    def start_worker(self, name: str, **env: str) -> subprocess.Popen:
        """A `manage.py runsworker` process; `env` overrides this deployment's environment."""
        return self._spawn(name, [sys.executable, "manage.py", "runsworker"], {**self.env, **env})

    def wait_listening(self, name: str, timeout: float = 60) -> None:
        """Until the worker `name` says it listens for runs."""
        deadline = time.monotonic() + timeout
        while "runs worker: listening" not in self.logs[name].read_text(errors="replace"):
            if self.procs[name].poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} is not listening:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def terminate(self, name: str, timeout: float = 60) -> int:
        """SIGTERM, as an orchestrator stops a process, and wait for it to exit: its return code."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        return proc.wait(timeout)

    def alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def stop_process(self, name: str) -> None:
        """End one portal process (SIGTERM, then SIGKILL) and forget its port."""
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        self.ports.pop(name, None)

    def wait_ready(self, timeout: float = 60) -> None:
        for name, port in self.ports.items():
            try:
                wait_for_http(f"http://127.0.0.1:{port}/healthz", timeout, self.procs[name])
            except RuntimeError as exc:
                raise RuntimeError(f"{name} did not start: {exc}\n{self.log_tail(name)}") from None

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
        proc.wait(10)

    @contextlib.contextmanager
    def serving(self, worker: str = "worker") -> Iterator[Deployment]:
        """Daphne A and B and one runs worker until the block ends; then every process is stopped,
        the database dropped, and the processes' last log lines printed (pytest shows them when a
        test failed)."""
        try:
            self.start_daphne("daphne-a")
            self.start_daphne("daphne-b")
            self.start_worker(worker)
            self.wait_ready()
            yield self
        finally:
            logs = self.logs_tail()
            self.stop()
            print(logs)

    def stop(self) -> None:
        """Kill every process started here (terminate, then SIGKILL), then drop the database."""
        for proc in self.procs.values():
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 5
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(10)
        for log in self._files:
            log.close()
        try:
            with _admin_connection(self._admin_url) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        except Exception as exc:  # reported, never hiding the test's own failure
            print(f"could not drop {self.database}: {exc}", file=sys.stderr)

    # -- looking in ------------------------------------------------------------------------------

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.logs.get(name)
        if path is None or not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def logs_tail(self) -> str:
        return "\n".join(f"--- {name}\n{self.log_tail(name)}" for name in self.procs)

    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.database_url.replace("postgres://", "postgresql://", 1)) as conn:
            return conn.execute(query, params).fetchall()

    def http(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def ws(self, name: str) -> str:
        return f"ws://127.0.0.1:{self.ports[name]}"

    def exec_target(self) -> SimpleNamespace:
        """A running, exec-enabled task of the demo's staging account (no approval for commands)."""
        import boto3

        sts = boto3.client(
            "sts",
            region_name="eu-west-1",
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )
        creds = sts.assume_role(
            RoleArn="arn:aws:iam::210987654321:role/ecsportal-access",
            RoleSessionName="test",
            ExternalId="ecsportal-demo-7f3a",
        )["Credentials"]
        ecs = boto3.client(
            "ecs",
            region_name="eu-west-1",
            endpoint_url=self.env["AWS_ENDPOINT_URL"],
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        arns = ecs.list_tasks(cluster="staging", desiredStatus="RUNNING")["taskArns"]
        tasks = ecs.describe_tasks(cluster="staging", tasks=arns)["tasks"]
        task = next(t for t in tasks if any(c["name"] == "app" for c in t["containers"]))
        (account,) = self.sql("SELECT id FROM accounts_awsaccount WHERE name = %s", ("Acme Staging",))[0]
        return SimpleNamespace(
            account=account, region="eu-west-1", cluster="staging", task=task["taskArn"].rsplit("/", 1)[-1]
        )


# -- a user's side: log in, start a run, watch it --------------------------------------------------


def login(base: str, username: str, password: str = PASSWORD):
    """A requests session logged in through the login form (CSRF and all), as a browser would."""
    import requests

    session = requests.Session()
    session.trust_env = False  # loopback: never through a proxy from the environment
    session.get(f"{base}/login/", timeout=30).raise_for_status()
    answer = session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{base}/login/"},
        timeout=30,
    )
    answer.raise_for_status()
    if "sessionid" not in session.cookies:
        raise RuntimeError(f"login as {username} failed at {base}")
    return session


def _post_for_run(session, base: str, path: str, target: SimpleNamespace, **fields: str) -> int:
    """POST a form that starts a run on `target`'s app container as the logged-in user; the
    run's ID from the page it redirects to."""
    if "csrftoken" not in session.cookies:
        session.get(f"{base}/runs/new/", timeout=30).raise_for_status()
    answer = session.post(
        f"{base}{path}",
        data={
            "account": target.account,
            "region": target.region,
            "cluster": target.cluster,
            "task": target.task,
            "container": "app",
            "role_arn": "",
            **fields,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base}/runs/new/"},
        timeout=60,
    )
    found = re.search(r"/runs/(\d+)/$", answer.url)
    if answer.status_code != 200 or found is None:
        raise RuntimeError(f"{path} answered {answer.status_code} at {answer.url}: {answer.text[:2000]}")
    return int(found.group(1))


def start_run(session, base: str, target: SimpleNamespace, command: str) -> int:
    """POST the run form as the operator; the run's ID from the page it redirects to."""
    return _post_for_run(session, base, "/runs/new/", target, command=command, reason="")


def open_shell(session, base: str, target: SimpleNamespace) -> int:
    """POST the shell button's form (as the task page does); the shell's run ID."""
    return _post_for_run(session, base, "/runs/shell/", target)


ASK_AFTER = 15.0  # seconds of silence before a viewer asks for the status (run-terminal.js: QUIET_MS)


@dataclass
class Watched:
    data: bytearray = field(default_factory=bytearray)
    seqs: list[int] = field(default_factory=list)
    live_chunks: int = 0  # output messages that came after "replayed"
    replayed: bool = False
    statuses: list[dict] = field(default_factory=list)
    reconnects: int = 0
    failures: list[str] = field(default_factory=list)  # why each reconnect was needed
    first_at: float | None = None  # time.time() of the first output byte
    finished_at: float | None = None  # time.time() of the status that said finished
    asked: int = 0  # times it asked for the status after hearing nothing for ASK_AFTER seconds

    @property
    def last_status(self) -> dict:
        return self.statuses[-1] if self.statuses else {}


class WatchTimeout(AssertionError):
    """The run did not finish (or `until` did not hold) in time."""


async def watch(
    ws_base: str,
    origin: str,
    cookie: str,
    run_pk: int,
    *,
    timeout: float = 60,
    until=None,
    on_output=None,
    read_nothing_for: float = 0,
) -> Watched:
    """A viewer's socket on `ws/runs/<pk>/`: every message until the run has finished (or `until(watched)`).

    `on_output(chunk, arrival, live)`: arrival is time.time(); live is False for the replay. Like
    the run page (run-terminal.js), a socket that fails is opened again from the last seq
    received after 1 s, doubling to 30 s; `reconnects` counts those. That includes an HTTP 403
    before the handshake: daphne answers so when the application has not accepted within its
    handshake timeout, and a browser sees it as 1006, like a network failure.

    `read_nothing_for`: a stalled viewer (a frozen tab): once connected, read nothing for that
    many seconds (the client buffers one frame, then TCP holds the server back), then go on."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosedError, InvalidMessage, InvalidStatus

    watched = Watched()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 1.0
    while True:
        try:
            async with connect(
                f"{ws_base}/ws/runs/{run_pk}/?after={watched.seqs[-1] if watched.seqs else 0}",
                origin=origin,
                additional_headers={"Cookie": cookie},
                max_size=2**24,
                max_queue=1 if read_nothing_for else 16,
                open_timeout=30,
                proxy=None,
            ) as socket_:
                watched.replayed = False
                if read_nothing_for:
                    await asyncio.sleep(read_nothing_for)
                    read_nothing_for = 0
                if await _read(socket_, watched, run_pk, deadline, timeout, until, on_output):
                    return watched
        except (InvalidMessage, InvalidStatus, ConnectionClosedError, OSError, TimeoutError) as exc:
            if loop.time() + delay >= deadline:
                raise WatchTimeout(f"run {run_pk}: the socket kept failing ({exc!r})") from exc
            watched.reconnects += 1
            watched.failures.append(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)


async def _read(socket_, watched: Watched, run_pk: int, deadline: float, timeout: float, until, on_output) -> bool:
    loop = asyncio.get_running_loop()
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            raise WatchTimeout(f"run {run_pk}: still {watched.last_status.get('status')} after {timeout} s")
        try:
            text = await asyncio.wait_for(socket_.recv(), min(remaining, ASK_AFTER))
        except TimeoutError:
            if remaining <= ASK_AFTER:
                raise WatchTimeout(
                    f"run {run_pk}: still {watched.last_status.get('status')} after {timeout} s"
                ) from None
            # As run-terminal.js does: a viewer that has heard nothing for a while asks for the status
            # (a status message can be dropped on the way, a full channel-layer queue for one).
            await socket_.send(json.dumps({"type": "status"}))
            watched.asked += 1
            continue
        message = json.loads(text)
        if message["type"] == "output":
            chunk = base64.b64decode(message["data"])
            arrival = time.time()
            if watched.first_at is None:
                watched.first_at = arrival
            watched.data += chunk
            watched.seqs.append(message["seq"])
            watched.live_chunks += watched.replayed
            if on_output is not None:
                on_output(chunk, arrival, watched.replayed)
        elif message["type"] == "replayed":
            watched.replayed = True
        elif message["type"] == "status":
            watched.statuses.append(message)
            if message.get("finished"):
                watched.finished_at = time.time()
        if watched.replayed and watched.last_status.get("finished"):
            return True
        if until is not None and until(watched):
            return True
