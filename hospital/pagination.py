"""Page-number pagination that keeps the documented body (a JSON array) and moves the metadata to headers.

`Link` follows RFC 8288 (first, prev, next, last) and `X-Total-Count` carries the row count, the
convention GitHub's and json-server's APIs made familiar.
"""

import hashlib

from django.conf import settings
from django.core.cache import cache
from django.core.paginator import Paginator
from django.utils.functional import cached_property
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param


class PageSizeSerializer(serializers.Serializer):
    page_size = serializers.IntegerField(min_value=1, max_value=settings.MAX_PAGE_SIZE, required=False)


# Counting is as slow as the result is long; below this many rows it is cheap and always exact.
LARGE_COUNT = 10_000


class CachedCountPaginator(Paginator):
    """Counts of large results are kept for COUNT_CACHE_SECONDS in the cache shared by the workers.

    COUNT(*) over 100,000 rows costs more than the rest of the request together. A large total may lag
    behind the table by up to COUNT_CACHE_SECONDS; a small one is counted afresh every time.
    """

    def __init__(self, object_list, per_page, *, count_key: str, view=None, **kwargs):
        super().__init__(object_list, per_page, **kwargs)
        self.count_key = count_key
        self.view = view

    def page(self, number):
        """The page; for an audited list, read in one statement with its audit row (hospital.audit.PageAudit)."""
        page = super().page(number)
        page_audit = self.view.page_audit(page.object_list) if hasattr(self.view, "page_audit") else None
        if page_audit is not None:
            page.object_list = page_audit.run(lambda: list(page.object_list))
        return page

    @cached_property
    def count(self):
        if not settings.COUNT_CACHE_SECONDS:
            return super().count
        key = self.count_key
        total = cache.get(key)
        if total is None:
            total = super().count
            if total >= LARGE_COUNT:
                cache.set(key, total, settings.COUNT_CACHE_SECONDS)
        return total


def count_key(request, view) -> str:
    """What a list's count depends on: the route and its arguments, who asks (as the visibility rule sees them:
    the account, its staff flag, roles and doctor) and the filters. Built without compiling the count's SQL."""
    user = request.user
    who = (
        user.pk,
        user.is_staff,
        tuple(sorted(getattr(user, "role_names", None) or ())),
        getattr(user, "doctor_id", None),
    )
    filters = sorted((name, value) for name, value in request.query_params.lists() if name not in NOT_FILTERS)
    identity = repr((type(view).__qualname__, sorted(view.kwargs.items()), who, filters))
    return "count:" + hashlib.sha256(identity.encode()).hexdigest()


# Query parameters that do not change which rows a list has.
NOT_FILTERS = {"page", "page_size", "ordering"}


class LinkHeaderPagination(PageNumberPagination):
    page_size = settings.PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = settings.MAX_PAGE_SIZE

    def paginate_queryset(self, queryset, request, view=None):
        self.count_key = count_key(request, view)
        self.view = view
        return super().paginate_queryset(queryset, request, view)

    def django_paginator_class(self, object_list, per_page):
        return CachedCountPaginator(object_list, per_page, count_key=self.count_key, view=self.view)

    def get_page_size(self, request):
        """A malformed or too large `page_size` is a client error (400), not silently replaced."""
        if self.page_size_query_param not in request.query_params:
            return self.page_size
        checked = PageSizeSerializer(data=request.query_params)
        checked.is_valid(raise_exception=True)
        return checked.validated_data.get("page_size", self.page_size)

    def get_paginated_response(self, data):
        return Response(data, headers={"Link": self.link_header(), "X-Total-Count": str(self.page.paginator.count)})

    def link_header(self) -> str:
        url = self.request.build_absolute_uri()
        last_number = self.page.paginator.num_pages
        links = {"first": remove_query_param(url, self.page_query_param)}
        if self.page.has_previous():
            previous_number = self.page.previous_page_number()
            links["prev"] = (
                links["first"]
                if previous_number == 1
                else replace_query_param(url, self.page_query_param, previous_number)
            )
        if self.page.has_next():
            links["next"] = replace_query_param(url, self.page_query_param, self.page.next_page_number())
        links["last"] = (
            links["first"] if last_number == 1 else replace_query_param(url, self.page_query_param, last_number)
        )
        return ", ".join(f'<{target}>; rel="{relation}"' for relation, target in links.items())

    def get_paginated_response_schema(self, schema):
        return schema

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_page_size})
            if parameter["name"] == self.page_query_param:
                parameter["schema"]["minimum"] = 1
        return parameters
