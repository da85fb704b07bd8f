"""JSON in and out with orjson: the same JSON as DRF's renderer and parser, several times faster.

Measured by `make bench` (BENCHMARKS.md). Rendering a page of 50 patients was a visible share of a list
request with the standard library's encoder.
"""

import io

import orjson
from django.utils.functional import Promise
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer


def serialize_other(value):
    """What DRF's encoder also turns into strings: lazy translations (error messages), decimals."""
    if isinstance(value, Promise):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class OrjsonRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None  # UTF-8 is the only JSON encoding (RFC 8259); no charset parameter, like DRF's

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return orjson.dumps(data, default=serialize_other, option=orjson.OPT_PASSTHROUGH_DATETIME)


class OrjsonParser(BaseParser):
    """orjson for the valid bodies; whatever it refuses goes to DRF's parser, so errors read as before.

    (orjson refuses some JSON that DRF reads and then validates per field: `{"age": 1e999}` is then a 400
    naming `age`, not a parse error.)
    """

    media_type = "application/json"

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read()
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            return JSONParser().parse(io.BytesIO(body), media_type, parser_context)
