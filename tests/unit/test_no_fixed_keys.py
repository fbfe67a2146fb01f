"""No API key is written out anywhere in the product: demo keys are random, made at seed time."""

from __future__ import annotations

import re
import subprocess

from tests.harness import ROOT

# A whole key: the prefix and at least 20 more characters (real ones have 43). Built up, so that this
# file does not match itself.
KEY = re.compile("ehk" + r"_[A-Za-z0-9_\-]{20,}")
SEARCHED = [
    "backend",
    "bench",
    "frontend",
    "tests",
    "static",
    "README.md",
    "docker-compose.yml",
    "Makefile",
    "Dockerfile",
]
TEXT = {".py", ".sql", ".html", ".md", ".yml", ".yaml", ".js", ".css", ".toml", ".txt", ""}


def test_no_api_key_is_written_in_the_source() -> None:
    # What git tracks: build output (egg-info, caches) copies old text and is nobody's source.
    tracked = subprocess.run(["git", "ls-files", *SEARCHED], cwd=ROOT, capture_output=True, text=True, check=True)
    files = [ROOT / name for name in tracked.stdout.splitlines() if (ROOT / name).suffix in TEXT]
    assert len(files) > 50  # the search did look somewhere
    found = {
        f"{path.relative_to(ROOT)}: {match}"
        for path in files
        for match in KEY.findall(path.read_text(errors="replace"))
    }
    assert not found, sorted(found)
