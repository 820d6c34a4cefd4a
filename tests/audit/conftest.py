from tests.approvals.lab import lab, lab_ecs, run_task, stop_calls, stop_target  # noqa: F401
