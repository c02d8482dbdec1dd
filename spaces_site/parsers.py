"""The API's JSON parser: DRF's, refusing bodies nested deeper than any request of ours needs.

Python's decoder recurses once per level of nesting, so a body of 100,000 `[` raised a
RecursionError (a 500) before any view or permission ran, for anyone. No request of this API
nests deeper than a few levels; a body past `MAX_DEPTH` is a 400 `parse_error` like any other
malformed JSON.
"""

from rest_framework import parsers
from rest_framework.exceptions import ParseError

MAX_DEPTH = 32
TOO_DEEP = f"JSON parse error - the body is nested more than {MAX_DEPTH} levels deep."


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(TOO_DEEP) from None
        if _depth_exceeds(data, MAX_DEPTH):
            raise ParseError(TOO_DEEP)
        return data


def _depth_exceeds(data, limit: int) -> bool:
    """Whether lists and objects in `data` nest more than `limit` deep (a loop, not a recursion)."""
    level = [data]
    for _ in range(limit):
        level = [
            child
            for value in level
            if isinstance(value, dict | list)
            for child in (value.values() if isinstance(value, dict) else value)
        ]
        if not level:
            return False
    return any(isinstance(value, dict | list) for value in level)
