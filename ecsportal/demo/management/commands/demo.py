"""`manage.py demo`: a local AWS (moto), the SSM agent emulator, seed data, and the portal.

Everything runs in this one process on loopback: moto's server as the AWS endpoint, the
emulator as the data channel (it runs real commands on this machine), daphne serving the
portal. Ctrl-C stops all of it. Running it again re-seeds AWS (moto starts empty) and updates
the portal's users and accounts in place.

`--aws-only` serves no portal: it seeds the database and keeps moto and the emulator up for
portal processes started separately (several daphne processes, `runworker ecsportal-runs`),
printing the environment they need; their runs reach the emulator over its registration
socket (`ECSPORTAL_LOCAL_EXEC_EMULATOR` + `_KEY`). The multi-process test starts it this way.
`--emulator-processes N` serves the data channels from N emulator processes instead of a thread
(`ecsportal.ssm.fleet`; `tests/benchmarks/scale.py` uses it: one loop could not keep up).
"""

from __future__ import annotations

import os
import secrets
import threading
from typing import Any

from axes.utils import reset as reset_lockouts
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ecsportal.aws import sessions
from ecsportal.demo import localaws
from ecsportal.demo.seed import DEMO_USERS, seed_portal


class Command(BaseCommand):
    help = "Serve the portal against a local AWS (moto) and the SSM agent emulator, with seed data."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="Loopback address to serve on.")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--no-serve", action="store_true", help="Seed, print the logins, and exit.")
        parser.add_argument(
            "--aws-only",
            action="store_true",
            help="Seed, then keep only moto and the emulator up for portal processes started separately.",
        )
        parser.add_argument(
            "--emulator-processes",
            type=int,
            default=1,
            help="Serve the SSM data channels from this many emulator processes (default 1: a thread of "
            "this process), as a fleet of agents would; for load tests (tests/benchmarks/scale.py).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG:
            self.stderr.write(
                "The demo creates users with a known password; it runs only with DJANGO_DEBUG=true, "
                "never against a production database."
            )
            raise SystemExit(2)
        if options["host"] not in {"127.0.0.1", "localhost", "::1"}:
            self.stderr.write("The demo serves on loopback only: its emulator runs real commands on this machine.")
            raise SystemExit(2)
        call_command("migrate", interactive=False, verbosity=0)
        aws = localaws.LocalAws()
        sessions.configure(
            endpoint_url=aws.endpoint_url, local_exec=True, connect_timeout=2, read_timeout=10, max_attempts=2
        )
        if options["emulator_processes"] < 1:
            self.stderr.write("--emulator-processes must be at least 1.")
            raise SystemExit(2)
        if options["aws_only"]:
            self._aws_only(aws, options["emulator_processes"])
            return
        if options["emulator_processes"] > 1:
            key = secrets.token_urlsafe(24)
            emulator = localaws.start_shared_data_channel(key, options["emulator_processes"])
            localaws.use_remote_data_channel(emulator.registration_url, key)
        else:
            emulator = localaws.start_data_channel()
        localaws.seed_iam(aws.endpoint_url)
        localaws.seed_aws(aws.endpoint_url)
        seed_portal(password=settings.ECSPORTAL_DEMO_PASSWORD)
        reset_lockouts()  # the passwords were just set again: a lockout from a last session would only confuse
        self._after_seed()
        url = f"http://{options['host']}:{options['port']}/"
        self.stdout.write(self.style.SUCCESS(f"\necsportal demo is ready at {url}"))
        self.stdout.write(f"Local AWS (moto): {aws.endpoint_url}")
        where = (
            f"{options['emulator_processes']} processes registering on {emulator.registration_url}"
            if options["emulator_processes"] > 1
            else f"ws://127.0.0.1:{emulator.port}"
        )
        self.stdout.write(f"SSM agent emulator: {where} (runs ECS Exec commands for real, on this machine)")
        self.stdout.write("Log in as any of these (password: the value of ECSPORTAL_DEMO_PASSWORD, default 'demo'):")
        for username, role in DEMO_USERS.items():
            self.stdout.write(f"  {username:<10} {'portal admin (superuser)' if role is None else role.label.lower()}")
        self.stdout.write("Press Ctrl-C to stop.\n")
        self.stdout.flush()
        if options["no_serve"]:
            emulator.stop()
            aws.stop()
            return
        self._serve(options["host"], options["port"])

    def _aws_only(self, aws: localaws.LocalAws, processes: int) -> None:
        key = settings.ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY or secrets.token_urlsafe(24)
        emulator = localaws.start_shared_data_channel(key, processes)
        localaws.seed_iam(aws.endpoint_url)
        localaws.seed_aws(aws.endpoint_url)
        seed_portal(password=settings.ECSPORTAL_DEMO_PASSWORD)
        self.stdout.write("Local AWS and the SSM agent emulator are up; start portal processes with:")
        for name, value in (
            ("DJANGO_DEBUG", "true"),
            ("AWS_ENDPOINT_URL", aws.endpoint_url),
            ("AWS_ACCESS_KEY_ID", os.environ["AWS_ACCESS_KEY_ID"]),
            ("AWS_SECRET_ACCESS_KEY", os.environ["AWS_SECRET_ACCESS_KEY"]),
            ("AWS_DEFAULT_REGION", os.environ["AWS_DEFAULT_REGION"]),
            ("ECSPORTAL_LOCAL_EXEC", "true"),
            ("ECSPORTAL_LOCAL_EXEC_EMULATOR", emulator.registration_url),
            ("ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY", key),
        ):
            self.stdout.write(f"  {name}={value}")
        self.stdout.write("(and the same DATABASE_URL). Press Ctrl-C to stop.")
        self.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        finally:
            emulator.stop()
            aws.stop()

    def _after_seed(self) -> None:
        """Hook for apps that add demo data of their own (stopped-task history, approvals)."""
        from ecsportal.stopped.demo import seed_demo_history

        self.stdout.write(f"Stopped-task history: collected, plus {seed_demo_history()} rows of demo data.")

    def _serve(self, host: str, port: int) -> None:
        from daphne.endpoints import build_endpoint_description_strings
        from daphne.server import Server

        from ecsportal.asgi import application

        Server(
            application=application,
            endpoints=build_endpoint_description_strings(host=host, port=port),
            signal_handlers=True,
            verbosity=0,
        ).run()
