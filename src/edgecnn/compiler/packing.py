"""Weight packing for the fast C kernels (runtime/ec_conv.h, ec_dense.h).

The fast kernels compute with vectors of ``nb`` floats (EC_NB: 16 on AVX-512, 8 on AVX2, 4 on
NEON/SSE/c99); output channels are split into blocks of ``nb``, zero-filled past C_out so a
kernel never needs a ragged load of weights:

- direct conv:  OIHW (Co, Ci, kh, kw)          -> [ceil(Co/nb)][kh][kw][Ci][nb]
- Winograd:     OIHW (Co, Ci, r, r), r = 3, 5  -> [36][ceil(Co/nb)][Ci][nb], U = G g G^T (6x6)
- depthwise:    OIHW (Co, 1, kh, kw)           -> [ceil(Co/nb)][kh][kw][nb]
- dense:        (units, in_features)           -> [ceil(units/nb)][in_features][nb]

The integer kernels (runtime/ec_qvec.h) use the same blocks of ``nb`` int32 lanes, with int16
weights (int32 for depthwise; the weight zero point subtracted) and four int32 rows of
requantization per layer (folded bias, multiplier, left and right shift). The 8-bit dot-product
kernels (AVX-512 VNNI, AArch64 SDOT) take int8 weights in blocks of 16 or 4 output channels
(:func:`pack_qconv_vnni`, :func:`pack_qconv_sdot`).

Direct and dense weights may also be stored as IEEE half precision (dtype "float16", for the
_f16 kernels): half the bytes for layers bound by streaming their weights; the arithmetic stays
float32.

Winograd F(4x4, 3x3) uses the transforms of Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks" (2016), interpolation points 0, +-1, +-2 and infinity; the C side holds B^T
and A^T (ec_winograd.c), this module G. F(2x2, 5x5) uses the same points, hence the same 6x6
input tiles and B^T; its A^T (2x6) holds the powers 0 and 1 of the points, and its G (6x5) is
the unique one that makes the 1-D algorithm exact (:func:`_solve_winograd_g`).
"""

from __future__ import annotations

import numpy as np

# G (6x3): the filter transform of F(4x4, 3x3).
WINOGRAD_G = np.array([
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
], dtype=np.float64)
# B^T (6x6) and A^T (4x6): input and output transforms (mirrored in ec_winograd.c).
WINOGRAD_BT = np.array([
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
], dtype=np.float64)
WINOGRAD_AT = np.array([
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
], dtype=np.float64)

# A^T (2x6) of F(2x2, 5x5): F(4x4, 3x3)'s first two rows, but infinity's column is 1 in the last
# row (the degree-1 coefficient here, the degree-3 one there). Mirrored in ec_winograd.c.
WINOGRAD5_AT = np.array([
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 1],
], dtype=np.float64)


def _solve_winograd_g(at: np.ndarray, bt: np.ndarray, r: int) -> np.ndarray:
    """G (6 x r) such that at @ ((G g) * (bt @ d)) is the valid correlation of d (6) with g (r)
    for every g and d: the linear system sum_e at[i, e] G[e, k] bt[e, j] = [j == i + k]."""
    m, n = at.shape
    coef = np.zeros((m, r, n, n, r))  # (i, k, j) equations over the unknowns G[e, k]
    rhs = np.zeros((m, r, n))
    for i in range(m):
        for k in range(r):
            rhs[i, k, i + k] = 1
            coef[i, k, :, :, k] = (at[i][:, None] * bt).T  # [j, e] = at[i, e] bt[e, j]
    a, b = coef.reshape(m * r * n, n * r), rhs.reshape(-1)
    g = np.linalg.lstsq(a, b, rcond=None)[0]
    residual = float(np.abs(a @ g - b).max())
    if residual > 1e-12:
        raise ValueError(f"no exact Winograd filter transform (residual {residual:g})")
    return g.reshape(n, r)


# G (6x5): the filter transform of F(2x2, 5x5), in closed form
#   [1/4, 0, 0, 0, 0], [-1/6] * 5, [-1/6, 1/6, -1/6, 1/6, -1/6],
#   [1/24, 1/12, 1/6, 1/3, 2/3], [1/24, -1/12, 1/6, -1/3, 2/3], [0, 0, 0, 0, 1].
WINOGRAD5_G = _solve_winograd_g(WINOGRAD5_AT, WINOGRAD_BT, 5)
# kernel size -> (G, output tile size M) of the Winograd kernels
WINOGRAD_FORMS = {3: (WINOGRAD_G, 4), 5: (WINOGRAD5_G, 2)}

