from django.contrib import admin
from django.urls import include, path

from chat import health

urlpatterns = [
    # Unauthenticated and cheap: for load balancers and supervisors (chat/health.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Before chat.urls: rooms:members now serves /chats/<id>/members/ (GET and POST).
    path("", include("chat.room_urls")),
    path("", include("chat.urls")),
    path("accounts/", include("chat.account_urls")),
    # The language switcher's form posts to i18n/setlang/ (Django's set_language view).
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/", include("chat.api.urls")),
    path("admin/", admin.site.urls),
]
