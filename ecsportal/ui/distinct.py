"""The distinct values of a column, for filter menus, without reading the table.

`SELECT DISTINCT cluster FROM runs` reads every run (300,000 of them, on every page load),
even with an index on the column: neither PostgreSQL (before 18) nor SQLite skips through an
index by itself. `distinct_values` does the "loose index scan" by hand, as a recursive CTE:
the smallest value, then again and again the smallest one above the last, each one index
probe; so the cost grows with the number of distinct values, not of rows. With `within`
(a column and its allowed values, e.g. the user's accounts) it skips through each group's
part of an index on (group column, column): one CTE per group, all in one statement.
"""

from __future__ import annotations

from django.db import connection, models

# One group's skip; names are Django's own (model fields' columns), values are parameters.
_SKIP = (
    "{cte}(value, n) AS ("
    "SELECT MIN({column}), 1 FROM {table} WHERE {where} "
    "UNION ALL SELECT (SELECT MIN(t.{column}) FROM {table} t WHERE {where_t} t.{column} > {cte}.value),"
    " {cte}.n + 1 FROM {cte} WHERE {cte}.value IS NOT NULL AND {cte}.n < %s)"
)


def distinct_values(
    model: type[models.Model],
    field: str,
    *,
    within: tuple[str, list] | None = None,
    limit: int = 500,
) -> list:
    """Sorted distinct non-null values of `field` (at most `limit` per group).

    `within=("account", [1, 2])` keeps rows whose `account` is one of those (it wants an index
    on (account, field)); without it, the whole table (an index on `field`).
    """
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column = quote(model._meta.get_field(field).column)  # an unknown field raises FieldDoesNotExist
    groups: list = [None]
    group_column = ""
    if within is not None:
        group_column = quote(model._meta.get_field(within[0]).column)
        groups = list(within[1])
        if not groups:
            return []
    ctes, selects, params = [], [], []
    for i, group in enumerate(groups):
        cte = f"s{i}"
        if group is None:
            where, where_t = "1 = 1", ""
            params += [limit]
        else:
            where, where_t = f"{group_column} = %s", f"t.{group_column} = %s AND"
            params += [group, group, limit]
        ctes.append(_SKIP.format(cte=cte, column=column, table=table, where=where, where_t=where_t))
        selects.append(f"SELECT value FROM {cte} WHERE value IS NOT NULL")  # noqa: S608
    sql = "WITH RECURSIVE " + ", ".join(ctes) + " " + " UNION ".join(selects)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted({value for (value,) in cursor.fetchall()})
