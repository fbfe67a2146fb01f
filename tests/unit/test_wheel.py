"""The built wheel carries every font the PDF writer embeds, with the licences, and stays small."""

import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
FONTS = ROOT / "backend" / "exporthub" / "formats" / "fonts"
WHEEL_LIMIT = 25 * 1024 * 1024


@pytest.mark.timeout(300)
def test_the_wheel_ships_the_fonts_and_their_licences_under_25_mb(tmp_path: pathlib.Path) -> None:
    # Built from a copy, so that the build leaves nothing in the working tree.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "backend", source / "backend", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    out = tmp_path / "wheel"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--quiet", "-w", str(out)],
        check=True,
        timeout=280,
    )
    (wheel,) = out.glob("exporthub-*.whl")
    assert wheel.stat().st_size < WHEEL_LIMIT, f"the wheel is {wheel.stat().st_size / 2**20:.1f} MiB"

    shipped = set(zipfile.ZipFile(wheel).namelist())
    font_files = sorted(path.name for path in FONTS.iterdir())
    assert {f"exporthub/formats/fonts/{name}" for name in font_files} <= shipped
    assert "exporthub/formats/xlsx/theme1.xml" in shipped  # the XLSX writer's theme part (formats/xlsx/excel.py)
    fonts = [name for name in font_files if name.endswith(".ttf")]
    licences = [(FONTS / name).read_text() for name in font_files if name.startswith("LICENSE")]
    assert len(fonts) == 5
    for font in fonts:
        assert any(font in licence for licence in licences), f"no licence names {font}"
