"""User-facing errors: one clear line on stderr, a non-zero exit, no traceback.

Library code raises `UserError` (or `UsageError` for bad flags/arguments) with a message that
names the problem and the fix. Binaries wrap their `main` with `run_main`, which prints
`error: <message>` and exits with the error's code (2 for usage errors, 1 otherwise). A
traceback is printed only when `--verbosity` is raised to debug (1 or more).
"""

from __future__ import annotations

import sys
from typing import Callable, Sequence


class UserError(Exception):
  """A problem the user can fix (bad input file, inconsistent model dir, ...). Exit code 1."""

  exit_code = 1


class UsageError(UserError):
  """Bad flags or arguments. Exit code 2."""

  exit_code = 2


def _traceback_requested() -> bool:
  try:
    from absl import flags  # pylint: disable=import-outside-toplevel
    return flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1
  except Exception:  # pragma: no cover - absl missing or flags not defined
    return False


def run_main(main: Callable[[Sequence[str]], object]) -> None:
  """Runs an absl `main` under `app.run`, turning `UserError` into one line and an exit code."""
  from absl import app  # pylint: disable=import-outside-toplevel

  def wrapped(argv):
    try:
      return main(argv)
    except UserError as e:
      if _traceback_requested():
        raise
      print(f"error: {e}", file=sys.stderr)
      sys.exit(e.exit_code)

  app.run(wrapped)
