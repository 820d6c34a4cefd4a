"""`ecsportal`: run commands in ECS containers through the portal, with the remote exit code.

Exit codes (besides the remote command's own, 0-255, for a run that reported one):
    1  `run --all`: at least one target failed, timed out or could not start
  124  the run hit its time limit (or silence limit)
  125  the run ended without an exit code (portal, AWS or data-channel error; see stderr)
  130  the run was cancelled (Ctrl-C here, or by someone on the portal), or its approval was
       rejected, withdrawn or expired
   64  usage or configuration error
   65  the portal refused the request (authentication, scope, validation: the message says why)
   69  the portal could not be reached, or failed
"""

from __future__ import annotations

import argparse
import base64
import json
import shlex
import sys
import time
import urllib.parse
from typing import Any

from ecsportal_cli.client import ApiError, Client, ConfigError, load_config

EXIT_TIME_LIMIT, EXIT_NO_CODE, EXIT_CANCELLED = 124, 125, 130
EXIT_USAGE, EXIT_REFUSED, EXIT_UNAVAILABLE = 64, 65, 69
LONG_POLL = 20


def err(text: str) -> None:
    print(f"ecsportal: {text}", file=sys.stderr, flush=True)


# --- runs -------------------------------------------------------------------------------------------


def target_body(args: argparse.Namespace) -> dict[str, Any]:
    """The target fields shared by `run` and `runbook` (and, later, a batch's filter)."""
    body = {
        "account": args.account,
        "cluster": args.cluster,
        "region": args.region,
        "service": args.service,
        "task": args.task,
        "container": args.container,
    }
    return {k: v for k, v in body.items() if v}


def exit_code_of(run: dict[str, Any]) -> int:
    status = run["status"]
    if status in ("succeeded", "failed") and run.get("exit_code") is not None:
        return int(run["exit_code"]) & 0xFF
    if status == "completed":  # raw mode: nothing reported an exit code
        err(f"run {run['id']} completed (raw mode: no exit code)")
        return 0
    if status == "timed_out":
        err(f"run {run['id']} timed out: {run['end_reason']}")
        return EXIT_TIME_LIMIT
    if status == "cancelled":
        err(f"run {run['id']} cancelled: {run['end_reason']}")
        return EXIT_CANCELLED
    err(f"run {run['id']} ended without an exit code ({status}): {run['end_reason']}")
    return EXIT_NO_CODE


PLURAL = {"run": "runs", "batch": "batches"}


def cancel_remote(client: Client, kind: str, thing: dict[str, Any]) -> dict[str, Any]:
    """Ask the portal to cancel a run or a batch; its new state (or the old one if it had ended)."""
    err(f"cancelling {kind} {thing['id']} …")
    try:
        return client.post(f"/{PLURAL[kind]}/{thing['id']}/cancel", timeout=30)
    except ApiError as exc:
        if exc.status != 409:  # 409: it had already ended
            err(f"could not cancel: {exc.detail}")
        return thing


class Follower:
    """Streams one run's output to stdout; Ctrl-C asks the portal to cancel the run, once."""

    def __init__(self, client: Client, run: dict[str, Any]) -> None:
        self.client, self.run, self.after = client, run, 0
        self.cancel_asked = False
        self.told_approval = False

    def cancel(self) -> None:
        if not self.cancel_asked:
            self.cancel_asked = True
            self.run = cancel_remote(self.client, "run", self.run)

    def tell_approval(self) -> None:
        if self.run["status"] == "awaiting_approval" and not self.told_approval:
            self.told_approval = True
            err(f"waiting for approval: {self.run['approval_url']}")

    def follow(self, *, announce: bool) -> int:
        while True:
            try:
                if announce:
                    announce = False
                    err(f"run {self.run['id']}: {self.run['url']}")
                self.tell_approval()
                done = self.step()
            except KeyboardInterrupt:  # wherever it lands: ask the portal to cancel, then read on to the end
                if self.cancel_asked:
                    raise
                self.cancel()
                continue
            if done:
                return exit_code_of(self.run)

    def step(self) -> bool:
        """One long poll: write what came, in order; True once the run ended and all is written."""
        page = self.client.request(
            "GET",
            f"/runs/{self.run['id']}/output",
            params={"after": self.after, "wait": LONG_POLL},
            timeout=LONG_POLL + 30,
        )
        self.run = page["run"]
        self.tell_approval()
        out = sys.stdout.buffer
        for chunk in page["chunks"]:
            out.write(base64.b64decode(chunk["data"]))
            out.flush()
            self.after = chunk["seq"]  # chunk by chunk: an interruption never writes one twice
        self.after = max(self.after, page["next_after"])
        return bool(page["complete"])


