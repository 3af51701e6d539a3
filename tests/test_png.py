"""The PNG encoder every dataset file goes through (atomic.png_bytes): what it writes decodes to
the same pixels in the reader longtail and its users read with (Pillow) and in OpenCV, for every
array kind a frame has, and the same array always gives the same bytes."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from longtail.atomic import png_bytes, read_png, write_png

# (channels, dtype, the mode Pillow reads it as): colour, class ids, depth and instance ids, RGBA
KINDS = [((3,), np.uint8, "RGB"), ((), np.uint8, "L"), ((), np.uint16, "I;16"), ((4,), np.uint8, "RGBA")]


@settings(max_examples=40, deadline=None)
@given(data=st.data(), kind=st.sampled_from(KINDS), h=st.integers(1, 40), w=st.integers(1, 40))
def test_pixels_survive_the_round_trip(data, kind, h, w):
    channels, dtype, mode = kind
    a = data.draw(arrays(dtype, (h, w, *channels)))
    b = png_bytes(a)
    with Image.open(io.BytesIO(b)) as img:
        assert img.mode == mode
        assert np.array_equal(np.array(img), a)
    back = cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_UNCHANGED)
    if a.ndim == 3:
        back = back[..., [2, 1, 0, 3][:a.shape[2]]]
    assert np.array_equal(back, a)
    assert png_bytes(a.copy()) == b  # same array, same bytes


def test_views_and_files(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    view = a[::2, ::-3]  # not contiguous
    write_png(tmp_path / "v.png", view)
    assert np.array_equal(read_png(tmp_path / "v.png"), view)
    depth = (rng.random((30, 40)) * 60000).astype(np.uint16)
    write_png(tmp_path / "d.png", depth)
    assert np.array_equal(read_png(tmp_path / "d.png"), depth)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.float32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((2, 4, 4, 3), np.uint8)])
def test_other_arrays_are_refused(bad):
    with pytest.raises(TypeError):
        png_bytes(bad)