VECTOR_WIDTHS = (1, 2, 4, 8, 16)  # EC_NB values the C kernels compile for


def _blocks(n: int, nb: int) -> int:
    return -(-n // nb)


def _pad_rows(a: np.ndarray, nb: int) -> np.ndarray:
    """Zero-pad axis 0 of `a` to a multiple of nb."""
    extra = _blocks(a.shape[0], nb) * nb - a.shape[0]
    if extra == 0:
        return a
    return np.concatenate([a, np.zeros((extra, *a.shape[1:]), a.dtype)])


def _check_nb(nb: int) -> None:
    if nb not in VECTOR_WIDTHS:
        raise ValueError(f"vector width nb={nb} is not one of {VECTOR_WIDTHS}")


def _weights_as(w: np.ndarray, dtype: str) -> np.ndarray:
    """float32 weights, or IEEE half ("float16": the _f16 kernels read its bits)."""
    if dtype == "float32":
        return w
    if dtype != "float16":
        raise ValueError(f"weight dtype {dtype!r} is not float32 or float16")
    big = float(np.abs(w).max(initial=0.0))
    if big > float(np.finfo(np.float16).max):
        raise ValueError(f"a weight of magnitude {big:g} does not fit in float16 (max 65504)")
    return w.astype(np.float16)


def pack_direct(w_oihw: np.ndarray, nb: int, dtype: str = "float32") -> np.ndarray:
    """(Co, Ci, kh, kw) -> (ceil(Co/nb), kh, kw, Ci, nb) for ec_conv2d_direct (float32) or
    ec_conv2d_direct_f16 (dtype "float16")."""
    _check_nb(nb)
    w = _pad_rows(np.asarray(w_oihw, np.float32), nb)
    co, ci, kh, kw = w.shape
    # (blk, nb, Ci, kh, kw) -> (blk, kh, kw, Ci, nb)
    w = np.ascontiguousarray(w.reshape(co // nb, nb, ci, kh, kw).transpose(0, 3, 4, 2, 1))
    return _weights_as(w, dtype)


def pack_depthwise(w_oihw: np.ndarray, nb: int) -> np.ndarray:
    """(Co, 1, kh, kw) -> (ceil(Co/nb), kh, kw, nb) float32 for ec_conv2d_depthwise."""
    _check_nb(nb)
    w = np.asarray(w_oihw, np.float32)
    if w.shape[1] != 1:
        raise ValueError(f"depthwise weights must be (Co, 1, kh, kw), got {w.shape}")
    w = _pad_rows(w[:, 0], nb)  # (Co', kh, kw)
    co, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(co // nb, nb, kh, kw).transpose(0, 2, 3, 1))


# ---- integer kernels (ec_qconv_direct.c, ec_qconv_depthwise.c) -----------------------------

QCONV_PAIRS_MIN_NB = 8  # EC_QPAIRS in ec_qvec.h: input channels in pairs from EC_NB = 8


def pack_qconv(w_oihw: np.ndarray, w_zp: int, nb: int) -> np.ndarray:
    """Integer (Co, Ci, kh, kw) -> (ceil(Co/nb), kh, kw, Ci, nb) int16, the weight zero point
    subtracted (exact: |w - w_zp| <= 255), zero past Co: ec_qconv_pointwise / _direct. From
    nb = 8 the input channels come in pairs, (.., ceil(Ci/2), nb, 2), the odd one out zero."""
    _check_nb(nb)
    w = _pad_rows(np.asarray(w_oihw, np.int32) - w_zp, nb)
    co, ci, kh, kw = w.shape
    w = w.reshape(co // nb, nb, ci, kh, kw).transpose(0, 3, 4, 2, 1)  # (blk, kh, kw, ci, nb)
    if nb >= QCONV_PAIRS_MIN_NB:
        w = np.concatenate([w, np.zeros((*w.shape[:3], ci % 2, nb), w.dtype)], axis=3)
        w = w.reshape(*w.shape[:3], -1, 2, nb).transpose(0, 1, 2, 3, 5, 4)
    return np.ascontiguousarray(w, np.int16)


def qconv_scratch_bytes(geometry: tuple, nb: int) -> int:
    """ec_qconv_scratch_bytes: the input widened to int16 channel pairs with its padding, from
    nb = 8; ``geometry`` as ec_qconv_params (h, w, c, oh, ow, o, kh, kw, sh, sw, dh, dw,
    pad_top, pad_left, groups)."""
    if nb < QCONV_PAIRS_MIN_NB:
        return 0
    h, w, c, oh, ow, _, kh, kw, sh, sw, dh, dw, pt, pl, _ = geometry
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, h + pt)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, w + pl)
    return hp * wp * (c + 1) // 2 * 4


def pack_qdepthwise(w_oihw: np.ndarray, w_zp: int, nb: int) -> np.ndarray:
    """Integer (C, 1, kh, kw) -> (ceil(C/nb), kh, kw, nb) int32 (few: read without widening),
    the weight zero point subtracted: ec_qconv_depthwise."""
    _check_nb(nb)
    w = np.asarray(w_oihw, np.int32)
    if w.shape[1] != 1:
        raise ValueError(f"depthwise weights must be (C, 1, kh, kw), got {w.shape}")
    w = _pad_rows(w[:, 0] - w_zp, nb)
    c, kh, kw = w.shape
    return np.ascontiguousarray(w.reshape(c // nb, nb, kh, kw).transpose(0, 2, 3, 1), np.int32)


VNNI_NB = 16  # ec_qconv_vnni.c: 16 int32 lanes, each the dot product of 4 bytes


def qconv_vnni_offset(w: np.ndarray, w_zp: int) -> int:
    """b for :func:`pack_qconv_vnni`: the weight zero point when every w - w_zp fits int8, else
    the value nearest it that makes every w - b fit (any 8-bit tensor spans at most 255)."""
    w = np.asarray(w, np.int64)
    lo, hi = int(w.max()) - 127, int(w.min()) + 128
    return int(min(max(w_zp, lo), hi))


def pack_qconv_vnni(w_oihw: np.ndarray, w_zp: int) -> tuple[np.ndarray, int]:
    """Integer (Co, Ci, kh, kw) -> ((ceil(Co/16), kh, ceil(kw Ci / 4), 16, 4) int8 q = w - b,
    each kernel row flattened as [kw][Ci] and cut in groups of 4, zero past Co and kw Ci; d =
    b - w_zp) for ec_qconv_pointwise_vnni / _direct_vnni: VPDPBUSD takes 4 bytes of a window
    row of 16 output channels per instruction, the weights as its signed operand."""
    return _pack_qconv_dot(w_oihw, w_zp, VNNI_NB)


def _pack_qconv_dot(w_oihw: np.ndarray, w_zp: int, lanes: int) -> tuple[np.ndarray, int]:
    """((ceil(Co/lanes), kh, ceil(kw Ci / 4), lanes, 4) int8 q = w - b, d = b - w_zp): blocks
    of ``lanes`` output channels, each int32 lane the dot product of 4 bytes."""
    w = np.asarray(w_oihw, np.int64)
    b = qconv_vnni_offset(w, w_zp)
    q = _pad_rows(w - b, lanes)  # (Co', Ci, kh, kw)
    co, ci, kh, kw = q.shape
    q = q.transpose(0, 2, 3, 1).reshape(co, kh, kw * ci)  # a kernel row as [kx][c]
    q = np.concatenate([q, np.zeros((co, kh, -(kw * ci) % 4), q.dtype)], axis=2)
    q = q.reshape(co // lanes, lanes, kh, -1, 4).transpose(0, 2, 3, 1, 4)
    return np.ascontiguousarray(q, np.int8), b - w_zp


SDOT_NB = 4  # ec_qconv_sdot.c: 4 int32 lanes (one NEON register), each the dot product of 4 bytes


def pack_qconv_sdot(w_oihw: np.ndarray, w_zp: int) -> tuple[np.ndarray, int]:
    """Integer (Co, Ci, kh, kw) -> ((ceil(Co/4), kh, ceil(kw Ci / 4), 4, 4) int8 q = w - b,
    each kernel row flattened as [kw][Ci] and cut in groups of 4, zero past Co and kw Ci; d =
    b - w_zp, b as :func:`qconv_vnni_offset`) for ec_qconv_pointwise_sdot / _direct_sdot: an
    SDOT takes 4 bytes of 4 output channels (one 16-byte vector) per instruction, the
    activations' 4 bytes from one lane of a pixel's vector."""
    return _pack_qconv_dot(w_oihw, w_zp, SDOT_NB)


def qconv_vnni_scratch_bytes(geometry: tuple) -> int:
    """ec_qconv_vnni_scratch_bytes: the input as unsigned bytes, channels padded to a multiple
    of 4, then an int32 sum per pixel; ``geometry`` as :func:`qconv_scratch_bytes`'s."""
    oh, ow, c = geometry[3], geometry[4], geometry[2]
    return -(-oh * ow * -(-c // 4) * 4 // 64) * 64 + oh * ow * 4


def qconv_sdot_scratch_bytes(geometry: tuple) -> int:
    """ec_qconv_sdot_scratch_bytes: the input as signed bytes in the layout of
    :func:`qconv_vnni_scratch_bytes` (channels padded to a multiple of 4, then an int32 sum per
    pixel)."""
    return qconv_vnni_scratch_bytes(geometry)


def qconv_vnni_direct_scratch_bytes(geometry: tuple) -> int:
    """ec_qconv_vnni_direct_scratch_bytes: the padded input as unsigned bytes, rows of
    wp C bytes (rounded to 4) + 4, then an int32 window sum per output pixel and a running sum
    of wp C + 1 int32."""
    h, w, c, oh, ow, _, kh, kw, sh, sw, dh, dw, pt, pl, _ = geometry
    hp = max((oh - 1) * sh + (kh - 1) * dh + 1, h + pt)
    wp = max((ow - 1) * sw + (kw - 1) * dw + 1, w + pl)
    rs = -(-wp * c // 4) * 4 + 4
    return -(-hp * rs // 64) * 64 + (oh * ow + wp * c + 1) * 4


def qconv_sdot_direct_scratch_bytes(geometry: tuple) -> int:
    """ec_qconv_sdot_direct_scratch_bytes: the padded input as signed bytes in the layout of
    :func:`qconv_vnni_direct_scratch_bytes`, window sums and running sum as there."""
    return qconv_vnni_direct_scratch_bytes(geometry)


def qconv_folded_bias(w_oihw: np.ndarray, bias: np.ndarray, in_zp: int, w_zp: int) -> np.ndarray:
    """bias - in_zp * sum(w - w_zp) per output channel (int64): the accumulator's start when
    the kernel multiplies raw activations, the input zero point folded in."""
    wsum = (np.asarray(w_oihw, np.int64) - w_zp).reshape(len(w_oihw), -1).sum(axis=1)
    return np.asarray(bias, np.int64) - in_zp * wsum


def pack_qrequant(folded_bias: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                  nb: int) -> np.ndarray:
    """(4, ceil(Co/nb) * nb) int32 rows for the fast integer kernels: the folded bias
    (:func:`qconv_folded_bias`), the multiplier, the left shift max(shift, 0) and the right
    shift max(-shift, 0) of every output channel (a per-tensor one repeated), zero past Co."""
    _check_nb(nb)
    co = len(folded_bias)
    cpad = -(-co // nb) * nb
    shift = np.broadcast_to(np.asarray(shift, np.int64), (co,))
    rows = np.zeros((4, cpad), np.int64)
    rows[0, :co] = folded_bias
    rows[1, :co] = np.broadcast_to(np.asarray(multiplier, np.int64), (co,))
    rows[2, :co] = np.maximum(shift, 0)
    rows[3, :co] = np.maximum(-shift, 0)
    if np.abs(rows).max() >= 1 << 31:
        raise ValueError("a folded bias or multiplier does not fit int32")
    return rows.astype(np.int32)


def winograd_output_tile(kernel: int) -> int:
    """M of the Winograd kernel for r x r filters: 4 for 3x3, 2 for 5x5."""
    if kernel not in WINOGRAD_FORMS:
        raise ValueError(f"no Winograd kernel for {kernel}x{kernel} filters (3x3 or 5x5)")
    return WINOGRAD_FORMS[kernel][1]


def winograd_filter_transform(w_oihw: np.ndarray) -> np.ndarray:
    """U = G g G^T for every (o, i): (Co, Ci, r, r), r = 3 or 5 -> (6, 6, Co, Ci), in float64."""
    g = np.asarray(w_oihw, np.float64)
    r = g.shape[2]
    if g.shape[2:] != (r, r) or r not in WINOGRAD_FORMS:
        raise ValueError(f"Winograd needs 3x3 or 5x5 weights, got {g.shape}")
    gm = WINOGRAD_FORMS[r][0]
    return np.einsum("ak,oikl,bl->aboi", gm, g, gm)


def pack_winograd(w_oihw: np.ndarray, nb: int) -> np.ndarray:
    """(Co, Ci, r, r) -> (36, ceil(Co/nb), Ci, nb) float32 for ec_conv3x3_winograd (r = 3) or
    ec_conv5x5_winograd (r = 5)."""
    _check_nb(nb)
    u = winograd_filter_transform(w_oihw)  # (6, 6, Co, Ci)
    co, ci = u.shape[2:]
    u = u.reshape(36, co, ci).transpose(1, 0, 2)  # (Co, 36, Ci)
    u = _pad_rows(u, nb)  # (Co', 36, Ci)
    blk = u.shape[0] // nb
    # (blk, nb, 36, Ci) -> (36, blk, Ci, nb)
    return np.ascontiguousarray(u.reshape(blk, nb, 36, ci).transpose(2, 0, 3, 1), np.float32)


def pack_dense(w: np.ndarray, nb: int, dtype: str = "float32") -> np.ndarray:
    """(units, in_features) -> (ceil(units/nb), in_features, nb) for ec_dense_fast (float32)
    or ec_dense_fast_f16 (dtype "float16")."""
    _check_nb(nb)
    w = _pad_rows(np.asarray(w, np.float32), nb)
    units, n_in = w.shape
    w = np.ascontiguousarray(w.reshape(units // nb, nb, n_in).transpose(0, 2, 1))
    return _weights_as(w, dtype)


def winograd_tiles(out_shape: tuple[int, int, int], kernel: int = 3) -> int:
    """Number of MxM output tiles of a map (4x4 for 3x3 filters, 2x2 for 5x5)."""
    m = winograd_output_tile(kernel)
    return _blocks(out_shape[0], m) * _blocks(out_shape[1], m)


WINOGRAD_CHUNK_FLOATS = 96 * 1024  # EC_WINO_CHUNK_FLOATS in ec_winograd.c: one chunk's scratch
WINOGRAD_MAX_THREADS = 4  # EC_MAX_THREADS of an OpenMP build (1 without): the Pis' 4 cores


def winograd_scratch_floats(in_shape: tuple[int, int, int], out_shape: tuple[int, int, int],
                            nb: int, openmp: bool = False, kernel: int = 3) -> int:
    """Floats of scratch ec_conv3x3_winograd (``kernel`` 3) or ec_conv5x5_winograd (5) needs;
    equals ec_winograd_scratch_floats.

    Tiles are transformed in chunks of `tc` (a multiple of 8 sized to stay in L2; all tiles when
    the whole map's V and M are no larger than U, which every chunk reads), each chunk holding
    V [36][tc][Ci] and M [36][tc][Co rounded up to nb]; an OpenMP build keeps one chunk per
    thread, for up to WINOGRAD_MAX_THREADS threads: one per chunk, or for a map of one chunk,
    one per pair of output channel blocks (the threads split those, each with its own chunk).
    """
    cin, coutp = in_shape[2], _blocks(out_shape[2], nb) * nb
    tiles = winograd_tiles(out_shape, kernel)
    if tiles * (cin + coutp) <= cin * coutp:
        tc = tiles
    else:
        tc = min(max(8, WINOGRAD_CHUNK_FLOATS // (36 * (cin + coutp)) // 8 * 8), tiles)
    nchunk, npair = _blocks(tiles, tc), _blocks(_blocks(out_shape[2], nb), 2)
    threads = min(nchunk if nchunk > 1 else npair, WINOGRAD_MAX_THREADS if openmp else 1)
    return threads * 36 * tc * (cin + coutp)
