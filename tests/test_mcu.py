"""Cortex-M targets: bare-metal builds run on boards emulated by qemu-system-arm.

Each (model, target) is compiled once per test session (module fixture) and its example image
booted on the board: mps2-an386 (Cortex-M4), mps2-an500 (Cortex-M7), mps3-an547 (Cortex-M55).
The input goes in and the output comes out through semihosting files; the outputs are compared
with the numpy reference interpreter, logits (softmax cut off), with the float conformance
tolerance |got - want| <= 1e-4 * max|want| + 1e-4 * |want| (float32 sums in another order).

The unit tests at the top need no toolchain.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from conftest import need
from edgecnn.apps.resolve import resolve
from edgecnn.cli.main import main as cli_main
from edgecnn.compiler import build, fit, mcu, targets
from edgecnn.core import reference
from edgecnn.core.surgery import cut
from edgecnn.errors import EdgecnnError

RTOL, SCALED_ATOL = 1e-4, 1e-4
SMALL = "d_I32x32x3CMCMCMF10"  # 32x32 input, three 3x3 convolutions, a dense classifier
BINARY = "d_I32x32x3CMBMBMF10"  # the same with two binary (XNOR) convolutions
MOBILENET = "tflite/mobilenet_v1_0.25_128_quant.tflite"
MOBILENET_INT = MOBILENET + "#integer"  # the same file as the integer graph it is


def have_mcu_tools() -> bool:
    return all(shutil.which(t) for t in ("arm-none-eabi-gcc", "arm-none-eabi-size",
                                         "qemu-system-arm"))


def need_mcu():
    need("mcu", have_mcu_tools(), "needs arm-none-eabi-gcc with newlib and qemu-system-arm "
         "(Debian: apt install gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm)")


def logits(g):
    """The graph without a final softmax (compare logits, not saturated probabilities)."""
    last = g.layers[-1]
    return cut(g, last.inputs[0]) if last.kind == "softmax" else g


def assert_close(got, want):
    scale = float(np.abs(want).max())
    err = np.abs(got - want)
    bound = SCALED_ATOL * scale + RTOL * np.abs(want)
    assert (err <= bound).all(), f"max error {err.max():.3g} (scale {scale:.3g})"
    return float(err.max())


# ---- without a toolchain ------------------------------------------------------------------------

def test_cortex_m_targets_are_bare_metal_plain_c():
    for n, board in (("cortex-m4", "mps2-an386"), ("cortex-m7", "mps2-an500"),
                     ("cortex-m55", "mps3-an547")):
        t = targets.get(n)
        assert t.board == board and t.cc == "arm-none-eabi-gcc" and not t.openmp
        assert f"-mcpu={n}" in t.cflags and "-mthumb" in t.cflags
        assert "-mfloat-abi=hard" in t.cflags
        assert {"EC_PORTABLE", "EC_NO_VECTOR_EXT"} <= set(t.defines)
    assert "-mfpu=fpv4-sp-d16" in targets.get("cortex-m4").cflags


def test_parse_size():
    assert fit.parse_size("1M") == 1 << 20
    assert fit.parse_size("256K") == 256 * 1024
    assert fit.parse_size("256KiB") == 256 * 1024
    assert fit.parse_size("1.5M") == 3 << 19
    assert fit.parse_size("4096") == 4096
    with pytest.raises(EdgecnnError, match="cannot read the size"):
        fit.parse_size("lots")


def test_fit_reports_the_plan_and_the_peak(tmp_path):
    g = resolve(SMALL)
    rep = fit.fit(g, "cortex-m4", flash=1 << 20, ram=64 * 1024)
    _, pl = build.lower_and_plan(g, targets.get("cortex-m4"), ref_kernels=True)
    assert rep["ram"]["arena"] == pl.arena_bytes
    # the weights the build will place in flash (batch norm folded, 64-byte aligned tensors)
    gen = mcu.generate(g, tmp_path, "cortex-m4")
    assert rep["flash"]["weights"] == 4 * gen.weight_floats
    assert rep["flash"]["fits"] and not rep["ram"]["fits"] and not rep["fits"]
    assert rep["ram"]["over_by"] == rep["ram"]["total"] - 64 * 1024
    # the peak: the first convolution's 32x32x16 output and the pool reading it
    live = {b["value"]: b["bytes"] for b in rep["peak"]["buffers"]}
    assert live.get("conv1_act") == 32 * 32 * 16 * 4
    assert max(pl.views[v].offset + pl.views[v].floats for v in pl.views) * 4 == \
        pl.arena_bytes
    text = fit.format_fit(rep)
    assert "does NOT fit" in text and "conv1_act" in text


def test_summary_fit_exit_status(capsys):
    assert cli_main(["summary", SMALL, "--target", "cortex-m4", "--flash", "1M",
                     "--ram", "256K"]) == 0
    assert "fits in 262,144" in capsys.readouterr().out
    assert cli_main(["summary", SMALL, "--target", "cortex-m4", "--ram", "32K"]) == 1
    assert "over by" in capsys.readouterr().out


def test_generate_writes_model_and_board_files(tmp_path):
    gen = mcu.generate(resolve(SMALL), tmp_path, "cortex-m55")
    names = {p.name for p in tmp_path.iterdir()}
    assert {"model.c", "model.h", "main.c", "startup.c", "board.ld", "Makefile",
            "README.md", "ec_ref.c"} <= names
    assert "predict.c" not in names
    ld = (tmp_path / "board.ld").read_text()
    assert "ORIGIN = 0x28000000" in ld and "VECTORS" in ld  # AN547: vectors in ITCM, QSPI flash
    c = (tmp_path / "model.c").read_text()
    assert "static const union" in c  # const weights: flash
    assert "ec_arena[" not in c  # the caller provides the arena
    assert f"{gen.name}_predict_checked" in c
    assert "mps3-an547" in (tmp_path / "Makefile").read_text()


# ---- on the emulated boards ----------------------------------------------------------------------

CASES = [(SMALL, "cortex-m4"), (SMALL, "cortex-m7"), (SMALL, "cortex-m55"),
         (BINARY, "cortex-m4"), (BINARY, "cortex-m55"),
         (MOBILENET, "cortex-m4"), (MOBILENET, "cortex-m7"),
         (MOBILENET_INT, "cortex-m4"), (MOBILENET_INT, "cortex-m55")]


def _graph(spec, shared):
    if spec.endswith((".tflite", "#integer")):
        from edgecnn.formats.importers.tflite import import_tflite

        need("data", shared is not None, "shared test data not found")
        if spec.endswith("#integer"):  # ends in the dequantized integer softmax: compared exactly
            return import_tflite(shared / spec.removesuffix("#integer"))
        return logits(import_tflite(shared / spec, as_float=True))
    return resolve(spec)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(spec, target) -> (graph, Generated, its sizes): each compiled once per module."""
    from conftest import shared_data_dir

    cache = {}

    def get(spec, target):
        need_mcu()
        if (spec, target) not in cache:
            g = _graph(spec, shared_data_dir())
            d = tmp_path_factory.mktemp(f"{target}-{spec.split('/')[-1][:12]}")
            gen = mcu.generate(g, d, target)
            mcu.build_images(gen)
            cache[spec, target] = (g, gen, mcu.sizes(gen, g))
        return cache[spec, target]

    return get


