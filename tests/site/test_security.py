"""What a browser is told about the site's safety, and what production settings refuse."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "k3Yq9-production-like-secret-for-the-check-only-7Gd2xW8pLz0vRt5mNs4Bc1",
    "ALLOWED_HOSTS": "spaces.example",
    "SITE_URL": "https://spaces.example",
    "CSRF_TRUSTED_ORIGINS": "https://spaces.example",
    "SECURE_SSL_REDIRECT": "1",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "spaces_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.django_db
def test_pages_carry_a_content_security_policy_without_inline_scripts(client):
    response = client.get("/")

    policy = response["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in policy


def test_no_template_runs_inline_script():
    # The policy allows scripts from the site's files only: an inline handler or script would be blocked.
    inline = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/(?:ld\+)?json)[^>]*>|\son[a-z]+=\"", re.I)
    offenders = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for path in (ROOT / "templates").rglob("*.html")
        for match in inline.finditer(path.read_text())
    ]
    assert offenders == []


def test_check_deploy_is_clean_with_the_production_settings_of_the_readme():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_short_secret_key_is_refused_with_debug_off():
    result = manage("check", **{**PRODUCTION, "SECRET_KEY": "x"})

    assert result.returncode != 0
    assert "SECRET_KEY must be at least 50 random characters" in result.stderr


def test_https_is_required_and_remembered_with_debug_off_but_health_checks_may_use_http():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_REDIRECT_EXEMPT)"
    )
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY"}}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "spaces_site.settings", **PRODUCTION},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.stdout.split()[:2] == ["True", "31536000"], result.stderr
    assert "healthz" in result.stdout and "readyz" in result.stdout
