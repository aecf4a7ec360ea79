"""benchmarks.first_step.timed_lines: line arrival times, and the child is stopped at the line."""

import sys

from benchmarks import first_step

_CHILD = ("import sys, time\n"
          "print('built', file=sys.stderr, flush=True)\n"
          "time.sleep(0.5)\n"
          "print('step 1 | loss 6.1', file=sys.stderr, flush=True)\n"
          "time.sleep(60)\n")


def test_times_the_lines_and_stops_the_child_at_the_first_step():
  times = first_step.timed_lines([sys.executable, "-c", _CHILD], "step 1 |")
  assert times["first line"] < times["stop"]
  assert times["stop"] - times["first line"] >= 0.45  # the child's sleep between the lines
  assert times["exit"] < 30  # killed at the line, not after its 60 s sleep


def test_a_child_that_never_prints_the_line_has_no_stop():
  times = first_step.timed_lines([sys.executable, "-c", "print('only', file=__import__('sys').stderr)"],
                                 "step 1 |")
  assert "stop" not in times and "first line" in times
