"""DRF's JSON, byte for byte, rendered by orjson when orjson writes the same bytes.

DRF's `JSONRenderer` runs the standard library's encoder (compact separators, UTF-8 rather than `\\u` escapes,
NaN refused), then escapes U+2028 and U+2029, which JavaScript did not allow in strings. orjson writes the same
bytes for dicts, lists, strings, integers, booleans and null, and for what DRF's encoder turns into strings
(date-times, UUIDs, lazy translations), in a fraction of the time. It writes floats differently (`1e-5`, not
`1e-05`; NaN as null) and ignores an OrderedDict's own order, so data holding anything else, an indented or
non-default format (the browsable API), or anything orjson refuses (integers over 64 bits, keys that are not
strings) is rendered by DRF's renderer itself. hospital/tests/test_renderers.py compares the two.
"""

import datetime
import uuid
from itertools import chain

import orjson
from django.utils.functional import Promise
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder
from rest_framework.utils.serializer_helpers import ReturnDict, ReturnList

# Values orjson writes exactly as the standard library does (str subclasses too: their content, as json does).
EXACT_SCALARS = frozenset({str, int, bool, type(None)})
MAPPINGS = frozenset({dict, ReturnDict})
SEQUENCES = frozenset({list, tuple, ReturnList})
# Values DRF's encoder turns into strings: orjson is handed the same string (`default`, below).
STRINGIFIED = (datetime.date, datetime.time, datetime.timedelta, uuid.UUID, Promise)
STRINGS = (str, *STRINGIFIED)
OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def orjson_writes_the_same(data) -> bool:
    """Whether every value in `data` is one orjson renders exactly as DRF's encoder does.

    Level by level, the values' types are collected at C speed (`map(type, ...)`): a page of 50 records is
    three passes, not 600 Python steps.
    """
    values = [data]
    while values:
        kinds = set(map(type, values))
        nested = []
        for kind in kinds - EXACT_SCALARS:
            if kind in MAPPINGS:
                nested.extend(chain.from_iterable(value.values() for value in values if type(value) is kind))
            elif kind in SEQUENCES:
                nested.extend(chain.from_iterable(value for value in values if type(value) is kind))
            elif not issubclass(kind, STRINGS):
                return False
        values = nested
    return True


class FastJSONRenderer(JSONRenderer):
    """The API's JSON renderer: DRF's output, by orjson where it writes the same bytes (module docstring)."""

    drf_default = staticmethod(JSONEncoder().default)

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if (
            data is None
            or not (self.compact and self.strict and not self.ensure_ascii)
            or self.get_indent(accepted_media_type, renderer_context or {}) is not None
            or not orjson_writes_the_same(data)
        ):
            return super().render(data, accepted_media_type, renderer_context)
        try:
            rendered = orjson.dumps(data, default=self.drf_default, option=OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if b"\xe2\x80" in rendered:  # the UTF-8 of U+2028 and U+2029 starts so (as does any U+2000-U+203F)
            rendered = rendered.replace("\u2028".encode(), b"\\u2028").replace("\u2029".encode(), b"\\u2029")
        return rendered
