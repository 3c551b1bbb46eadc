"""The application's URLs plus the benchmark's floor pages (``config.settings.bench`` only)."""

from django.urls import path

from bench import views
from bench.views import bench_admin_site
from config.urls import handler403, handler404
from config.urls import urlpatterns as app_urlpatterns

urlpatterns = [
    path("_bench/bare/", views.bare, name="bench_bare"),
    path("_bench/table/", views.table, name="bench_table"),
    path("_bench/admin/", bench_admin_site.urls),
    *app_urlpatterns,
]

__all__ = ["handler403", "handler404", "urlpatterns"]
