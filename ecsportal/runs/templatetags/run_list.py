"""The run history's rows (`runs/_run_results.html`), built in Python as the stopped page's are:
25 rows through two includes and a dozen filters each were most of the page's CPU (see "List
pages at scale"). `runs/_status_badge.html` and `runs/_exit_code.html` stay the run page's;
tests/runs/test_list.py checks that these cells equal them for every status, exit code and mode."""

from __future__ import annotations

from collections.abc import Iterable

from django import template
from django.template.defaultfilters import filesizeformat, truncatechars
from django.utils.safestring import mark_safe

from ecsportal.runs.models import Run, RunMode, RunStatus
from ecsportal.ui.html import join_safe, pk_url, row_html
from ecsportal.ui.templatetags.portal import when

register = template.Library()

_BADGE_CLASSES = {
    RunStatus.SUCCEEDED: "text-bg-success",
    RunStatus.COMPLETED: "text-bg-light border",
    RunStatus.FAILED: "text-bg-danger",
    RunStatus.ERROR: "text-bg-danger",
    RunStatus.RUNNING: "text-bg-primary",
    RunStatus.CANCELLED: "text-bg-secondary",
    RunStatus.AWAITING_APPROVAL: "text-bg-info",
}
_BADGE = '\n<span class="badge run-status {}" data-status="{}">{}</span>\n'
_LABELS = dict(RunStatus.choices)
_EXIT = '\n<span class="exit-code{}" id="run-exit-code-{}">{}</span>\n'
_EXIT_UNKNOWN = '\n<span class="text-body-secondary small text-nowrap" title="{}">exit code unknown{}</span>\n'
_WHY_UNKNOWN = {
    True: ("Raw mode runs the command without a shell, so nothing reports its exit code.", " (raw mode)"),
    False: ("The session ended before the command reported its exit code.", ""),
}
_NO_EXIT = mark_safe('\n<span class="text-body-secondary">—</span>\n')
_RUNBOOK = '<span class="badge text-bg-light border me-1">{}</span>'
_ROW = """
      <tr class="run-row" data-run="{}">
        <td><a href="{}" class="run-link">#{}</a></td>
        <td class="text-nowrap">{}</td>
        <td>{}</td>
        <td>{}</td>
        <td class="mono run-command-cell" title="{}">{}{}</td>
        <td class="text-nowrap"><bdi>{}</bdi></td>
        <td class="text-nowrap">{} <span class="text-body-secondary small">{}</span></td>
        <td class="mono text-nowrap">{} · {}</td>
        <td class="text-nowrap"><bdi>{}</bdi></td>
        <td class="text-end text-nowrap">{}</td>
      </tr>"""


def status_badge_html(run: Run) -> str:
    """`runs/_status_badge.html` for this run."""
    status = run.status
    return row_html(_BADGE, _BADGE_CLASSES.get(status, "text-bg-warning"), status, _LABELS.get(status, status))


def exit_code_html(run: Run) -> str:
    """`runs/_exit_code.html` for this run (with its id)."""
    if run.exit_code is not None:
        return row_html(_EXIT, " exit-bad" if run.exit_code != 0 else "", run.pk, run.exit_code)
    if run.is_finished:
        return row_html(_EXIT_UNKNOWN, *_WHY_UNKNOWN[run.mode == RunMode.RAW])
    return _NO_EXIT


@register.simple_tag
def run_rows(runs: Iterable[Run]) -> str:
    """The history table's rows; every value escaped (`ui.html.row_html`)."""
    detail = pk_url("runs:detail")
    return join_safe(
        [
            row_html(
                _ROW,
                run.pk,
                detail(run.pk),
                run.pk,
                when(run.created_at),
                status_badge_html(run),
                exit_code_html(run),
                run.command,
                row_html(_RUNBOOK, run.runbook_name) if run.runbook_name else "",
                truncatechars(run.command_label, 80),
                run.account.name,
                run.cluster_name,
                run.region,
                truncatechars(run.task_id, 14),
                run.container,
                run.requested_by.get_username(),
                filesizeformat(run.bytes_out),
            )
            for run in runs
        ]
    )
