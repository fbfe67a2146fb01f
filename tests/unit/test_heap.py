"""`settle_heap`: start-up objects frozen out of collections, and a larger young generation."""

import subprocess
import sys


def test_settle_heap_freezes_start_up_objects_and_raises_the_young_threshold() -> None:
    code = (
        "import gc; from exporthub.heap import settle_heap; import exporthub.worker.run; "
        "assert gc.get_freeze_count() == 0; settle_heap(); print(gc.get_threshold(), gc.get_freeze_count() > 10_000)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["(10000,", "10,", "10)", "True"]