def follow_run(client: Client, run: dict[str, Any], *, quiet: bool) -> int:
    try:
        return Follower(client, run).follow(announce=not quiet)
    except KeyboardInterrupt:  # a second Ctrl-C while cancelling: leave now
        return EXIT_CANCELLED


def cmd_run(client: Client, args: argparse.Namespace) -> int:
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        err("give the command after --, e.g. ecsportal run --account prod --cluster web --service api -- ls /")
        return EXIT_USAGE
    text = command[0] if len(command) == 1 else " ".join(_quote(c) for c in command)
    if args.all:
        return run_batch(client, args, text)
    if args.json:
        err("--json goes with --all (a batch's summary)")
        return EXIT_USAGE
    body = {**target_body(args), "command": text, "mode": "raw" if args.raw else "shell", "reason": args.reason or ""}
    run = client.post("/runs", body)
    return follow_run(client, run, quiet=args.quiet)


# --- batches: one command on every matching container ---------------------------------------------

BATCH_OK = ("succeeded", "completed")  # completed: raw mode, no exit code to judge
BATCH_POLL = 1.0
RUN_ENDS = ("succeeded", "completed", "failed", "error", "timed_out", "cancelled")


def batch_body(args: argparse.Namespace, text: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accounts": [a for a in args.account.split(",") if a],
        "cluster": args.cluster,
        "region": args.region,
        "service": args.service,
        "family": args.family,
        "container": args.container,
        "command": text,
        "mode": "raw" if args.raw else "shell",
        "concurrency": args.concurrency,
        "stop_after_failures": args.stop_after,
        "reason": args.reason or "",
    }
    if args.task:
        raise ApiError(0, "--task names one task; --all runs on every task the filter matches (leave --task out)")
    return {k: v for k, v in body.items() if v not in (None, "")}


class BatchFollower:
    """Polls a batch; prints each target's output, every line prefixed with the target, as it ends."""

    def __init__(self, client: Client, batch: dict[str, Any], *, out: Any | None) -> None:
        self.client, self.batch, self.out = client, batch, out
        self.printed: set[int] = set()  # run IDs whose output is written
        self.cancel_asked = self.told_approval = False

    def label(self, target: dict[str, Any]) -> str:
        return f"{target['account']}/{target['cluster']}/{target['task']}/{target['container']}"

    def cancel(self) -> None:
        if not self.cancel_asked:
            self.cancel_asked = True
            self.batch = cancel_remote(self.client, "batch", self.batch)

    def write_target(self, target: dict[str, Any]) -> None:
        prefix = f"[{self.label(target)}] ".encode()
        after, pending = 0, b""
        while True:
            page = self.client.get(f"/runs/{target['run']}/output", after=after)
            for chunk in page["chunks"]:
                pending += base64.b64decode(chunk["data"])
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    self.out.write(prefix + line + b"\n")
            after = page["next_after"]
            if page["complete"] or not page["chunks"]:
                break
        if pending:
            self.out.write(prefix + pending + b"\n")
        status = target["status"]
        code = target["exit_code"]
        self.out.write(prefix + f"-- {status}{'' if code is None else f', exit code {code}'}\n".encode())
        self.out.flush()

    def step(self) -> bool:
        if self.batch["status"] == "awaiting_approval" and not self.told_approval:
            self.told_approval = True
            err(f"waiting for approval: {self.batch['approval_url']}")
        for target in self.batch["targets"]:
            run = target["run"]
            if run and run not in self.printed and target["status"] in RUN_ENDS:
                self.printed.add(run)
                if self.out is not None:  # --json: the summary alone, at the end
                    self.write_target(target)
        return bool(self.batch["ended"])

    def follow(self) -> dict[str, Any]:
        while True:
            try:
                if self.step():
                    return self.batch
                time.sleep(BATCH_POLL)
                self.batch = self.client.get(f"/batches/{self.batch['id']}")
            except KeyboardInterrupt:
                if self.cancel_asked:
                    raise
                self.cancel()


def batch_exit_code(batch: dict[str, Any]) -> int:
    if batch["status"] in ("cancelled", "refused"):
        err(f"batch {batch['id']} {batch['status']}: {batch['end_reason']}")
        return EXIT_CANCELLED
    listed = [t for t in batch["targets"] if t["in_target_list"]]
    failed = [t for t in listed if t["status"] not in BATCH_OK]
    for group in batch["groups"]:
        err(f"batch {batch['id']}: {group['summary']}")
    if failed:
        err(f"batch {batch['id']}: {len(failed)} of {len(listed)} targets did not succeed")
        return 1
    return 0


