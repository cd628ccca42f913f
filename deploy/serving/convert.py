"""Convert an exported inference model into Paddle Serving's model folders.

Same flags as Paddle Serving's ``python -m paddle_serving_client.convert``
(which no longer runs: it imports ``paddle.fluid``)::

    python deploy/serving/convert.py --dirname=inference/ \
        --model_filename=inference.pdmodel --params_filename=inference.pdiparams \
        --serving_server=deploy/serving/serving_server --serving_client=deploy/serving/serving_client

It needs ``paddle_serving_client``, which exists only for Python 3.8/3.9:
started from another environment it re-runs itself with the serving
environment's Python (``deploy/serving/.env``, made by ``setup_env.sh``).
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, ROOT)

from ppmirnet.cli import run_tool  # noqa: E402
from ppmirnet.errors import MissingDependencyError  # noqa: E402

SERVING_PYTHON = os.path.join(HERE, ".env", "bin", "python")


def parse_args(argv=None):
    """Command-line flags (``--flag=value`` works too)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dirname", required=True, help="folder of the exported inference model")
    parser.add_argument("--model_filename", default=None,
                        help="program file in --dirname (default: its only *.pdmodel)")
    parser.add_argument("--params_filename", default=None,
                        help="parameters file in --dirname (default: its only *.pdiparams)")
    parser.add_argument("--serving_server", default="serving_server",
                        help="output folder read by the server (default: serving_server)")
    parser.add_argument("--serving_client", default="serving_client",
                        help="output folder of the client configuration (default: serving_client)")
    return parser.parse_args(argv)


def _serving_client_available():
    try:
        import paddle_serving_client.proto  # noqa: F401
    except ImportError:
        return False
    return True


def main(argv=None):
    """Convert, re-running under the serving environment when needed."""
    args = parse_args(argv)
    from mirnet_service import convert_to_serving, model_files

    # Check the model first: a wrong folder is reported the same everywhere.
    model_files(args.dirname, args.model_filename, args.params_filename)
    if not _serving_client_available():
        if os.path.realpath(sys.executable) != os.path.realpath(SERVING_PYTHON) and os.path.isfile(SERVING_PYTHON):
            os.execv(SERVING_PYTHON, [SERVING_PYTHON, os.path.abspath(__file__)] +
                     list(sys.argv[1:] if argv is None else argv))
        raise MissingDependencyError(
            "paddle_serving_client is not installed here and the serving environment "
            f"{os.path.dirname(os.path.dirname(SERVING_PYTHON))} does not exist; "
            "create it with: bash deploy/serving/setup_env.sh")
    server, client = convert_to_serving(args.dirname, args.serving_server, args.serving_client,
                                        args.model_filename, args.params_filename)
    print(f"serving_server: {server}")
    print(f"serving_client: {client}")


if __name__ == "__main__":
    sys.exit(run_tool(main))
