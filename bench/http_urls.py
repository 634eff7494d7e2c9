"""The chat's routes (config.urls) and, first, /bench-hello/: bench.hello's do-nothing view,
behind the chat's whole middleware stack. Against the bare hello app it shows what the stack
costs per request."""

from django.urls import path

from bench.hello import hello
from config.urls import urlpatterns as chat_urlpatterns

urlpatterns = [path("bench-hello/", hello), *chat_urlpatterns]
