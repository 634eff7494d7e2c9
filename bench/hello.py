"""The floor of the HTTP benchmark: a bare Django app that answers "hello".

This module is the app's settings and its urlconf at once (DJANGO_SETTINGS_MODULE=bench.hello);
bench/hello_asgi.py is its ASGI application, served by the same daphne and Django as the chat.
No installed apps, no middleware, no database: what Django itself costs per request under
daphne, against which bench/http.py states every request of the chat as a ratio.

`hello` is also the do-nothing view that bench/http_urls.py puts behind the chat's own
middleware stack (/bench-hello/), so that the two differ by the stack alone.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse
from django.urls import path

DEBUG = False
SECRET_KEY = os.environ.get("SECRET_KEY", "")
ALLOWED_HOSTS = os.environ.get("ALLOWED_HOSTS", "127.0.0.1").split(",")
ROOT_URLCONF = "bench.hello"
INSTALLED_APPS: list[str] = []
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True


def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse("hello", content_type="text/plain")


urlpatterns = [path("bench-hello/", hello)]
