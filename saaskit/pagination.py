from rest_framework.pagination import LimitOffsetPagination


class Pagination(LimitOffsetPagination):
    """``?limit=&offset=`` with a hard ceiling, answering ``{count, next, previous, results}``."""

    default_limit = 50
    max_limit = 500
