"""Keeps TensorFlow's C++ start-up chatter out of our binaries' stderr, on any CPU.

`import tensorflow` logs from C++ before absl's logging is initialised: the CPU feature guard
("This TensorFlow binary is optimized to use available CPU instructions ..."), and on CPUs where
oneDNN is on by default (recent Intel Xeons) "oneDNN custom operations are on ...", each with
absl's "WARNING: All log messages before absl::InitializeLog() ..." header. Some builds print
those whatever TF_CPP_MIN_LOG_LEVEL says, so a one-line error became 4-5 lines. `install()`
wraps the first `import tensorflow`: file descriptor 2 goes to a temporary file while TensorFlow
loads, and afterwards every captured line that is not one of these notices is written back.
Numerics are untouched (oneDNN stays on); nothing is hidden when the user asks for logs.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

# The start-up notices, as TensorFlow 2.x prints them (one pattern per line).
NOISE = re.compile("|".join([
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    r"^[IW]\d{4} [\d:. ]+\d+ \S+\.cc:\d+\] ",  # absl-format INFO / WARNING lines
    r"^\S+: [IW] tensorflow/\S+\.cc:\d+\] ",  # TensorFlow's own format
    r"^To enable the following instructions: .* rebuild TensorFlow with the appropriate",
    r"^oneDNN custom operations are on",
    r"^To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`",
]))


def wanted(argv: list[str], environ) -> bool:
  """Filter unless someone asked for TensorFlow's INFO logs (TF_CPP_MIN_LOG_LEVEL=0, or
  --verbosity). A level of 1 or more asks for fewer logs, yet on an AVX-512 AMD EPYC the oneDNN
  notice still came through with TF_CPP_MIN_LOG_LEVEL=2 (CI's setting)."""
  asked = any(arg.startswith(("--verbosity", "-v=", "--v=")) or arg == "-v" for arg in argv[1:])
  return environ.get("TF_CPP_MIN_LOG_LEVEL", "1").strip() not in ("0", "") and not asked


def filter_lines(text: str) -> str:
  """`text` without TensorFlow's start-up notices (other lines kept, in order)."""
  return "".join(line for line in text.splitlines(keepends=True) if not NOISE.match(line))


class _QuietLoader(importlib.abc.Loader):
  """Runs the real loader of `tensorflow` with fd 2 captured, then writes back what is not noise."""

  def __init__(self, loader):
    self._loader = loader

  def create_module(self, spec):
    return self._loader.create_module(spec)

  def exec_module(self, module):
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
      os.dup2(captured.fileno(), 2)
      try:
        self._loader.exec_module(module)
      finally:
        os.dup2(saved, 2)
        os.close(saved)
        captured.seek(0)
        kept = filter_lines(captured.read().decode("utf-8", "replace"))
        if kept:
          sys.stderr.write(kept)
          sys.stderr.flush()


class _QuietFinder(importlib.abc.MetaPathFinder):
  """Finds `tensorflow` as the other finders do, with `_QuietLoader` around its loader."""

  def find_spec(self, name, path, target=None):
    if name != "tensorflow":
      return None
    sys.meta_path.remove(self)  # once: later imports are cached in sys.modules
    spec = importlib.machinery.PathFinder.find_spec(name, path)
    if spec is not None and spec.loader is not None:
      spec.loader = _QuietLoader(spec.loader)
    return spec


def install() -> None:
  """Filters the start-up notices of the first `import tensorflow` (if not imported yet)."""
  if "tensorflow" in sys.modules or any(isinstance(f, _QuietFinder) for f in sys.meta_path):
    return
  sys.meta_path.insert(0, _QuietFinder())
