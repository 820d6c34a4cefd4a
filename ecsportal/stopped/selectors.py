"""Reads of stopped-task history, always through the accounts gate.

`stopped_tasks_for_user` is the one selector behind the page, the signatures, the chart and
both exports, so what a person sees and what they export are the same rows. It takes the
user and keeps only accounts where they hold at least the viewer role. The query-string
state is `forms.StoppedFilters`, the sums are in `aggregates`, collection state in `status`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from datetime import datetime

from django.contrib.auth.base_user import AbstractBaseUser
from django.core.paginator import Page
from django.db import connection
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from ecsportal.accounts.models import AwsAccount
from ecsportal.accounts.selectors import accounts_for_user
from ecsportal.stopped import categories
from ecsportal.stopped.aggregates import Signature, chart_of, signatures_of, signatures_since
from ecsportal.stopped.chart import Chart
from ecsportal.stopped.forms import RANGE_LABELS, RANGES, SORTS, STOP_CODES, StoppedFilters
from ecsportal.stopped.models import ClusterCollection, StoppedHour, StoppedTask
from ecsportal.ui.forms import MAX_ID
from ecsportal.ui.paging import CappedPaginator

PAGE_SIZE = 50
COUNT_CAP = 1_000  # beyond this the page says "1,000+" instead of counting every row
# Where migration 0005 installed the triggers that keep `StoppedHour` equal to the rows.
HOURLY_VENDORS = ("postgresql", "sqlite")
# The filters the sums answer (the columns they keep) and the state that filters nothing.
_HOURLY_KEEPS = {"account", "service", "category", "signature", "range", "chart", "sort", "page"}


def stopped_tasks_for_user(
    *, user: AbstractBaseUser, filters: StoppedFilters, now: datetime | None = None, with_range: bool = True
) -> QuerySet[StoppedTask]:
    """The filtered, sorted rows this user may see (viewer or above on the row's account)."""
    return _rows_of(_account_pks(user), filters=filters, now=now, with_range=with_range)


def _account_pks(user: AbstractBaseUser) -> list[int]:
    # Read first and given as values: the planner sees how many rows they hold.
    return list(accounts_for_user(user=user).values_list("pk", flat=True))


def _rows_of(
    account_pks: list[int], *, filters: StoppedFilters, now: datetime | None, with_range: bool
) -> QuerySet[StoppedTask]:
    qs = StoppedTask.objects.filter(account_id__in=account_pks)
    if filters.account is not None:
        qs = qs.filter(account_id=filters.account)
    for name in ("region", "cluster", "service", "category", "stop_code", "signature"):
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{name: value})
    if filters.q:
        qs = qs.filter(search_text__contains=filters.q.lower())
    span = RANGES.get(filters.range)
    if with_range and span is not None:
        qs = qs.filter(stopped_at__gte=(now or timezone.now()) - span)
    column = filters.sort.lstrip("-")
    order = SORTS.get(column, SORTS["stopped_at"])
    if filters.sort.startswith("-"):
        order = (f"-{order[0]}", *order[1:]) if column != "stopped_at" else ("-stopped_at", "-id")
    return qs.order_by(*order)


def _hours_of(account_pks: list[int], *, filters: StoppedFilters) -> QuerySet[StoppedHour] | None:
    """The hourly sums under the same filters as `_rows_of` (the range aside), or None where
    they cannot answer: any filter but those on the columns they keep (region, cluster, stop
    code, free text, and whatever filter is added later until it is listed here), or a
    database without the triggers that keep them."""
    if connection.vendor not in HOURLY_VENDORS:
        return None
    if any(getattr(filters, f.name) != f.default for f in fields(filters) if f.name not in _HOURLY_KEEPS):
        return None
    qs = StoppedHour.objects.filter(account_id__in=account_pks)
    if filters.account is not None:
        qs = qs.filter(account_id=filters.account)
    for name in ("service", "category", "signature"):
        value = getattr(filters, name)
        if value:
            qs = qs.filter(**{name: value})
    return qs


