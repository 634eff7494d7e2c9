"""The chat's own settings (config.settings, unchanged and driven by the same environment),
with one more route for the HTTP benchmark: bench/http_urls.py."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.http_urls"
