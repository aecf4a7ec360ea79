"""Runs `python -m MODULE ARGS` many times without paying TensorFlow's start-up each time.

A "zygote" Python process imports TensorFlow and the project's library modules once, then forks
one child per command; the child points stdin at /dev/null and stdout/stderr at files, and runs
the module as `__main__` (`runpy`, as `python -m` does), so it sees exactly what a user's
process sees, minus the 3-5 s import. Nothing in the zygote runs a TensorFlow op before forking
(its runtime and thread pools start in the child), and multiprocessing's default fork start
method relies on the same property.

Set W2V_TEST_FORK=0 to run every command as a plain subprocess instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading

import pytest

_ZYGOTE = r'''
import json, os, runpy, select, signal, sys, time, traceback
for name in PRELOAD:
  __import__(name)
sys.stdout.write("ready\n")
sys.stdout.flush()
for line in sys.stdin:
  request = json.loads(line)
  sys.stdout.flush()
  sys.stderr.flush()
  pid = os.fork()
  if pid == 0:
    code = 1
    try:
      null = os.open(os.devnull, os.O_RDONLY)
      os.dup2(null, 0)
      for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
      sys.argv = [request["module"], *request["argv"]]
      sys.modules.pop(request["module"], None)  # run a fresh copy, as `python -m` does
      try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
        code = 0
      except SystemExit as e:
        if e.code is None:
          code = 0
        elif isinstance(e.code, int):
          code = e.code
        else:
          print(e.code, file=sys.stderr)
          code = 1
      except BaseException:  # what the interpreter would print
        traceback.print_exc()
        code = 1
    finally:
      try:
        sys.stdout.flush()
        sys.stderr.flush()
      finally:
        os._exit(code)
  if request.get("report_pid"):  # `Runner.start`: the caller may signal the child
    sys.stdout.write(json.dumps({"pid": pid}) + "\n")
    sys.stdout.flush()
  deadline = time.time() + request["timeout"]
  while True:
    done, status = os.waitpid(pid, os.WNOHANG)
    if done:
      code = os.waitstatus_to_exitcode(status)
      break
    if time.time() > deadline:
      os.kill(pid, signal.SIGKILL)
      os.waitpid(pid, 0)
      code = -9
      break
    time.sleep(0.02)
  sys.stdout.write(json.dumps({"returncode": code}) + "\n")
  sys.stdout.flush()
'''

# `w2v_tf` first, as `python -m w2v_tf.X` imports it before TensorFlow (it sets TF's log level).
DEFAULT_PRELOAD = ("w2v_tf", "numpy", "tensorflow", "absl.app", "absl.flags", "absl.logging",
                   "w2v_tf.trainer", "w2v_tf.export", "eval.cli")


class Runner:
  """A pool of zygotes; `run(module, argv)` returns a `subprocess.CompletedProcess`.

  Args:
    cwd: working directory of the commands (the repo root).
    env: environment of the commands (fixed when the zygotes start).
    workers: zygotes, i.e. commands that may run at once.
    preload: modules the zygotes import before forking (importing defines no flag; a binary
      defines its flags when it runs as `__main__`, in the child).
    fork: fork from zygotes (None: unless W2V_TEST_FORK=0); False runs plain subprocesses.
  """

  def __init__(self, cwd: str, env: dict, workers: int = 2, preload=DEFAULT_PRELOAD,
               fork: bool | None = None):
    self.cwd, self.env = cwd, env
    if fork is None:
      fork = os.environ.get("W2V_TEST_FORK", "1") != "0"
    self.fork = fork and hasattr(os, "fork")
    self._tmp = tempfile.mkdtemp(prefix="w2v-runner-")
    self._idle: list[subprocess.Popen] = []
    self._lock = threading.Condition()
    if self.fork:
      code = f"PRELOAD = {list(preload)!r}\n" + _ZYGOTE
      for _ in range(workers):
        self._idle.append(subprocess.Popen(
            [sys.executable, "-c", code], cwd=cwd, env=env, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, bufsize=1))
      for zygote in self._idle:
        for line in zygote.stdout:  # skip anything an import printed
          if line.strip() == "ready":
            break
        else:
          raise RuntimeError("the test zygote failed to start")
    self._counter = 0

  def run(self, module: str, argv: list[str], timeout: float = 300
          ) -> subprocess.CompletedProcess:
    """Runs `python -m module *argv`; stdout and stderr are captured as text."""
    if not self.fork:
      return subprocess.run([sys.executable, "-m", module, *argv], cwd=self.cwd, env=self.env,
                            capture_output=True, text=True, timeout=timeout, check=False)
    return self.start(module, argv, timeout).wait()

  def start(self, module: str, argv: list[str], timeout: float = 300) -> "Started":
    """Starts `python -m module *argv`; `.pid` is the process (to signal), `.wait()` its end."""
    command = [sys.executable, "-m", module, *argv]
    with self._lock:
      self._counter += 1
      stem = os.path.join(self._tmp, str(self._counter))
    if not self.fork:
      with open(stem + ".out", "w") as out, open(stem + ".err", "w") as err:
        process = subprocess.Popen(command, cwd=self.cwd, env=self.env, stdout=out, stderr=err,
                                   stdin=subprocess.DEVNULL)
      return Started(command, stem, process.pid, None, self, process, timeout)
    with self._lock:
      while not self._idle:
        self._lock.wait()
      zygote = self._idle.pop()
    request = {"module": module, "argv": list(argv), "stdout": stem + ".out",
               "stderr": stem + ".err", "timeout": timeout, "report_pid": True}
    try:
      zygote.stdin.write(json.dumps(request) + "\n")
      zygote.stdin.flush()
      reply = zygote.stdout.readline()
      if not reply:
        raise RuntimeError("the test zygote died")
    except BaseException:
      self._give_back(zygote)
      raise
    return Started(command, stem, json.loads(reply)["pid"], zygote, self, None, timeout)

  def _give_back(self, zygote) -> None:
    with self._lock:
      self._idle.append(zygote)
      self._lock.notify()

  def close(self) -> None:
    for zygote in self._idle:
      zygote.stdin.close()
      zygote.wait(timeout=30)
    self._idle = []
    import shutil  # pylint: disable=import-outside-toplevel
    shutil.rmtree(self._tmp, ignore_errors=True)


class Started:
  """A command `Runner.start` started: `pid`, `stderr_path`, `wait()` -> CompletedProcess."""

  def __init__(self, command, stem, pid, zygote, runner, process, timeout):
    self.command, self.pid, self.stderr_path = command, pid, stem + ".err"
    self._stem, self._zygote, self._runner, self._process = stem, zygote, runner, process
    self._timeout = timeout

  def stderr(self) -> str:
    """What the command has written to stderr so far ("" before it opened the file)."""
    try:
      with open(self.stderr_path, encoding="utf-8", errors="replace") as f:
        return f.read()
    except FileNotFoundError:
      return ""

  def wait(self) -> subprocess.CompletedProcess:
    if self._process is not None:
      try:
        returncode = self._process.wait(timeout=self._timeout)
      except subprocess.TimeoutExpired:
        self._process.kill()
        self._process.wait()
        returncode = -9
    else:
      try:
        reply = self._zygote.stdout.readline()
        if not reply:
          raise RuntimeError("the test zygote died")
        returncode = json.loads(reply)["returncode"]
      finally:
        self._runner._give_back(self._zygote)  # pylint: disable=protected-access
    with open(self._stem + ".out", encoding="utf-8", errors="replace") as f:
      stdout = f.read()
    return subprocess.CompletedProcess(self.command, returncode, stdout, self.stderr())


def module_runner(*args, name: str = "runner", **kwargs):
  """A module-scoped pytest fixture `name` yielding `Runner(*args, **kwargs)`, closed after.

  Usage, at a test module's top level: `fixture_runner = module_runner(REPO, ENV, workers=2)`.
  """
  @pytest.fixture(name=name, scope="module")
  def fixture():
    runner = Runner(*args, **kwargs)
    yield runner
    runner.close()
  return fixture
