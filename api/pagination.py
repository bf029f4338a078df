"""Cursor pagination: stable under concurrent inserts and never counts the table."""

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import CursorPagination


class IdCursorPagination(CursorPagination):
    """Pages in id order (ids never change, so a pull resumes exactly where it stopped);
    ``page_size`` up to 1000."""

    ordering = "id"
    page_size_query_param = "page_size"
    max_page_size = 1000

    def decode_cursor(self, request):
        """DRF's cursor, refused (404, as DRF refuses any other bad cursor) when its position
        is not an id: the position goes into ``id > …`` and must be a whole number."""
        cursor = super().decode_cursor(request)
        if cursor is not None and cursor.position is not None:
            position = cursor.position
            if not (position.isascii() and position.isdigit() and len(position) <= 18):
                raise NotFound(self.invalid_cursor_message)
        return cursor

    def get_page_size(self, request):
        """``page_size`` from 1 to 1000; anything else (a word, 0, 1.5) is a 400 naming it
        rather than DRF's silent fall-back to the default."""
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None and not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= 1000):
            raise ValidationError({"page_size": ["A whole number from 1 to 1000."]})
        return super().get_page_size(request)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": 1000}
        return parameters
