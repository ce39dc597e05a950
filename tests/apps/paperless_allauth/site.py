"""A django-allauth site set up as Paperless-ngx sets up its sign-in
(src/paperless/settings.py there): the same allauth apps and settings, read
from the same PAPERLESS_* environment variables, which is all Latch's
paperless-ngx preset prints. Paperless's documents and API are left out; a
page at /whoami says who is signed in.

Usage: python site.py <host> <port> <data dir>. Migrates a SQLite database
in <data dir>, then serves until killed.
"""

import json
import os
import sys
from urllib.parse import urlparse

import django
from django.conf import settings
from django.core.management import call_command
from django.http import HttpResponse, HttpResponseForbidden
from django.urls import include, path


def env_bool(name, default="no"):
    return os.getenv(name, default).lower() in ("yes", "y", "1", "t", "true")


def whoami(request):
    if not request.user.is_authenticated:
        return HttpResponseForbidden("signed out")
    return HttpResponse(f"{request.user.username} {request.user.email}")


def configure(host, port, data_dir):
    url = os.getenv("PAPERLESS_URL")
    extra_apps = [app for app in os.getenv("PAPERLESS_APPS", "").split(",") if app]
    settings.configure(
        DEBUG=False,
        SECRET_KEY=os.getenv("PAPERLESS_SECRET_KEY", "change-me"),
        ALLOWED_HOSTS=[host, "localhost"] + ([urlparse(url).hostname] if url else []),
        CSRF_TRUSTED_ORIGINS=[url] if url else [],
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "allauth",
            "allauth.account",
            "allauth.socialaccount",
            *extra_apps,
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "allauth.account.middleware.AccountMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.path.join(data_dir, "db.sqlite3")}},
        AUTHENTICATION_BACKENDS=[
            "django.contrib.auth.backends.ModelBackend",
            "allauth.account.auth_backends.AuthenticationBackend",
        ],
        # Paperless's allauth settings, from Paperless's variables and defaults.
        ACCOUNT_LOGOUT_ON_GET=True,
        ACCOUNT_DEFAULT_HTTP_PROTOCOL=os.getenv("PAPERLESS_ACCOUNT_DEFAULT_HTTP_PROTOCOL", "https"),
        ACCOUNT_ALLOW_SIGNUPS=env_bool("PAPERLESS_ACCOUNT_ALLOW_SIGNUPS"),
        SOCIALACCOUNT_ADAPTER=f"{__name__}.SocialAccountAdapter",
        SOCIALACCOUNT_ALLOW_SIGNUPS=env_bool("PAPERLESS_SOCIALACCOUNT_ALLOW_SIGNUPS", "yes"),
        SOCIALACCOUNT_AUTO_SIGNUP=env_bool("PAPERLESS_SOCIAL_AUTO_SIGNUP"),
        SOCIALACCOUNT_PROVIDERS=json.loads(os.getenv("PAPERLESS_SOCIALACCOUNT_PROVIDERS", "{}")),
        ACCOUNT_EMAIL_VERIFICATION=os.getenv("PAPERLESS_ACCOUNT_EMAIL_VERIFICATION", "optional"),
        LOGIN_REDIRECT_URL="/whoami",
        # No mail server here: a mail allauth sends would stay in memory.
        EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
        USE_TZ=True,
    )


def main():
    host, port, data_dir = sys.argv[1:4]
    configure(host, port, data_dir)
    django.setup()

    from allauth.socialaccount.adapter import DefaultSocialAccountAdapter

    class SocialAccountAdapter(DefaultSocialAccountAdapter):
        """Paperless's adapter: sign-up through a provider is open while
        PAPERLESS_SOCIALACCOUNT_ALLOW_SIGNUPS is."""

        def is_open_for_signup(self, request, sociallogin):
            return settings.SOCIALACCOUNT_ALLOW_SIGNUPS

    globals()["SocialAccountAdapter"] = SocialAccountAdapter
    # allauth's URLs read its settings, so they are built after setup.
    globals()["urlpatterns"] = [path("accounts/", include("allauth.urls")), path("whoami", whoami)]
    call_command("migrate", verbosity=0, interactive=False)
    call_command("runserver", f"{host}:{port}", "--noreload")


if __name__ == "__main__":
    main()
