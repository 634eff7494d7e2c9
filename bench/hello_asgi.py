"""The bare hello app (bench/hello.py) as an ASGI application, for daphne:

DJANGO_SETTINGS_MODULE=bench.hello SECRET_KEY=… daphne bench.hello_asgi:application
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.hello")

application = get_asgi_application()
