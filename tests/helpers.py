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


def folder_bytes(folder):
    """Every file of ``folder`` by name with its bytes: compare two to see that nothing changed."""
    return {n: (folder / n).read_bytes() for n in os.listdir(folder)}


def load_tool(name):
    """Import tools/<name>.py as a module (its _bootstrap needs tools/ on sys.path)."""
    import importlib.util

    tools_dir = os.path.join(ROOT, "tools")
    if tools_dir not in sys.path:
        sys.path.insert(0, tools_dir)
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(tools_dir, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_tool_in_process(name, argv, capsys):
    """Run tools/<name>.py in-process; returns (exit code, stdout, stderr)."""
    from ppmirnet.cli import run_tool

    code = run_tool(load_tool(name).main, argv)
    out = capsys.readouterr()
    return code, out.out, out.err
