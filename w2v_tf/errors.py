"""User-facing errors: one clear line on stderr, a non-zero exit, no traceback.

Library code raises `UserError` (or `UsageError` for bad flags/arguments) with a message that
names the problem and the fix. Binaries wrap their `main` with `run_main`, which prints
`error: <message>` and exits with the error's code (2 for usage errors, 1 otherwise). A
traceback is printed only when `--verbosity` is raised to debug (1 or more). Flags that absl
cannot parse (an unknown flag, `--epochs=abc`) also give one `error:` line and exit 2, and
Ctrl-C outside the places that handle it (the training loop checkpoints) gives
`error: interrupted` and exit 130. Problems that do not stop the run are one `warn` line
(`warning: <message>`) on stderr.
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


def warn(message: str) -> None:
  """Prints one `warning: ...` line on stderr (user-facing, independent of absl logging)."""
  print(f"warning: {message}", file=sys.stderr)


def _traceback_requested() -> bool:
  try:
    from absl import flags  # pylint: disable=import-outside-toplevel
    return flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1
  except Exception:  # pragma: no cover - absl missing or flags not defined
    return False


def parse_flags(argv: Sequence[str]) -> list[str]:
  """absl `flags_parser` for `app.run`: an unparsable command line is one `error:` line, exit 2.

  `--help` / `--helpfull` keep absl's behaviour (they print usage and exit before this returns).

  Args:
    argv: the command line, program name first.

  Returns:
    The arguments left after the flags, program name first.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    message = " ".join(str(e).split())  # absl messages may span lines
    print(f"error: {message} (see --helpfull for the flags)", file=sys.stderr)
    sys.exit(UsageError.exit_code)


def run_main(main: Callable[[Sequence[str]], object]) -> None:
  """Runs an absl `main` under `app.run`, turning `UserError` into one line and an exit code.

  Unless `--verbosity` is given, absl's INFO log lines (e.g. TensorFlow's per-checkpoint
  messages) are hidden: the binaries report progress with their own lines.
  """
  from absl import app, logging  # pylint: disable=import-outside-toplevel

  def wrapped(argv):
    from absl import flags  # pylint: disable=import-outside-toplevel
    if not flags.FLAGS["verbosity"].present:
      logging.set_verbosity(logging.WARNING)
    try:
      return main(argv)
    except UserError as e:
      if _traceback_requested():
        raise
      print(f"error: {e}", file=sys.stderr)
      sys.exit(e.exit_code)
    except KeyboardInterrupt:
      if _traceback_requested():
        raise
      print("error: interrupted (nothing more was written; files already written are complete)",
            file=sys.stderr)
      sys.exit(130)

  app.run(wrapped, flags_parser=parse_flags)
