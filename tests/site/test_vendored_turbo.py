"""The site serves Hotwired Turbo from a copy in static/js/vendor/ (so production needs no npm); the
copy is the npm package that package.json pins, byte for byte (`npm ci` checks the package's hash)."""

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENDORED = ROOT / "static" / "js" / "vendor" / "turbo.es2017-umd.js"
PINNED = ROOT / "node_modules" / "@hotwired" / "turbo" / "dist" / "turbo.es2017-umd.js"


def test_the_vendored_turbo_is_the_pinned_npm_package_byte_for_byte():
    version = json.loads((ROOT / "package.json").read_text())["devDependencies"]["@hotwired/turbo"]
    assert PINNED.exists(), "@hotwired/turbo is missing: run `make test` (or `npm ci`) to install it"
    assert VENDORED.read_bytes() == PINNED.read_bytes()
    assert f"Turbo {version}\n" in VENDORED.read_text()[:100]
    assert f"@hotwired/turbo@{version}" in (VENDORED.parent / "turbo-LICENSE.txt").read_text()
