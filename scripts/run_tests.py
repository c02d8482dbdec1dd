"""The test command: lint, the import layers, the migrations and OpenAPI checks, then the suite on each database.

Pass 1 runs on the embedded defaults (SQLite, in-memory channel layer).
Pass 2 runs on PostgreSQL + Redis when they answer (TEST_DATABASE_URL,
TEST_REDIS_URL); with SPACES_TEST_STRICT=1 (CI) their absence is a failure.
The browser and media tests run in pass 2 when it runs, else in pass 1; those
marked `sqlite` always in pass 1.

With both passes, the tests that don't keep to the clock run side by side, one
pass on each core; then those marked `alone` (tests/conftest.py: real audio,
browsers, the topology's faults, answers within a bound) of pass 1, then of
pass 2, each with the machine to itself.
Extra arguments go to pytest in every part; with `-m` among them, the passes
run one after the other, whole.
"""

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
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


def environment(**env: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL"}}
    return {**base, **env}


def run(title: str, command: list[str], **env: str) -> bool:
    print(f"\n=== {title} ===", flush=True)
    return passed(subprocess.run(command, cwd=ROOT, env=environment(**env)).returncode)


def passed(returncode: int) -> bool:
    # pytest's 5: nothing was selected (a -k that matches none of one part's tests)
    return returncode in (0, 5)


def side_by_side(parts: list[tuple[str, list[str], dict[str, str]]]) -> list[bool]:
    """Run `parts` at once, each one's output kept apart and printed, in order, as it ends."""
    with contextlib.ExitStack() as stack:
        started = []
        for title, command, env in parts:
            output = stack.enter_context(tempfile.TemporaryFile())
            env = environment(**env)
            process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
            started.append((title, process, output))
        results = []
        for title, process, output in started:
            returncode = process.wait()
            print(f"\n=== {title} (side by side) ===", flush=True)
            output.seek(0)
            sys.stdout.buffer.write(output.read())
            sys.stdout.flush()
            results.append(passed(returncode))
        return results


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
    pytest = [sys.executable, "-m", "pytest", *pytest_args]
    first, second = "tests on SQLite, in-memory channel layer", "tests on PostgreSQL + Redis"
    stores = {"DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}
    if not second_pass:
        checks.append(run(first, pytest))
        print(f"\n=== PostgreSQL ({PG_URL}) or Redis ({REDIS_URL}) is not answering: no second pass ===")
        checks.append(not STRICT)
    elif _marks_chosen(pytest_args):
        checks += [run(first, pytest), run(second, pytest, **stores)]
    else:
        # The browser tests drive the site as people do, through daphne, and the media tests send
        # real audio through the worker: where the PostgreSQL + Redis pass runs, they run there only,
        # on the production's stores; those about the embedded default (`sqlite`, `make run` with a
        # speaking host among them) stay in the first. The two databases' passes don't share a
        # store, so what doesn't keep to the clock runs side by side: two cores, each pass about 0.7
        # of one.
        in_first = "((not browser and not media) or sqlite)"
        checks += side_by_side(
            [
                (f"{first}, not alone", [*pytest, "-m", f"{in_first} and not alone"], {}),
                (f"{second}, not alone", [*pytest, "-m", "not alone"], stores),
            ]
        )
        checks.append(run(f"{first}, alone", [*pytest, "-m", f"{in_first} and alone"]))
        checks.append(run(f"{second}, alone", [*pytest, "-m", "alone"], **stores))
    print("\nAll checks passed." if all(checks) else "\nSome checks FAILED.", flush=True)
    return 0 if all(checks) else 1


if __name__ == "__main__":
    sys.exit(main())
