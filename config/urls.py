from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("", include("chat.urls")),
    path("accounts/", include("chat.account_urls")),
    path("api/", include("chat.api.urls")),
    path("admin/", admin.site.urls),
]
