"""What the fault tests run and watch: a busy command whose every byte is known, and viewers."""

from __future__ import annotations

from tests.deployment import Deployment, login, start_run, watch


def busy_command(rounds: int = 100, lines: int = 40, pause: float = 0.05) -> str:
    """About `rounds` × `lines` × 40 bytes over `rounds` × `pause` seconds (and the shell's time)."""
    return (
        f"i=0; while [ $i -lt {rounds} ]; do i=$((i+1)); "
        f'seq -f "$i-%05g-abcdefghijklmnopqrstuvwxyz" 1 {lines}; sleep {pause}; done'
    )


def busy_output(rounds: int = 100, lines: int = 40) -> bytes:
    """What a viewer and the transcript get from `busy_command`: the terminal writes \\r\\n."""
    return b"".join(
        b"%d-%05d-abcdefghijklmnopqrstuvwxyz\r\n" % (i, n) for i in range(1, rounds + 1) for n in range(1, lines + 1)
    )


def start_runs(deployment: Deployment, command: str, count: int, on: str = "daphne-a") -> list[int]:
    operator = login(deployment.http(on), "operator")
    target = deployment.exec_target()
    return [start_run(operator, deployment.http(on), target, command) for _ in range(count)]


def viewer_cookie(deployment: Deployment, on: str = "daphne-b") -> str:
    session = login(deployment.http(on), "viewer")
    return f"sessionid={session.cookies['sessionid']}"


def viewer(deployment: Deployment, cookie: str, run_pk: int, on: str = "daphne-b", **options):
    """A coroutine: one viewer's socket on run `run_pk` (reconnecting as the run page does)."""
    return watch(deployment.ws(on), deployment.http(on), cookie, run_pk, **options)


def stored(deployment: Deployment, run_pk: int) -> bytes:
    rows = deployment.sql("SELECT data FROM runs_runchunk WHERE run_id = %s ORDER BY seq", (run_pk,))
    return b"".join(bytes(data) for (data,) in rows)


def run_row(deployment: Deployment, run_pk: int) -> dict:
    ((status, end_reason, exit_code, bytes_out, runner_id),) = deployment.sql(
        "SELECT status, end_reason, exit_code, bytes_out, runner_id FROM runs_run WHERE id = %s", (run_pk,)
    )
    return {
        "status": status,
        "end_reason": end_reason,
        "exit_code": exit_code,
        "bytes_out": bytes_out,
        "runner_id": runner_id,
    }
