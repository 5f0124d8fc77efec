"""Production settings: `check --deploy` is clean, and a missing SECRET_KEY is refused."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Variables that would make the subprocess less than production-like if inherited.
INHERITED_OUT = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CACHE_URL",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "BEHIND_TLS_PROXY",
)


def manage(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """Run manage.py in a fresh process with `env` on top of a trimmed copy of ours.

    Real environment variables win over a `.env` beside manage.py, so the values given here
    hold even where the demo has written one.
    """
    base = {k: v for k, v in os.environ.items() if k not in INHERITED_OUT}
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=cwd,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def production_env(tmp_path: Path) -> dict[str, str]:
    return {
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),  # 67 characters, many distinct
        "ALLOWED_HOSTS": "billing.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'deploy-check.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/2",
    }


def test_check_deploy_finds_no_issues_with_production_settings(tmp_path):
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env=production_env(tmp_path), cwd=tmp_path
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_stops_a_deploy_whose_rate_limits_are_counted_per_process(tmp_path):
    env = production_env(tmp_path)
    del env["CACHE_URL"]

    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert "common.W001" in result.stderr + result.stdout
    assert "Set CACHE_URL to a Redis every web process reaches" in result.stderr + result.stdout


def test_settings_refuse_to_load_without_a_secret_key_when_debug_is_off(tmp_path):
    env = production_env(tmp_path)
    env["SECRET_KEY"] = ""

    result = manage("check", env=env, cwd=tmp_path)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr
