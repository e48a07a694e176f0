from rest_framework.pagination import CursorPagination


class CreatedCursorPagination(CursorPagination):
    """Newest first; cursors are opaque and stable while rows are added."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200


class CreatedAtCursorPagination(CreatedCursorPagination):
    """For the toolkit's models, whose timestamp is `created`."""

    ordering = ("-created", "-id")
