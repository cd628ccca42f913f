"""Paddle Serving: request handling, model conversion and the running service.

The service tests create (or reuse) the serving environment
``deploy/serving/.env`` (Python 3.8/3.9; about 1 GB and a minute the first
time), export a tiny MIRNet, start the service with ``run.sh`` in its own
process group, send good, bad and concurrent requests to 127.0.0.1 and stop
it; a tiny MIRNet-v2 is served the same way and checked against dygraph. Where ``unshare -n`` works the service runs in a private network
namespace and the requests are sent from inside it. They are skipped only
where no Python 3.8/3.9 exists.
"""

import base64
import contextlib
import ctypes
import importlib.util
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zlib
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import paddle
import pytest

from ppmirnet import processing as P
from ppmirnet.errors import ConfigError, UserError
from ppmirnet.export import export_inference_model
from ppmirnet.modeling import MIRNet, MIRNetV2
from tests.helpers import ROOT

SERVING_DIR = os.path.join(ROOT, "deploy", "serving")
sys.path.insert(0, SERVING_DIR)
import mirnet_service as S  # noqa: E402
RUN_SH = os.path.join(SERVING_DIR, "run.sh")
CONFIG = os.path.join(SERVING_DIR, "config.yml")
TILE, OVERLAP, MAX_PIXELS = 64, 16, 200 * 200
# The service is started as one for another task than the config's default.
TASK = "super-resolution_x4"


def png_bytes(array):
    ok, buf = cv2.imencode(".png", array)
    assert ok
    return buf.tobytes()


