"""Falling particles (rain drops, snow flakes) between the camera and the scene, shared by rain
and snow: where they are drawn, how their light spreads, and the composite with the haze.

Particles live in distance slabs (``ParticleLayer``). Each particle is seen only in front of the
surface at its pixel (depth test), is spread over its motion streak by a box (its light is
conserved, so a long streak is faint per pixel) and over its defocus / size by a Gaussian, and
the whole field leans with the wind. Haze and particles both scatter the ambient light towards
the camera: ``I = J t (1 - a) + E (1 - t (1 - a))`` with transmission t, particle opacity a and
ambient light E.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from longtail.render.weather.fused import blend_upsampled, shear_rows, splat
from longtail.render.weather.geometry import clip_, peak, ray_scale, scratch, subsampled_camera
from longtail.worlds.scene import Camera

MAX_ALPHA = 0.9
_AMBIENT_KERNEL = cv2.getGaussianKernel(11, 1.5, cv2.CV_32F)


@dataclass(frozen=True)
class ParticleLayer:
    """Particles in one distance slab: centre pixels before the wind shear, (N,) float32 each,
    and each particle's summed opacity (spread over its streak and blur, in full-res pixels)."""

    z_m: float
    width_px: int  # streak width (box), pixels
    length_px: int  # streak length along the fall (box), pixels
    sigma_px: float  # Gaussian spread (defocus, flake size), pixels; 0 = none
    x: np.ndarray
    y: np.ndarray
    value: np.ndarray


def frustum_volume(camera: Camera, z0: float, z1: float) -> float:
    """Volume (m^3) of the view frustum between z-depths ``z0`` and ``z1`` metres."""
    return (camera.width / camera.fx) * (camera.height / camera.fy) * (z1**3 - z0**3) / 3.0


def scatter(rng: np.random.Generator, counts: np.ndarray, camera: Camera, slant: float, lengths_px
            ) -> list[tuple[np.ndarray, np.ndarray]]:
    """Uniform particle centres (x, y), (n,) float32 each, before the wind shear of angle
    ``slant`` (radians), for layers of ``counts`` particles with streaks ``lengths_px`` long:
    every position whose streak can reach the image. All layers in two draws."""
    counts = np.asarray(counts, np.int64)
    pad = abs(math.tan(slant)) * camera.height / 2.0
    x = rng.uniform(-pad, camera.width + pad, int(counts.sum())).astype(np.float32)
    reach = np.repeat(np.asarray(lengths_px, np.float64) / 2.0, counts)
    y = rng.random(x.size)  # uniform on [-reach, height + reach): numpy's uniform is slow with array bounds
    y *= camera.height + 2.0 * reach
    y -= reach
    y = y.astype(np.float32)
    return list(zip(split(x, counts), split(y, counts)))


def split(a: np.ndarray, counts) -> list[np.ndarray]:
    """``a`` cut into consecutive views of ``counts`` elements (``np.split`` costs several times more)."""
    ends = np.cumsum(counts).tolist()
    return [a[s:e] for s, e in zip([0] + ends[:-1], ends)]


def particle_alpha(depth: np.ndarray, layers: tuple[ParticleLayer, ...], slant: float) -> np.ndarray:
    """(H, W) float32 opacity of the particles in front of the surfaces of ``depth`` (H, W,
    metres, inf = sky), leaning by ``slant`` radians from the vertical.

    Drawn at half resolution (a quarter of the work; particles are motion- and defocus-blurred
    anyway) with each particle's light preserved, then upsampled.
    """
    return _alpha(depth, layers, slant, np.empty(depth.shape, np.float32))


def _alpha(depth: np.ndarray, layers: tuple[ParticleLayer, ...], slant: float, out: np.ndarray) -> np.ndarray:
    """``particle_alpha`` into ``out`` (H, W) float32."""
    half = _half_res_alpha(depth, layers, slant)
    clip_(half, 0.0, MAX_ALPHA, out=half)  # before the (convex) upsampling: a quarter of the pixels
    return cv2.resize(half, (out.shape[1], out.shape[0]), dst=out, interpolation=cv2.INTER_LINEAR)


def _half_res_alpha(depth: np.ndarray, layers: tuple[ParticleLayer, ...], slant: float,
                    through: np.ndarray | None = None) -> np.ndarray:
    """``particle_alpha`` before the upsampling and the cap: (ceil(H/2), ceil(W/2)) float32, a
    work buffer; or, given a transmission ``through`` of that shape, ``through (1 - a)`` with
    ``a`` capped at ``MAX_ALPHA``, in place.

    Every particle is a box (streak width x length) of its light on an unsheared canvas with
    margins, the wind's lean applied to the whole canvas at the end. The boxes of all layers are
    drawn at once as the 2D prefix sum of their four corner impulses (one ``cv2.integral`` for any
    number and size of boxes); points go straight onto the canvas; the few layers with a
    Gaussian spread (near flakes) get their own blurred canvas.
    """
    H, W = depth.shape
    h, w = -(-H // 2), -(-W // 2)
    lean = math.tan(slant)
    # the canvas has margins: particles centred outside the image still reach into it
    P = int(math.ceil(abs(lean) * h / 2.0)) + 1
    Q = max((layer.length_px for layer in layers), default=0) // 4 + 1
    Hc, Wc = h + 2 * Q, w + 2 * P
    acc = None  # the canvas: the boxes' prefix sum where there are boxes, else zeros
    # every layer's particles in one set of array operations; the layers sorted by how they are
    # drawn (points, boxes, blurred), so each kind is one slice
    kind = lambda layer: 2 if layer.sigma_px >= 0.7 else 0 if math.prod(_box(layer)) == 1 else 1  # noqa: E731
    live = sorted((layer for layer in layers if layer.x.size), key=kind)
    if live and kind(live[-1]) < 2:  # no blurred layer: one compiled loop may draw them all
        acc = _splat_compiled(depth, live, lean, Q, P, (Hc, Wc))
        if acc is not None:
            live = []
    if live:
        counts = [layer.x.size for layer in live]
        start = np.cumsum([0] + counts)
        x = np.concatenate([layer.x for layer in live])
        y = np.concatenate([layer.y for layer in live])
        u = y - np.float32(H / 2.0)
        u *= np.float32(lean)
        u += x  # where the centre lands
        # the depth at each centre, the nearest pixel, clamped to the image (a remap is a gather
        # without the rounding, casting and clipping passes)
        seen = cv2.remap(depth, u.reshape(1, -1), y.reshape(1, -1), cv2.INTER_NEAREST,
                         borderMode=cv2.BORDER_REPLICATE).reshape(-1)
        visible = np.flatnonzero(seen > np.repeat(np.asarray([layer.z_m for layer in live], np.float32), counts))
        x, y = x[visible], y[visible]
        value = np.concatenate([layer.value for layer in live])[visible]
        value *= np.float32(0.25)  # a half-res pixel covers four
        rows = clip_(y * np.float32(0.5) + np.float32(Q), 0, Hc - 1).astype(np.int32)
        cols = clip_(x * np.float32(0.5) + np.float32(P), 0, Wc - 1).astype(np.int32)
        ends = np.searchsorted(visible, start)  # each layer's slice of the visible particles
        kinds = [kind(layer) for layer in live]
        boxes = [j for j, kd in enumerate(kinds) if kd == 1]
        if boxes:
            # box [r0, r1) x [c0, c1) placed as cv2.blur's of (kw, kl) would spread a seed, its
            # light spread evenly: four corner impulses, then the 2D prefix sum
            sl = slice(ends[boxes[0]], ends[boxes[-1] + 1])
            sizes = np.diff(ends[boxes[0]:boxes[-1] + 2])
            kw, kl = (np.repeat(np.asarray(k, np.int32), sizes) for k in zip(*(_box(live[j]) for j in boxes)))
            r0 = rows[sl] - (kl - 1) // 2
            c0 = cols[sl] - (kw - 1) // 2
            r1 = r0 + kl
            c1 = c0 + kw
            val = value[sl] / (kw * kl).astype(np.float32)
            for edge, top in ((r0, Hc), (r1, Hc), (c0, Wc), (c1, Wc)):
                clip_(edge, 0, top, out=edge)
            r0 *= Wc + 1
            r1 *= Wc + 1
            impulses = scratch("particles.impulses", (Hc + 1, Wc + 1), np.float32)
            impulses.fill(0.0)
            flat = impulses.reshape(-1)
            np.add.at(flat, r0 + c0, val)
            np.add.at(flat, r1 + c1, val)
            np.negative(val, out=val)
            np.add.at(flat, r0 + c1, val)
            np.add.at(flat, r1 + c0, val)
            integral = cv2.integral(impulses, sum=scratch("particles.integral", (Hc + 2, Wc + 2), np.float32),
                                    sdepth=cv2.CV_32F)
            acc = integral[1:Hc + 1, 1:Wc + 1]
            base, first = integral.reshape(-1), Wc + 3  # acc[r, c] = base[first + r (Wc + 2) + c]
        else:
            acc = scratch("particles.acc", (Hc, Wc), np.float32)
            acc.fill(0.0)
            base, first = acc.reshape(-1), 0
        if 0 in kinds:  # points: straight onto the canvas
            sl = slice(0, ends[kinds.index(1) if 1 in kinds else kinds.index(2) if 2 in kinds else len(live)])
            # by flat index: numpy's add.at is several times faster on one index array than on two
            at = rows[sl] * np.int32(acc.strides[0] // acc.itemsize)
            at += cols[sl]
            at += np.int32(first)
            np.add.at(base, at, value[sl])
        for j in (j for j, kd in enumerate(kinds) if kd == 2):  # near flakes: seeds, box, Gaussian
            layer, sl = live[j], slice(ends[j], ends[j + 1])
            seeds = scratch("particles.seeds", (Hc, Wc), np.float32)
            spread = scratch("particles.spread", (Hc, Wc), np.float32)
            seeds.fill(0.0)
            seeds.reshape(-1)[rows[sl] * np.int32(Wc) + cols[sl]] = value[sl]
            bw, bl = _box(layer)
            out = cv2.blur(seeds, (bw, bl), dst=spread, borderType=cv2.BORDER_CONSTANT) if bw * bl > 1 else seeds
            acc += cv2.GaussianBlur(out, (0, 0), layer.sigma_px / 2.0, dst=spread, borderType=cv2.BORDER_CONSTANT)
    if acc is None:
        acc = scratch("particles.acc", (Hc, Wc), np.float32)
        acc.fill(0.0)
    half = scratch("particles.half", (h, w), np.float32)
    done = shear_rows(acc, P, lean, h / 2.0, Q, half, through, MAX_ALPHA)  # compiled: a row shift each
    if done is not None:
        return done
    M = np.asarray([[1, lean, -P - lean * (h / 2.0 + Q)], [0, 1, -Q]], np.float32)
    a = cv2.warpAffine(acc, M, (w, h), dst=half, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    if through is None:
        return a
    # the clip as OpenCV's min and max (exact, and a few times faster than numpy's on a frame)
    cv2.min(cv2.max(a, 0.0, dst=a), MAX_ALPHA, dst=a)
    through *= np.subtract(np.float32(1.0), a, out=a)
    return through


def _box(layer: ParticleLayer) -> tuple[int, int]:
    """(width, length) of a particle's box of light on the half-resolution canvas."""
    return max(1, layer.width_px // 2), max(1, layer.length_px // 2)


def _splat_compiled(depth: np.ndarray, live: list[ParticleLayer], lean: float, Q: int, P: int,
                    shape: tuple[int, int]) -> np.ndarray | None:
    """The canvas of ``_half_res_alpha`` drawn by ``fused.splat`` (layers without a Gaussian
    spread), a work buffer; None where the compiled loops are off."""
    acc = scratch("particles.acc", shape, np.float32)
    acc.fill(0.0)
    kw, kl = (np.asarray(k, np.int32) for k in zip(*(_box(layer) for layer in live)))
    x, y, value = (np.concatenate([getattr(layer, a) for layer in live]) for a in ("x", "y", "value"))
    return splat(depth, x, y, value, np.cumsum([0] + [layer.x.size for layer in live]),
                 np.asarray([la.z_m for la in live], np.float32), kw, kl, lean, Q, P, acc)


def ambient_small(small: np.ndarray, floor, shape: tuple[int, ...]) -> np.ndarray:
    """``ambient_light`` before its upsampling to ``shape`` (H, W, ...), from ``small``: every 4th
    pixel of the image (``image[::4, ::4]``, possibly changed by the surface effects):
    (H // 16, W // 16, 3) of the image's dtype, never darker than the airlight ``floor``."""
    size = (max(int(shape[1]) // 16, 1), max(int(shape[0]) // 16, 1))
    # 4 x 4 averages of every 4th pixel: the 16 x 16 means without reading the whole frame
    low = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    # GaussianBlur's sigma 1.5 (its 11 taps) at a third of its set-up cost on so small an image
    low = cv2.sepFilter2D(low, -1, _AMBIENT_KERNEL, _AMBIENT_KERNEL)
    return np.maximum(low, (np.asarray(floor, np.float32) * np.float32(peak(low))).astype(low.dtype))


def ambient_light(image: np.ndarray, floor) -> np.ndarray:
    """(H, W, 3) light that particles and haze near each pixel scatter towards the camera: a drop
    or flake gathers a wide cone of the scene, so a heavily blurred image, never darker than the
    airlight ``floor`` (3,) in 0..1; near a lamp at night it glows. Same dtype as ``image``."""
    H, W = image.shape[:2]
    return cv2.resize(ambient_small(image[::4, ::4], floor, image.shape), (W, H), interpolation=cv2.INTER_LINEAR)


def transmission(depth: np.ndarray, camera: Camera, beta: float, layers: tuple[ParticleLayer, ...] = (),
                 slant: float = 0.0) -> np.ndarray:
    """``t (1 - a)``: the share of the surface light that reaches the camera through haze of
    extinction ``beta`` (1/m) and the particles of ``layers`` (``particle_alpha``), at half
    resolution ((ceil(H/2), ceil(W/2)) float32, a work buffer for ``composite``), where the
    particles are drawn: it is smooth but for silhouettes against the sky, which the
    upsampling in ``composite`` softens by a pixel."""
    T = _haze(np.ascontiguousarray(depth[::2, ::2]), subsampled_camera(camera, 2), beta, "particles.t_half")
    if layers:
        _half_res_alpha(depth, layers, slant, through=T)
    return T


def _haze(depth: np.ndarray, camera: Camera, beta: float, name: str) -> np.ndarray:
    """Haze transmission ``exp(-beta distance)`` (H, W) for a z-depth map of ``camera`` into the
    work buffer ``name`` (inf = sky: 0 for beta > 0)."""
    t = scratch(name, depth.shape, np.float32)
    if beta > 0:
        cv2.multiply(depth, ray_scale(camera), dst=t, scale=-float(beta))
        # exp(-80) ~ 2e-35 is 0 to any image, and OpenCV's exp is slow on -inf (sky) and several
        # times slower still where results turn denormal (below exp(-87)): clamp first
        cv2.max(t, -80.0, dst=t)
        cv2.exp(t, dst=t)
    else:
        t.fill(1.0)
    return t


def _weight3(w: np.ndarray, dtype, name: str, invert: bool = False) -> np.ndarray:
    """(H, W) weights 0..1 (``1 - w`` if ``invert``) as an (H, W, 3) multiplier for an image of
    ``dtype`` in the work buffer ``name``; for uint8 in 8-bit fixed point (1/255 steps, below
    what 8-bit output resolves): a quarter of the float32 map, and OpenCV's uint8 products are
    cheap (``blendLinear`` costs several times more)."""
    if dtype == np.uint8:
        one = scratch(name + ".1", w.shape, np.uint8)
        cv2.convertScaleAbs(w, one, alpha=-255.0 if invert else 255.0, beta=255.0 if invert else 0.0)
    else:
        one = np.subtract(np.float32(1.0), w, out=scratch(name + ".1", w.shape, np.float32)) if invert else w
    return cv2.cvtColor(one, cv2.COLOR_GRAY2RGB, dst=scratch(name, (*w.shape, 3), dtype))


def weighted(image: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """``image weight`` for an (h, w, 3) image of either dtype and (h, w) float32 weights 0..1."""
    if image.dtype == np.uint8:
        w = cv2.cvtColor(cv2.convertScaleAbs(weight, alpha=255.0), cv2.COLOR_GRAY2RGB)
        return cv2.multiply(image, w, scale=1.0 / 255.0)
    return cv2.multiply(image, cv2.cvtColor(weight, cv2.COLOR_GRAY2RGB))


def mix_small(small: np.ndarray, r0: int, keep: np.ndarray, other: np.ndarray, weight: np.ndarray) -> None:
    """``small[r0:] = small keep + other weight`` in place, at low resolution (for the ambient)."""
    band = small[r0:]
    cv2.add(weighted(band, keep), weighted(other, weight), dst=band)


def composite(image: np.ndarray, T: np.ndarray, ambient: np.ndarray, r0: int = 0, keep: np.ndarray | None = None,
              add: np.ndarray | None = None, white: np.ndarray | None = None,
              white_weight: np.ndarray | None = None) -> np.ndarray:
    """``J T + E (1 - T)``, the surface light ``J`` through transmission ``T`` plus the scattered
    ambient light ``E``, with the surface changes of the rows from r0 down (wet road, snow)
    folded in: ``J = image keep + add / T + white white_weight``.

    Everything but the image's own detail is smooth and worked out at the resolution of ``T``
    (half), then upsampled: ``image T_up + low_up``, one compiled pass for 8-bit frames of even
    width (``fused``), OpenCV's resizes, product and sum otherwise.

    Args:
        image: (H, W, 3) uint8 or float32 0..1.
        T: (h, w) float32 transmission at half resolution (``transmission``); overwritten.
        ambient: ``ambient_small`` of the scene: the scattered light E.
        r0: first row of ``T`` (half resolution) the surface arrays below start at.
        keep: (h - r0, w) float32 share of the surface's own light left, or None.
        add: (h - r0, w, 3) light added as it is (a reflection, already attenuated), or None.
        white: (H - r0 H / h, W) single-channel image of ``image``'s dtype (a snow level) laid
            over the surface with ``white_weight`` (h - r0, w) float32 (the rest of the surface
            keeps ``1 - white_weight``), or None. May also be given at the resolution of ``T``,
            (h - r0, w): then it is folded in before the upsampling (a smooth layer, as ``add``).

    Returns:
        A new image of ``image``'s dtype; uint8 goes through 8-bit fixed-point products.
    """
    H, W = image.shape[:2]
    h, w = T.shape
    dt = image.dtype
    scale = 1.0 / 255.0 if dt == np.uint8 else 1.0
    low = cv2.resize(ambient, (w, h), interpolation=cv2.INTER_LINEAR)
    cv2.multiply(low, _weight3(T, dt, "particles.w3_half", invert=True), dst=low, scale=scale)  # E (1 - T)
    if add is not None:
        band = low[r0:]
        cv2.add(band, add, dst=band)
    Tb = T[r0:]
    ww = None
    if white is not None:
        assert white_weight is not None  # the callers give it with ``white``
        ww = np.multiply(Tb, white_weight, out=scratch("particles.ww", Tb.shape, np.float32))
        Tb -= ww  # the surface keeps 1 - white_weight of its light
        if white.shape == Tb.shape:  # a half-resolution white: added before the upsampling, as ``add``
            _add_white(low[r0:], white, ww)
            white = None
    if keep is not None:
        np.multiply(Tb, keep, out=Tb)
    out = blend_upsampled(image, low, T)  # 8-bit frames of even width: the rest in one pass
    if out is None:
        out = cv2.resize(low, (W, H), interpolation=cv2.INTER_LINEAR)
        cv2.add(out, _transmitted(image, T), dst=out)
    if white is not None:
        R0 = H - white.shape[0]
        assert ww is not None  # set above for a full-resolution ``white``
        ww_up = cv2.resize(ww, (W, H - R0), dst=scratch("particles.ww_up", (H - R0, W), np.float32))
        _add_white(out[R0:], white, ww_up)
    return out


def _transmitted(image: np.ndarray, T: np.ndarray) -> np.ndarray:
    """``image T`` with the half-resolution ``T`` upsampled to the image, in a work buffer."""
    H, W = image.shape[:2]
    h, w = T.shape
    dt = image.dtype
    scale = 1.0 / 255.0 if dt == np.uint8 else 1.0
    if dt == np.uint8:
        # to 8-bit fixed point before the upsampling: a quarter of the pixels to convert, and
        # OpenCV resizes one 8-bit channel faster than float
        t8 = cv2.convertScaleAbs(T, dst=scratch("particles.t8", (h, w), np.uint8), alpha=255.0)
        T8 = cv2.resize(t8, (W, H), dst=scratch("particles.T8", (H, W), np.uint8), interpolation=cv2.INTER_LINEAR)
        w3 = cv2.cvtColor(T8, cv2.COLOR_GRAY2RGB, dst=scratch("particles.w3", (H, W, 3), np.uint8))
    else:
        Tf = cv2.resize(T, (W, H), dst=scratch("particles.T", (H, W), np.float32), interpolation=cv2.INTER_LINEAR)
        w3 = _weight3(Tf, dt, "particles.w3")
    return cv2.multiply(image, w3, dst=scratch("particles.prod", image.shape, dt), scale=scale)


def _add_white(band: np.ndarray, white: np.ndarray, weight: np.ndarray) -> None:
    """``band += white weight`` in place: a single-channel ``white`` of ``band``'s dtype laid over
    its three channels with (h, w) float32 weights 0..1 (uint8 in 8-bit fixed point)."""
    if white.dtype == np.uint8:
        lit = cv2.multiply(white, cv2.convertScaleAbs(weight, alpha=255.0), scale=1.0 / 255.0)
    else:
        lit = cv2.multiply(white, weight)
    cv2.add(band, cv2.cvtColor(lit, cv2.COLOR_GRAY2RGB), dst=band)


def scatter_composite(image: np.ndarray, depth: np.ndarray, camera: Camera, beta: float, alpha: np.ndarray,
                      airlight) -> np.ndarray:
    """``I = J t (1 - a) + E (1 - t (1 - a))``: haze of extinction ``beta`` (1/m) and particle
    opacity ``alpha`` (H, W) over ``image`` (either dtype), both lit by ``ambient_light``.
    ``alpha`` is overwritten."""
    T = _haze(depth, camera, beta, "particles.t_full")
    T *= np.subtract(np.float32(1.0), alpha, out=alpha)
    H, W = depth.shape
    T = cv2.resize(T, (-(-W // 2), -(-H // 2)), interpolation=cv2.INTER_AREA)
    return composite(image, T, ambient_small(image[::4, ::4], airlight, image.shape))
