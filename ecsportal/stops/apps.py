from django.apps import AppConfig


class StopsConfig(AppConfig):
    """Stopping an ECS task, behind the approval gate: the gate calls our executor, never imports us."""

    name = "ecsportal.stops"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ecsportal.approvals import registry
        from ecsportal.approvals.policy import Policy
        from ecsportal.stops import executor

        registry.register(
            executor.ACTION,
            executor.stop_task_execute,
            executor.stop_task_describe,
            label="Stop task",
            policy=Policy.STOP,
            target_url=executor.stop_task_url,
        )
