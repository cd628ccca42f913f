"""Shared test utilities."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURE = os.path.join(ROOT, "tests", "fixtures", "official_small")


def run_cli(*args, timeout=600):
    """Run ``python <args>`` from the repository root; returns the CompletedProcess."""
    env = dict(os.environ, GLOG_minloglevel="2")
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
