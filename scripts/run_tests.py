"""The test command: lint, the import layers, the migrations and OpenAPI checks, then the suite on each database.

Pass 1 runs on the embedded defaults (SQLite, in-memory channel layer).
Pass 2 runs on PostgreSQL + Redis when they answer (TEST_DATABASE_URL,
TEST_REDIS_URL); with SPACES_TEST_STRICT=1 (CI) their absence is a failure.
Extra arguments go to pytest in both passes.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
PG_URL = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/spaces")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
STRICT = os.environ.get("SPACES_TEST_STRICT") == "1"


def answers(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=2):
            return True
    except OSError:
        return False


def run(title: str, command: list[str], **env: str) -> bool:
    print(f"\n=== {title} ===", flush=True)
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    return subprocess.run(command, cwd=ROOT, env={**base, **env}).returncode == 0


def main() -> int:
    pytest_args = sys.argv[1:]
    checks = [
        run("ruff check", [str(BIN / "ruff"), "check", "."]),
        run("ruff format --check", [str(BIN / "ruff"), "format", "--check", "."]),
        run("apps import downward only (pyproject.toml: tool.importlinter)", [str(BIN / "lint-imports"), "--no-cache"]),
        run(
            "migrations are up to date",
            [sys.executable, "manage.py", "makemigrations", "--check", "--dry-run"],
            DJANGO_SETTINGS_MODULE="spaces_site.settings_test",
        ),
        run(
            "OpenAPI schema is valid, with no warnings",
            [sys.executable, "manage.py", "spectacular", "--validate", "--fail-on-warn", "--file", os.devnull],
            DJANGO_SETTINGS_MODULE="spaces_site.settings_test",
        ),
        run("tests on SQLite, in-memory channel layer", [sys.executable, "-m", "pytest", *pytest_args]),
    ]
    if answers(PG_URL, 5432) and answers(REDIS_URL, 6379):
        checks.append(
            run(
                "tests on PostgreSQL + Redis",
                [sys.executable, "-m", "pytest", *pytest_args],
                DATABASE_URL=PG_URL,
                REDIS_URL=REDIS_URL,
            )
        )
    else:
        print(f"\n=== PostgreSQL ({PG_URL}) or Redis ({REDIS_URL}) is not answering: no second pass ===")
        checks.append(not STRICT)
    print("\nAll checks passed." if all(checks) else "\nSome checks FAILED.", flush=True)
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
