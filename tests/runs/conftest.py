from tests.runs.lab import fast_runs, lab_task, run_as, runs_ecs, runs_lab  # noqa: F401
