"""ASGI entry point: Django for HTTP, Channels for WebSockets.

Django is set up before anything imports models; the WebSocket side only accepts sockets whose
Origin is one of ALLOWED_HOSTS and carries the logged-in user from the session cookie. Request
bodies over the limit are refused before they are read (`limits`).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ecsportal.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import re_path  # noqa: E402

from ecsportal import eagerwrite, heap, httplimits  # noqa: E402
from ecsportal.accounts.sockets import SocketAuthMiddlewareStack, UnknownPathConsumer  # noqa: E402
from ecsportal.approvals.scheduler import start_housekeeping  # noqa: E402
from ecsportal.batches.scheduler import start_batch_sweep  # noqa: E402
from ecsportal.limits import BodyLimit, guard_daphne  # noqa: E402
from ecsportal.routing import websocket_urlpatterns  # noqa: E402
from ecsportal.runs.dispatcher import RUNS_CHANNEL, LoopCapture, RunWorkerConsumer, drain_daphne_on_shutdown  # noqa: E402
from ecsportal.runs.scheduler import start_run_sweep  # noqa: E402
from ecsportal.stopped.scheduler import start_periodic_collector  # noqa: E402

httplimits.install()  # under daphne, an overlong address gets 414, not a silently closed connection
eagerwrite.install()  # under daphne, a write to an idle connection is sent at once (eagerwrite.py)

# The catch-all goes after every app's routes, so a route added to routing.py can never land
# behind it: a path nobody serves is refused cleanly instead of raising (a 500).
routes = [*websocket_urlpatterns, re_path(r"", UnknownPathConsumer.as_asgi())]
# LoopCapture records the server's event loop: in-process runs are scheduled on it (daphne
# has no lifespan event). "channel" serves `manage.py runsworker` (and `runworker ecsportal-runs`).
application = LoopCapture(
    ProtocolTypeRouter(
        {
            "http": BodyLimit(django_asgi_app),
            "websocket": AllowedHostsOriginValidator(SocketAuthMiddlewareStack(URLRouter(routes))),
            "channel": ChannelNameRouter({RUNS_CHANNEL: RunWorkerConsumer.as_asgi()}),
        }
    )
)
guard_daphne()  # under daphne, oversized bodies are refused in Twisted, before it buffers them
start_periodic_collector()  # stopped-task history; once per process, off when the interval is 0
start_housekeeping()  # approvals left executing by a process that died; off when 0
start_run_sweep()  # runs whose runner was lost (on start and periodically); off when 0
start_batch_sweep()  # batches whose scheduler died with its process resume; off when 0
drain_daphne_on_shutdown()  # under daphne: on SIGTERM, in-process runs finish (up to a deadline) first
heap.settle()  # last: what start-up loaded leaves the garbage collector's full passes (heap.py)
