"""Query counts of a page: the count must not grow with the rows behind it (no N+1, no per-row lookup)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.test.utils import CaptureQueriesContext


def page_queries(client: Any, path: str, **headers: Any) -> tuple[int, Any]:
    """The number of queries one GET of ``path`` runs (after a first GET warmed the per-process caches)."""
    client.get(path, **headers)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **headers)
    assert response.status_code == 200, f"{path}: {response.status_code}"
    return len(captured.captured_queries), response


def assert_same_queries_at_3n(
    client: Any,
    path: str,
    add_rows: Callable[[int], None],
    *,
    n: int,
    most: int,
    django_assert_num_queries: Any,
    **headers: Any,
) -> Any:
    """With ``n`` rows and then ``3n`` the page runs exactly the same number of queries, at most ``most``."""
    add_rows(n)
    at_n, _ = page_queries(client, path, **headers)
    assert at_n <= most, f"{path}: {at_n} queries with {n} rows (at most {most})"
    add_rows(2 * n)
    client.get(path, **headers)
    with django_assert_num_queries(at_n):
        response = client.get(path, **headers)
    assert response.status_code == 200
    return response
