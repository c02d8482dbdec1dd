"""Test settings: the real settings with a test secret, a fast hasher and throwaway files."""

import os
import tempfile

os.environ.setdefault("SECRET_KEY", "tests-only-not-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz")

from spaces_site.settings import *  # noqa: F403
from spaces_site.settings import STORAGES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {**STORAGES, "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}
# Throwaway folders, or the test's own when it starts a process (tests/conftest.py `_file_folders`).
MEDIA_ROOT = os.environ.get("MEDIA_ROOT") or tempfile.mkdtemp(prefix="spaces-test-uploads-")
SPACES_RECORDING_SPOOL_DIR = os.environ.get("SPACES_RECORDING_SPOOL_DIR") or tempfile.mkdtemp(
    prefix="spaces-test-spool-"
)
STATIC_ROOT = tempfile.mkdtemp(prefix="spaces-test-static-")
WHITENOISE_USE_FINDERS = True
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = True
# A clip of a replay is cut as its request commits, so a test sees it made.
SPACES_CLIP_CUT_THREAD = False
# Tests run the scheduling due work themselves, at the times they choose.
SPACES_TICKER_S = 0