def _input(g, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, g.input_shape).astype(np.float32)


@pytest.mark.parametrize("spec, target", CASES)
def test_runs_on_the_board_and_agrees_with_the_reference(built, spec, target, shared_or_none):
    g, gen, _ = built(spec, target)
    if spec in (MOBILENET, MOBILENET_INT):  # a real photo, preprocessed as the model says
        from edgecnn.core.preprocess import load_image, preprocess

        im = load_image(shared_or_none / "darknet" / "dog.jpg")
        x = preprocess(im, g.preprocessing, g.input_shape[:2]).astype(np.float32)
    else:
        x = _input(g)
    r = mcu.run(gen.target, gen.dir / "model.elf", x, g.num_classes)
    assert r.report["rc"] == 0 and r.exit_code == 0, r.report
    want = reference.predict(g, x[None])[0].ravel()
    if spec == MOBILENET_INT:  # integer arithmetic: bit for bit, in a quarter of the RAM
        np.testing.assert_array_equal(r.output, want)
        assert gen.arena_bytes < 100_000
    else:
        assert_close(r.output, want)
    if spec in (MOBILENET, MOBILENET_INT):
        assert np.argmax(r.output) == np.argmax(want)
    # the model stayed inside its arena and the stack inside its region
    assert r.report["guard_ok"] == 1
    assert r.report["arena_bytes"] == gen.arena_bytes
    assert 0 < r.report["stack_bytes"] < r.report["stack_size"]


@pytest.mark.parametrize("spec, target", [(SMALL, "cortex-m4"), (BINARY, "cortex-m55")])
def test_arena_one_byte_short_refuses_to_run(built, spec, target):
    g, gen, _ = built(spec, target)
    images = mcu.build_images(gen, arena_bytes=gen.arena_bytes - 1)
    r = mcu.run(gen.target, images["model"], _input(g), g.num_classes)
    assert r.report["rc"] == 4  # the checked entry point's "arena too small"
    assert r.report["arena_bytes_written"] == 0  # nothing touched
    assert r.report["guard_ok"] == 1
    assert r.output is None and r.exit_code == 14


