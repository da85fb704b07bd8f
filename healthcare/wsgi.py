"""WSGI entry point, served by gunicorn (see gunicorn.conf.py)."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "healthcare.settings")

try:
    application = get_wsgi_application()
except ImproperlyConfigured as error:
    # One line naming the variable, not a traceback per worker. Exit status 4 is gunicorn's "the app failed to
    # load": its master then stops, instead of starting new workers that would fail alike.
    print(f"error: {error}", file=sys.stderr)
    raise SystemExit(4) from None
