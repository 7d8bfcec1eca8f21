"""Settings come from environment variables; wrong or missing production values fail by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import BASE_DIR

PROBE = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'db': settings.DATABASES['default']['ENGINE'], "
    "'broker': settings.CELERY_BROKER_URL, 'results': settings.CELERY_RESULT_BACKEND, "
    "'cache': settings.CACHES['default']['BACKEND'], 'mail': settings.EMAIL_BACKEND, "
    "'media': settings.STORAGES['default']['BACKEND'], "
    "'beat': settings.CELERY_BEAT_SCHEDULER}))"
)
APP_VARIABLES = (
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CACHE_URL",
    "EMAIL_HOST",
    "AWS_STORAGE_BUCKET_NAME",
    "INTELLIWIZ_ENV",
    "DJANGO_SECRET_KEY",
    "DJANGO_DEBUG",
    "DJANGO_ALLOWED_HOSTS",
    "SITE_URL",
    "DEFAULT_FROM_EMAIL",
    "CELERY_RESULT_BACKEND",
)


def run_settings(tmp_path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in APP_VARIABLES}
    clean.update(
        DJANGO_SETTINGS_MODULE="intelliwiz_config.settings", INTELLIWIZ_VAR_DIR=str(tmp_path), **env
    )
    return subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=BASE_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_embedded_default_needs_no_variables(tmp_path) -> None:
    completed = run_settings(tmp_path)
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) == {
        "db": "django.db.backends.sqlite3",
        "broker": "filesystem://",
        "results": "django-db",
        "cache": "apps.core.cache.DatabaseCache",
        "mail": "intelliwiz_config.mail_files.EmlFileBackend",
        "media": "django.core.files.storage.FileSystemStorage",
        "beat": "apps.core.beat:LeaderDatabaseScheduler",
    }
    assert (tmp_path / "broker" / "queue").is_dir()


def test_real_services_are_chosen_by_variables(tmp_path) -> None:
    completed = run_settings(
        tmp_path,
        DATABASE_URL="postgres://u:p@db.example:5432/intelliwiz",
        CELERY_BROKER_URL="amqp://guest:guest@mq.example:5672//",
        CACHE_URL="redis://cache.example:6379/1",
        EMAIL_HOST="smtp.example",
        AWS_STORAGE_BUCKET_NAME="media-bucket",
    )
    assert completed.returncode == 0, completed.stderr
    assert json.loads(completed.stdout) | {"beat": None} == {
        "db": "django.db.backends.postgresql",
        "broker": "amqp://guest:guest@mq.example:5672//",
        "results": "django-db",
        "cache": "apps.core.cache.RedisCache",
        "mail": "apps.core.smtp.EmailBackend",
        "media": "storages.backends.s3.S3Storage",
        "beat": None,
    }


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CELERY_BROKER_URL": "kafka://x"}, "CELERY_BROKER_URL has scheme 'kafka'"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL has scheme 'mysql'"),
        (
            {"EMAIL_HOST": "smtp.example", "EMAIL_PORT": "twenty-five"},
            "EMAIL_PORT must be an integer",
        ),
        ({"DJANGO_DEBUG": "maybe"}, "DJANGO_DEBUG must be a boolean"),
        ({"INTELLIWIZ_ENV": "staging"}, "INTELLIWIZ_ENV must be 'development' or 'production'"),
    ],
)
def test_a_wrong_value_fails_at_start_up_naming_the_variable(tmp_path, env, message) -> None:
    completed = run_settings(tmp_path, **env)
    assert completed.returncode != 0
    assert message in completed.stderr


def test_production_without_its_settings_fails_naming_each(tmp_path) -> None:
    completed = run_settings(tmp_path, INTELLIWIZ_ENV="production")
    assert completed.returncode != 0
    for name in (
        "DJANGO_SECRET_KEY",
        "DATABASE_URL",
        "CELERY_BROKER_URL",
        "CACHE_URL",
        "EMAIL_HOST",
        "DEFAULT_FROM_EMAIL",
        "SITE_URL",
        "DJANGO_ALLOWED_HOSTS",
    ):
        assert f"{name} " in completed.stderr, name


PRODUCTION = {
    "INTELLIWIZ_ENV": "production",
    "DJANGO_SECRET_KEY": "k3y-Qz9vW2pLx7RfT0mB4nYc8HdJ1sKa6UeG3oVi5XwZ-hNrq_tEyPbDgMl",
    "DJANGO_ALLOWED_HOSTS": "intelliwiz.example",
    "SITE_URL": "https://intelliwiz.example",
    "DATABASE_URL": "postgres://u:p@db.example:5432/intelliwiz",
    "CELERY_BROKER_URL": "redis://cache.example:6379/0",
    "CACHE_URL": "redis://cache.example:6379/1",
    "EMAIL_HOST": "smtp.example",
    "DEFAULT_FROM_EMAIL": "noreply@intelliwiz.example",
}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"DJANGO_ALLOWED_HOSTS": "*"}, "DJANGO_ALLOWED_HOSTS must name hosts"),
        ({"DJANGO_ALLOWED_HOSTS": ".com"}, "DJANGO_ALLOWED_HOSTS must name hosts"),
        ({"DJANGO_SECRET_KEY": "x" * 64}, "DJANGO_SECRET_KEY is not random"),
        # The report's three: a 50-character key of one pattern, Django's development key
        # prefix, a public suffix of two labels.
        ({"DJANGO_SECRET_KEY": "aB3$x" * 10}, "a pattern of 5 characters, repeated"),
        ({"DJANGO_SECRET_KEY": "Ab1-x9Q" * 8}, "a pattern of 7 characters, repeated"),
        (
            {"DJANGO_SECRET_KEY": "django-insecure-Qz9vW2pLx7RfT0mB4nYc8HdJ1sKa6UeG3oV"},
            "DJANGO_SECRET_KEY is a development key",
        ),
        ({"DJANGO_ALLOWED_HOSTS": "intelliwiz.example,.co.uk"}, "or a public suffix"),
        ({"DJANGO_ALLOWED_HOSTS": "github.io"}, "or a public suffix"),
    ],
)
def test_production_refuses_unsafe_values_by_name(tmp_path, override, message) -> None:
    completed = run_settings(tmp_path, **(PRODUCTION | override))
    assert completed.returncode != 0 and message in completed.stderr


def test_check_deploy_is_clean_under_production_settings(tmp_path) -> None:
    completed = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env={**os.environ, "INTELLIWIZ_VAR_DIR": str(tmp_path), **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_production_with_its_settings_starts(tmp_path) -> None:
    completed = run_settings(
        tmp_path,
        INTELLIWIZ_ENV="production",
        DJANGO_SECRET_KEY=PRODUCTION["DJANGO_SECRET_KEY"],
        DJANGO_ALLOWED_HOSTS="intelliwiz.example",
        SITE_URL="https://intelliwiz.example",
        DATABASE_URL="postgres://u:p@db.example:5432/intelliwiz",
        CELERY_BROKER_URL="redis://cache.example:6379/0",
        CACHE_URL="redis://cache.example:6379/1",
        EMAIL_HOST="smtp.example",
        DEFAULT_FROM_EMAIL="noreply@intelliwiz.example",
    )
    assert completed.returncode == 0, completed.stderr
