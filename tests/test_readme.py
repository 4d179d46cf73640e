"""The README's first-hour commands run as written (issue 20).

Every fenced block of README.md preceded by a marker comment

    <!-- readme-test: OPTIONS -->

is extracted and run, in README order, in one sandbox folder that looks like
a fresh clone (the repository's files linked in, an empty ``results/``,
``data/mini`` the session's corpora), with ``python`` the test's
interpreter. A ``bash`` block runs line by line (``\\`` continues a line,
``#`` comments dropped), each command with ``OPTIONS`` appended: the
shortening the README documents beside the block (``--max_updates=2`` for
every recipe, ``--quick`` for the benchmarks, a probe's own small sizes), so
that a stale path, file or flag fails here. A ``python`` block runs as a
script. Lines that set up the machine (``make ...``, ``source ...``) are
not run: the ``mini_corpus`` fixture makes the corpora, the test's
interpreter is the environment.

``make test-readme`` runs it alone and prints each command's time;
``SB_EXT_README_AS_WRITTEN=1 make test-readme`` runs the commands as written
(no shortening options, the machine's thread count): the README's "first
hour" timings (13.5 min on 2 idle cores, 2026-12-01).
"""
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MARKER = re.compile(r"<!-- readme-test:(?P<options>[^>]*)-->\s*\n```(?P<lang>\w+)\n(?P<body>.*?)\n```",
                    re.S)
SETUP_PREFIXES = ("make ", "make\n", "source ", ". .venv")
# per command: a hung command fails the test instead of CI
COMMAND_TIMEOUT = 600
# the README's timings: every command without its shortening options
AS_WRITTEN = os.environ.get("SB_EXT_README_AS_WRITTEN") == "1"


def marked_blocks(text):
    """``[(options, language, body)]`` of the README's marked blocks, in order.

    >>> marked_blocks("<!-- readme-test: --quick -->\\n```bash\\npython x.py  # c\\n```\\n")
    [('--quick', 'bash', 'python x.py  # c')]
    """
    return [(m["options"].strip(), m["lang"], m["body"]) for m in MARKER.finditer(text)]


def commands(body):
    """The commands of a bash block: continuation lines joined, comments and
    blank lines dropped.

    >>> commands("python a.py \\\\\\n    --x 1   # note\\n# only a comment\\n\\npython b.py")
    ['python a.py --x 1', 'python b.py']
    """
    joined = re.sub(r"\\\n\s*", "", body)
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        if words:
            out.append(shlex.join(words))
    return out


def with_options(command, options):
    """``command`` with the block's shortening ``options`` appended; a
    ``{}`` in ``options`` marks where the command goes (options before it,
    e.g. an environment variable)."""
    if "{}" in options:
        return options.replace("{}", command)
    return f"{command} {options}".strip()


def make_sandbox(folder, corpora):
    """A folder laid out like a fresh clone: every top-level entry of the
    repository linked in but ``results/`` (empty but for its scripts) and
    ``data/`` (``data/mini`` -> the session's corpora)."""
    for entry in REPO.iterdir():
        if entry.name in ("results", "data", ".git", ".venv") or entry.name.startswith("."):
            continue
        (folder / entry.name).symlink_to(entry)
    (folder / "results").mkdir()
    for script in (REPO / "results").glob("*.py"):
        (folder / "results" / script.name).symlink_to(script)
    (folder / "data").mkdir()
    (folder / "data" / "mini").symlink_to(Path(corpora).resolve())


def test_readme_marks_the_first_hour_blocks():
    """The extraction finds the micro path (a renamed marker would silently
    test nothing) and every step of it."""
    blocks = marked_blocks(README.read_text())
    text = "\n".join(body for _, _, body in blocks)
    for needed in ("recipes/pretrain/train.py", "recipes/pretrain/probe.py",
                   "recipes/downstream/kws/train.py", "recipes/finetune/train.py",
                   "speechbrain_ext.downstream.decoding.ngram", "speechbrain_ext.interop",
                   "load_backbone"):
        assert needed in text, f"no marked README block runs {needed}"
    for options, lang, body in blocks:
        assert lang in ("bash", "python"), lang
        if lang == "bash":
            assert commands(body), f"an empty marked block: {body!r}"


def test_readme_first_hour_runs_as_written(mini_corpus, tmp_path):
    make_sandbox(tmp_path, mini_corpus[0])
    env = dict(os.environ, PYTHONPATH="",
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    if not AS_WRITTEN:
        env.setdefault("OMP_NUM_THREADS", "1")
    ran, begin = [], time.time()
    for options, lang, body in marked_blocks(README.read_text()):
        if lang == "python":
            script = tmp_path / f"readme_block_{len(ran)}.py"
            script.write_text(body + "\n")
            runs = [f"python {script.name}"]
        else:
            runs = [with_options(c, "" if AS_WRITTEN else options) for c in commands(body)
                    if not c.startswith(SETUP_PREFIXES)]
        for command in runs:
            start = time.time()
            proc = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env,
                                  capture_output=True, text=True, timeout=COMMAND_TIMEOUT)
            print(f"[readme] {time.time() - start:5.1f} s  {command}", flush=True)  # pytest -s
            ran.append(command)
            assert proc.returncode == 0, (
                f"README command failed (exit {proc.returncode}):\n  {command}\n"
                f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-5000:]}")
    print(f"[readme] {time.time() - begin:5.1f} s  in all, {len(ran)} commands", flush=True)
    assert len(ran) >= 8, ran
