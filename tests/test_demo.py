"""``ppmirnet demo``: the Gradio page restores like Restorer, through its API and in a real headless Chromium."""

import socket

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import Restorer, commands, demo
from ppmirnet.engine.checkpoint import save_weights
from ppmirnet.errors import UserError
from ppmirnet.modeling import MIRNet

gradio = pytest.importorskip("gradio", reason='the demo extra: pip install ".[demo]"')
from gradio_client import Client, handle_file  # noqa: E402

from browser import Browser, find_chromium  # noqa: E402


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    paddle.seed(5)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    path = str(tmp_path_factory.mktemp("demo") / "tiny.pdparams")
    save_weights(path, model.state_dict(), {"name": "MIRNet", **model.arch})
    return path


@pytest.fixture(scope="module")
def server(weights, tmp_path_factory):
    backend = demo.DemoBackend([demo.ModelChoice("tiny", {"weights": weights})], max_pixels=64 * 64,
                               output_dir=str(tmp_path_factory.mktemp("results")), device="cpu")
    page, url = demo.launch(backend, port=_free_port(), block=False)
    yield backend, url
    page.close()


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    image = np.random.default_rng(2).integers(0, 256, (30, 44, 3), dtype=np.uint8)
    path = str(tmp_path_factory.mktemp("in") / "photo.png")
    cv2.imwrite(path, image[:, :, ::-1])
    return path, image


def test_the_api_gives_restorers_output_pixel_for_pixel(server, photo, weights):
    _, url = server
    assert url.startswith("http://127.0.0.1:")  # this machine only, by default
    path, image = photo
    (before, after), took, download = Client(url, verbose=False).predict(
        handle_file(path), "tiny", 0, api_name="/restore")
    expected = Restorer(weights, device="cpu")(image)
    np.testing.assert_array_equal(cv2.imread(download)[:, :, ::-1], expected)
    np.testing.assert_array_equal(cv2.imread(after)[:, :, ::-1], expected)  # the slider's "after" (PNG)
    np.testing.assert_array_equal(cv2.imread(before)[:, :, ::-1], image)
    assert took.endswith(" s for 44x30")
    # Tiled, as predict --tile: the Restorer's own tiling.
    (_, after), _, _ = Client(url, verbose=False).predict(handle_file(path), "tiny", 24, api_name="/restore")
    tiled = Restorer(weights, device="cpu", tile=24, tile_overlap=12)(image)
    np.testing.assert_array_equal(cv2.imread(after)[:, :, ::-1], tiled)
    assert not np.array_equal(tiled, expected)  # tiles were used


def test_too_large_an_image_is_refused_with_its_size(server, tmp_path):
    _, url = server
    path = str(tmp_path / "big.png")
    cv2.imwrite(path, np.zeros((65, 64, 3), np.uint8))
    with pytest.raises(Exception) as err:
        Client(url, verbose=False).predict(handle_file(path), "tiny", 0, api_name="/restore")
    assert ("the image is 64x65 = 4,160 pixels; this page restores at most 4,096 pixels: resize it, "
            "or use ppmirnet predict with --tile for large photos") in str(err.value)


def test_model_list_is_extensible_and_found_on_disk(tmp_path, weights):
    (tmp_path / "output" / "run").mkdir(parents=True)
    (tmp_path / "output" / "run" / "best_model.pdparams").write_bytes(b"x")
    (tmp_path / "inference" / "m").mkdir(parents=True)
    (tmp_path / "inference" / "m" / "inference.pdiparams").write_bytes(b"x")
    found = demo._local_models(str(tmp_path))
    assert [c.label for c in found] == ["weights: output/run/best_model.pdparams", "exported: inference/m"]
    assert found[1].options == {"model_dir": str(tmp_path / "inference" / "m")}
    zoo = demo.ModelChoice("named: mirnetv2_sidd", {"weights": weights})
    demo.add_model_source(lambda: [zoo])
    try:
        assert zoo in demo.list_models()
    finally:
        demo.MODEL_SOURCES.pop()
    with pytest.raises(UserError, match="weights not found: nope.pdparams"):
        demo.models_from_args(weights=["nope.pdparams"])
    with pytest.raises(UserError, match="no model to offer"):
        demo.DemoBackend([])


def test_page_options_follow_what_restorer_takes():
    plain = {"weights", "tile", "tile_overlap", "device"}
    assert demo.restore_options(plain, 0) == {}
    assert demo.restore_options(plain, 256, "openvino", "3G") == {"tile": 256, "tile_overlap": 32}
    assert demo.restore_options(plain, 24) == {"tile": 24, "tile_overlap": 12}
    richer = plain | {"engine", "max_memory"}
    assert demo.restore_options(richer, 0, "openvino", "3G") == {"engine": "openvino", "max_memory": "3G"}
    assert demo.restore_options(richer, 0, "auto", "") == {}  # the Restorer's own defaults
    assert {"tile", "tile_overlap", "device", "weights"} <= demo.restorer_option_names()


def test_named_models_are_offered_and_restore_like_from_pretrained(tmp_path, monkeypatch):
    import shutil

    from helpers import ROOT

    mirror = tmp_path / "mirror"
    mirror.mkdir()
    shutil.copy(f"{ROOT}/tests/fixtures/pth/mirnetv2_zip.pth", mirror / "real_denoising.pth")
    monkeypatch.setenv("PPMIRNET_DOWNLOAD_MIRROR", str(mirror))
    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path / "home"))
    labels = [c.label for c in demo.list_models()]
    assert "named: mirnetv2_sidd (real denoising (SIDD))" in labels and len(
        [label for label in labels if label.startswith("named: ")]) == 12
    backend = demo.DemoBackend(demo.list_models(), device="cpu", output_dir=str(tmp_path / "out"))
    image = np.random.default_rng(3).integers(0, 256, (28, 36, 3), dtype=np.uint8)
    restored = backend.restorer("named: mirnetv2_sidd (real denoising (SIDD))")(image)
    np.testing.assert_array_equal(restored, Restorer.from_pretrained("mirnetv2_sidd", device="cpu")(image))


@pytest.mark.skipif(find_chromium() is None, reason="needs Debian's chromium (apt-get install chromium)")
def test_in_a_real_browser_upload_restore_and_find_the_result(server, photo, weights, tmp_path):
    backend, url = server
    path, image = photo
    browser = Browser(str(tmp_path / "profile"), port=_free_port())
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=url)
        browser.wait_for("document.querySelector('#input-image input[type=file]') !== null", timeout=60)
        browser.set_file("#input-image input[type=file]", path)
        browser.wait_for("document.querySelector('#input-image img') !== null", timeout=60)
        browser.evaluate("document.querySelector('#restore').click()")
        took = browser.wait_for("(document.querySelector('#time textarea') || {}).value", timeout=120)
        link = browser.wait_for("(document.querySelector('#download a') || {}).href", timeout=60)
        slider_images = browser.evaluate("document.querySelectorAll('#slider img').length")
    finally:
        browser.close()
    assert took.endswith(" s for 44x30")
    assert "restored-" in link and link.endswith(".png")
    assert slider_images == 2
    # The file behind the link is the restored upload.
    written = sorted(p for p in __import__("os").listdir(backend.output_dir) if p.startswith("restored-"))
    assert written
    result = cv2.imread(__import__("os").path.join(backend.output_dir, written[-1]))[:, :, ::-1]
    np.testing.assert_array_equal(result, Restorer(weights, device="cpu")(image))
