"""The garbage collector in a server process: what start-up loaded is frozen out of its sight.

CPython's full (generation 2) collection walks every container object the process holds, and
the loop stops while it does: after start-up that is Django, Channels, Twisted and the AWS
models (botocore's ECS model alone is a megabyte of JSON as dicts and lists), 180,000 objects
and a 74 ms pause on this machine (190 ms in `relay.py`'s server, which holds moto too). It
happens whenever the heap's survivors grow by a quarter, so a busy server paused every few
seconds for every run and shell it serves: in `relay.py`'s 100-run round one such pause held
every line for up to 190 ms, the round's worst latencies.

None of those objects is ever garbage. `settle()`, called once a process has loaded what it
serves with (the end of `ecsportal.asgi`, which daphne and `manage.py runsworker` both load),
loads the AWS models the portal uses, collects what is already garbage, and moves everything left to the
permanent generation (`gc.freeze()`), which no collection walks: a full collection then walks
only what the process made since, and takes well under a millisecond.

A process whose heap later grows with long-lived objects (caches) pays for those alone. What
is frozen is never freed, so this is done once, not periodically: an object that became
garbage after start-up would be kept forever by a second freeze.
"""

from __future__ import annotations

import gc
import logging

logger = logging.getLogger(__name__)

_settled = False


def settle() -> None:
    """Warm the AWS models, collect, and freeze the start-up heap (once per process)."""
    global _settled
    if _settled:
        return
    _settled = True
    from ecsportal.aws.sessions import warm_models

    try:
        warm_models()
    except Exception as exc:  # a model botocore lacks: the first client loads it, as before
        logger.warning("loading the AWS models at start-up failed (%s); they load on first use", exc)
    gc.collect()
    gc.freeze()
    logger.debug("start-up heap frozen: %d objects", gc.get_freeze_count())