def run_batch(client: Client, args: argparse.Namespace, text: str) -> int:
    batch = client.post("/batches", batch_body(args, text))
    skipped = [t for t in batch["targets"] if not t["in_target_list"]]
    if not args.quiet:
        listed = len(batch["targets"]) - len(skipped)
        err(f"batch {batch['id']} on {listed} containers: {batch['url']}")
    for target in skipped:
        err(f"skipped {target['account']}/{target['cluster']}/{target['task']}: {target['skip_reason']}")
    follower = BatchFollower(client, batch, out=None if args.json else sys.stdout.buffer)
    try:
        batch = follower.follow()
    except KeyboardInterrupt:  # a second Ctrl-C while cancelling: leave now
        return EXIT_CANCELLED
    if args.json:
        print(json.dumps(batch, indent=2, default=str))
    return batch_exit_code(batch)


def _quote(word: str) -> str:
    return shlex.quote(word)


def cmd_runbook(client: Client, args: argparse.Namespace) -> int:
    options: dict[str, str] = {}
    for pair in args.values:
        if "=" not in pair:
            err(f"option values are key=value; got {pair!r}")
            return EXIT_USAGE
        key, value = pair.split("=", 1)
        options[key] = value
    body = {**target_body(args), "options": options, "reason": args.reason or ""}
    run = client.post(f"/runbooks/{_path(args.name)}/runs", body)
    return follow_run(client, run, quiet=args.quiet)


def _path(word: str) -> str:
    return urllib.parse.quote(word, safe="")


# --- reads ------------------------------------------------------------------------------------------


def _accounts(client: Client, wanted: str | None) -> list[dict[str, Any]]:
    accounts = client.get("/accounts")
    if wanted:
        accounts = [a for a in accounts if wanted in (a["name"], str(a["id"]))]
        if not accounts:
            raise ApiError(404, f"No account {wanted} among this token's; `ecsportal accounts` lists them.")
    return accounts


def cmd_accounts(client: Client, args: argparse.Namespace) -> int:
    accounts = client.get("/accounts")
    if args.json:
        print(json.dumps(accounts, indent=2))
    else:
        _table(
            [[a["id"], a["name"], a["account_id"], ",".join(a["regions"]), a["role"]] for a in accounts],
            ["ID", "NAME", "AWS ACCOUNT", "REGIONS", "ROLE"],
        )
    return 0


