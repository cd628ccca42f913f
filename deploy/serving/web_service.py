"""MIRNet restoration service (denoising, super-resolution or enhancement) on Paddle Serving's pipeline.

Run from the serving environment (``deploy/serving/.env``, Python 3.8/3.9)::

    cd deploy/serving
    .env/bin/python web_service.py --config=config.yml \
        --opt op.mirnet.local_service_conf.devices="" op.mirnet.processing.tile=256

Any ``key.path=value`` of config.yml can be overridden, after ``--opt`` /
``-o`` or on its own. Then ``POST http://<host>:<http_port>/mirnet/prediction``
with ``{"key": ["image"], "value": ["<base64 image>"]}``; see README.md. Both
ports listen on ``host`` only (default 127.0.0.1; 0.0.0.0 for every interface).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from ppmirnet.cli import run_tool  # noqa: E402
from mirnet_service import OP_NAME, check_ports_free, load_service_config  # noqa: E402


def parse_args(argv=None):
    """Command-line flags (``--flag=value`` works too)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-c", "--config", default=os.path.join(HERE, "config.yml"),
                        help="service configuration (default: config.yml beside this script)")
    parser.add_argument("-o", "--opt", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                        help="override config keys, e.g. op.mirnet.local_service_conf.devices=0")
    parser.add_argument("--log_dir", default=os.path.join(HERE, "output"),
                        help="where Paddle Serving writes PipelineServingLogs/ and ProcessInfo.json")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="more overrides")
    return parser.parse_args(argv)


def build_service(processing):
    """The WebService whose DAG is request -> MIRNet op -> response."""
    import numpy as np
    from paddle_serving_server.pipeline import RequestOp, ResponseOp
    from paddle_serving_server.pipeline.channel import ChannelDataErrcode
    from paddle_serving_server.web_service import Op, WebService

    from ppmirnet.processing import from_batch, run_tiled, run_whole, to_batch
    from mirnet_service import (ERR_BAD_REQUEST, IMAGE_KEY, OP_NAME, PROCESSING_KEY, RequestError,
                                decode_request, encode_reply, memory_plan)
    from ppmirnet.memory import Budget

    class MIRNetRequestOp(RequestOp):
        """Paddle Serving's request unpacking, with a clear error for unpaired key/value lists."""

        def unpack_request_package(self, request):
            if len(request.key) != len(request.value):
                return ({}, request.logid, ERR_BAD_REQUEST,
                        f"request has {len(request.key)} key(s) but {len(request.value)} value(s)")
            return super().unpack_request_package(request)

    class MIRNetOp(Op):
        """Decode the request image, restore it (tiled if large), reply with a PNG."""

        def init_op(self):
            self.processing = processing
            # ImageInfo of each request between preprocess and postprocess.
            self.infos = {}

        def preprocess(self, input_dicts, data_id=0, log_id=0):
            (_, fields), = input_dicts.items()
            try:
                budget = None
                if self.processing["max_memory"] and not self.processing["tile"]:
                    budget = Budget(self.processing["max_memory"],
                                    source=f"op.{OP_NAME}.{PROCESSING_KEY}.max_memory")
                rgb, info = decode_request(fields, self.processing["max_pixels"], budget)
            except RequestError as err:
                return {}, True, err.code, str(err)
            # A request that failed in process() never reaches postprocess():
            # forget the oldest entries rather than let them pile up.
            while len(self.infos) >= 64:
                self.infos.pop(next(iter(self.infos)))
            self.infos[data_id] = info
            name = self.client.feed_names_[0]
            return {name: to_batch([rgb])}, False, None, ""

        def predict_batch(self, batch):
            fetched = self.client.predict(feed={self.client.feed_names_[0]: batch},
                                          fetch=None, batch=True)
            return next(iter(fetched.values()))

        def process(self, feed_batch, typical_logid=0):
            batch = feed_batch[0][self.client.feed_names_[0]]
            try:
                tile, overlap = memory_plan(self.processing, batch.shape[2], batch.shape[3])
            except RequestError as err:
                return {}, err.code, str(err)
            if tile:
                out = run_tiled(self.predict_batch, batch, tile, overlap)
            else:
                out = run_whole(self.predict_batch, batch)
            return {"restored": out}, ChannelDataErrcode.OK.value, ""

        def postprocess(self, input_data, fetch_data, data_id=0, log_id=0):
            info = self.infos.pop(data_id)
            rgb = np.clip(from_batch(fetch_data["restored"])[0], 0.0, 1.0)
            model = self.processing["model"]
            return {IMAGE_KEY: encode_reply(rgb, info), "model": model["name"],
                    "task": model["task"]}, None, ""

    class MIRNetService(WebService):
        """Pipeline with a single MIRNet op."""

        def get_pipeline_response(self, read_op):
            return MIRNetOp(name=OP_NAME, input_ops=[read_op])

        def prepare_pipeline_config(self, yml_file=None, yml_dict=None):
            # As WebService's, with the request op above.
            last_op = self.get_pipeline_response(MIRNetRequestOp())
            self._server.set_response_op(ResponseOp(input_ops=[last_op]))
            self._server.prepare_server(yml_file=yml_file, yml_dict=yml_dict)

    return MIRNetService(name=OP_NAME)


