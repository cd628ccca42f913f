"""The shared pre/post processing: image I/O, padding, tiling."""

import cv2
import numpy as np
import paddle
import pytest
from skimage import data

from ppmirnet import processing as P
from ppmirnet.errors import UserError
from ppmirnet.modeling import MIRNet


def write_raw(path, array):
    assert cv2.imwrite(str(path), array)
    return str(path)


def test_8bit_colour_round_trip(tmp_path):
    rgb = data.astronaut()[:33, :47]
    src = write_raw(tmp_path / "a.png", rgb[:, :, ::-1])
    img, info = P.read_image(src)
    assert img.dtype == np.float32 and img.shape == (33, 47, 3)
    np.testing.assert_allclose(img, rgb / 255.0, atol=1e-7)
    assert (info.bit_depth, info.channels, info.height, info.width) == (8, 3, 33, 47)
    P.write_image(str(tmp_path / "out.png"), img, info)
    back = cv2.imread(str(tmp_path / "out.png"), cv2.IMREAD_UNCHANGED)
    assert back.dtype == np.uint8 and np.array_equal(back[:, :, ::-1], rgb)


def test_16bit_gray_and_rgba_keep_their_layout(tmp_path):
    rng = np.random.default_rng(0)
    gray16 = rng.integers(0, 65536, (20, 30), dtype=np.uint16)
    img, info = P.read_image(write_raw(tmp_path / "g.png", gray16))
    assert info.bit_depth == 16 and info.channels == 1 and img.shape == (20, 30, 3)
    assert np.all(img[:, :, 0] == img[:, :, 2])
    stored = P.to_storage(img, info)
    assert stored.dtype == np.uint16 and np.array_equal(stored, gray16)

    rgba = rng.integers(0, 256, (16, 18, 4), dtype=np.uint8)
    img, info = P.read_image(write_raw(tmp_path / "c.png", rgba))
    assert info.channels == 4 and img.shape == (16, 18, 3)
    P.write_image(str(tmp_path / "c_out.png"), img * 0.5, info)
    back = cv2.imread(str(tmp_path / "c_out.png"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (16, 18, 4)
    assert np.array_equal(back[:, :, 3], rgba[:, :, 3])  # alpha untouched
    np.testing.assert_allclose(back[:, :, :3], rgba[:, :, :3] * 0.5, atol=0.51)


def test_decode_and_encode_png_bytes():
    rgb = data.coffee()[:20, :24]
    ok, buf = cv2.imencode(".jpg", rgb[:, :, ::-1])
    img, info = P.decode_image(buf.tobytes(), "upload")
    assert img.shape == (20, 24, 3) and info.bit_depth == 8
    png = P.encode_png(img, info)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UserError, match="cannot read upload as an image"):
        P.decode_image(b"definitely not an image", "upload")
    with pytest.raises(UserError, match="cannot read empty as an image"):
        P.decode_image(b"", "empty")


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="image not found"):
        P.read_image(str(tmp_path / "missing.png"))
    bad = tmp_path / "bad.png"
    bad.write_text("hello")
    with pytest.raises(UserError, match=f"cannot read {bad} as an image"):
        P.read_image(str(bad))
    with pytest.raises(UserError, match="input not found"):
        P.list_images(str(tmp_path / "does_not_exist"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no images"):
        P.list_images(str(tmp_path / "empty"))


def test_list_images_sorted_and_filtered(tmp_path):
    for name in ["b.png", "a.JPG", "notes.txt"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.rsplit("/", 1)[1] for p in P.list_images(str(tmp_path))] == ["a.JPG", "b.png"]


def test_runners_get_the_image_as_it_is_and_tiny_images_are_refused():
    """The networks pad to their own multiple themselves; the pipeline only refuses what none can pad."""
    seen = []

    def runner(b):
        seen.append(b.shape)
        return b[:, :3] * 2

    batch = np.arange(2 * 6 * 12 * 9, dtype=np.float32).reshape(2, 6, 12, 9)
    with pytest.raises(UserError, match="image of 12x7 is too small: the networks need at least 8x8"):
        P.run_whole(runner, batch[:, :, :, :7])
    np.testing.assert_array_equal(P.run_whole(runner, batch), batch[:, :3] * 2)
    assert seen == [(2, 6, 12, 9)]  # 6 channels in (a dual-pixel pair), 3 out


@pytest.fixture(scope="module")
def tiny_runner():
    paddle.seed(0)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    model.eval()

    def runner(batch):
        with paddle.no_grad():
            return model(paddle.to_tensor(batch)).numpy()

    return runner


def test_restore_pads_odd_sizes_like_the_model(tiny_runner):
    img = data.astronaut()[:45, :37].astype(np.float32) / 255.0
    out = P.restore(tiny_runner, img)
    assert out.shape == img.shape and out.min() >= 0 and out.max() <= 1
    ref = np.clip(tiny_runner(P.to_batch([img]))[0].transpose(1, 2, 0), 0, 1)
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_tiled_equals_untiled_away_from_seams(tiny_runner):
    img = data.astronaut()[100:340, 60:264].astype(np.float32) / 255.0  # 240x204
    tile, overlap = 128, 16
    full = P.restore(tiny_runner, img)
    tiled = P.restore(tiny_runner, img, tile=tile, overlap=overlap)
    assert tiled.shape == full.shape
    diff = np.abs(full - tiled).max(axis=2)
    away = np.ones(diff.shape, bool)
    for axis, size in ((0, img.shape[0]), (1, img.shape[1])):
        starts, length = P.tile_layout(size, tile, overlap)
        for s in starts:
            for edge in (s, s + length):  # image borders too: the untiled run pads there
                band = slice(max(edge - 2 * overlap, 0), edge + 2 * overlap)
                if axis == 0:
                    away[band, :] = False
                else:
                    away[:, band] = False
    assert away.sum() > 1000
    assert diff[away].max() < 1e-3
    assert diff.mean() < 0.01


@pytest.mark.parametrize("size, tile, overlap", [(4000, 512, 32), (3000, 512, 32), (75, 48, 8),
                                                 (100, 48, 8), (1000, 256, 0), (257, 256, 32)])
def test_tile_layout_covers_with_the_overlap_and_little_waste(size, tile, overlap):
    starts, length = P.tile_layout(size, tile, overlap)
    assert length <= tile and length % 8 == 0
    assert starts[0] == 0 and starts[-1] + length == size
    gaps = np.diff(starts)
    assert np.all(length - gaps >= overlap)
    # Fewest tiles: one less could not cover the axis with this overlap.
    n = len(starts)
    assert n * tile - (n - 1) * overlap >= size > (n - 1) * tile - (n - 2) * overlap
    assert n * length - size < n * 8 + (n - 1) * overlap


def test_tile_layout_of_a_12_megapixel_photo():
    ys, th = P.tile_layout(3000, 512, 32)
    xs, tw = P.tile_layout(4000, 512, 32)
    assert (len(ys), th, len(xs), tw) == (7, 456, 9, 480)
    assert len(ys) * th * len(xs) * tw / 12e6 == pytest.approx(1.149, abs=1e-3)


def test_tile_arguments_are_checked(tiny_runner):
    batch = np.zeros((1, 3, 64, 64), np.float32)
    with pytest.raises(UserError, match="multiple of 8"):
        P.run_tiled(tiny_runner, batch, tile=100)
    with pytest.raises(UserError, match="tile_overlap"):
        P.run_tiled(tiny_runner, batch, tile=32, overlap=32)


def test_written_files_get_the_usual_permissions(tmp_path):
    import os
    import stat

    rgb = np.zeros((8, 8, 3), np.float32)
    _, info = P.decode_image(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    out = tmp_path / "x.png"
    P.write_image(str(out), rgb, info)
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~mask
    assert os.listdir(tmp_path) == ["x.png"]


def test_tile_layout_covers_any_axis_longer_than_a_tile_with_two_tiles_or_more():
    for tile, overlap in ((16, 0), (64, 8), (96, 32), (512, 32), (48, 40)):
        for size in range(tile + 1, 4 * tile, 7):
            starts, length = P.tile_layout(size, tile, overlap)
            assert len(starts) >= 2 and length <= tile and length % 8 == 0
            assert starts[0] == 0 and starts[-1] + length == size
            assert all(b - a <= length - overlap for a, b in zip(starts, starts[1:]))