def test_flash_and_ram_figures_match_the_toolchain(built):
    g, gen, sz = built(SMALL, "cortex-m4")
    elf = gen.dir / "size.elf"
    # Berkeley format (text = code + constants, data, bss), read independently of -A
    out = subprocess.run(["arm-none-eabi-size", "-B", "-d", str(elf)], capture_output=True,
                         text=True, check=True).stdout.splitlines()[1].split()
    text, data, bss = map(int, out[:3])
    assert sz["flash"]["total"] == text + data
    assert sz["flash"]["data_init"] == data
    assert sz["ram"]["arena"] + sz["ram"]["io_buffers"] + sz["ram"]["bss_other"] == bss
    # the weights: the blob the emitter packed, all of it const (in flash)
    assert sz["flash"]["weights"] == 4 * max(gen.weight_floats, 16)
    assert sz["flash"]["weights"] <= sz["flash"]["total"] - sz["flash"]["text"]
    assert 0 <= sz["ram"]["bss_other"] < 64  # no static buffers in the model itself


CALIBRATE_C = r"""
#include <stdint.h>
#include <stdio.h>
extern void initialise_monitor_handles(void);
uint64_t ec_cycles(void);
int main(void) {
    uint32_t n = 1000000u; /* 2 instructions an iteration: 2,000,000 */
    uint64_t t0, t1;
    initialise_monitor_handles();
    t0 = ec_cycles();
    __asm__ volatile("1: subs %0, %0, #1\n\tbne 1b" : "+r"(n) : : "cc");
    t1 = ec_cycles();
    printf("{\"rc\": 0, \"systicks\": %lu}\n", (unsigned long)(t1 - t0));
    return 0;
}
"""


@pytest.mark.parametrize("target", ["cortex-m4", "cortex-m55"])
def test_systick_under_icount_counts_instructions(built, target):
    """A loop of a known instruction count, timed by the startup's SysTick counter, gives the
    instructions per tick of the board (25 MHz MPS2, 32 MHz MPS3)."""
    g, gen, _ = built(SMALL if target == "cortex-m4" else BINARY, target)
    (gen.dir / "calibrate.c").write_text(CALIBRATE_C)
    t = gen.target
    build._run([t.cc, *mcu._cflags(t), "-c", "-o", "calibrate.o", "calibrate.c"], gen.dir)
    build._run([t.cc, *mcu._ldflags(t), "-o", "calibrate.elf", "calibrate.o", "startup.o",
                *mcu.LIBS], gen.dir)
    r = mcu.run(t, gen.dir / "calibrate.elf", _input(g), g.num_classes, icount=True)
    assert abs(r.report["instructions"] - 2_000_000) <= 64  # the ticks' resolution


def test_instruction_count_of_one_inference(built):
    g, gen, _ = built(SMALL, "cortex-m4")
    r = mcu.run(gen.target, gen.dir / "model.elf", _input(g), g.num_classes, icount=True)
    assert r.report["rc"] == 0
    from edgecnn.core.accounting import summarize

    # at least one instruction per multiply-accumulate (scalar FPU code)
    assert r.report["instructions"] > summarize(g).total_macs


@pytest.mark.parametrize("spec", [SMALL, MOBILENET])
def test_fit_before_the_build_bounds_the_measured_build(built, spec):
    """`summary --target`'s figures, made before any build, are exact for weights and arena and
    upper bounds for the whole flash and RAM that the build and the board then measure."""
    g, gen, sz = built(spec, "cortex-m4")
    r = mcu.run(gen.target, gen.dir / "model.elf", _input(g), g.num_classes)
    rep = fit.fit(g, "cortex-m4")
    assert rep["flash"]["weights"] == sz["flash"]["weights"]
    assert rep["ram"]["arena"] == sz["ram"]["arena"] == r.report["arena_bytes"]
    assert sz["flash"]["total"] <= rep["flash"]["total"]
    measured_ram = (sz["ram"]["arena"] + r.report["stack_bytes"] + sz["ram"]["bss_other"]
                    + sz["ram"]["data"])
    assert measured_ram <= rep["ram"]["total"]


