"""Decoding uploads: every mode becomes upright RGB; every broken file becomes a coded ImageError."""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from PIL import Image

from service.errors import CATALOGUE
from service.fitting import LETTERBOX, STRETCH, aspect_area_shape, fit_image, unfit_probability
from service.imaging import ImageError, decode_image, encode_image, resize_to_max
from tests.corpus.generate import BAD, GOOD

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize("name,data,content_type,size", GOOD, ids=[g[0] for g in GOOD])
def test_good_inputs_become_upright_rgb(name, data, content_type, size):
    image = decode_image(data, MAX_PIXELS)
    assert image.mode == "RGB" and image.size == size


@pytest.mark.parametrize("name,data,content_type,status,code", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise_coded_errors(name, data, content_type, status, code):
    with pytest.raises(ImageError) as info:
        decode_image(data, MAX_PIXELS)
    assert (CATALOGUE[info.value.code].status, info.value.code) == (status, code)


def test_sixteen_bit_keeps_its_range():
    image = decode_image(dict((g[0], g[1]) for g in GOOD)["sixteen-bit.png"], MAX_PIXELS)
    grey = np.asarray(image)[..., 0]
    assert grey.min() <= 2 and grey.max() >= 250  # scaled, not clipped to white


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    import io

    buffer = io.BytesIO()
    rgba.save(buffer, "PNG")
    assert np.asarray(decode_image(buffer.getvalue(), MAX_PIXELS))[0, 0].tolist() == [255, 255, 255]


def test_first_frame_of_an_animation():
    image = decode_image(dict((g[0], g[1]) for g in GOOD)["animated.gif"], MAX_PIXELS)
    assert np.asarray(image)[0, 0].tolist() == [255, 0, 0]


def test_pixel_limit_is_configurable():
    data = dict((g[0], g[1]) for g in GOOD)["wide-5000x1.png"]
    with pytest.raises(ImageError, match="limit is 4999"):
        decode_image(data, 4999)


def test_encode_formats_and_resize():
    image = Image.new("RGBA", (300, 200), (1, 2, 3, 128))
    assert encode_image(image, "png")[:4] == b"\x89PNG"
    assert encode_image(image, "webp")[8:12] == b"WEBP"
    assert encode_image(image, "jpeg")[:2] == b"\xff\xd8"
    assert resize_to_max(image, 150).size == (150, 100)
    assert resize_to_max(image, 1000).size == (300, 200)


@pytest.mark.parametrize("mode", [STRETCH, LETTERBOX])
def test_fit_and_unfit_round_trip(mode):
    image = Image.new("RGB", (120, 60), (255, 255, 255))
    fitted, placement = fit_image(image, 32, mode)
    assert fitted.shape == (32, 32, 3) and fitted.dtype == np.float32
    prob = np.zeros((32, 32), np.float32)
    prob[placement.top : placement.top + placement.height, placement.left : placement.left + placement.width // 2] = 1
    back = unfit_probability(prob, placement, 120, 60)
    assert back.shape == (60, 120)
    assert back[:, :55].mean() > 0.95 and back[:, 65:].mean() < 0.05  # left half stays left
    if mode == LETTERBOX:
        assert placement.height == 16 and fitted[0, 0].tolist() == [124, 116, 104]


@pytest.mark.parametrize(
    "width,height,shape",
    [
        (448, 298, (336, 512)),  # a dev val landscape: its proportions, about 416 x 416 pixels
        (298, 448, (512, 336)),
        (500, 500, (416, 416)),  # a square photo's aspect view is the square
        (4000, 100, (208, 832)),  # a panorama is squeezed to 4:1, so its view costs what the square costs
        (1, 1000, (832, 208)),
    ],
)
def test_aspect_view_keeps_the_proportions_at_the_squares_cost(width, height, shape):
    view = aspect_area_shape(width, height, 416)
    assert view == shape and view[0] % 16 == 0 and view[1] % 16 == 0
    assert 0.9 < view[0] * view[1] / 416**2 < 1.1


def _idat_stream(png: bytes) -> bytes:
    """The zlib stream of a PNG file's IDAT chunks."""
    stream, offset = b"", 8
    while offset < len(png):
        length = int.from_bytes(png[offset : offset + 4], "big")
        if png[offset + 4 : offset + 8] == b"IDAT":
            stream += png[offset + 8 : offset + 8 + length]
        offset += 12 + length
    return stream


@pytest.mark.parametrize("as_image", [False, True], ids=["array", "pil"])
@pytest.mark.parametrize("shape", [(1, 1), (5, 7, 3), (300, 200, 4), (1500, 1100, 4), (1200, 900), (97, 31, 4)])
def test_png_encoder_round_trips_exactly(shape, as_image, monkeypatch):
    from service import png

    if shape == (97, 31, 4):
        monkeypatch.setattr(png, "BLOCK_BYTES", 500)  # blocks of 4 rows: many blocks, a short last one
        monkeypatch.setattr(png, "deflate_lib", zlib)  # and the standard library's deflate (no isal wheel)
    pixels = np.random.default_rng(len(shape)).integers(0, 256, size=shape, dtype=np.uint8)
    pixels[: shape[0] // 2] //= 16  # some smooth content too, so the filter and the blocks matter
    encoded = png.encode_png(Image.fromarray(pixels) if as_image else pixels)
    zlib.decompress(_idat_stream(encoded))  # raises on a bad stream or a wrong Adler-32
    decoded = Image.open(io.BytesIO(encoded))
    decoded.load()  # a bad CRC raises here
    assert np.array_equal(np.asarray(decoded), pixels)
    assert decoded.mode == ("L" if len(shape) == 2 else {3: "RGB", 4: "RGBA"}[shape[2]])


def test_adler32_of_two_strings_is_combined_from_theirs():
    from service.png import adler32_combine

    rng = np.random.default_rng(3)
    for first_length, second_length in [(0, 5), (7, 0), (1, 70_000), (200_000, 65_521), (65_522, 131_042)]:
        first, second = rng.bytes(first_length), rng.bytes(second_length)
        combined = adler32_combine(zlib.adler32(first), zlib.adler32(second), len(second))
        assert combined == zlib.adler32(first + second)
