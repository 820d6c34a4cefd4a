"""`manage.py runsworker`: run the portal's commands in this process (ECSPORTAL_RUNNER_MODE=worker).

Channels' `runworker ecsportal-runs` with the runs worker of `ecsportal.runs.worker`: it
survives a Redis restart and drains on SIGTERM (see that module).
"""

from __future__ import annotations

from channels.management.commands.runworker import Command as RunWorkerCommand

from ecsportal.runs.dispatcher import RUNS_CHANNEL
from ecsportal.runs.worker import RunsWorker


class Command(RunWorkerCommand):
    help = "Run commands in containers (worker mode): reconnects to Redis, drains on SIGTERM."
    worker_class = RunsWorker

    def add_arguments(self, parser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(channels=[RUNS_CHANNEL])
        for action in parser._actions:
            if action.dest == "channels":
                action.nargs = "*"

    def handle(self, *args, **options) -> None:
        options["channels"] = options.get("channels") or [RUNS_CHANNEL]
        super().handle(*args, **options)