def test_compile_command_prints_and_writes_the_report(tmp_path, capsys):
    need_mcu()
    assert cli_main(["compile", SMALL, "--target", "cortex-m4", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rep = json.loads((tmp_path / "mcu.json").read_text())
    assert f"flash: {rep['flash']['total']:,} bytes" in out
    assert rep["ram"]["stack_high_water"] == rep["run"]["stack_bytes"] > 0
    assert rep["ram"]["total"] == (rep["ram"]["arena"] + rep["ram"]["stack_high_water"]
                                   + rep["ram"]["bss_other"] + rep["ram"]["data"])
    assert rep["board"] == "mps2-an386" and rep["run"]["rc"] == 0


@pytest.fixture(scope="module")
def shared_or_none():
    from conftest import shared_data_dir

    return shared_data_dir()


# ---- the memory plan and TensorFlow Lite Micro ------------------------------------------------

def test_arena_is_the_live_peak_of_mobilenet(shared_or_none):
    """No two buffers alive at once overlap, and MobileNet v1's arena is exactly its largest
    set of live buffers (the planner's first-fit orders find a placement without gaps)."""
    need("data", shared_or_none is not None, "shared test data not found")
    g = _graph(MOBILENET, shared_or_none)
    prog, pl = build.lower_and_plan(g, targets.get("cortex-m4"), ref_kernels=True)
    from edgecnn.compiler.plan import _last_use

    last = _last_use(prog)
    first = {prog.input: -1, **{op.output: i for i, op in enumerate(prog.ops)}}
    peak = 0
    for i in range(len(prog.ops)):
        bufs = {(pl.views[v].offset, pl.views[v].floats) for v in pl.views
                if first[v] <= i <= last[v]}
        spans = sorted(bufs)
        assert all(a[0] + a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), \
            prog.ops[i].name
        peak = max(peak, sum(n for _, n in bufs))
    assert pl.arena_bytes == 4 * peak == 64 * 64 * (8 + 16) * 4


def test_int8_tflite_agrees_with_tflite_micro(tmp_path):
    """An int8 per-channel .tflite written here: TFLM runs it in int8; edgecnn imports it as a
    float graph. Every layer's int8 requantization differs from float by up to half a step, so
    the logits agree to a few output steps (measured: under 1), and the top class is the same."""
    from conftest import need_module

    need_module("tflite", "tflite", "needs the tflite extra")
    tflm = need_module("tflite", "tflite_micro.python.tflite_micro.runtime",
                       "needs tflite-micro (pip install --pre tflite-micro)")
    import tflite_int8
    from edgecnn.formats.importers.tflite import import_tflite, read_model

    data = tflite_int8.write(tflite_int8.SMALL, (32, 32, 3))
    path = tmp_path / "small_int8.tflite"
    path.write_bytes(data)
    x_q = np.random.default_rng(3).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    it = tflm.Interpreter.from_bytes(data, arena_size=1 << 20)
    it.set_input(x_q, 0)
    it.invoke()
    tensors, _, _, outs = read_model(str(path))
    scale, zp = float(tensors[outs[0]].scale[0]), float(tensors[outs[0]].zero_point[0])
    want = (it.get_output(0)[0].astype(np.float32) - zp) * scale
    # the float graph: within a few output steps of TFLM
    g = import_tflite(path, as_float=True)
    got = reference.predict(g, x_q.astype(np.float32) / 128)[0]  # input scale 1/128, zp 0
    assert np.abs(got - want).max() <= 3 * scale
    assert np.argmax(got) == np.argmax(want)
    # the integer graph (TFLite's integer arithmetic, edgecnn.quant): TFLM's output exactly
    gi = import_tflite(path)
    got_i = reference.predict(gi, x_q.astype(np.float32) / 128)[0]
    np.testing.assert_array_equal(got_i, want)
    # compiled for the board (the portable int8 kernels): TFLM's output exactly, in less RAM
    # than the smallest arena TFLM accepts for the same file
    need_mcu()
    gen = mcu.generate(gi, tmp_path / "int8-m4", "cortex-m4")
    mcu.build_images(gen)
    r = mcu.run(gen.target, gen.dir / "model.elf", x_q[0].astype(np.float32) / 128,
                gi.num_classes)
    assert r.report["rc"] == 0 and r.report["guard_ok"] == 1, r.report
    np.testing.assert_array_equal(r.output, want)

    def tflm_runs(n: int) -> bool:
        try:
            tflm.Interpreter.from_bytes(data, arena_size=n).invoke()
            return True
        except RuntimeError:
            return False

    lo, hi = 0, 1 << 20  # bisection to 16 bytes: TFLM fails at lo, runs at hi
    while hi - lo > 16:
        lo, hi = (lo, (lo + hi) // 2) if tflm_runs((lo + hi) // 2) else ((lo + hi) // 2, hi)
    print(f"int8 on cortex-m4: arena {gen.arena_bytes} + stack {r.report['stack_bytes']} bytes; "
          f"TFLM's smallest arena {hi}")
    assert gen.arena_bytes + r.report["stack_bytes"] < hi, (gen.arena_bytes, hi)
