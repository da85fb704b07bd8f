"""The JSON request parser: DRF's, plus the limits that keep odd but well-formed JSON from reaching a 500.

Two kinds of input parse as valid JSON yet break later: a body nested thousands of levels deep (the decoder
recurses, RecursionError) and a lone UTF-16 surrogate such as "\\ud800" (valid in JSON text, but not encodable
as UTF-8, so echoing it back in an error message fails). Both are refused here, before any view sees them.
"""

import re

from rest_framework import serializers
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Far deeper than any body the API documents (two levels), far shallower than the interpreter's recursion limit.
MAX_JSON_DEPTH = 32
SURROGATE = re.compile(r"[\ud800-\udfff]")
SURROGATE_MESSAGE = "Lone surrogate characters (U+D800 to U+DFFF) are not allowed."


def first_surrogate_field(data) -> str | None:
    """The top-level field whose value (at any depth) holds a lone surrogate, "non_field_errors" if a key
    does, None if nothing does. Raises ParseError past MAX_JSON_DEPTH. Iterative: no recursion to exhaust."""
    top_level = data.items() if isinstance(data, dict) else [("non_field_errors", data)]
    for field, value in top_level:
        if isinstance(field, str) and SURROGATE.search(field):
            return "non_field_errors"
        pending = [(value, 1)]
        while pending:
            item, depth = pending.pop()
            if depth > MAX_JSON_DEPTH:
                raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
            if isinstance(item, str):
                if SURROGATE.search(item):
                    return field
            elif isinstance(item, dict):
                if any(SURROGATE.search(key) for key in item):
                    return field
                pending.extend((child, depth + 1) for child in item.values())
            elif isinstance(item, list):
                pending.extend((child, depth + 1) for child in item)
    return None


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.") from None
        field = first_surrogate_field(data)
        if field is not None:
            raise serializers.ValidationError({field: [SURROGATE_MESSAGE]})
        return data
