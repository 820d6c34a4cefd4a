from tests.approvals.lab import lab, lab_ecs, run_task  # noqa: F401
