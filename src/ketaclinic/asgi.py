import os

from django.core.asgi import get_asgi_application

os.umask(0o077)  # files this server creates are private (cli.PRIVATE_UMASK; issue 15 M6)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.settings")
application = get_asgi_application()
