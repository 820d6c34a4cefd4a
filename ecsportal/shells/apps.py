from django.apps import AppConfig


class ShellsConfig(AppConfig):
    """Interactive shells: who may open one (policy.py), access requests through the approval
    gate (the gate calls our executor, never imports us), and the grants they leave."""

    name = "ecsportal.shells"
    label = "shells"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from ecsportal.approvals import registry
        from ecsportal.approvals.policy import Policy
        from ecsportal.shells import executor

        registry.register(
            executor.ACTION,
            executor.shell_access_execute,
            executor.shell_access_describe,
            label="Shell access",
            policy=Policy.SHELL,
            target_url=executor.shell_access_url,
        )
