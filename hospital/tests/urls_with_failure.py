"""The project's routes plus views that fail unexpectedly, to show what a client sees of a server bug."""

from django.urls import path

from healthcare.urls import handler400, handler404, handler500
from healthcare.urls import urlpatterns as project_urlpatterns

FAILURE_MESSAGE = "an unexpected bug mentioning Ada Lovelace"


def fail_unexpectedly(request):
    raise RuntimeError(FAILURE_MESSAGE)


urlpatterns = [
    path("api/failing/", fail_unexpectedly),
    path("failing/", fail_unexpectedly),
    *project_urlpatterns,
]

__all__ = ["handler400", "handler404", "handler500", "urlpatterns"]
