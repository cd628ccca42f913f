"""The one restore loop over image files (predict, Paddle Inference, ONNX): outputs, failures, settings."""

import os
import time

import cv2
import numpy as np
import pytest

from ppmirnet import processing
from ppmirnet.errors import UserError
from ppmirnet.files import FailedImages, StageTimer, check_settings, plan_outputs, restore_files

from helpers import folder_bytes


def halve(batch):
    """A runner whose result is easy to check."""
    return batch * 0.5


@pytest.fixture
def folder(tmp_path):
    """Three good images around a file that is not an image and one too small to restore."""
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "c.png", "e.png"):
        cv2.imwrite(str(src / name), rng.integers(0, 256, (20, 28, 3), dtype=np.uint8))
    (src / "b.png").write_bytes(b"not an image at all")
    cv2.imwrite(str(src / "d.png"), rng.integers(0, 256, (3, 3, 3), dtype=np.uint8))
    return src


def test_every_readable_image_is_restored_and_failures_are_listed(folder, tmp_path):
    inputs = processing.list_images(str(folder))
    out = tmp_path / "out"
    timer = StageTimer()
    with pytest.raises(FailedImages) as err:
        restore_files(halve, inputs, str(out), timer=timer)
    assert sorted(os.listdir(out)) == ["a.png", "c.png", "e.png"]
    assert err.value.written == [str(out / n) for n in ("a.png", "c.png", "e.png")]
    assert [os.path.basename(p) for p, _ in err.value.failures] == ["b.png", "d.png"]
    message = str(err.value)
    assert message.startswith("2 of 5 image(s) could not be restored (3 written):")
    assert f"cannot read {folder / 'b.png'} as an image" in message
    assert "image of 3x3 is too small" in message
    assert timer.images == 3
    for name in ("a.png", "c.png", "e.png"):
        rgb, info = processing.read_image(str(folder / name))
        want = processing.to_storage(rgb * 0.5, info)
        assert np.array_equal(cv2.imread(str(out / name), cv2.IMREAD_UNCHANGED), want)


def test_failures_in_a_batch_do_not_stop_the_next_batches(folder, tmp_path):
    inputs = processing.list_images(str(folder))
    with pytest.raises(FailedImages) as err:
        restore_files(halve, inputs, str(tmp_path / "out"), batch_size=2)
    assert len(err.value.written) == 3 and len(err.value.failures) == 2


def test_all_good_returns_the_written_paths(folder, tmp_path):
    inputs = [str(folder / n) for n in ("a.png", "c.png")]
    lines = []
    written = restore_files(halve, inputs, str(tmp_path / "out"), log=lines.append)
    assert written == [str(tmp_path / "out" / "a.png"), str(tmp_path / "out" / "c.png")]
    assert lines[0].startswith(f"{inputs[0]} -> {written[0]} (28x20, 8-bit, 3 channel(s), ")


@pytest.mark.parametrize("output", ["same", "same_slash", "file"])
def test_the_input_folder_is_never_the_output(folder, output):
    inputs = processing.list_images(str(folder))
    target = {"same": str(folder), "same_slash": str(folder) + os.sep, "file": str(folder)}[output]
    if output == "file":
        inputs = [str(folder / "a.png")]
    before = folder_bytes(folder)
    with pytest.raises(UserError, match=r"would overwrite its input|is the folder of the input"):
        restore_files(halve, inputs, target)
    assert folder_bytes(folder) == before


def test_the_input_folder_is_refused_even_without_a_name_clash(tmp_path):
    photo = tmp_path / "x.jpg"
    cv2.imwrite(str(photo), np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(UserError, match=f"the output folder {tmp_path} is the folder of the input {photo}"):
        plan_outputs([str(photo)], str(tmp_path))
    link = tmp_path.parent / (tmp_path.name + "-link")
    link.symlink_to(tmp_path)
    with pytest.raises(UserError, match="is the folder of the input"):
        plan_outputs([str(photo)], str(link))


@pytest.mark.parametrize("tile, overlap, message", [
    (-1, 32, "--tile must be 0 or a positive multiple of 8, got -1"),
    (30, 8, "--tile must be 0 or a positive multiple of 8, got 30"),
    (32, 32, r"--tile_overlap must be in \[0, --tile\), got 32"),
])
def test_tile_settings_are_checked_the_same_everywhere(tile, overlap, message):
    with pytest.raises(UserError, match=message):
        check_settings(tile=tile, tile_overlap=overlap)


def test_nothing_is_created_when_every_image_fails(folder, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(FailedImages):
        restore_files(halve, [str(folder / "b.png")], str(out))
    assert not out.exists()


class _Terminal:
    """A stderr that says it is a terminal and keeps what is written."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, text):
        self.text += text

    def flush(self):
        pass


def test_a_tiled_image_shows_its_tiles_on_a_terminal(tmp_path, monkeypatch):
    src = tmp_path / "big.png"
    cv2.imwrite(str(src), np.random.default_rng(1).integers(0, 256, (72, 100, 3), dtype=np.uint8))
    calls = []
    # 2 rows x 3 columns of tiles of 48 with an overlap of 8 (processing.tile_layout).
    out = processing.run_tiled(halve, np.zeros((1, 3, 72, 100), np.float32), 48, 8,
                               progress=lambda done, total: calls.append((done, total)))
    assert calls == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)] and out.shape == (1, 3, 72, 100)
    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)

    def slow(batch):  # tiles slower than the bar's refresh interval (0.1 s), as real ones are
        time.sleep(0.12)
        return halve(batch)

    restore_files(slow, [str(src)], str(tmp_path / "out"), tile=48, tile_overlap=8)
    shown = terminal.text.split("\r")
    # The bar's width follows the terminal: its text, not its length, is checked.
    assert any(line.startswith("big.png:   0%|") and "| 0/6 [00:00<?, ?tile/s]" in line for line in shown)
    assert any(line.startswith("big.png: 100%") and "6/6" in line for line in shown)
    assert shown[-1] == "" and shown[-2].strip() == ""  # the bar is removed when the image is done
    # Not on a terminal, or with the progress turned off: no bar.
    for stderr, progress in [(_Terminal(), False), (None, None)]:
        if stderr is not None:
            monkeypatch.setattr("sys.stderr", stderr)
        else:
            monkeypatch.undo()
        restore_files(halve, [str(src)], str(tmp_path / f"out{progress}"), tile=48, tile_overlap=8,
                      progress=progress)
        if stderr is not None:
            assert "tile" not in stderr.text
