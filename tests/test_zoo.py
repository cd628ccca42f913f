"""The authors' weights by name: listing, downloads (mirror, resume, records, offline), and the
restored output of the official networks, without PyTorch.

Checkpoints written by PyTorch (tests/fixtures/pth, see make_pth.py there) are served
under the official file names by an HTTP server on 127.0.0.1 that honours Range requests
and can cut a response short; PPMIRNET_DOWNLOAD_MIRROR points the zoo at it.
"""

import http.server
import os
import re
import shutil
import subprocess
import sys
import threading

import cv2
import numpy as np
import pytest

from helpers import ROOT
from ppmirnet import zoo
from ppmirnet.errors import UserError

PTH = os.path.join(ROOT, "tests", "fixtures", "pth")
OFFICIAL = os.path.join(ROOT, "tests", "fixtures", "official_configs")
OFFICIAL_V2 = os.path.join(ROOT, "tests", "fixtures", "mirnetv2_configs")

# official file name -> fixture written by PyTorch (MIRNet in the legacy format, MIRNet-v2 zip)
SERVED = {"model_denoising.pth": "mirnet_legacy.pth", "model_lol.pth": "mirnet_zip.pth",
          "real_denoising.pth": "mirnetv2_zip.pth"}


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        server = self.server
        name = self.path.lstrip("/")
        server.requests.append((name, self.headers.get("Range")))
        path = os.path.join(server.folder, name)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        start = 0
        wanted = self.headers.get("Range")
        if wanted:
            start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cuts = server.cuts.get(name)
        if cuts:
            # Announce the whole length, send a part, hang up: a dropped connection.
            self.wfile.write(body[:cuts.pop(0)])
            self.close_connection = True
            return
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Mirror:
    """A file server on 127.0.0.1 for the official names; ``requests``: (name, Range header)."""

    def __init__(self, folder):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.folder = folder
        self.httpd.requests = []
        self.httpd.cuts = {}
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def requests(self):
        return self.httpd.requests

    def cut(self, name, *sizes):
        self.httpd.cuts[name] = list(sizes)

    def stop(self):
        if self.thread is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.thread = None


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    folder = tmp_path / "served"
    folder.mkdir()
    for official, fixture in SERVED.items():
        shutil.copyfile(os.path.join(PTH, fixture), folder / official)
    server = Mirror(str(folder))
    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PPMIRNET_DOWNLOAD_MIRROR", server.url)
    yield server
    server.stop()


def _cache(tmp_path, name=""):
    return os.path.join(str(tmp_path), "home", "weights", name)


# A guard that fails any import of torch, then checks at exit that none happened.
_NO_TORCH = """
import sys
class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not available here")
sys.meta_path.insert(0, _NoTorch())
from ppmirnet.commands import main
code = main(sys.argv[1:])
assert not [m for m in sys.modules if m == "torch" or m.startswith("torch.")]
sys.exit(code)
"""


def _ppmirnet_without_torch(*argv):
    env = dict(os.environ, GLOG_minloglevel="2", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", _NO_TORCH, *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def _write16(path, rgb):
    cv2.imwrite(str(path), np.round(rgb[:, :, ::-1] * 65535).astype(np.uint16))


def _read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float64) / 65535


# -- listing and names ---------------------------------------------------------------------

def test_models_lists_every_official_checkpoint(tmp_path, monkeypatch, capsys):
    from ppmirnet.commands import main

    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path))
    monkeypatch.delenv("PPMIRNET_DOWNLOAD_MIRROR", raising=False)
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["name", "network", "task", "config", "source", "cached"]
    assert lines[-1] == f"cache: {tmp_path / 'weights'}"
    rows = {line.split()[0]: line for line in lines[1:-1]}
    assert list(rows) == ["mirnet_sidd", "mirnet_realsr_x3", "mirnet_realsr_x4", "mirnet_lol",
                          "mirnet_fivek", "mirnetv2_sidd", "mirnetv2_realsr_x2",
                          "mirnetv2_realsr_x3", "mirnetv2_realsr_x4", "mirnetv2_lol",
                          "mirnetv2_fivek", "mirnetv2_dpdd"]
    for name, line in rows.items():
        assert f"configs/{name}.yaml" in line and line.endswith("  no")
        assert os.path.isfile(os.path.join(ROOT, "configs", f"{name}.yaml"))
    assert "https://drive.google.com/file/d/13PGkg3yaFQCvz6ytN99Heh_yyvfxRCdG/view" in rows["mirnet_sidd"]
    assert ("https://github.com/swz30/MIRNetv2/releases/download/v1.0.0/"
            "dual_pixel_defocus_deblurring.pth") in rows["mirnetv2_dpdd"]
    assert {zoo.get(n).file for n in rows} == {
        "model_denoising.pth", "model_SR_x3.pth", "model_SR_x4.pth", "model_lol.pth",
        "model_fivek.pth", "real_denoising.pth", "sr_x2.pth", "sr_x3.pth", "sr_x4.pth",
        "enhancement_lol.pth", "enhancement_fivek.pth", "dual_pixel_defocus_deblurring.pth"}