def noisy_image(h, w, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    top = 65535 if dtype == np.uint16 else 255
    base = np.linspace(0, top * 0.8, w)[None, :, None] * np.ones((h, 1, 3))
    return np.clip(base + rng.normal(0, top * 0.1, (h, w, 3)), 0, top).astype(dtype)


# ------------------------------------------------------ requests, no server


def test_decode_request_matches_the_shared_decoder():
    img = noisy_image(21, 34)
    rgb, info = S.decode_request({"image": base64.b64encode(png_bytes(img)).decode()})
    ref, ref_info = P.decode_image(png_bytes(img))
    assert rgb.shape == (21, 34, 3) and np.array_equal(rgb, ref)
    assert (info.height, info.width, info.bit_depth, info.channels) == (21, 34, 8, 3)
    # Data URLs and line-wrapped base64 are accepted too.
    text = base64.encodebytes(png_bytes(img)).decode()
    assert "\n" in text
    rgb2, _ = S.decode_request({"image": "data:image/png;base64," + text})
    assert np.array_equal(rgb2, ref)


@pytest.mark.parametrize("fields, code, message", [
    ({"img": "aGVsbG8="}, S.ERR_BAD_REQUEST, 'request must have key "image" (base64 image), got keys [\'img\']'),
    ({}, S.ERR_BAD_REQUEST, 'request must have key "image"'),
    ({"image": ""}, S.ERR_BAD_REQUEST, '"image" is empty'),
    ({"image": "  \n"}, S.ERR_BAD_REQUEST, '"image" is empty'),
    ({"image": "not base64!"}, S.ERR_BAD_REQUEST, '"image" is not valid base64'),
    ({"image": 12}, S.ERR_BAD_REQUEST, '"image" must be a base64 string'),
    ({"image": base64.b64encode(b"hello, not an image").decode()}, S.ERR_BAD_IMAGE,
     'cannot read "image" as an image'),
])
def test_decode_request_rejects_bad_input(fields, code, message):
    with pytest.raises(S.RequestError) as err:
        S.decode_request(fields)
    assert err.value.code == code
    assert message in str(err.value)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_size_limit_is_checked_from_the_header(ext):
    ok, buf = cv2.imencode(ext, np.zeros((300, 200, 3), np.uint8))
    data = buf.tobytes()
    assert S.image_size_from_header(data) == (300, 200)
    with pytest.raises(S.RequestError) as err:
        S.decode_request({"image": base64.b64encode(data).decode()}, max_pixels=MAX_PIXELS)
    assert err.value.code == S.ERR_TOO_LARGE
    assert str(err.value) == ("image of 200x300 (60000 pixels) is larger than the service's limit of "
                              "40000 pixels (op.mirnet.processing.max_pixels)")
    # A format without a parsed header is checked after decoding.
    ok, bmp = cv2.imencode(".bmp", np.zeros((300, 200, 3), np.uint8))
    assert S.image_size_from_header(bmp.tobytes()) is None
    with pytest.raises(S.RequestError, match="60000 pixels"):
        S.decode_request({"image": base64.b64encode(bmp.tobytes()).decode()}, max_pixels=MAX_PIXELS)


def test_reply_round_trip_and_errors():
    img = noisy_image(9, 11)
    rgb, info = P.decode_image(png_bytes(img))
    reply = {"err_no": 0, "err_msg": "", "key": ["image"], "value": [S.encode_reply(rgb, info)]}
    back = cv2.imdecode(np.frombuffer(S.parse_reply(reply), np.uint8), cv2.IMREAD_UNCHANGED)
    assert np.array_equal(back, img)
    with pytest.raises(UserError, match="service error 5002: cannot read"):
        S.parse_reply({"err_no": 5002, "err_msg": "cannot read", "key": [], "value": []})
    with pytest.raises(UserError, match="not a Paddle Serving pipeline reply"):
        S.parse_reply({"error": "x"})
    body = S.build_request(b"\x01\x02")
    assert body == {"key": ["image"], "value": ["AQI="]}


def test_config_overrides_keep_types(tmp_path):
    conf = {"http_port": 1, "op": {"mirnet": {"local_service_conf": {"devices": "", "thread_num": 2}}}}
    S.apply_overrides(conf, ["op.mirnet.local_service_conf.devices=0", "http_port=18090",
                             "op.mirnet.local_service_conf.thread_num=4"])
    service = conf["op"]["mirnet"]["local_service_conf"]
    assert service["devices"] == "0" and service["thread_num"] == 4 and conf["http_port"] == 18090
    # TIPC passes the empty string quoted.
    S.apply_overrides(conf, ['op.mirnet.local_service_conf.devices=""'])
    assert service["devices"] == ""
    with pytest.raises(ConfigError, match="no section op.other"):
        S.apply_overrides(conf, ["op.other.x=1"])
    with pytest.raises(ConfigError, match="must look like Section.key=value"):
        S.apply_overrides(conf, ["http_port"])


def test_service_config_checks(tmp_path):
    server = tmp_path / "serving_server"
    server.mkdir()
    (server / "serving_server_conf.prototxt").write_text("")
    overrides = [f"op.mirnet.local_service_conf.model_config={server}"]
    conf, processing = S.load_service_config(CONFIG, overrides)
    assert processing == dict(S.DEFAULT_PROCESSING, model={"name": "MIRNet", "task": "denoising"})
    assert "processing" not in conf["op"]["mirnet"] and "model" not in conf["op"]["mirnet"]
    _, processing = S.load_service_config(CONFIG, overrides + [
        "op.mirnet.model.task=real super-resolution x4 (RealSR)"])
    assert processing["model"] == {"name": "MIRNet", "task": "real super-resolution x4 (RealSR)"}
    with pytest.raises(ConfigError, match="unknown key op.mirnet.model.scale"):
        S.load_service_config(CONFIG, overrides + ["op.mirnet.model.scale=4"])
    with pytest.raises(ConfigError, match="op.mirnet.model.task must be a non-empty string"):
        S.load_service_config(CONFIG, overrides + ["op.mirnet.model.task=''"])
    assert conf["op"]["mirnet"]["local_service_conf"]["model_config"] == str(server)
    assert conf["op"]["mirnet"]["local_service_conf"]["client_type"] == "local_predictor"
    assert (conf["http_port"], conf["rpc_port"]) == (18080, 18085)
    _, processing = S.load_service_config(CONFIG, overrides + ["op.mirnet.processing.tile=256"])
    assert processing["tile"] == 256
    with pytest.raises(ConfigError, match=r"unknown key\(s\) op.mirnet.processing.tiles"):
        S.load_service_config(CONFIG, overrides + ["op.mirnet.processing.tiles=256"])
    with pytest.raises(ConfigError, match="tile must be a multiple of 8"):
        S.load_service_config(CONFIG, overrides + ["op.mirnet.processing.tile=100"])
    with pytest.raises(ConfigError, match="is not a converted model"):
        S.load_service_config(CONFIG, [f"op.mirnet.local_service_conf.model_config={tmp_path}"])
    with pytest.raises(ConfigError, match="config not found"):
        S.load_service_config(str(tmp_path / "none.yml"))


def test_converter_refuses_a_pir_only_model(tmp_path):
    (tmp_path / "inference.json").write_text("{}")
    (tmp_path / "inference.pdiparams").write_bytes(b"")
    proc = subprocess.run([sys.executable, os.path.join(SERVING_DIR, "convert.py"), f"--dirname={tmp_path}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        f"error: {tmp_path} has only a Paddle 3 .json program; Paddle Serving 0.9 reads the legacy "
        ".pdmodel: export with legacy_format=True (tools/export_model.py writes it)")


def test_run_sh_refuses_a_missing_model(tmp_path):
    proc = subprocess.run(["bash", RUN_SH, "start", f"--model_dir={tmp_path}/none", f"--run_dir={tmp_path}"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"error: model folder not found: {tmp_path}/none"


# ------------------------------------------------------------ the service


def _print_line(config, text):
    """Show ``text`` on the terminal even under output capture (a skip reason is otherwise hidden)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capman = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None:
        return
    with capman.global_and_fixture_disabled() if capman else contextlib.nullcontext():
        reporter.write_line("")
        reporter.write_line(text)


@pytest.fixture(scope="module")
def serving_python(request):
    """The serving environment's python, creating the environment if needed."""
    proc = subprocess.run(["bash", os.path.join(SERVING_DIR, "setup_env.sh")],
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode == 3 and "none was found" in proc.stderr:
        reason = "Paddle Serving tests skipped: no Python 3.8/3.9 on this machine (" + proc.stderr.strip() + ")"
        _print_line(request.config, reason)
        pytest.skip(reason)
    assert proc.returncode == 0, proc.stderr[-4000:]
    python = proc.stdout.strip().splitlines()[-1]
    assert os.path.isfile(python)
    return python


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny MIRNet, exported with the legacy program, and its dygraph runner."""
    paddle.seed(5)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1)
    model.eval()
    out = tmp_path_factory.mktemp("serving_model")
    export_inference_model(model, str(out), legacy_format=True)

    def runner(batch):
        with paddle.no_grad():
            return model(paddle.to_tensor(batch)).numpy()

    return str(out), runner


def _netns_usable():
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    probe = subprocess.run(["unshare", "-n", "sh", "-c", "ip link set lo up"], capture_output=True)
    if probe.returncode != 0:
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    with open("/proc/thread-self/ns/net") as own:
        return libc.setns(own.fileno(), 0x40000000) == 0


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """A started service: where it listens and how to reach it."""

    def __init__(self, run_dir, port, netns, task, model="MIRNet"):
        self.run_dir, self.port, self.netns_enabled = run_dir, port, netns
        # what the service says it runs (op.mirnet.model.name and .task)
        self.model, self.task = model, task
        self.url = f"http://127.0.0.1:{port}/mirnet/prediction"
        with open(os.path.join(run_dir, "server.pid")) as f:
            self.pid = int(f.read())

    @contextlib.contextmanager
    def netns(self):
        """Run the calling thread (and what it starts) in the service's network namespace."""
        if not self.netns_enabled:
            yield
            return
        libc = ctypes.CDLL(None, use_errno=True)
        with open("/proc/thread-self/ns/net") as own, open(f"/proc/{self.pid}/ns/net") as target:
            assert libc.setns(target.fileno(), 0x40000000) == 0, os.strerror(ctypes.get_errno())
            try:
                yield
            finally:
                assert libc.setns(own.fileno(), 0x40000000) == 0, os.strerror(ctypes.get_errno())

    def post_raw(self, data):
        req = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
        with self.netns():
            try:
                with urllib.request.urlopen(req, timeout=120) as resp:
                    return resp.status, json.loads(resp.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

    def post(self, body):
        status, reply = self.post_raw(json.dumps(body).encode())
        assert status == 200, reply
        return reply

    def restore(self, image_bytes):
        reply = self.post(S.build_request(image_bytes))
        assert reply["err_no"] == 0, reply
        # The reply names what the service runs (config.yml, op.mirnet.model).
        assert reply["key"] == ["image", "model", "task"]
        assert reply["value"][1:] == [self.model, self.task]
        return cv2.imdecode(np.frombuffer(base64.b64decode(reply["value"][0]), np.uint8),
                            cv2.IMREAD_UNCHANGED)


def _group_alive(pgid):
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def service(serving_python, exported, tmp_path_factory):
    """The service started by run.sh (own process group), stopped at the end."""
    run_dir = str(tmp_path_factory.mktemp("serving_run"))
    netns = _netns_usable()
    port = 18080 if netns else _free_port()
    rpc_port = 18085 if netns else _free_port()
    cmd = ["bash", RUN_SH, "start", f"--model_dir={exported[0]}", f"--run_dir={run_dir}",
           f"--port={port}", f"--rpc_port={rpc_port}", f"--netns={netns}", "--timeout=240",
           f"--opt=op.mirnet.processing.tile={TILE}", f"--opt=op.mirnet.processing.tile_overlap={OVERLAP}",
           f"--opt=op.mirnet.processing.max_pixels={MAX_PIXELS}", f"--opt=op.mirnet.model.task={TASK}"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith(f"mirnet service ready: http://127.0.0.1:{port}/mirnet/prediction")
    svc = Service(run_dir, port, netns, TASK)
    with open(os.path.join(run_dir, "server.log")) as f:
        assert f"mirnet service: MIRNet for {TASK} at http://127.0.0.1:{port}/mirnet/prediction" in f.read()
    svc.start_seconds = time.perf_counter() - start
    try:
        yield svc
    finally:
        subprocess.run(["bash", RUN_SH, "stop", f"--run_dir={run_dir}"], capture_output=True, timeout=120)
        if _group_alive(svc.pid):  # only if run.sh stop itself failed
            os.killpg(svc.pid, signal.SIGKILL)


def test_service_runs_in_its_own_process_group(service, exported):
    assert os.getpgid(service.pid) == service.pid != os.getpgrp()
    assert os.getsid(service.pid) == service.pid
    status = subprocess.run(["bash", RUN_SH, "status", f"--run_dir={service.run_dir}"],
                            capture_output=True, text=True, timeout=30)
    assert status.returncode == 0 and status.stdout.strip() == f"running (process group {service.pid})"
    # Converted once; a second start is refused while it runs.
    again = subprocess.run(["bash", RUN_SH, "start", f"--model_dir={exported[0]}",
                            f"--run_dir={service.run_dir}"], capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and "already running" in again.stderr


def test_converted_model(service, exported):
    server = os.path.join(service.run_dir, "serving_server")
    assert sorted(os.listdir(server)) == ["inference.pdiparams", "inference.pdmodel",
                                          "serving_server_conf.prototxt",
                                          "serving_server_conf.stream.prototxt"]
    with open(os.path.join(server, "inference.pdiparams"), "rb") as a, \
            open(os.path.join(exported[0], "inference.pdiparams"), "rb") as b:
        assert a.read() == b.read()
    conf = open(os.path.join(server, "serving_server_conf.prototxt")).read()
    assert 'feed_var {\n  name: "x"\n  alias_name: "x"\n  is_lod_tensor: false\n  feed_type: 1\n  shape: 3\n}' in conf
    assert "fetch_var {" in conf and "fetch_type: 1" in conf
    client = os.path.join(service.run_dir, "serving_client")
    assert open(os.path.join(client, "serving_client_conf.prototxt")).read() == conf


def test_served_output_equals_paddle_inference(service, exported, tmp_path):
    img = noisy_image(37, 45, seed=1)  # odd size: padded to 40x48 and cropped back
    src = tmp_path / "noisy.png"
    src.write_bytes(png_bytes(img))
    out = service.restore(src.read_bytes())
    assert out.shape == (37, 45, 3) and out.dtype == np.uint8

    proc = subprocess.run([sys.executable, os.path.join(ROOT, "deploy", "inference", "infer.py"),
                           f"--model_dir={exported[0]}", f"--image_dir={src}", f"--output_dir={tmp_path / 'inf'}"],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, GLOG_minloglevel="2"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    ref = cv2.imread(str(tmp_path / "inf" / "noisy.png"), cv2.IMREAD_UNCHANGED)
    assert ref.shape == out.shape
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
    # The model is not the identity: the reply really went through it.
    assert np.abs(out.astype(int) - img.astype(int)).mean() > 5


def test_16bit_gray_keeps_its_layout(service, exported):
    img = noisy_image(23, 30, seed=2, dtype=np.uint16)[:, :, 0]
    out = service.restore(png_bytes(img))
    assert out.shape == (23, 30) and out.dtype == np.uint16
    rgb, info = P.decode_image(png_bytes(img))
    ref = P.to_storage(P.restore(exported[1], rgb), info)
    # One 8-bit grey level, in 16-bit units.
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 257


def test_large_image_is_tiled(service, exported):
    img = noisy_image(100, 90, seed=3)  # larger than the 64-pixel tile on both sides
    out = service.restore(png_bytes(img))
    rgb, info = P.decode_image(png_bytes(img))
    tiled = P.to_storage(P.restore(exported[1], rgb, tile=TILE, overlap=OVERLAP), info)
    assert out.shape == (100, 90, 3)
    assert np.abs(out.astype(int) - tiled.astype(int)).max() <= 1


def test_bad_requests_are_answered_and_the_service_keeps_serving(service):
    cases = [
        ({"key": ["img"], "value": ["aGVsbG8="]}, S.ERR_BAD_REQUEST, 'request must have key "image"'),
        ({"key": ["image"], "value": ["not base64!"]}, S.ERR_BAD_REQUEST, '"image" is not valid base64'),
        ({"key": ["image"], "value": [""]}, S.ERR_BAD_REQUEST, '"image" is empty'),
        ({"key": ["image"], "value": [base64.b64encode(b"GIF89a nonsense").decode()]}, S.ERR_BAD_IMAGE,
         'cannot read "image" as an image'),
        ({"key": ["image"], "value": []}, S.ERR_BAD_REQUEST, "request has 1 key(s) but 0 value(s)"),
        ({}, S.ERR_BAD_REQUEST, 'request must have key "image"'),
        (S.build_request(png_bytes(np.zeros((250, 200, 3), np.uint8))), S.ERR_TOO_LARGE,
         "image of 200x250 (50000 pixels) is larger than the service's limit of 40000 pixels"),
    ]
    for body, code, message in cases:
        reply = service.post(body)
        assert reply["err_no"] == code, (body, reply)
        assert message in reply["err_msg"]
        assert reply["value"] == []
    # Not JSON at all: the HTTP gateway refuses it.
    status, reply = service.post_raw(b"{not json")
    assert status == 400 and reply["code"] != 0 and "invalid character" in reply["message"]
    out = service.restore(png_bytes(noisy_image(16, 24, seed=4)))
    assert out.shape == (16, 24, 3)


def test_ten_concurrent_requests(service):
    images = [noisy_image(24 + i, 32, seed=10 + i) for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        outs = list(pool.map(lambda im: service.restore(png_bytes(im)), images))
    assert [o.shape for o in outs] == [im.shape for im in images]
    # Each reply belongs to its own request: the same image alone gives the same answer.
    assert np.array_equal(outs[7], service.restore(png_bytes(images[7])))


def test_pipeline_http_client(service, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(noisy_image(20, 28, seed=20)))
    cv2.imwrite(str(folder / "b.jpg"), noisy_image(19, 17, seed=21))
    out_dir = tmp_path / "out"
    cmd = [sys.executable, os.path.join(SERVING_DIR, "pipeline_http_client.py"), f"--image_path={folder}",
           f"--url={service.url}", f"--output_dir={out_dir}"]
    with service.netns():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith(f"image: {folder / 'a.png'}, status: ok, time_ms: ")
    assert lines[-1].startswith("images: 2, ok: 2, failed: 0, mean_time_ms: ")
    assert cv2.imread(str(out_dir / "a.png")).shape == (20, 28, 3)
    assert cv2.imread(str(out_dir / "b.png")).shape == (19, 17, 3)

    (folder / "c.png").write_bytes(b"broken")
    with service.netns():
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1
    assert f"image: {folder / 'c.png'}, status: failed, error: service error 5002" in proc.stdout
    assert proc.stderr.strip() == "error: 1 of 3 image(s) failed"


def test_stop_leaves_nothing_running(service):
    pgid = service.pid
    assert _group_alive(pgid)
    proc = subprocess.run(["bash", RUN_SH, "stop", f"--run_dir={service.run_dir}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == f"[run.sh] stopped (process group {pgid})"
    assert not _group_alive(pgid)
    assert not os.path.exists(os.path.join(service.run_dir, "server.pid"))
    ps = subprocess.run(["ps", "-eo", "pid,pgid,args"], capture_output=True, text=True).stdout
    assert not [line for line in ps.splitlines() if service.run_dir in line]
    if not service.netns_enabled:
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", service.port)) != 0
    again = subprocess.run(["bash", RUN_SH, "stop", f"--run_dir={service.run_dir}"],
                           capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and again.stderr.strip() == "[run.sh] not running"


def _listening(pid, port):
    """Local addresses listening on ``port`` in the network namespace of ``pid`` (from /proc)."""
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        with open(f"/proc/{pid}/net/{table}") as f:
            next(f)
            for line in f:
                local, state = line.split()[1], line.split()[3]
                addr, hexport = local.split(":")
                if state == "0A" and int(hexport, 16) == port:
                    found.append(addr)
    return found


LOOPBACK = {"0100007F", "0000000000000000FFFF00000100007F", "00000000000000000000000001000000"}


@contextlib.contextmanager
def _running(model_dir, run_dir, opts, task="denoising", model="MIRNet"):
    """A service started by run.sh on ``model_dir`` with config overrides ``opts``, stopped after."""
    netns = _netns_usable()
    port = 18080 if netns else _free_port()
    rpc_port = 18085 if netns else _free_port()
    cmd = ["bash", RUN_SH, "start", f"--model_dir={model_dir}", f"--run_dir={run_dir}",
           f"--port={port}", f"--rpc_port={rpc_port}", f"--netns={netns}", "--timeout=240"]
    proc = subprocess.run(cmd + [f"--opt={opt}" for opt in opts], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    svc = Service(run_dir, port, netns, task, model)
    svc.rpc_port, svc.ready_line = rpc_port, proc.stdout.strip()
    try:
        yield svc
    finally:
        subprocess.run(["bash", RUN_SH, "stop", f"--run_dir={run_dir}"], capture_output=True, timeout=120)
        if _group_alive(svc.pid):
            os.killpg(svc.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def photo_service(serving_python, tmp_path_factory):
    """The service with the smallest MIRNet and a 12-megapixel limit, for full-size photos."""
    paddle.seed(6)
    model = MIRNet(n_feat=8, n_RRG=1, n_MSRB=1, height=1, width=1)
    model.eval()
    model_dir = str(tmp_path_factory.mktemp("photo_model"))
    export_inference_model(model, model_dir, legacy_format=True)
    run_dir = str(tmp_path_factory.mktemp("photo_run"))
    # config.yml's task
    with _running(model_dir, run_dir, [f"op.mirnet.processing.max_pixels={4000 * 3000}"]) as svc:
        yield svc


def test_both_ports_listen_on_loopback_only_and_the_ready_line_says_so(photo_service):
    svc = photo_service
    assert svc.ready_line.startswith(
        f"mirnet service ready: http://127.0.0.1:{svc.port}/mirnet/prediction (listening on "
        f"127.0.0.1 only: HTTP {svc.port}, gRPC {svc.rpc_port}; ")
    for port in (svc.port, svc.rpc_port):
        addresses = _listening(svc.pid, port)
        assert addresses and set(addresses) <= LOOPBACK, (port, addresses)


def test_a_12_megapixel_photo_round_trip(photo_service):
    """4000x3000: the reply (a PNG of about 30 MB in base64) passes every hop."""
    rng = np.random.default_rng(12)
    img = rng.integers(0, 256, (3000, 4000, 3), dtype=np.uint8)
    data = png_bytes(img)
    out = photo_service.restore(data)
    assert out.shape == (3000, 4000, 3) and out.dtype == np.uint8
    assert len(base64.b64encode(cv2.imencode(".png", out)[1])) > 4 * 2 ** 20  # over gRPC's default
    assert float(np.abs(out.astype(float) - img).mean()) < 64  # a restoration, not noise


def test_beyond_max_pixels_is_refused_from_the_header(photo_service):
    """A PNG declaring 4001x3000 is answered at once (no decoding, no pixel read)."""
    def chunk(kind, payload):
        return (len(payload).to_bytes(4, "big") + kind + payload
                + (zlib.crc32(kind + payload) & 0xFFFFFFFF).to_bytes(4, "big"))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4001, 3000, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    tic = time.perf_counter()
    reply = photo_service.post(S.build_request(png))
    assert reply["err_no"] == S.ERR_TOO_LARGE
    assert "image of 4001x3000 (12003000 pixels) is larger than the service's limit of 12000000" \
        in reply["err_msg"]
    assert time.perf_counter() - tic < 10
    # A body larger than any accepted image is refused before it is read.
    spec = importlib.util.spec_from_file_location("gateway", os.path.join(SERVING_DIR, "gateway.py"))
    gateway = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gateway)
    limit = gateway.message_limit(4000 * 3000)
    req = urllib.request.Request(photo_service.url, data=b"", method="POST",
                                 headers={"Content-Length": str(limit + 1)})
    with photo_service.netns():
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
    assert err.value.code == 413


# ------------------------------------------------------------ MIRNet-v2


@pytest.fixture
def v2_service(serving_python, tmp_path):
    """A tiny MIRNet-v2, exported and served as MIRNet is (run.sh, the same op); its dygraph model."""
    paddle.seed(7)
    model = MIRNetV2(n_feat=16, n_MRB=1)
    model.eval()
    model_dir = str(tmp_path / "model")
    export_inference_model(model, model_dir, legacy_format=True)
    with _running(model_dir, str(tmp_path / "run"), ["op.mirnet.model.name=MIRNetV2"],
                  model="MIRNetV2") as svc:
        yield svc, model


def test_served_mirnetv2_equals_dygraph(v2_service):
    """16-bit images, so the reply resolves 1.5e-5: within 1e-4 of dygraph, padded as dygraph pads."""
    svc, model = v2_service
    # A multiple of 4, and odd: MIRNet-v2 reflect-pads 33x42 to 36x44 (not 40x48) and crops back.
    for h, w in ((32, 48), (33, 42)):
        img = noisy_image(h, w, seed=h, dtype=np.uint16)
        out = svc.restore(png_bytes(img))
        assert out.shape == (h, w, 3) and out.dtype == np.uint16
        rgb, _ = P.decode_image(png_bytes(img))
        with paddle.no_grad():
            ref = model(paddle.to_tensor(P.to_batch([rgb]))).numpy()
        ref = np.clip(P.from_batch(ref)[0], 0.0, 1.0)[:, :, ::-1]  # OpenCV's BGR, as the reply
        assert np.abs(out / 65535.0 - ref).max() < 1e-4, (h, w)
        # The model is not the identity: the reply really went through it.
        assert np.abs(out / 65535.0 - img / 65535.0).mean() > 0.01
