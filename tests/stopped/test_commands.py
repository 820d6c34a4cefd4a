"""manage.py collect_stopped_tasks / prune_stopped_tasks, and the periodic collector's switch."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from ecsportal.audit.models import AuditEvent
from ecsportal.stopped import scheduler
from ecsportal.stopped.models import CollectionRun, StoppedTask

pytestmark = pytest.mark.django_db


def test_collect_command_collects_one_account_s_chosen_clusters(local_aws, cast, capsys):
    call_command("collect_stopped_tasks", "--account", cast.prod.account_id, "--cluster", "prod-batch")
    assert "from 1 of 1 clusters" in capsys.readouterr().out
    assert set(StoppedTask.objects.values_list("cluster", flat=True)) == {"prod-batch"}
    assert CollectionRun.objects.get().trigger == "command"


def test_collect_command_refuses_an_unknown_account(cast):
    with pytest.raises(CommandError, match="No account"):
        call_command("collect_stopped_tasks", "--account", "nope")


def test_collect_command_refuses_a_non_positive_loop(cast):
    with pytest.raises(CommandError, match="positive"):
        call_command("collect_stopped_tasks", "--loop", "0")


def test_prune_forgets_only_what_is_older_than_the_retention(local_aws, cast, capsys):
    call_command("collect_stopped_tasks", "--account", "Acme Production", "--cluster", "prod-web")
    total = StoppedTask.objects.count()
    old = StoppedTask.objects.first()
    StoppedTask.objects.filter(pk=old.pk).update(stopped_at=timezone.now() - timedelta(days=15))
    call_command("prune_stopped_tasks")
    assert "Deleted 1 stopped tasks older than 14 days" in capsys.readouterr().out
    assert StoppedTask.objects.count() == total - 1 and not StoppedTask.objects.filter(pk=old.pk).exists()
    assert AuditEvent.objects.filter(action="stopped.prune").exists()


def test_the_periodic_collector_stays_off_when_its_interval_is_zero(settings):
    settings.ECSPORTAL_STOPPED_COLLECT_INTERVAL = 0
    assert scheduler.start_periodic_collector() is None


def test_a_periodic_pass_is_skipped_right_after_another_run(cast):
    CollectionRun.objects.create(trigger="manual", finished_at=timezone.now())
    assert scheduler.collect_if_due(interval=300) is False
    assert CollectionRun.objects.count() == 1
