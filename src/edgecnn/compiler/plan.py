"""Static memory plan: every activation lives at a fixed offset of one arena.

Values whose lifetimes overlap get disjoint regions; a region is reused once its value has been
read for the last time. Placement is greedy by size (largest first, each at the lowest offset
that does not collide with an already placed value alive at the same time), which for the
chains and residual blocks of classifiers reaches the peak of live bytes.

Borders (the ELL convention): a value's buffer holds the zero border its readers need (a fast
convolution reads its padding from the buffer). Regions are reused, so a border may hold
another tensor's data from earlier in the same frame: the op that produces a bordered value
first re-zeroes the border (cheap: the perimeter only) and then writes the interior. Kernels
never write outside the interior, so in-place ops keep borders intact.

Elementwise ops (an unfused activation, scale_bias, softmax, fake_quant) and add run in place
when their (first) input is read by no later op; values sharing a buffer form one group.
Kernel scratch (Winograd transforms, a gather for a dense layer reading a bordered tensor) is a
region alive during its op only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import kernels
from .passes import Program
from .targets import Target

ALIGN = 16  # floats: 64-byte alignment of every region (a cache line, an AVX-512 vector)
IN_PLACE = {"activation", "scale_bias", "softmax", "add", "fake_quant"}


@dataclass
class View:
    """Where a value sits: its buffer's offset (floats) in the arena and its geometry."""

    offset: int  # of the buffer (border included)
    h: int
    w: int
    c: int
    pad_h: int
    pad_w: int
    esize: int = 4  # bytes per element: 4 (float32), 1 (uint8/int8: contiguous, no border)

    @property
    def row_stride(self) -> int:
        return (self.w + 2 * self.pad_w) * self.c

    @property
    def floats(self) -> int:
        """The buffer's size in arena units (floats): integer tensors at their real width."""
        elems = (self.h + 2 * self.pad_h) * self.row_stride
        return -(-elems * self.esize // 4)

    @property
    def data_offset(self) -> int:
        return self.offset + self.pad_h * self.row_stride + self.pad_w * self.c


@dataclass
class Plan:
    arena_floats: int
    views: dict[str, View]
    algos: dict[str, str]  # op name -> kernel algorithm (kernels.choose)
    scratch: dict[str, tuple[int, int]] = field(default_factory=dict)  # op -> (offset, floats)
    in_place: set[str] = field(default_factory=set)  # ops writing over their input
    zero_border: set[str] = field(default_factory=set)  # values whose producer re-zeroes

    @property
    def arena_bytes(self) -> int:
        return self.arena_floats * 4


@dataclass
class _Group:
    values: list[str]
    first: int  # index of the op writing it first (-1: the input)
    last: int  # index of the last op reading it (len(ops): the model output)
    pad_h: int = 0
    pad_w: int = 0
    floats: int = 0
    offset: int = -1


def _align(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


def make_plan(prog: Program, chosen: dict[str, kernels.Kernel], target: Target) -> Plan:
    """Plan prog's memory for the kernels ``chosen`` (kernels.choose_all): the borders they
    read, the scratch they need."""
    algos = {name: k.name for name, k in chosen.items()}
    last = _last_use(prog)
    group_of: dict[str, _Group] = {}
    if not prog.external_input:
        group_of[prog.input] = _Group([prog.input], -1, last[prog.input])
    in_place = set()
    for i, op in enumerate(prog.ops):
        src = op.inputs[0]
        if (op.kind in IN_PLACE and last[src] == i and src != prog.input
                and prog.shapes[src] == prog.shapes[op.output]):
            g = group_of[src]
            g.values.append(op.output)
            g.last = last[op.output]
            in_place.add(op.name)
        else:
            g = _Group([op.output], i, last[op.output])
        group_of[op.output] = g
    # borders: the largest any reader of any value in the group needs
    for op in prog.ops:
        bh, bw = chosen[op.name].border(op)
        if op.inputs[0] not in group_of:  # the external input: read where the caller has it
            continue
        g = group_of[op.inputs[0]]
        g.pad_h, g.pad_w = max(g.pad_h, bh), max(g.pad_w, bw)
    groups = list({id(g): g for g in group_of.values()}.values())
    views = {v: View(0, *prog.shapes[v], g.pad_h, g.pad_w, _esize(prog, v))
             for v, g in group_of.items()}
    for g in groups:
        g.floats = views[g.values[0]].floats
        if views[g.values[0]].esize != 4 and (g.pad_h or g.pad_w):
            raise AssertionError(f"integer value {g.values[0]!r} given a border")
    scratch_groups = {}
    for i, op in enumerate(prog.ops):
        n = chosen[op.name].scratch(op, prog, views, target)
        if n:
            scratch_groups[op.name] = _Group([], i, i, floats=n)
    arena = _place(groups + list(scratch_groups.values()))
    for v, g in group_of.items():
        views[v].offset = g.offset
    zero = {g.values[0] for g in groups if g.pad_h or g.pad_w}
    return Plan(arena, views, algos, {k: (g.offset, g.floats) for k, g in scratch_groups.items()},
                in_place, zero)


def _esize(prog: Program, value: str) -> int:
    return 4 if prog.dtype(value) == "float32" else 1


def _last_use(prog: Program) -> dict[str, int]:
    last = {prog.input: -1}
    for i, op in enumerate(prog.ops):
        last.setdefault(op.output, i)
        for v in op.inputs:
            last[v] = max(last[v], i)
    last[prog.output] = len(prog.ops)  # copied out after the last op
    return last


def _place(groups: list[_Group]) -> int:
    """Place every group: the smallest arena of a few greedy orders, each first-fit. (Largest
    first alone leaves gaps in MobileNet v1's first blocks: 448 KB for 384 KB live.)"""
    orders = [
        lambda g: (-g.floats, g.first),  # largest first
        lambda g: (-g.floats, -g.first),  # largest first, later buffers first among equals
        lambda g: (-(g.last - g.first), -g.floats),  # longest-lived first
        lambda g: (g.first, -g.floats),  # in program order
        lambda g: (-g.last, -g.floats),  # in reverse program order
    ]
    best: dict[int, int] = {}
    best_end = -1
    for key in orders:
        offsets = _first_fit(sorted(groups, key=key))
        end = max((offsets[id(g)] + g.floats for g in groups), default=0)
        if best_end < 0 or end < best_end:
            best, best_end = offsets, end
    for g in groups:
        g.offset = best[id(g)]
    return max(best_end, 0)


def _first_fit(order: list[_Group]) -> dict[int, int]:
    """id(group) -> offset: each group of ``order`` in turn at the lowest aligned offset that
    no group placed before it uses during its lifetime."""
    placed: list[tuple[_Group, int]] = []
    at: dict[int, int] = {}
    for g in order:
        busy = sorted((o, o + p.floats) for p, o in placed
                      if p.first <= g.last and g.first <= p.last)
        offset = 0
        for lo, hi in busy:
            if offset + g.floats <= lo:
                break
            offset = max(offset, _align(hi))
        placed.append((g, offset))
        at[id(g)] = offset
    return at
