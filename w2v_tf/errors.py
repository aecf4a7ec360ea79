"""User-facing errors: one clear line on stderr, a non-zero exit, no traceback.

Library code raises `UserError` (or `UsageError` for bad flags/arguments) with a message that
names the problem and the fix. Binaries wrap their `main` with `run_main`, which prints
`error: <message>` and exits with the error's code (2 for usage errors, 1 otherwise). A
traceback is printed only when `--verbosity` is raised to debug (1 or more). Flags that absl
cannot parse (an unknown flag, `--epochs=abc`) also give one `error:` line and exit 2, and
Ctrl-C outside the places that handle it (the training loop checkpoints) gives
`error: interrupted` and exit 130; SIGTERM is raised as the same `KeyboardInterrupt`
(`Interrupted`), so the same cleanup runs, and gives `error: interrupted by SIGTERM`, exit 143.
Problems that do not stop the run are one `warn` line (`warning: <message>`) on stderr.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import Callable, Sequence


class UserError(Exception):
  """A problem the user can fix (bad input file, inconsistent model dir, ...). Exit code 1."""

  exit_code = 1


class UsageError(UserError):
  """Bad flags or arguments. Exit code 2."""

  exit_code = 2


class Interrupted(KeyboardInterrupt):
  """A signal (SIGTERM) raised as Ctrl-C's KeyboardInterrupt: the same cleanup runs on the way
  out (temp files and folders removed, the model dir's lock released)."""


def raise_interrupted(signum, frame) -> None:  # pylint: disable=unused-argument
  """A signal handler: raises `Interrupted` (its message is the signal's name)."""
  raise Interrupted(signal.Signals(signum).name)


_CLEANUPS: list[tuple[Callable, tuple]] = []


def at_exit(function: Callable, *args) -> None:
  """Runs `function(*args)` at exit: a normal one (atexit), and the interrupt path's, which ends
  the process at once (`exit_now`) instead of through the interpreter's shutdown."""
  atexit.register(function, *args)
  _CLEANUPS.append((function, args))


def exit_now(code: int) -> None:
  """Runs the `at_exit` cleanups, flushes stdout / stderr and ends the process with `code`.

  Without the interpreter's shutdown: on Ctrl-C during the corpus pass the shutdown destroyed
  tf.data's iterator, whose destructor waits for its prefetch thread, and 3 of 25 interrupted
  runs never exited (gdb: the main thread in ~IteratorResource); those that did took 1.7-2.7 s
  after the signal (8 tries on IMDB, AMD EPYC, 2 busy cores).
  """
  for signum in (signal.SIGINT, signal.SIGTERM):  # a second Ctrl-C does not cut the cleanup
    try:
      signal.signal(signum, signal.SIG_IGN)
    except ValueError:  # not the main thread
      pass
  for function, args in reversed(_CLEANUPS):
    try:
      function(*args)
    except Exception:  # pylint: disable=broad-except  # best effort: the process is ending
      pass
  for stream in (sys.stdout, sys.stderr):
    try:
      stream.flush()
    except (OSError, ValueError):
      pass
  os._exit(code)


def warn(message: str) -> None:
  """Prints one `warning: ...` line on stderr (user-facing, independent of absl logging)."""
  print(f"warning: {message}", file=sys.stderr)


def _traceback_requested() -> bool:
  try:
    from absl import flags  # pylint: disable=import-outside-toplevel
    return flags.FLAGS.is_parsed() and flags.FLAGS.verbosity >= 1
  except Exception:  # pragma: no cover - absl missing or flags not defined
    return False


_HELP_ARGS = ("--help", "-help", "--helpshort", "-helpshort", "-h", "-?")


def parse_flags(argv: Sequence[str], module=None) -> list[str]:
  """absl `flags_parser` for `app.run`: an unparsable command line is one `error:` line, exit 2.

  `--help` / `--helpshort` print what the binary does and its own flags, `--version` the
  package's version, and exit 0 (absl's own help exits 1 and, run as a console script, finds
  no flags of its `__main__`); `--helpfull` keeps absl's behaviour.

  Args:
    argv: the command line, program name first.
    module: the binary's module (its docstring and its key flags; default: `__main__`).

  Returns:
    The arguments left after the flags, program name first.
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  options = list(argv[1:argv.index("--")] if "--" in argv else argv[1:])
  if any(arg in _HELP_ARGS for arg in options):
    _print_and_exit(help_text(module or sys.modules["__main__"]))
  if "--version" in options:
    from w2v_tf import __version__  # pylint: disable=import-outside-toplevel
    _print_and_exit(f"w2v_tf {__version__}")
  try:
    return flags.FLAGS(list(argv))
  except flags.Error as e:
    message = " ".join(str(e).split())  # absl messages may span lines
    print(f"error: {message} (see --helpfull for the flags)", file=sys.stderr)
    sys.exit(UsageError.exit_code)


def _print_and_exit(text: str) -> None:
  try:
    print(text, flush=True)
  except BrokenPipeError:  # `--help | head`: the reader has what it wanted
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
  sys.exit(0)


def help_text(module) -> str:
  """A binary's `--help`: its docstring's first paragraph, its usage and its own flags."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  if module.__name__ == "__main__":  # `python -m NAME`: absl files its flags under argv[0]
    key = sys.argv[0]
    spec = getattr(module, "__spec__", None)
    program = f"python -m {spec.name}" if spec is not None else os.path.basename(key)
  else:
    key, program = module.__name__, os.path.basename(sys.argv[0])
  summary = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
  flag_lines = [line for line in flags.FLAGS.module_help(key).splitlines()
                if line.startswith("  ")]  # without absl's heading (the module's path)
  return "\n".join([summary, "", f"USAGE: {program} [flags]", "", "flags:", *flag_lines, "",
                    "--version prints the version; --helpfull lists absl's and TensorFlow's "
                    "flags too."])


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
    try:  # SIGTERM (kill, a scheduler's stop) unwinds as Ctrl-C does, unless someone else
      if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:  # took it (a test harness)
        signal.signal(signal.SIGTERM, raise_interrupted)
    except ValueError:  # not the main thread
      pass
    try:
      return main(argv)
    except UserError as e:
      if _traceback_requested():
        raise
      print(f"error: {e}", file=sys.stderr)
      sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
      if _traceback_requested():
        raise
      name = str(e) if isinstance(e, Interrupted) else ""
      print(f"error: interrupted{f' by {name}' if name else ''} (nothing more was written; files "
            "already written are complete)", file=sys.stderr)
      code = 128 + getattr(signal, name, signal.SIGINT) if name else 130
      exit_now(code)

  module = sys.modules.get(getattr(main, "__module__", "__main__"), sys.modules["__main__"])
  app.run(wrapped, flags_parser=lambda argv: parse_flags(argv, module))