def cmd_tasks(client: Client, args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []
    for account in _accounts(client, args.account):
        ref = _path(str(account["id"]))
        clusters = (
            [{"name": args.cluster, "region": args.region}]
            if args.cluster
            else client.get(f"/accounts/{ref}/clusters", region=args.region)
        )
        for cluster in clusters:
            for task in client.get(
                f"/accounts/{ref}/clusters/{_path(cluster['name'])}/tasks",
                region=cluster.get("region"),
                service=args.service,
            ):
                rows.append({"account": account["name"], **task})
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
        return 0
    _table(
        [
            [
                r["account"],
                r["cluster"],
                r["service"] or "-",
                r["id"],
                ",".join(c["name"] for c in r["containers"]),
                "ready" if r["exec_ready"] else "not ready",
            ]
            for r in rows
        ],
        ["ACCOUNT", "CLUSTER", "SERVICE", "TASK", "CONTAINERS", "EXEC"],
    )
    return 0


SINCE = {"1h": "1h", "6h": "6h", "24h": "24h", "1d": "24h", "7d": "7d", "all": "all"}


def cmd_stopped(client: Client, args: argparse.Namespace) -> int:
    if args.since not in SINCE:
        err(f"--since is one of {', '.join(SINCE)}")
        return EXIT_USAGE
    account_id = _accounts(client, args.account)[0]["id"] if args.account else None
    items: list[dict[str, Any]] = []
    page = 1
    while len(items) < args.limit:
        answer = client.get(
            "/stopped",
            range=SINCE[args.since],
            account=account_id,
            cluster=args.cluster,
            service=args.service,
            page=page,
        )
        items.extend(answer["items"])
        if page >= answer["pages"] or not answer["items"]:
            break
        page += 1
    items = items[: args.limit]
    if args.json:
        print(json.dumps(items, indent=2, default=str))
        return 0
    _table(
        [
            [
                i["stopped_at"],
                i["account"],
                i["cluster"],
                i["service"] or "-",
                i["task_arn"].rsplit("/", 1)[-1],
                i["stop_code"],
                i["category"],
                i["stopped_reason"][:60],
            ]
            for i in items
        ],
        ["STOPPED", "ACCOUNT", "CLUSTER", "SERVICE", "TASK", "STOP CODE", "CATEGORY", "REASON"],
    )
    return 0


def cmd_stop(client: Client, args: argparse.Namespace) -> int:
    body = {
        "task": args.task,
        "reason": args.reason,
        "account": args.account,
        "cluster": args.cluster,
        "region": args.region,
    }
    stop = client.post("/stops", {k: v for k, v in body.items() if v})
    err(f"stop request {stop['id']} is {stop['status']}: {stop['url']}")
    if not args.wait:
        return 0
    while stop["status"] in ("pending", "executing"):
        time.sleep(2)
        stop = client.get(f"/stops/{stop['id']}")
    err(f"stop request {stop['id']} {stop['status']}{': ' + stop['result'] if stop['result'] else ''}")
    return 0 if stop["status"] == "executed" else 1


def _table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [header] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


# --- arguments ---------------------------------------------------------------------------------------


def _target_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--account", required=True, help="the account's name or portal ID (with --all: several, a,b)")
    p.add_argument("--cluster", required=True)
    p.add_argument("--region", help="needed only when the cluster's name exists in several regions")
    p.add_argument("--service", help="run in a ready task of this service")
    p.add_argument("--task", help="the task ID (instead of --service)")
    p.add_argument("--container", help="needed when the task has several containers")
    p.add_argument("--reason", help="why: required where the account asks for approval")
    p.add_argument("-q", "--quiet", action="store_true", help="do not print the run's URL")


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="ecsportal", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = top.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run a command in a container, stream it, exit with its exit code")
    _target_args(run)
    run.add_argument("--raw", action="store_true", help="no shell (the exit code is then unknown)")
    run.add_argument("--all", action="store_true", help="a batch: every ready container the filter matches")
    run.add_argument("--family", help="--all: only tasks of this task definition family")
    run.add_argument("--concurrency", type=int, default=5, help="--all: targets at a time (default 5, at most 50)")
    run.add_argument("--stop-after", type=int, default=0, help="--all: start no new target after N failures")
    run.add_argument("--json", action="store_true", help="--all: print the batch's summary as JSON at the end")
    run.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    run.set_defaults(func=cmd_run)
    book = sub.add_parser("runbook", help="run a runbook with key=value options")
    book.add_argument("name")
    book.add_argument("values", nargs="*", metavar="key=value")
    _target_args(book)
    book.set_defaults(func=cmd_runbook)
    acc = sub.add_parser("accounts", help="the accounts this token reaches")
    acc.add_argument("--json", action="store_true")
    acc.set_defaults(func=cmd_accounts)
    tasks = sub.add_parser("tasks", help="running tasks, their containers and exec readiness")
    for name in ("--account", "--cluster", "--region", "--service"):
        tasks.add_argument(name)
    tasks.add_argument("--json", action="store_true")
    tasks.set_defaults(func=cmd_tasks)
    stopped = sub.add_parser("stopped", help="stopped tasks, newest first")
    stopped.add_argument("--since", default="24h", help="1h, 6h, 24h, 7d or all (default 24h)")
    for name in ("--account", "--cluster", "--service"):
        stopped.add_argument(name)
    stopped.add_argument("--limit", type=int, default=200)
    stopped.add_argument("--json", action="store_true")
    stopped.set_defaults(func=cmd_stopped)
    stop = sub.add_parser("stop", help="ask to stop a task (it stops once approved)")
    stop.add_argument("task", help="a task ARN, or a task ID with --account and --cluster")
    stop.add_argument("--reason", required=True)
    for name in ("--account", "--cluster", "--region"):
        stop.add_argument(name)
    stop.add_argument("--wait", action="store_true", help="wait until it is stopped, rejected or expired")
    stop.set_defaults(func=cmd_stop)
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        client = Client(*load_config())
    except ConfigError as exc:  # also an unsafe URL (check_url)
        err(str(exc))
        return EXIT_USAGE
    try:
        return args.func(client, args)
    except ApiError as exc:
        err(exc.detail)
        return EXIT_UNAVAILABLE if exc.status == 0 or exc.status >= 500 else EXIT_REFUSED
    except KeyboardInterrupt:
        return EXIT_CANCELLED
    except BrokenPipeError:  # `ecsportal tasks | head`: the reader has all it wanted
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
