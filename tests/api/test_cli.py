"""The `ecsportal` CLI as a subprocess against the demo server: the remote exit code, Ctrl-C
cancelling the remote run, a wait for approval that says where, the reads."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "clients" / "cli"


def create_token(base: str, user: str, role: str = "20") -> str:
    """Through the tokens page, as a person does: log in, create, read the token shown once."""
    s = requests.Session()
    s.get(f"{base}/login/")
    s.post(
        f"{base}/login/",
        data={"username": user, "password": "demo", "csrfmiddlewaretoken": s.cookies["csrftoken"]},
        headers={"Referer": f"{base}/login/"},
    )
    page = s.get(f"{base}/tokens/").text
    accounts = re.findall(r'name="personal-accounts" value="(\d+)"', page)
    answer = s.post(
        f"{base}/tokens/new/",
        headers={"Referer": f"{base}/tokens/"},
        data={
            "personal-name": f"cli {time.monotonic()}",
            "personal-days": "1",
            "personal-accounts": accounts,
            "personal-max_role": role,
            "csrfmiddlewaretoken": s.cookies["csrftoken"],
        },
    )
    return re.search(r'value="(ecsp_[^"]+)"', answer.text)[1]


@pytest.fixture(scope="module")
def env(demo_server):
    return {
        **os.environ,
        "PYTHONPATH": str(CLI),
        "ECSPORTAL_URL": demo_server,
        "ECSPORTAL_TOKEN": create_token(demo_server, "operator"),
        "ECSPORTAL_CONFIG": "/nonexistent",
    }


def cli(env, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "ecsportal_cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )


def api(env, path: str):
    request = urllib.request.Request(
        env["ECSPORTAL_URL"] + "/api/v1" + path, headers={"Authorization": f"Bearer {env['ECSPORTAL_TOKEN']}"}
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


STAGING_WORKER = ["--account", "Acme Staging", "--cluster", "staging", "--service", "worker"]


def test_the_remote_exit_code_is_the_cli_exit_status(env):
    proc = cli(env, "run", *STAGING_WORKER, "--", "echo hello; exit 3")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    assert out.replace(b"\r\n", b"\n") == b"hello\n"
    assert b"/runs/" in err  # the run's page, on stderr


def test_a_successful_command_exits_zero_and_a_refusal_is_65_saying_why(env):
    proc = cli(env, "run", *STAGING_WORKER, "--", "true")
    proc.communicate(timeout=120)
    assert proc.returncode == 0
    proc = cli(env, "run", "--account", "Acme Staging", "--cluster", "staging", "--service", "web", "--", "true")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 65 and b"several containers (app, envoy)" in err


def test_ctrl_c_cancels_the_remote_run(env):
    proc = cli(env, "run", *STAGING_WORKER, "--", "echo started; sleep 60; echo never")
    assert proc.stdout.readline().strip() == b"started"  # the command runs remotely now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert b"never" not in out
    run_id = int(re.search(rb"/runs/(\d+)/", err)[1])
    run = api(env, f"/runs/{run_id}")
    assert run["status"] == "cancelled" and "Cancelled by operator" in run["end_reason"]


def test_a_run_that_needs_approval_says_so_with_the_requests_url_and_ctrl_c_withdraws_it(env):
    proc = cli(
        env,
        "run",
        "--account",
        "Acme Production",
        "--cluster",
        "prod-web",
        "--service",
        "web",
        "--container",
        "app",
        "--reason",
        "cli test",
        "--",
        "id",
    )
    line = b""
    while b"waiting for approval" not in line:
        line = proc.stderr.readline()
        assert line, "the CLI ended without saying it waits"
    url = line.decode().split("waiting for approval: ")[1].strip()
    assert re.fullmatch(re.escape(env["ECSPORTAL_URL"]) + r"/approvals/\d+/", url)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and b"withdrawn" in err


def test_tasks_and_stopped_read_the_inventory_and_history(env):
    proc = cli(env, "tasks", "--account", "Acme Staging", "--json")
    out, err = proc.communicate(timeout=120)
    tasks = json.loads(out)
    assert proc.returncode == 0 and {t["cluster"] for t in tasks} >= {"staging"}
    assert all("exec_ready" in t and t["containers"] for t in tasks)
    proc = cli(env, "stopped", "--since", "7d", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert json.loads(out) and all(row["stop_code"] is not None for row in json.loads(out))


def test_a_bad_token_is_65_and_a_missing_url_is_64(env):
    proc = cli({**env, "ECSPORTAL_TOKEN": "ecsp_00000000_" + "A" * 43}, "tasks")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 65 and b"not known" in err
    proc = cli({**env, "ECSPORTAL_URL": ""}, "tasks")
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 64 and b"ECSPORTAL_URL" in err


def test_run_all_prefixes_each_targets_lines_and_exits_non_zero_when_one_target_fails(env, tmp_path):
    """Every task of the demo's fleet service runs the command; the first to take the lock
    (a directory only one `mkdir` can create) exits 2, the others print ok."""
    lock = tmp_path / "first"
    command = f"if mkdir {lock} 2>/dev/null; then echo first; exit 2; fi; echo ok"
    proc = cli(
        env, "run", "--all", "--account", "Acme Staging", "--cluster", "staging", "--service", "fleet",
        "--concurrency", "6", "--", command,
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1, err
    lines = out.replace(b"\r\n", b"\n").decode().splitlines()
    prefixed = [re.fullmatch(r"\[Acme Staging/staging/([\w-]+)/(\w+)\] (.*)", line) for line in lines]
    assert all(prefixed), lines
    said = {}
    for m in prefixed:
        said.setdefault(m[1], []).append(m[3])
    failed = [task for task, words in said.items() if words == ["first", "-- failed, exit code 2"]]
    succeeded = [task for task, words in said.items() if words == ["ok", "-- succeeded, exit code 0"]]
    assert len(failed) == 1 and len(succeeded) == len(said) - 1 >= 19, said
    assert b"1 of" in err and b"did not succeed" in err
    batch_id = int(re.search(rb"/batches/(\d+)/", err)[1])
    batch = api(env, f"/batches/{batch_id}")
    assert batch["counts"].get("failed") == 1 and batch["counts"].get("succeeded") == len(said) - 1


def test_run_all_json_prints_the_summary_and_exits_zero_when_all_succeed(env):
    proc = cli(
        env, "run", "--all", "--json", "--account", "Acme Staging", "--cluster", "staging", "--service", "fleet",
        "--concurrency", "8", "--", "echo same",
    )  # fmt: skip
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    listed = [t for t in summary["targets"] if t["in_target_list"]]
    assert listed and all(t["status"] == "succeeded" and t["exit_code"] == 0 for t in listed)
    assert len(summary["groups"]) == 1 and summary["groups"][0]["count"] == len(listed)  # identical output: one group


def test_ctrl_c_cancels_a_remote_batch(env):
    proc = cli(
        env, "run", "--all", "--account", "Acme Staging", "--cluster", "staging", "--service", "fleet",
        "--concurrency", "3", "--", "sleep 60",
    )  # fmt: skip
    announced = proc.stderr.readline()
    batch_id = int(re.search(rb"batch (\d+) on \d+ containers", announced)[1])
    deadline = time.monotonic() + 120
    while not any(t["status"] == "running" for t in api(env, f"/batches/{batch_id}")["targets"]):
        assert time.monotonic() < deadline, "no target started"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    batch = api(env, f"/batches/{batch_id}")
    assert batch["status"] == "cancelled"
    assert not any(t["status"] in ("running", "queued", "connecting") for t in batch["targets"])
