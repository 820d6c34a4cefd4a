"""`ecsportal.heap.settle()` in a server process: the start-up heap, AWS models included, is
frozen out of the garbage collector's full passes (a 74–190 ms pause each before)."""

from __future__ import annotations

import json

from tests.test_settings import PRODUCTION, start

PROBE = """
import gc, json
import ecsportal.asgi  # what the daphne command loads: settle() runs at its end
from ecsportal.aws import sessions
loader = sessions._shared_loader
cached = [k for k in getattr(loader, "_cache", {}) if "service-2" in str(k)]
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "tracked": len(gc.get_objects()),
    "models": sorted({s for k in cached for s in sessions.SERVICES if s in str(k)}),
}))
"""


def test_the_asgi_application_freezes_its_start_up_heap_with_the_aws_models_loaded():
    answer = start({**PRODUCTION, "ECSPORTAL_STOPPED_COLLECT_INTERVAL": "0"}, code=PROBE)
    assert answer.returncode == 0, answer.stderr[-2000:]
    report = json.loads(answer.stdout.strip().splitlines()[-1])
    # The models are loaded before the freeze, so they are in it, not in every full collection.
    assert report["models"] == sorted(("ecs", "iam", "sts"))
    assert report["frozen"] > 100_000
    assert report["tracked"] < report["frozen"] / 10
