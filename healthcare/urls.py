from django.contrib import admin
from django.urls import include, path

from hospital.views import ApiIndexView
from hospital.views.metrics import metrics_view

urlpatterns = [
    path("api", ApiIndexView.as_view()),  # the index without its final slash, like every API route
    path("api/", include("hospital.urls")),
    path("admin/", admin.site.urls),
    path("metrics", metrics_view, name="metrics"),  # Prometheus' default path
]

# JSON under /api/, Django's HTML pages elsewhere (the admin).
handler400 = "hospital.exceptions.bad_request"
handler404 = "hospital.exceptions.page_not_found"
handler500 = "hospital.exceptions.server_error"
