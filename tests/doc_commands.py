"""The shell commands of the README and the docs/ pages, as a user would copy them."""

import re

DOCS = ["README.md", "README_cn.md", "docs/models.md", "docs/datasets.md", "docs/training.md",
        "docs/deployment.md", "docs/benchmarks.md", "docs/weights.md", "docs/engines.md",
        "docs/memory.md", "docs/robustness.md"]

_FENCE = re.compile(r"^```(\w*)\s*$")


def extract(text):
    """Commands of the ```bash blocks: continuation lines joined, comments and prompts removed.

    In a block whose lines start with ``$ `` only those lines are commands
    (the others are their output).
    """
    commands, block, lang = [], None, None
    for line in text.split("\n"):
        fence = _FENCE.match(line.strip())
        if fence and block is None:
            block, lang = [], fence.group(1)
            continue
        if fence and block is not None:
            if lang in ("bash", "sh", "shell"):
                commands += _commands_of(block)
            block = None
            continue
        if block is not None:
            block.append(line)
    return commands


def _commands_of(lines):
    prompted = any(line.startswith("$ ") for line in lines)
    out, current = [], None
    for line in lines:
        if current is not None:
            current += " " + line.strip()
        elif prompted:
            if not line.startswith("$ "):
                continue
            current = line[2:].strip()
        else:
            current = line.strip()
        if current.endswith("\\"):
            current = current[:-1].rstrip()
            continue
        command = _strip_comment(current)
        current = None
        if command:
            out.append(re.sub(r"\s+", " ", command))
    return out


def _strip_comment(line):
    # A '#' after whitespace, outside quotes, starts a comment.
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def commands_by_file(root="."):
    import os

    found = {}
    for doc in DOCS:
        path = os.path.join(root, doc)
        if os.path.exists(path):
            found[doc] = extract(open(path, encoding="utf-8").read())
    return found
