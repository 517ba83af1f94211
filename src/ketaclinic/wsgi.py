import os

from django.core.wsgi import get_wsgi_application

os.umask(0o077)  # files this server creates are private (cli.PRIVATE_UMASK; issue 15 M6)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.settings")
application = get_wsgi_application()
