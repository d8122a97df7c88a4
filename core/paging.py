"""The pages' own paging: `?page=N`, where a page that is not there is a 404 saying so rather than another page shown
in its place. (The API's lists page by `?limit=&offset=`: core.pagination.)"""

from __future__ import annotations

from typing import Any

from django.core.paginator import InvalidPage, Page, Paginator
from django.http import Http404

NOT_A_PAGE = "There is no page {page} of this list: its pages are numbered 1 to {pages}."
ONE_PAGE = "There is no page {page} of this list: it has one page."


class NoSuchPage(Http404):
    """A `?page=` that is not a page of the list; the 404 page shows its message (core.views.page_not_found)."""


def page_or_404(object_list: Any, per_page: int, number: str | None) -> Page:
    """Page `number` of `object_list` (the first when absent or empty); NoSuchPage for one that is not a whole number
    from 1 to the last page. Django's `get_page` showed the last page for `?page=99` and the first for `?page=abc`
    with no word that the page asked for is not there (a tester took a mistyped link's page for the one it named)."""
    paginator = Paginator(object_list, per_page)
    if not number:
        return paginator.page(1)
    try:
        # 0 (EmptyPage, as any page under 1) for what is not a short run of ASCII digits: "²" is a digit to isdigit
        # but not to int(), and Python refuses to read a number of over 4,300 digits
        return paginator.page(int(number) if number.isascii() and number.isdigit() and len(number) < 10 else 0)
    except InvalidPage as exc:
        said = ONE_PAGE if paginator.num_pages == 1 else NOT_A_PAGE
        raise NoSuchPage(said.format(page=number[:20], pages=paginator.num_pages)) from exc
