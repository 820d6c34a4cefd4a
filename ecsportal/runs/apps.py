from django.apps import AppConfig


class RunsConfig(AppConfig):
    """Commands run in containers over ECS Exec: runs, their transcripts, the runner, the live view."""

    name = "ecsportal.runs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ecsportal.accounts import crypto
        from ecsportal.approvals import registry
        from ecsportal.runs import executor
        from ecsportal.runs.services import ACTION_COMMAND, ACTION_RUNBOOK

        for key, policy, label in (
            (ACTION_COMMAND, "command", "Run command"),
            (ACTION_RUNBOOK, "runbook", "Run runbook"),
        ):
            registry.register(
                key,
                executor.run_execute,
                executor.run_describe,
                label=label,
                policy=policy,
                target_url=executor.run_url,
                on_closed=executor.run_closed,
            )
        # A runbook run's real command (secret values in it) is sealed until the run ends.
        crypto.register_sealed("runs.Run", "command_sealed", lambda run: f"run #{run.pk} on {run.account.name}")
