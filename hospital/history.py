"""Record history (django-simple-history keeps every version): versions with the fields each one changed."""

from rest_framework import generics

# Bookkeeping that changes with every save; a version lists what a person changed.
UNTRACKED_FIELDS = {"updated_at"}
CHANGE_BY_HISTORY_TYPE = {"+": "created", "~": "updated", "-": "deleted"}


def change_kind(version, new: dict, old: dict | None) -> str:
    """created / updated / deleted, and for soft-deleted patients also deleted / restored."""
    if old is not None and "deleted_at" in new and old["deleted_at"] != new["deleted_at"]:
        return "restored" if new["deleted_at"] is None else "deleted"
    return CHANGE_BY_HISTORY_TYPE[version.history_type]


class HistoryListView(generics.ListAPIView):
    """Paginated versions of one record, newest first. Diffs are computed between API representations,
    so a change reads in the same terms as the record itself."""

    record_serializer_class: type
    filter_backends = []

    def get_record(self):
        raise NotImplementedError

    def get_queryset(self):
        record = self.get_record()
        return type(record).history.filter(id=record.pk).order_by("-history_id")

    def list(self, request, *args, **kwargs):
        versions = self.get_queryset()
        page = list(self.paginate_queryset(versions))
        # The version before the oldest on this page, to diff it against (one query, not one per row).
        before_page = versions.filter(history_id__lt=page[-1].history_id).first() if page else None
        representations = [self.record_serializer_class(version).data for version in [*page, before_page] if version]
        # Versions are never deleted, so the newest is number `count` and each older one a number less.
        newest_number = self.paginator.page.paginator.count - (self.paginator.page.start_index() - 1) if page else 0
        rows = []
        for index, version in enumerate(page):
            new = representations[index]
            old = representations[index + 1] if index + 1 < len(representations) else None
            before = old or {}  # a record's first version changes every field from nothing
            changes = [
                {"field": field, "old": before.get(field), "new": value}
                for field, value in new.items()
                if field not in UNTRACKED_FIELDS and before.get(field) != value
            ]
            rows.append(
                {
                    "version": newest_number - index,
                    "change": change_kind(version, new, old),
                    "history_date": version.history_date,
                    "history_user_id": version.history_user_id,
                    "changes": changes,
                    "record": version,
                }
            )
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)