def stopped_task_get_for_user(*, user: AbstractBaseUser, pk: int) -> StoppedTask:
    """One row, or 404 for a missing row and for a row of an account the user may not see."""
    if not 0 < pk <= MAX_ID:
        raise Http404("No such stopped task.")
    account_pks = accounts_for_user(user=user).values_list("pk", flat=True)
    found = StoppedTask.objects.select_related("account").filter(pk=pk, account_id__in=list(account_pks)).first()
    if found is None:
        raise Http404("No such stopped task.")
    return found


# What the table shows (templates/stopped/_results.html): the other columns (search text,
# signature text, ARNs, times) stay in the database.
TABLE_COLUMNS = (
    "account__name",
    "region",
    "cluster",
    "task_arn",
    "service",
    "family",
    "revision",
    "stop_code",
    "stopped_reason",
    "stopped_at",
    "containers",
    "category",
)


def page_of(qs: QuerySet[StoppedTask], *, number: int) -> Page:
    rows = qs.select_related("account").only(*TABLE_COLUMNS)
    return CappedPaginator(rows, PAGE_SIZE, cap=COUNT_CAP).get_page(number)


def stopped_count(qs: QuerySet[StoppedTask]) -> int:
    """How many rows, counted up to COUNT_CAP + 1."""
    return CappedPaginator(qs, PAGE_SIZE, cap=COUNT_CAP).count


@dataclass(frozen=True)
class StoppedPage:
    """Everything the on-call view shows."""

    filters: StoppedFilters
    page: Page
    signatures: list[Signature]
    chart: Chart


def stopped_page_for_user(
    *,
    user: AbstractBaseUser,
    filters: StoppedFilters,
    account_pks: list[int] | None = None,
    now: datetime | None = None,
) -> StoppedPage:
    """Signatures, the chart and one page of the table, for the same filters. `account_pks`:
    the user's accounts when the caller read them already (`FilterChoices.account_pks`).

    The signatures and the chart sum the hourly sums (`StoppedHour`) for the window's whole
    hours when the filters allow (`_hours_of`), else the rows; both give the same answer."""
    now = now or timezone.now()
    if account_pks is None:
        account_pks = _account_pks(user)
    qs = _rows_of(account_pks, filters=filters, now=now, with_range=True)
    page = page_of(qs, number=filters.page)
    if page.number != filters.page:
        filters = replace(filters, page=page.number)
    chart_qs = _rows_of(account_pks, filters=filters, now=now, with_range=False)
    hours = _hours_of(account_pks, filters=filters)
    if filters.signature:
        signatures = []
    elif hours is None:
        signatures = signatures_of(qs)
    else:
        span = RANGES.get(filters.range)
        signatures = signatures_since(chart_qs, hours, since=now - span if span is not None else None)
    return StoppedPage(
        filters=filters,
        page=page,
        signatures=signatures,
        chart=chart_of(chart_qs, window=filters.chart, now=now, hours=hours),
    )


@dataclass(frozen=True)
class FilterChoices:
    """Options of the filter form: the user's accounts, their regions and known clusters.

    A value in the URL that is none of these (an account the user cannot see, a region or
    stop code no account lists) stays applied, and the page adds it to its control as the
    selected option: an empty table never sits under controls that all say "All".
    """

    accounts: list[AwsAccount]
    regions: list[str]
    clusters: list[str]
    categories: list[categories.Category]
    stop_codes: list[str]
    ranges: dict[str, str]

    @property
    def account_pks(self) -> list[int]:
        return [a.pk for a in self.accounts]


def filter_choices_for_user(*, user: AbstractBaseUser) -> FilterChoices:
    accounts = list(accounts_for_user(user=user).order_by("name"))
    clusters = (
        ClusterCollection.objects.filter(account__in=[a.pk for a in accounts])
        .exclude(cluster="")
        .order_by("cluster")
        .values_list("cluster", flat=True)
        .distinct()
    )
    return FilterChoices(
        accounts=accounts,
        regions=sorted({r for a in accounts for r in a.regions}),
        clusters=list(clusters),
        categories=sorted(categories.CATEGORIES.values(), key=lambda c: (c.is_routine, c.label)),
        stop_codes=STOP_CODES,
        ranges=RANGE_LABELS,
    )