def test_unknown_name_is_one_line_with_the_close_names(tmp_path):
    proc = subprocess.run([sys.executable, "tools/predict.py", "--model", "mirnet_sid", "--input",
                           "x.png", "--output", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 1
    assert proc.stderr == ("error: unknown model 'mirnet_sid': did you mean mirnet_sidd, "
                           "mirnetv2_sidd, mirnet_fivek? ppmirnet models lists all 12\n")


# -- the official output, without torch ------------------------------------------------------

def test_predict_by_name_gives_the_official_output_and_then_needs_no_network(mirror, tmp_path):
    io = np.load(os.path.join(OFFICIAL, "h1w1_io.npz"))
    photo = tmp_path / "photo.png"
    _write16(photo, io["input"][0].transpose(1, 2, 0))
    expected = np.clip(io["output"][0].transpose(1, 2, 0), 0, 1)

    proc = _ppmirnet_without_torch("predict", "--model", "mirnet_sidd", "--input", str(photo),
                                   "--output", str(tmp_path / "out"), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    # The official network on the 16-bit rounded input, written at 16 bits.
    assert np.abs(_read(tmp_path / "out" / "photo.png") - expected).max() < 3e-5
    assert mirror.requests == [("model_denoising.pth", None)]
    assert sorted(os.listdir(_cache(tmp_path))) == [
        "mirnet_sidd.pdparams", "mirnet_sidd.pdparams.sha256", "model_denoising.pth",
        "model_denoising.pth.sha256"]

    mirror.stop()
    proc = _ppmirnet_without_torch("predict", "--model", "mirnet_sidd", "--input", str(photo),
                                   "--output", str(tmp_path / "again"), "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "downloading" not in proc.stdout and "converting" not in proc.stdout
    assert np.array_equal(cv2.imread(str(tmp_path / "again" / "photo.png"), cv2.IMREAD_UNCHANGED),
                          cv2.imread(str(tmp_path / "out" / "photo.png"), cv2.IMREAD_UNCHANGED))


def test_from_pretrained_gives_the_official_mirnetv2_output(mirror, tmp_path, monkeypatch):
    from ppmirnet import Restorer

    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` fails
    io = np.load(os.path.join(OFFICIAL_V2, "nfeat8_cf2_io.npz"))
    # The default engine (OpenVINO here) runs an export of the converted weights.
    restorer = Restorer.from_pretrained("mirnetv2_sidd", device="cpu")
    assert restorer.runner.arch["n_feat"] == 8 and restorer.runner.arch["chan_factor"] == 2.0
    for n in range(2):
        out = restorer(io["input"][n].transpose(1, 2, 0))
        assert np.abs(out - np.clip(io["output"][n].transpose(1, 2, 0), 0, 1)).max() < 1e-5
    assert zoo.cached("mirnetv2_sidd") == "yes"


def test_the_legacy_and_zip_formats_give_the_same_weights(mirror):
    import paddle

    sidd = paddle.load(zoo.resolve("mirnet_sidd"))  # legacy, {'state_dict'} with module. prefix
    lol = paddle.load(zoo.resolve("mirnet_lol"))    # zip, bare dict, non-contiguous strides
    official = np.load(os.path.join(OFFICIAL, "h1w1_weights.npz"))
    assert sidd.keys() == lol.keys()
    for key in sidd:
        if key != "__arch__":
            assert np.array_equal(sidd[key].numpy(), lol[key].numpy())
    assert np.array_equal(sidd["conv_in.weight"].numpy(), official["conv_in.weight"])


# -- downloads ---------------------------------------------------------------------------------

def test_a_dropped_connection_is_resumed_with_a_range_request(mirror, tmp_path):
    size = os.path.getsize(os.path.join(PTH, "mirnetv2_zip.pth"))
    mirror.cut("real_denoising.pth", 50000)
    path = zoo.resolve("mirnetv2_sidd")
    assert mirror.requests == [("real_denoising.pth", None), ("real_denoising.pth", "bytes=50000-")]
    original = _cache(tmp_path, "real_denoising.pth")
    with open(original, "rb") as a, open(os.path.join(PTH, "mirnetv2_zip.pth"), "rb") as b:
        assert a.read() == b.read()
    assert os.path.getsize(original) == size and not os.path.exists(original + ".part")
    assert path == _cache(tmp_path, "mirnetv2_sidd.pdparams")


def test_an_interrupted_download_is_never_taken_whole_and_the_next_run_resumes(mirror, tmp_path):
    mirror.cut("real_denoising.pth", 40000, 30000, 20000)  # every attempt of the first run
    with pytest.raises(UserError) as err:
        zoo.resolve("mirnetv2_sidd")
    original = _cache(tmp_path, "real_denoising.pth")
    assert not os.path.exists(original)
    assert os.path.getsize(original + ".part") == 90000
    assert f"90000 bytes kept in {original}.part, the next run resumes" in str(err.value)
    assert zoo.cached("mirnetv2_sidd") == "no"
    zoo.resolve("mirnetv2_sidd")
    assert mirror.requests[-1] == ("real_denoising.pth", "bytes=90000-")
    with open(original, "rb") as a, open(os.path.join(PTH, "mirnetv2_zip.pth"), "rb") as b:
        assert a.read() == b.read()


def test_a_damaged_cache_file_is_named_with_the_way_to_fetch_again(mirror, tmp_path):
    zoo.resolve("mirnet_sidd")
    original = _cache(tmp_path, "model_denoising.pth")
    with open(original, "r+b") as f:
        f.seek(5000)
        byte = f.read(1)
        f.seek(5000)
        f.write(bytes([byte[0] ^ 1]))
    photo = tmp_path / "photo.png"
    _write16(photo, np.full((16, 16, 3), 0.5))
    proc = _ppmirnet_without_torch("predict", "--model", "mirnet_sidd", "--input", str(photo),
                                   "--output", str(tmp_path / "out"))
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {original} does not match the record "
                                                   f"of its download (SHA-256 ")
    assert lines[0].endswith("it was changed or damaged; fetch it again with: "
                             "ppmirnet download mirnet_sidd --force")
    # A damaged converted file is caught the same way.
    zoo.resolve("mirnet_sidd", force=True)
    converted = _cache(tmp_path, "mirnet_sidd.pdparams")
    with open(converted, "ab") as f:
        f.write(b"\0")
    with pytest.raises(UserError, match=re.escape(f"{converted} does not match the record of its "
                                                  f"download (")):
        zoo.resolve("mirnet_sidd")


def test_offline_or_refused_is_one_line_naming_what_to_fetch_by_hand(mirror, tmp_path):
    dest = _cache(tmp_path, "sr_x4.pth")
    proc = _ppmirnet_without_torch("download", "mirnetv2_realsr_x4")  # not served: 404
    assert proc.returncode == 1
    assert proc.stderr == (f"error: cannot download {mirror.url}/sr_x4.pth (HTTP 404 Not Found): "
                           f"fetch sr_x4.pth by hand from that address and put it at {dest}, or "
                           f"set PPMIRNET_DOWNLOAD_MIRROR to a folder or server that holds it\n")
    mirror.stop()
    proc = _ppmirnet_without_torch("download", "mirnet_sidd")
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: cannot download {mirror.url}/model_denoising.pth (")
    assert lines[0].endswith(f"fetch model_denoising.pth by hand from that address and put it at "
                             f"{_cache(tmp_path, 'model_denoising.pth')}, or set "
                             f"PPMIRNET_DOWNLOAD_MIRROR to a folder or server that holds it")
    assert not os.path.exists(_cache(tmp_path, "model_denoising.pth"))


def test_a_file_put_by_hand_and_a_folder_mirror_are_used(tmp_path, monkeypatch):
    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PPMIRNET_DOWNLOAD_MIRROR", str(tmp_path / "nowhere"))
    with pytest.raises(UserError, match="PPMIRNET_DOWNLOAD_MIRROR=.* is not a folder"):
        zoo.resolve("mirnet_lol")
    os.makedirs(_cache(tmp_path), exist_ok=True)
    shutil.copyfile(os.path.join(PTH, "mirnet_zip.pth"), _cache(tmp_path, "model_lol.pth"))
    assert zoo.resolve("mirnet_lol") == _cache(tmp_path, "mirnet_lol.pdparams")
    assert os.path.isfile(_cache(tmp_path, "model_lol.pth.sha256"))

    folder = tmp_path / "mirror"
    folder.mkdir()
    shutil.copyfile(os.path.join(PTH, "mirnetv2_zip.pth"), folder / "real_denoising.pth")
    monkeypatch.setenv("PPMIRNET_DOWNLOAD_MIRROR", str(folder))
    assert zoo.source_of("mirnetv2_sidd") == str(folder / "real_denoising.pth")
    assert zoo.resolve("mirnetv2_sidd") == _cache(tmp_path, "mirnetv2_sidd.pdparams")


# -- the other commands by name ------------------------------------------------------------------

def test_eval_and_export_by_name(mirror, tmp_path, lite_root):
    from helpers import run_cli

    proc = run_cli("tools/eval.py", "-c", "configs/mirnet_lite.yaml", "--model", "mirnet_sidd",
                   "-o", f"DataLoader.Eval.dataset.root={lite_root}",
                   "-o", f"Global.output_dir={tmp_path / 'eval'}")
    assert proc.returncode == 0, proc.stderr
    assert "records Arch MIRNet(in_channels=3, out_channels=3, n_feat=8" in proc.stdout
    assert "[Eval] psnr:" in proc.stdout
    proc = run_cli("tools/export_model.py", "--model", "mirnetv2_sidd", "--save_dir",
                   str(tmp_path / "inference"))
    assert proc.returncode == 0, proc.stderr
    assert os.path.isfile(tmp_path / "inference" / "inference.pdiparams")


def test_google_drive_sources_go_through_gdown(tmp_path, monkeypatch):
    """The MIRNet files: one Drive file by id, or a file of a Drive folder listed first."""
    calls = []

    class DriveFile:
        def __init__(self, file_id, path):
            self.id, self.path = file_id, path

    def download_folder(url=None, skip_download=False, quiet=False, **kwargs):
        calls.append(("list", url, skip_download))
        return [DriveFile("id-x3", "super_resolution/model_SR_x3.pth"),
                DriveFile("id-x4", "super_resolution/model_SR_x4.pth")]

    def download(id=None, output=None, quiet=False, resume=False, **kwargs):
        calls.append(("get", id, resume))
        if id == "13PGkg3yaFQCvz6ytN99Heh_yyvfxRCdG":
            raise ConnectionError("Failed to retrieve file url")
        shutil.copyfile(os.path.join(PTH, "mirnet_zip.pth"), output)
        return output

    gdown = type(sys)("gdown")
    gdown.download, gdown.download_folder = download, download_folder
    monkeypatch.setitem(sys.modules, "gdown", gdown)
    monkeypatch.setenv("PPMIRNET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PPMIRNET_DOWNLOAD_MIRROR", raising=False)
    assert zoo.resolve("mirnet_realsr_x4") == _cache(tmp_path, "mirnet_realsr_x4.pdparams")
    assert calls == [("list", "https://drive.google.com/drive/folders/1yMtXbk6RXoFfmeRRGu1XfNFSHH6bSUoR",
                      True), ("get", "id-x4", True)]
    with pytest.raises(UserError) as err:
        zoo.resolve("mirnet_sidd")
    assert str(err.value) == (
        "cannot download https://drive.google.com/file/d/13PGkg3yaFQCvz6ytN99Heh_yyvfxRCdG/view "
        "(Failed to retrieve file url): fetch model_denoising.pth by hand from that address and "
        f"put it at {_cache(tmp_path, 'model_denoising.pth')}, or set PPMIRNET_DOWNLOAD_MIRROR to "
        "a folder or server that holds it")
