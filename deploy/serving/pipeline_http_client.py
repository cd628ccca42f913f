"""Send images to the MIRNet service and save the denoised PNGs.

    python deploy/serving/pipeline_http_client.py --image_path=noisy/ \
        --url=http://127.0.0.1:18080/mirnet/prediction --output_dir=output/serving_results

Prints one line per image (status, request time) and a summary; exits 1 if any
image failed. Runs under the project's environment or the serving one (only
the standard library, OpenCV and numpy are needed).
"""

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from ppmirnet.cli import run_tool  # noqa: E402
from ppmirnet.errors import UserError  # noqa: E402
from ppmirnet.processing import list_images  # noqa: E402
from mirnet_service import build_request, parse_reply  # noqa: E402
from ppmirnet.utils.io import atomic_path  # noqa: E402


def parse_args(argv=None):
    """Command-line flags (``--flag=value`` works too)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image_path", required=True, help="an image file or a folder of images")
    parser.add_argument("--url", default="http://127.0.0.1:18080/mirnet/prediction",
                        help="service endpoint (default: %(default)s)")
    parser.add_argument("--output_dir", default="output/serving_results",
                        help="where the denoised PNGs are written (default: %(default)s)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per request")
    return parser.parse_args(argv)


def post(url, body, timeout):
    """POST ``body`` as JSON and return the decoded JSON reply."""
    req = urllib.request.Request(url, data=json.dumps(body).encode("utf-8"),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except urllib.error.HTTPError as err:
        raise UserError(f"HTTP {err.code} from {url}: {err.read()[:300].decode('utf-8', 'replace')}") from None
    except (urllib.error.URLError, OSError) as err:
        raise UserError(f"cannot reach {url}: {getattr(err, 'reason', err)}") from None
    except ValueError:
        raise UserError(f"{url} did not answer with JSON") from None


def main(argv=None):
    """Restore every image of ``--image_path`` through the service."""
    args = parse_args(argv)
    files = list_images(args.image_path)
    failed, times = 0, []
    for path in files:
        with open(path, "rb") as f:
            body = build_request(f.read())
        start = time.perf_counter()
        try:
            png = parse_reply(post(args.url, body, args.timeout))
        except UserError as err:
            failed += 1
            print(f"image: {path}, status: failed, error: {err}", flush=True)
            continue
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        out = os.path.join(args.output_dir, os.path.splitext(os.path.basename(path))[0] + ".png")
        with atomic_path(out) as tmp:
            with open(tmp, "wb") as f:
                f.write(png)
        print(f"image: {path}, status: ok, time_ms: {elapsed * 1000:.1f}, saved: {out}", flush=True)
    mean = sum(times) / len(times) * 1000 if times else 0.0
    print(f"images: {len(files)}, ok: {len(times)}, failed: {failed}, mean_time_ms: {mean:.1f}")
    if failed:
        raise UserError(f"{failed} of {len(files)} image(s) failed")


if __name__ == "__main__":
    sys.exit(run_tool(main))
