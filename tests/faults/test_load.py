"""Load in worker mode: many runs and viewers at once, a stalled viewer, a Redis pool too small on purpose."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor

from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer
from redis.exceptions import MaxConnectionsError

from ecsportal.redislayer import RedisChannelLayer
from tests.faults.runs import busy_command, busy_output, run_row, start_runs, stored, viewer, viewer_cookie

RUNS = 50
ROUNDS = 40  # about 60 KB per run over 12 s or more
PAUSE = 0.3
# Fifty runs queued at once wait longer than the other fault tests' 5 s for a loaded worker to
# take them: the sweep would (rightly) end them as not picked up.
PORTAL_SETTINGS = {"ECSPORTAL_RUN_STALE_SECONDS": "60", "ECSPORTAL_RUN_SWEEP_SECONDS": "5"}


async def _burst(layer, sends: int) -> list:
    """`sends` publishes at once, to groups that have members (the costly path: ZRANGE, then a script)."""
    for n in range(sends):
        await layer.group_add(f"run-{n}", f"viewer-{n}")
    try:
        return await asyncio.gather(
            *(
                layer.group_send(f"run-{n}", {"type": "run.output", "seq": 1, "data": b"x" * 2048})
                for n in range(sends)
            ),
            return_exceptions=True,
        )
    finally:
        await layer.flush()


def test_a_burst_of_publishes_beyond_the_redis_pool_waits_for_a_connection_instead_of_failing(servers):
    host = {"address": servers.redis.url, "max_connections": 3}

    theirs = asyncio.run(_burst(ChannelsRedisLayer(hosts=[host], prefix=f"pool{os.getpid()}a"), 60))
    ours = asyncio.run(_burst(RedisChannelLayer(hosts=[{**host, "timeout": 30}], prefix=f"pool{os.getpid()}b"), 60))

    assert any(isinstance(result, MaxConnectionsError) for result in theirs)  # what failed runs before
    assert ours == [None] * 60


def test_fifty_runs_with_two_viewers_each_lose_nothing_on_a_worker_whose_redis_pool_is_exhausted(deployment):
    deployment.terminate("worker")  # one worker, its pool far smaller than its runs' publishes
    deployment.start_worker("worker-tight", ECSPORTAL_REDIS_MAX_CONNECTIONS="4")
    deployment.wait_listening("worker-tight")
    command = busy_command(ROUNDS, pause=PAUSE)
    expected = busy_output(ROUNDS)
    with ThreadPoolExecutor(5) as pool:
        runs = [
            pk for batch in pool.map(lambda _: start_runs(deployment, command, RUNS // 5), range(5)) for pk in batch
        ]
    cookies = [viewer_cookie(deployment), viewer_cookie(deployment, on="daphne-a")]

    async def watch_all():
        watchers = [viewer(deployment, cookies[0], pk, timeout=240) for pk in runs]
        watchers += [viewer(deployment, cookies[1], pk, on="daphne-a", timeout=240) for pk in runs[1:]]
        # A frozen tab: connected, reads nothing for 10 s while its run goes on, then resumes.
        watchers.append(viewer(deployment, cookies[1], runs[0], on="daphne-a", timeout=240, read_nothing_for=10))
        return await asyncio.gather(*watchers)

    seen = asyncio.run(watch_all())

    by_run = {pk: [] for pk in runs}
    for pk, watched in zip(runs + runs[1:] + runs[:1], seen, strict=True):
        by_run[pk].append(watched)
    failed = {pk: run_row(deployment, pk) for pk in runs if run_row(deployment, pk)["status"] != "succeeded"}
    assert failed == {}
    for pk in runs:
        assert stored(deployment, pk) == expected, pk
        for watched in by_run[pk]:
            assert watched.last_status["status"] == "succeeded", (pk, watched.last_status)  # every viewer saw the end
            assert bytes(watched.data) == expected, pk  # and every byte, the stalled one too
    assert deployment.alive("worker-tight")
