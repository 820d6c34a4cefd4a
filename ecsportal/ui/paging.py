"""Paging for list pages whose tables grow without bound (runs, stopped tasks, audit, approvals).

An exact COUNT over a few hundred thousand rows costs more than the page itself, on every
request. `CappedPaginator` counts at most `cap` + 1 rows: within the cap it is Django's
Paginator; past it the page says "1,000+" (`shown_count` and `capped` for the template),
has no last page, and pages on by offset up to `max_page`.
"""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Page, Paginator

DEFAULT_CAP = 1_000
MAX_PAGE = 100_000  # no filter form takes a larger page number


class CappedPaginator(Paginator):
    def __init__(self, object_list: object, per_page: int, *, cap: int = DEFAULT_CAP, **kwargs: object) -> None:
        super().__init__(object_list, per_page, **kwargs)
        self.cap = cap

    @cached_property
    def count(self) -> int:
        """The rows, counted up to cap + 1 (a LIMIT inside the COUNT, so the scan stops there)."""
        return self.object_list.order_by()[: self.cap + 1].count()

    @property
    def capped(self) -> bool:
        return self.count > self.cap

    @property
    def shown_count(self) -> int:
        return min(self.count, self.cap)

    @cached_property
    def num_pages(self) -> int:
        return MAX_PAGE if self.capped else super().num_pages

    def page(self, number: int | str) -> Page:
        if not self.capped:
            return super().page(number)
        number = self.validate_number(number)  # past the cap every page up to MAX_PAGE may hold rows
        bottom = (number - 1) * self.per_page
        rows = list(self.object_list[bottom : bottom + self.per_page + 1])  # one more: is there a next page?
        page = self._get_page(rows[: self.per_page], number, self)
        page.more = len(rows) > self.per_page
        return page

    def get_page(self, number: int | str | None) -> Page:
        page = super().get_page(number)
        if self.capped and not page.object_list and page.number > 1:
            # Past the end of a capped list (a stale or made-up page number): the first page,
            # since the last one is not known without the full count.
            page = self.page(1)
        return page

    def _get_page(self, *args: object, **kwargs: object) -> Page:
        return RowsPage(*args, **kwargs)


class RowsPage(Page):
    """A page whose positions come from the rows fetched, right also past the count cap."""

    more = False  # past the cap: whether a row was found after this page's

    def end_index(self) -> int:
        return self.start_index() + len(self.object_list) - 1 if self.object_list else 0

    def has_next(self) -> bool:
        if self.paginator.capped:
            return self.more and self.number < MAX_PAGE
        return super().has_next()
