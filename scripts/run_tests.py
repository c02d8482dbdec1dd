"""The test command: lint, the import layers, the migrations and OpenAPI checks, then the suite on each database.

Pass 1 runs on the embedded defaults (SQLite, in-memory channel layer).
Pass 2 runs on PostgreSQL + Redis when they answer (TEST_DATABASE_URL,
TEST_REDIS_URL); with SPACES_TEST_STRICT=1 (CI) their absence is a failure.
The browser tests run in pass 2 when it runs, else in pass 1; those marked
`sqlite` always in pass 1.
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


def _marks_chosen(pytest_args: list[str]) -> bool:
    return any(arg == "-m" or arg.startswith("-m") for arg in pytest_args)


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
    ]
    second_pass = answers(PG_URL, 5432) and answers(REDIS_URL, 6379)
    # The browser tests drive the site as people do, through daphne: where the PostgreSQL + Redis pass
    # runs, they run there only, on the production's stores (a pass of them took about five minutes);
    # those about the embedded default (`sqlite`) stay here. With no services, every test runs here.
    first_only = ["-m", "not browser or sqlite"] if second_pass and not _marks_chosen(pytest_args) else []
    checks.append(
        run("tests on SQLite, in-memory channel layer", [sys.executable, "-m", "pytest", *first_only, *pytest_args])
    )
    if second_pass:
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
