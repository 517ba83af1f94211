import os

from django.core.asgi import get_asgi_application

os.umask(0o077)  # files this server creates are private (cli.PRIVATE_UMASK; issue 15 M6)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.settings")
application = get_asgi_application()

# Import the URL configuration and every view module now, as each `ketaclinic serve` worker starts, rather
# than during the first request that worker happens to receive (seconds on a busy machine).
from django.urls import get_resolver  # noqa: E402

get_resolver().url_patterns  # noqa: B018
