from django.apps import AppConfig


class BatchesConfig(AppConfig):
    """One command or runbook on many containers: each target an ordinary run of the batch."""

    name = "ecsportal.batches"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ecsportal.accounts import crypto
        from ecsportal.approvals import registry
        from ecsportal.batches import executor, scheduler
        from ecsportal.runs import lifecycle

        for key, policy, label in (
            (executor.ACTION_BATCH, "command", "Run command on many"),
            (executor.ACTION_BATCH_RUNBOOK, "runbook", "Run runbook on many"),
        ):
            registry.register(
                key,
                executor.batch_execute,
                executor.batch_describe,
                label=label,
                policy=policy,
                target_url=executor.batch_url,
                on_closed=executor.batch_closed,
            )
        # Each target run's end wakes the batch's scheduler (no polling).
        lifecycle.on_batch_run_end(scheduler.kick)
        crypto.register_sealed("batches.Batch", "command_sealed", lambda b: f"batch #{b.pk}")
