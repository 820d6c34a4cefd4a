from tests.approvals.lab import lab, lab_ecs, run_task, stop_calls, stop_target  # noqa: F401
from tests.runs.lab import fast_runs, lab_task, run_as, runs_ecs, runs_lab  # noqa: F401
