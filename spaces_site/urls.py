from csp.decorators import csp_exempt
from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path
from django.views.static import serve
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from accounts import urls as accounts_urls
from media import urls as media_urls
from media.health import media_workers
from rooms import urls as rooms_urls
from scheduling import urls as scheduling_urls
from spaces_site.health import healthz, readyz
from ticketing import urls as ticketing_urls

api_patterns = [
    *accounts_urls.api_urlpatterns,
    *rooms_urls.api_urlpatterns,
    *media_urls.api_urlpatterns,
    *scheduling_urls.api_urlpatterns,
    *ticketing_urls.api_urlpatterns,
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # drf-spectacular's documentation pages start their viewers with inline scripts.
    path("docs/", csp_exempt()(SpectacularSwaggerView.as_view(url_name="api-schema")), name="api-docs"),
    path("redoc/", csp_exempt()(SpectacularRedocView.as_view(url_name="api-schema")), name="api-redoc"),
]

handler404 = "spaces_site.api_errors.not_found"
handler400 = "spaces_site.api_errors.bad_request"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("healthz/media/", media_workers, name="healthz-media"),
    path("admin/", admin.site.urls),
    path("api/", include(api_patterns)),
    path("", include(rooms_urls.urlpatterns)),
    path("", include(media_urls.urlpatterns)),
    path("", include(scheduling_urls.urlpatterns)),
    path("", include(ticketing_urls.urlpatterns)),
    path("", include(accounts_urls.urlpatterns)),
]

if settings.SPACES_SERVE_UPLOADS:
    # Uploaded avatars only; a front server or object storage takes this over at scale. Recordings and
    # clips are never served from here: their views check who may hear them (`media.views`).
    prefix = settings.MEDIA_URL.strip("/")
    urlpatterns.append(re_path(rf"^{prefix}/(?P<path>avatars/.*)$", serve, {"document_root": settings.MEDIA_ROOT}))
