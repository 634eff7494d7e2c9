"""The WSGI application: pages, forms and the API for HTTP worker processes (gunicorn).

Production's layout (deploy/) serves plain HTTP from single-threaded WSGI workers, one per
core, and WebSockets from daphne (config.asgi): a synchronous view then runs without the
threads, GIL contention and asgiref locks of an ASGI process. Messages posted here reach
daphne's sockets through Redis (REDIS_URL), as between any two processes.
"""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

application = get_wsgi_application()
