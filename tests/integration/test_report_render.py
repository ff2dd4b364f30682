"""The HTML report drawn by a real browser: headless Chromium renders it to a PNG, and the
bars of every chart are there in their colours."""

import shutil
import subprocess

from PIL import Image

from loadgen.harness import Harness
from tests.integration.test_loadgen_native import scenario

BLUE, RED = (0x1F, 0x77, 0xB4), (0xD6, 0x27, 0x28)


def count(img, colour, tol=6):
    return sum(n for n, px in img.getcolors(maxcolors=1 << 24)
               if all(abs(a - b) <= tol for a, b in zip(px, colour, strict=False)))


def test_report_renders_with_charts(tmp_path):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is installed by scripts/setup.sh"
    sc = scenario("qcow2", tmp_path / "images", levels=("1MiB",), cow=3, full=1, golden="16MiB")
    Harness(sc, tmp_path / "out").run_all()
    png = tmp_path / "report.png"
    proc = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars", "--window-size=1000,1500",
                           f"--screenshot={png}", (tmp_path / "out" / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert png.exists(), proc.stderr[-2000:]
    img = Image.open(png).convert("RGB")
    assert img.size == (1000, 1500)
    # Consumed (blue) and full-copy (red) bars: big enough areas to be real bars, not legend swatches.
    assert count(img, BLUE) > 5000 and count(img, RED) > 5000
    # The three charts stack vertically: each third of the chart area holds blue bars.
    bands = [img.crop((0, top, 1000, top + 300)) for top in (150, 480, 800)]
    assert all(count(b, BLUE) > 500 for b in bands), [count(b, BLUE) for b in bands]
