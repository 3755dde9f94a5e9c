"""`edgecnn estimate`: the block-counting qemu plugin, llvm-mca pricing, the memory term, the
report's publish rule, and the command end to end on a tiny model."""

import json
import shutil

import numpy as np
import pytest

from conftest import need
from edgecnn.cli.main import main
from edgecnn.compiler import targets
from edgecnn.errors import EdgecnnError
from edgecnn.publish import estimate as E
from testutil import small_d_model


def need_llvm():
    need("llvm", bool(shutil.which("llvm-mca") and shutil.which("llvm-objdump")),
         "needs llvm-mca and llvm-objdump (apt install llvm)")


def need_qemu(target):
    t = targets.get(target)
    need("cc", shutil.which("cc") is not None, "needs a C compiler")
    need("cross", t.compiler_path() is not None, f"needs {t.cc} ({t.debian_package})")
    qemu = E.QEMU[t.arch]
    need("cross", shutil.which(qemu) is not None, f"needs {qemu} (apt install qemu-user)")


@pytest.fixture(scope="module")
def x86_counts(tmp_path_factory):
    """Block counts of a tiny model's x86 program after 0, 1 and 2 extra frames."""
    need_qemu("x86-64")
    w = tmp_path_factory.mktemp("x86")
    exe = E.build_program(small_d_model(), "x86-64", w)
    plugin = E.build_plugin(w)
    return exe, [E.count_blocks(exe, "x86-64", plugin, n) for n in (0, 1, 2)]


def _instructions(blocks):
    return sum(n * k for n, k, _ in blocks.values())


def test_plugin_counts_the_same_work_for_every_frame(x86_counts):
    exe, (c0, c1, c2) = x86_counts
    one, two = E.per_frame(c0, c1), E.per_frame(c1, c2)
    # a frame of the model: 32x32x16 and 16x16x32 3x3 convolutions, > 200 k FMAs in vectors
    assert _instructions(one) > 20_000
    assert abs(_instructions(two) / _instructions(one) - 1) < 0.01
    assert _instructions(c2) > _instructions(c1) > _instructions(c0)


def test_disassembly_covers_the_hot_blocks(x86_counts):
    need_llvm()
    exe, (c0, c1, _) = x86_counts
    frame = E.per_frame(c0, c1)
    texts = E.block_texts(E.disassemble(exe), frame)
    covered = sum(frame[a][0] * frame[a][1] for a in texts)
    assert covered / _instructions(frame) > 0.99
    hot = max(texts, key=lambda a: frame[a][0] * frame[a][1])
    assert any("fmadd" in line or "mul" in line for line in texts[hot])


def test_asm_for_mca_turns_branch_targets_into_dot():
    assert E._asm_for_mca("jne\t0x401510 <main+0x20>") == "jne ."
    assert E._asm_for_mca("b.ne\t0x400a10 <ec_conv+0x40>") == "b.ne ."
    assert E._asm_for_mca("cbnz\tw3, 0x400a10 <f>") == "cbnz\tw3, 0x400a10".replace("\t", " ")
    assert E._asm_for_mca("vfmadd231ps\t%ymm1, %ymm15, %ymm10") == \
        "vfmadd231ps %ymm1, %ymm15, %ymm10"


def test_llvm_mca_prices_latency_and_throughput():
    """A chain of dependent FMAs costs its latency per FMA; independent ones their throughput
    (llvm-mca prices the Cortex-A72 with its Cortex-A57 model: FMLA latency 4, 1 per cycle)."""
    need_llvm()
    chain = ["fmla v0.4s, v1.4s, v2.4s"] * 8
    free = [f"fmla v{i}.4s, v30.4s, v31.4s" for i in range(8)]
    c = E.price_blocks({1: chain, 2: free}, "aarch64-linux-gnu", "cortex-a72")
    assert c[1] > 3 * c[2] > 0
    assert 8 * 3 <= c[1] <= 8 * 12 and 2 <= c[2] <= 9


def test_unparsable_block_is_dropped_not_fatal():
    need_llvm()
    c = E.price_blocks({1: ["add x0, x0, x1"], 2: ["not an instruction"]}, "aarch64-linux-gnu",
                       "cortex-a53")
    assert set(c) == {1} and c[1] > 0


def test_memory_term_counts_what_exceeds_the_cache():
    g = small_d_model()  # 24 KB weights, activations ≤ 64 KB: fits a 512 KB cache
    pi3 = E.DEVICES["pi3"]
    assert E.memory_seconds(g, pi3) == 0
    tiny = E.Device("t", "t", "aarch64", "aarch64-linux-gnu", "cortex-a53", 1.0, 1024, 1.0)
    from edgecnn.core.accounting import summarize
    s = summarize(g)
    assert E.memory_seconds(g, tiny) * 1e9 >= s.weight_bytes + 32 * 32 * 3 * 4


def test_report_publishes_only_validated_estimates(tmp_path):
    g = small_d_model()
    r = {"device": "pi4", "label": "Raspberry Pi 4", "target": "pi4", "ms": 3.0}
    assert E.report(g, [r], 0.2)["entries"][0]["publishable"] is True
    assert E.report(g, [r], 0.5)["entries"][0]["publishable"] is False
    assert E.report(g, [r], None)["entries"][0]["publishable"] is False
    (tmp_path / "v.json").write_text(json.dumps({"max_abs_error": 0.25}))
    assert E.read_validation(tmp_path / "v.json") == 0.25
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(EdgecnnError, match="not an estimate validation table"):
        E.read_validation(tmp_path / "bad.json")


def test_estimate_command_on_a_pi4(tmp_path, capsys):
    need_llvm()
    need_qemu("pi4")
    from edgecnn.formats.modelfile import save
    model = save(small_d_model(), tmp_path / "small.safetensors")
    (tmp_path / "v.json").write_text(json.dumps({"max_abs_error": 0.3}))
    assert main(["estimate", str(model), "--device", "pi4", "--validation",
                 str(tmp_path / "v.json"), "-o", str(tmp_path / "est.json")]) == 0
    out = capsys.readouterr().out
    assert "ESTIMATED, not measured" in out and "±30%" in out
    rep = json.loads((tmp_path / "est.json").read_text())
    (e,) = rep["entries"]
    assert e["estimated"] and e["board"] == "pi4" and e["publishable"]
    d = e["details"]
    # ms = cycles at 1.5 GHz + memory term; the cycles cover every counted instruction
    assert d["ms"] == pytest.approx(d["cycles"] / 1.5e6 + d["memory_ms"])
    assert d["priced_fraction"] > 0.99 and d["instructions"] > 20_000
    assert np.isfinite(d["ms"]) and 0 < d["ms"] < 50
    assert main(["estimate", str(model), "--device", "pi9"]) == 2
