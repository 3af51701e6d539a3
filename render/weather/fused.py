"""Compiled loops (numba) for the steps of rain and snow that OpenCV and numpy only reach through
several passes or many small calls: the surface normals, drawing the particles, leaning them with
the wind, and the last step of the composite. Each is written here rather than taken from a library because no
image library offers the fused operation; each has the OpenCV/numpy path it replaces beside it
(``particles``), taken where ``ENABLED`` is False or numba is missing, and tests hold the two
together.

- ``blend_upsampled``: ``out = image T + low`` on 8-bit frames, with the transmission ``T`` and
  the light ``low`` given at half resolution and upsampled bilinearly as OpenCV's
  ``INTER_LINEAR`` does. OpenCV takes five passes over the frame (two upsamplings, a
  grey-to-RGB expansion, a product, a sum), and its 8-bit three-channel upsampling alone costs as
  much as the rest of a rain frame's smooth work; here each output row is made from two rows of
  the half-resolution maps in one loop, less than half the time (``benchmarks/weather.py``
  prints both). Frames of even width only (the horizontal upsampling is then exactly 2x, a fixed
  1/4-3/4 pattern the compiler vectorises); other widths and float frames take OpenCV's passes,
  which give the same image within two 8-bit levels (they quantise ``T`` to 8 bits first).
- ``splat``: each particle's depth test and box of light on the half-resolution canvas, one loop
  instead of a dozen array operations, four scattered adds and a prefix sum (particles without
  a Gaussian spread, i.e. rain; snow's near flakes are blurred and keep the array path).
- ``shear_rows``: the wind's lean, a sub-pixel shift per row (OpenCV's affine warp does the same
  with 1/32-pixel steps at several times the cost), optionally folded into the transmission.
- ``upward_raw``: the world-z component of the surface normal from depth (wet roads, snow
  cover), the same arithmetic as ``geometry.upward_normal``'s thirty array operations in one pass.

Floating-point contraction and reassociation stay off (no ``fastmath``), so a frame's bytes do
not depend on the vector width of the CPU. numba compiles each loop on its first call in a
process (about a second) and caches the machine code on disk for the next processes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ENABLED = True  # False: every caller takes its OpenCV path (as on a machine without numba)
_COMPILED: dict = {}


def _kernel(fn):
    """``fn`` compiled by numba on first use (machine code cached on disk by numba), or None
    where disabled or numba is missing."""
    if not ENABLED:
        return None
    k = _COMPILED.get(fn.__name__)
    if k is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba is a dependency; this keeps odd platforms working
            return None
        k = _COMPILED[fn.__name__] = numba.njit(cache=True, nogil=True, error_model="numpy")(fn)
    return k


def _blend_up2(image, low, T, y0, y1, fy, out):  # pragma: no cover - runs compiled (numba)
    """``out = image T + low`` for (H, 2 w, 3) uint8 ``image``/``out``, (h, w, 3) uint8 ``low``
    and (h, w) float32 ``T``; rows upsampled by the taps (y0, y1, fy), columns exactly 2x."""
    H = image.shape[0]
    w = T.shape[1]
    n = 3 * w
    img = image.reshape(H, 2 * n)
    dst = out.reshape(H, 2 * n)
    lo = low.reshape(low.shape[0], n)
    tp = np.empty(w + 2, np.float32)  # a row of T with one replicated column each side
    lp = np.empty(n + 6, np.float32)  # a row of low, one replicated pixel each side, + 0.5 rounding
    ta = np.empty(w, np.float32)  # T at the even output columns (2c) and the odd ones (2c + 1)
    tb = np.empty(w, np.float32)
    la = np.empty(n, np.float32)
    lb = np.empty(n, np.float32)
    q1 = np.float32(0.25)
    q3 = np.float32(0.75)
    top = np.float32(255.0)
    for r in range(H):
        a = y0[r]
        b = y1[r]
        g = fy[r]
        ga = np.float32(1.0) - g
        for c in range(w):
            tp[c + 1] = T[a, c] * ga + T[b, c] * g
        tp[0] = tp[1]
        tp[w + 1] = tp[w]
        for c in range(n):
            lp[c + 3] = np.float32(lo[a, c]) * ga + np.float32(lo[b, c]) * g + np.float32(0.5)
        for k in range(3):
            lp[k] = lp[3 + k]
            lp[n + 3 + k] = lp[n + k]
        # output column 2c samples the half-res row at c - 1/4, column 2c + 1 at c + 1/4
        for c in range(w):
            ta[c] = q1 * tp[c] + q3 * tp[c + 1]
            tb[c] = q3 * tp[c + 1] + q1 * tp[c + 2]
        for c in range(n):
            la[c] = q1 * lp[c] + q3 * lp[c + 3]
            lb[c] = q3 * lp[c + 3] + q1 * lp[c + 6]
        src = img[r]
        row = dst[r]
        for c in range(w):
            t0 = ta[c]
            t1 = tb[c]
            j = 6 * c
            for k in range(3):
                row[j + k] = np.uint8(min(np.float32(src[j + k]) * t0 + la[3 * c + k], top))
                row[j + 3 + k] = np.uint8(min(np.float32(src[j + 3 + k]) * t1 + lb[3 * c + k], top))
    return out


@lru_cache(maxsize=32)
def row_taps(h: int, H: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """OpenCV's ``INTER_LINEAR`` taps from ``h`` rows to ``H``: for each output row the two
    source rows and the weight of the second (half-pixel centres, clamped at the borders)."""
    s = np.maximum((np.arange(H, dtype=np.float64) + 0.5) * (h / H) - 0.5, 0.0)
    y0 = np.minimum(np.floor(s).astype(np.int64), h - 1)
    f = np.where(y0 >= h - 1, 0.0, s - y0).astype(np.float32)
    y1 = np.minimum(y0 + 1, h - 1)
    for a in (y0, y1, f):
        a.setflags(write=False)
    return y0, y1, f


def blend_upsampled(image: np.ndarray, low: np.ndarray, T: np.ndarray) -> np.ndarray | None:
    """``image T + low`` with ``T`` (h, w) float32 and ``low`` (h, w, 3) uint8 upsampled to the
    (H, W, 3) uint8 ``image`` (W = 2 w), rounded and saturated, as a new array; None where this
    path does not apply (the caller then takes OpenCV's passes)."""
    H, W = image.shape[:2]
    h, w = T.shape
    if (image.dtype != np.uint8 or low.dtype != np.uint8 or W != 2 * w or low.shape != (h, w, 3)
            or not image.flags.c_contiguous):
        return None
    kernel = _kernel(_blend_up2)
    if kernel is None:
        return None
    out = np.empty_like(image)
    y0, y1, fy = row_taps(h, H)
    return kernel(image, np.ascontiguousarray(low), np.ascontiguousarray(T, dtype=np.float32), y0, y1, fy, out)


def _shear(acc, P, lean, h2, Q, through, cap, out):  # pragma: no cover - runs compiled (numba)
    """``a[y, x] = acc[y + Q, x + s(y)]``, s(y) = P + lean (h2 - y), linear between columns, into
    ``out``; or, given the transmission ``through``, ``through (1 - clip(a, 0, cap))`` into it."""
    h, w = out.shape
    zero = np.float32(0.0)
    one = np.float32(1.0)
    for y in range(h):
        s = P + lean * (h2 - y)
        n = int(np.floor(s))
        f = np.float32(s - n)
        fa = one - f
        src = acc[y + Q]
        if through is None:
            row = out[y]
            for x in range(w):
                row[x] = src[x + n] * fa + src[x + n + 1] * f
        else:
            row = through[y]
            for x in range(w):
                row[x] *= one - min(max(src[x + n] * fa + src[x + n + 1] * f, zero), cap)
    return out if through is None else through


def shear_rows(acc: np.ndarray, P: int, lean: float, h2: float, Q: int, out: np.ndarray,
               through: np.ndarray | None = None, cap: float = 1.0) -> np.ndarray | None:
    """The wind's lean of the particle canvas: ``a`` (h, w) = ``acc`` (h + 2 Q, w + 2 P) shifted by
    ``P + lean (h2 - y)`` columns on output row y (linear between columns; the canvas's margins
    are wide enough for every shift) into ``out``, or, given the transmission ``through`` (h, w),
    ``through *= 1 - clip(a, 0, cap)`` in place. Returns what it wrote; None where disabled (the
    caller warps with OpenCV, which rounds each shift to 1/32 pixel)."""
    kernel = _kernel(_shear)
    if kernel is None:
        return None
    h, w = out.shape
    if acc.shape[0] < h + 2 * Q or acc.shape[1] < w + 2 * P or abs(lean) * h2 > P - 1:
        raise ValueError(f"canvas {acc.shape} too small for a shear of {lean} over ({h}, {w}) with margins {P}, {Q}")
    if through is not None and through.shape != out.shape:
        raise ValueError(f"transmission {through.shape} is not the canvas's output {out.shape}")
    return kernel(acc, int(P), float(lean), float(h2), int(Q), through, np.float32(cap), out)


def _splat(depth, x, y, value, start, z, kw, kl, lean, Q, P, acc):  # pragma: no cover - runs compiled (numba)
    """Each particle of layer j (``start[j]:start[j + 1]``) in front of the surface at its
    sheared centre adds its light, a quarter of ``value`` (a half-res pixel covers four), spread
    evenly over a ``kw[j]`` x ``kl[j]`` box of the unsheared half-resolution canvas ``acc``."""
    H, W = depth.shape
    Hc, Wc = acc.shape
    mid = np.float32(H / 2.0)
    slope = np.float32(lean)
    half = np.float32(0.5)
    for j in range(z.size):
        bw = kw[j]
        bl = kl[j]
        zj = z[j]
        share = np.float32(0.25) / np.float32(bw * bl)
        for i in range(start[j], start[j + 1]):
            xi = x[i]
            yi = y[i]
            u = (yi - mid) * slope + xi  # where the centre lands
            pu = min(max(int(np.rint(u)), 0), W - 1)  # the nearest pixel, clamped (as cv2.remap)
            pv = min(max(int(np.rint(yi)), 0), H - 1)
            if not depth[pv, pu] > zj:
                continue
            v = value[i] * share
            row = int(min(max(yi * half + np.float32(Q), np.float32(0.0)), np.float32(Hc - 1)))
            col = int(min(max(xi * half + np.float32(P), np.float32(0.0)), np.float32(Wc - 1)))
            r0 = row - (bl - 1) // 2
            c0 = col - (bw - 1) // 2
            r1 = min(max(r0 + bl, 0), Hc)
            c1 = min(max(c0 + bw, 0), Wc)
            r0 = min(max(r0, 0), Hc)
            c0 = min(max(c0, 0), Wc)
            for r in range(r0, r1):
                for c in range(c0, c1):
                    acc[r, c] += v
    return acc


def splat(depth: np.ndarray, x: np.ndarray, y: np.ndarray, value: np.ndarray, start: np.ndarray, z: np.ndarray,
          kw: np.ndarray, kl: np.ndarray, lean: float, Q: int, P: int, acc: np.ndarray) -> np.ndarray | None:
    """Particles as boxes of light on the unsheared half-resolution canvas ``acc`` (zeroed by the
    caller), each drawn only if the surface at its (sheared) centre pixel lies beyond its layer's
    distance: ``particles._half_res_alpha``'s drawing in one compiled loop (no per-box
    temporaries, no prefix sum). None where disabled."""
    kernel = _kernel(_splat)
    if kernel is None:
        return None
    return kernel(depth, x, y, value, start, z, kw, kl, float(lean), int(Q), int(P), acc)


def _upward(low, fx, fy, x, y, r0, r1, r2, out):  # pragma: no cover - runs compiled (numba)
    """``geometry.upward_normal`` before its erosion, from ``low`` = every k-th depth pixel."""
    h, w = low.shape
    z = np.empty((h, w), np.float32)
    for i in range(h):
        for j in range(w):
            v = low[i, j]
            z[i, j] = v if np.isfinite(v) else np.float32(0.0)  # sky counts as 0 m, as in numpy
    zu = np.empty(w, np.float32)
    half = np.float32(0.5)
    for i in range(h):
        zi = z[i]
        # central differences inside, one-sided at the borders (as np.gradient)
        for j in range(1, w - 1):
            zu[j] = (zi[j + 1] - zi[j - 1]) * half
        zu[0] = zi[min(1, w - 1)] - zi[0]
        zu[w - 1] = zi[w - 1] - zi[max(w - 2, 0)]
        if 0 < i < h - 1:
            za, zb, sv = z[i - 1], z[i + 1], half
        else:
            za, zb, sv = z[max(i - 1, 0)], z[min(i + 1, h - 1)], np.float32(1.0)
        yi = y[i, 0]
        src = low[i]
        row = out[i]
        for j in range(w):
            nx = zu[j] * fx
            ny = (zb[j] - za[j]) * sv * fy
            nz = -(x[0, j] * nx + yi * ny + zi[j])
            num = r0 * nx + r1 * ny + r2 * nz
            norm = np.sqrt(nx * nx + ny * ny + nz * nz) + np.float32(1e-12)
            v = max(num / norm, np.float32(0.0))
            row[j] = v if np.isfinite(src[j]) else np.float32(0.0)
    return out


def upward_raw(low: np.ndarray, fx, fy, x: np.ndarray, y: np.ndarray, r: tuple) -> np.ndarray | None:
    """``geometry.upward_normal``'s per-pixel part in one compiled pass (no temporaries): the
    world-z component of the surface normal on ``low`` (every k-th depth pixel, inf = sky),
    0 at sky, (h, w) float32; None where disabled."""
    kernel = _kernel(_upward)
    if kernel is None:
        return None
    return kernel(low, np.float32(fx), np.float32(fy), x, y, np.float32(r[0]), np.float32(r[1]), np.float32(r[2]),
                  np.empty(low.shape, np.float32))
