"""The service's HTTP front: Paddle Serving's JSON over HTTP, forwarded to the pipeline's gRPC.

Paddle Serving 0.9 ships its HTTP gateway as a compiled Go proxy. Its gRPC
client keeps gRPC's default 4 MiB limit on replies, so the restored PNG of a
photo above about 1.5 megapixels was computed and then dropped ("received
message larger than max"), and it listens on every interface with no
setting to change either. This gateway speaks the same JSON on the same URL
(``POST /<op>/prediction`` with ``{"key": [...], "value": [...]}``, reply
``{"err_no", "err_msg", "key", "value", "tensors"}``), with message limits
derived from ``max_pixels``, on one address. It runs in the service's
process (a thread), started by ``web_service.py``.
"""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A PNG is never larger than its raw pixels plus a little (stored blocks):
# 16-bit RGBA is 8 bytes per pixel; base64 makes 4 characters of 3 bytes.
BYTES_PER_PIXEL = 8
OVERHEAD = 1 << 20
UNLIMITED = 2 ** 31 - 1


def message_limit(max_pixels):
    """Bytes a request or reply of an image of ``max_pixels`` may take (0: no pixel limit)."""
    if not max_pixels:
        return UNLIMITED
    return min(UNLIMITED, max_pixels * BYTES_PER_PIXEL * 4 // 3 + OVERHEAD)


def grpc_options(limit):
    """gRPC channel/server options lifting the 4 MiB default to ``limit`` both ways."""
    return [("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)]


def _reply_json(resp):
    return {"err_no": resp.err_no, "err_msg": resp.err_msg, "key": list(resp.key),
            "value": list(resp.value), "tensors": []}


def make_server(host, http_port, rpc_address, op_name, limit, timeout_s=600):
    """A ``ThreadingHTTPServer`` on ``(host, http_port)`` forwarding to ``rpc_address``."""
    import grpc
    from paddle_serving_server.pipeline.proto import pipeline_service_pb2, pipeline_service_pb2_grpc

    channel = grpc.insecure_channel(rpc_address, options=grpc_options(limit))
    stub = pipeline_service_pb2_grpc.PipelineServiceStub(channel)
    path = f"/{op_name}/prediction"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):  # requests are logged by the pipeline
            pass

        def do_POST(self):
            if self.path.split("?")[0] != path:
                self._send(404, {"code": 5, "message": f"not found: {self.path} (POST {path})"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > limit:
                # Refused unread: larger than any image the service accepts.
                self.close_connection = True
                self._send(413, {"code": 8, "message": f"request of {length} bytes is larger "
                                                      f"than the service's limit of {limit}"})
                return
            try:
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise ValueError("expected a JSON object")
                request = pipeline_service_pb2.Request(
                    key=[str(k) for k in body.get("key") or []],
                    value=[str(v) for v in body.get("value") or []],
                    name=op_name, method="prediction", logid=int(body.get("logid") or 0))
            except (ValueError, TypeError) as err:
                self._send(400, {"code": 3, "message": f"invalid character or structure in the "
                                                      f"JSON request: {err}"})
                return
            try:
                resp = stub.inference(request, timeout=timeout_s)
            except grpc.RpcError as err:
                self._send(503, {"code": 14, "message": f"pipeline unavailable: {err.details()}"})
                return
            self._send(200, _reply_json(resp))

        def do_GET(self):
            self._send(405, {"code": 12, "message": f"use POST {path}"})

    server = ThreadingHTTPServer((host, http_port), Handler)
    server.daemon_threads = True
    return server


def start_in_thread(make, rpc_address):
    """Once ``rpc_address`` accepts connections, serve ``make()`` from a daemon thread."""

    def run():
        while True:
            try:
                socket.create_connection(rpc_address, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        make().serve_forever()

    thread = threading.Thread(target=run, name="http-gateway", daemon=True)
    thread.start()
    return thread
