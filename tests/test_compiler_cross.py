"""Cross builds (Raspberry Pi 3 armhf, generic aarch64) run under qemu-user against the numpy
reference: the `predict` program reads the input as raw float32 and writes the outputs."""

import shutil
import subprocess

import numpy as np
import pytest

from conftest import need
from edgecnn.compiler import build, targets
from edgecnn.core import reference
from test_compiler import _dag

pytestmark = [pytest.mark.cross, pytest.mark.cc]


@pytest.mark.parametrize("target, ref_kernels", [
    ("pi3", False), ("pi3", True), ("aarch64", False), ("aarch64", True), ("pi4", False),
    ("pi5", False), ("armv7", False)])
def test_cross_build_runs_under_qemu(target, ref_kernels, tmp_path):
    t = targets.get(target)
    need("cross", t.compiler_path() is not None,
         f"{t.cc} not installed (apt install {t.debian_package})")
    need("cross", shutil.which(t.qemu) is not None,
         f"{t.qemu} not installed (apt install qemu-user)")
    g = _dag()
    gen = build.generate(g, tmp_path, t, ref_kernels=ref_kernels)
    # a static executable runs under qemu without the target's shared libraries
    build.build_dir(gen, library=False, static=True, opt_level="-O1")
    x = np.random.default_rng(4).standard_normal(g.input_shape).astype(np.float32)
    x.tofile(tmp_path / "x.f32")
    r = subprocess.run([t.qemu, "-L", t.sysroot, "./predict", "-t", "2", "-o", "y.f32", "x.f32"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    y = np.fromfile(tmp_path / "y.f32", np.float32)
    np.testing.assert_allclose(y, reference.predict(g, x[None])[0], rtol=1e-4, atol=1e-5)
    assert int(r.stdout.split()[0]) == int(y.argmax())
