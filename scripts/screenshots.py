"""The README's screenshots: the demo's live space on a phone (390x844) and a desktop, light and dark.

    python scripts/screenshots.py            # writes docs/screenshots/space-{phone,desktop}-{light,dark}.png

It builds the demo (`seed_demo`) in a throwaway SQLite database, serves it with
daphne on a free port, and photographs maya's live space as a listener (alex)
sees it with maya on stage, in headless Chromium (Debian's `fonts-noto-color-emoji` draws the reactions).
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("SPACES_CHROMIUM", "/usr/bin/chromium")
SIZES = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 860}}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_in(page, url: str, username: str):
    page.goto(f"{url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "spaces-demo-2026")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{url}/")
    return page


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="screenshots-"))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")},
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MEDIA_ROOT": str(workdir / "uploads"),
        "SITE_URL": url,
        "LOG_LEVEL": "WARNING",
        "SPACES_CAPTIONS_ENGINE": "",
    }
    for step in (["migrate", "-v0"], ["seed_demo"]):
        subprocess.run([sys.executable, "manage.py", *step], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    daphne = subprocess.Popen(
        [sys.executable, "-m", "daphne", "--access-log", "/dev/null", "-p", str(port), "spaces_site.asgi:application"],
        cwd=ROOT,
        env=env,
    )
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=2).close()
                break
            except OSError:
                time.sleep(0.2)
        OUT.mkdir(parents=True, exist_ok=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
            # maya, the host, is on her space's page: present on stage
            host = log_in(browser.new_context().new_page(), url, "maya")
            host.get_by_role("link", name="Friday design crit").first.click()
            host.get_by_role("button", name="End space").wait_for()
            for size, viewport in SIZES.items():
                for scheme in ("light", "dark"):
                    context = browser.new_context(
                        viewport=viewport, color_scheme=scheme, device_scale_factor=2 if size == "phone" else 1
                    )
                    page = log_in(context.new_page(), url, "alex")
                    page.get_by_role("link", name="Friday design crit").first.click()
                    page.locator("#reactions").wait_for()
                    page.wait_for_timeout(500)
                    path = OUT / f"space-{size}-{scheme}.png"
                    page.screenshot(path=str(path))
                    print(path.relative_to(ROOT))
                    context.close()
            browser.close()
    finally:
        daphne.terminate()
        daphne.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
