"""A one-file Django project, served by `manage.py runserver` (this file is its manage.py)."""
import sys

from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="e2e-only",
                   INSTALLED_APPS=[], MIDDLEWARE=[])


def hello(request):
    return HttpResponse(f"hello from django, client {request.META['REMOTE_ADDR']}\n")


urlpatterns = [path("", hello)]

if __name__ == "__main__":
    from django.core.management import execute_from_command_line

    execute_from_command_line([sys.argv[0], "runserver", f"localhost:{sys.argv[1]}", "--noreload"])
