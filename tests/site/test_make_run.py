"""`make run` on a fresh clone, as a newcomer runs it (issue 15, acceptance 2): it prints the address
it serves at (PORT set), and while a space runs with a host speaking from Chromium and a listener
hearing it, the console stays readable: fewer than 20 lines in a minute."""

import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from tests.media.browsers import microphone_chromium
from tests.media.clients import write_tone
from workflows.management.commands.seed_demo import DEMO_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.media, pytest.mark.sqlite]

ROOT = Path(__file__).resolve().parents[2]
QUIET_S = 60
MOST_LINES = 20
# What the caller's environment may hold that a newcomer's doesn't (the test run's own settings).
NOT_A_NEWCOMERS = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "DEBUG",
    "SITE_URL",
    "MEDIA_ROOT",
    "SPACES_RECORDING_SPOOL_DIR",
    "LOG_LEVEL",
    "STRIPE_SECRET_KEY",
    "STRIPE_API_BASE",
    "STRIPE_WEBHOOK_SECRET",
    "DJANGO_ALLOW_ASYNC_UNSAFE",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_in(browser, url: str, username: str):
    page = browser.new_context().new_page()
    page.set_default_timeout(30_000)
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    return page


def test_make_run_prints_its_address_and_keeps_the_console_quiet_while_a_space_runs(tmp_path):
    # given: a fresh clone (the installed virtualenv and npm packages lent to it, so make doesn't reinstall)
    clone = tmp_path / "spaces"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    for name in (".venv", "node_modules"):
        (clone / name).symlink_to(ROOT / name)
    port, stripe_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k not in NOT_A_NEWCOMERS}
    env["SPACES_MEDIA_ICE_LOOPBACK"] = "1"  # this machine's browsers reach the worker over loopback

    # when: `make run PORT=...` starts
    command = ["make", "-o", ".venv/bin/.installed", "run", f"PORT={port}", f"STRIPE_PORT={stripe_port}"]
    process = subprocess.Popen(
        command, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while not any(line.startswith("Serving at") for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
            time.sleep(0.5)

        # then: it names its own address, not the default port
        printed = "".join(lines)
        assert f"Log in at {url}/accounts/login/" in printed, printed
        assert f"Serving at {url}/" in printed
        assert "127.0.0.1:8000" not in printed
        while True:  # daphne is listening a moment after the line
            try:
                urllib.request.urlopen(f"{url}/", timeout=5).close()
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, "".join(lines)[-3000:]
                time.sleep(0.5)

        # when: maya speaks in her live space from Chromium and alex listens in another page
        with sqlite3.connect(clone / "var" / "db.sqlite3") as db:
            (space_id,) = db.execute("SELECT id FROM rooms_space WHERE state = 'live'").fetchone()
        with microphone_chromium(write_tone(tmp_path / "a440.wav", 440, seconds=10)) as browser:
            host = log_in(browser, url, "maya")
            host.goto(f"{url}/spaces/{space_id}/")
            host.get_by_role("button", name="🎙 Unmute").click()
            host.get_by_role("button", name="🔇 Mute").wait_for()
            listener = log_in(browser, url, "alex")
            listener.goto(f"{url}/spaces/{space_id}/")
            host.locator('#stage li.speaking[data-username="maya"]').wait_for()  # the worker hears her
            listener.locator("#audio audio").first.wait_for(state="attached")
            # who was already speaking shows for someone who just came in (told as their audio starts)
            listener.locator('#stage li.speaking[data-username="maya"]').wait_for()
            before = len(lines)
            time.sleep(QUIET_S)
            during = lines[before:]
            # the audio really ran the whole minute (the host's page still sees maya speaking)
            host.locator('#stage li.speaking[data-username="maya"]').wait_for()

        # then: the console printed fewer than 20 lines meanwhile
        print(f"make run printed {len(during)} lines in {QUIET_S} s of a speaking space")
        assert len(during) < MOST_LINES, "".join(during)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