def _host_port(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def bind_grpc_to(host):
    """Make the pipeline's gRPC server listen on ``host`` only.

    Paddle Serving 0.9 binds ``[::]:<rpc_port>`` (every interface) with no
    setting; its server is made with ``grpc.server``, so the address is
    rewritten there, for this process only.
    """
    import grpc

    make = grpc.server

    def server(*args, **kwargs):
        srv = make(*args, **kwargs)
        add = srv.add_insecure_port
        srv.add_insecure_port = lambda address: add(_host_port(host, address.rsplit(":", 1)[1]))
        return srv

    grpc.server = server


def main(argv=None):
    """Load the config, build the pipeline and serve until killed."""
    args = parse_args(argv)
    conf, processing = load_service_config(args.config, args.opt + args.overrides)
    # Ours, not Paddle Serving's: the address both ports listen on.
    host = str(conf.pop("host", None) or "127.0.0.1")
    check_ports_free(conf)
    log_dir = os.path.abspath(args.log_dir)
    os.makedirs(log_dir, exist_ok=True)
    # Read by Paddle Serving at import time: keep its logs out of the source tree.
    os.environ["SERVING_HOME"] = log_dir
    os.environ["SERVING_LOG_PATH"] = log_dir
    service = build_service(processing)
    service.prepare_pipeline_config(yml_dict=conf)
    # Paddle Serving's Go gateway (4 MiB replies, every interface) is replaced
    # by gateway.py: a non-positive http_port makes the pipeline skip it.
    from gateway import make_server, message_limit, start_in_thread

    limit = message_limit(processing["max_pixels"])
    everywhere = host in ("0.0.0.0", "::")
    rpc_host = "127.0.0.1" if everywhere else host
    service._server._http_port = -1
    bind_grpc_to(host)
    # Opened once the pipeline listens: its op processes are forked before,
    # so none of them inherits the HTTP socket.
    start_in_thread(lambda: make_server(host, conf["http_port"],
                                        _host_port(rpc_host, conf["rpc_port"]), OP_NAME, limit),
                    (rpc_host, conf["rpc_port"]))
    where = "all interfaces" if everywhere else f"{host} only"
    model = processing["model"]
    print(f"mirnet service: {model['name']} for {model['task']} at http://{_host_port(rpc_host, conf['http_port'])}/{OP_NAME}/prediction "
          f"(HTTP {conf['http_port']} and gRPC {conf['rpc_port']} on {where}; messages up to "
          f"{limit} bytes; logs {log_dir})", flush=True)
    service.run_service()


if __name__ == "__main__":
    sys.exit(run_tool(main))
