#!/usr/bin/env python
"""Runs one jaxpretrain command as N cooperating processes on this machine (CPU, gloo).

    python launch/local.py --processes=2 --devices_per_process=4 -- \
        pretrain --config=configs/tiny.py --workdir=/tmp/run

Each process gets `--xla_force_host_platform_device_count=D` fake CPU devices and the flags
`--coordinator_address=localhost:PORT --num_processes=N --process_id=I` appended to the command,
so together they form one N×D-device run: exactly what N hosts of a cluster do, on one machine.
Process 0's output passes through unchanged (its last line is the command's JSON summary); the
others' lines are prefixed with `[pI]`. When any process fails, the rest are stopped and the
launcher exits with that process's status; a timeout stops all of them (status 124). SIGTERM is
passed on to every process (each saves at a common step and exits 0, and so does the launcher);
Ctrl-C stops them all.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time


def free_port() -> int:
  """A TCP port nobody listens on right now (for the coordinator)."""
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def process_env(devices: int, base: dict | None = None) -> dict:
  """The environment of one process: CPU only, with `devices` fake devices."""
  env = dict(os.environ if base is None else base)
  flags = re.sub(r"--xla_force_host_platform_device_count=\S+", "", env.get("XLA_FLAGS", "")).split()
  env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={devices}"])
  env["JAX_PLATFORMS"] = "cpu"
  return env


def _pump(stream, out, prefix: str) -> None:
  for line in iter(stream.readline, ""):
    out.write(prefix + line)
    out.flush()
  stream.close()


def _stop(procs: list[subprocess.Popen], grace: float = 10.0) -> None:
  for p in procs:
    if p.poll() is None:
      p.terminate()
  deadline = time.monotonic() + grace
  for p in procs:
    try:
      p.wait(timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired:
      p.kill()
      p.wait()


def launch(command: list[str], processes: int, devices_per_process: int, timeout: float = 0.0, port: int = 0) -> int:
  """Starts `processes` copies of `python -m jaxpretrain.cli COMMAND` and waits for them.

  Args:
    command: the jaxpretrain subcommand and its flags.
    processes: how many processes (simulated hosts).
    devices_per_process: fake CPU devices each process sees.
    timeout: seconds before all processes are stopped (0 = no limit).
    port: the coordinator's port (0 = pick a free one).

  Returns:
    0 when every process succeeded; else the first failing process's exit status (124 on timeout).
  """
  port = port or free_port()
  env = process_env(devices_per_process)
  procs, pumps = [], []
  for i in range(processes):
    argv = [sys.executable, "-m", "jaxpretrain.cli", *command]
    if processes > 1:
      argv += [f"--coordinator_address=localhost:{port}", f"--num_processes={processes}", f"--process_id={i}"]
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    procs.append(p)
    t = threading.Thread(target=_pump, args=(p.stdout, sys.stdout, "" if i == 0 else f"[p{i}] "), daemon=True)
    t.start()
    pumps.append(t)

  def on_interrupt(signum, _frame):
    _stop(procs)
    sys.exit(128 + signum)

  def on_preemption(signum, _frame):
    # Like a scheduler's notice: every process gets it, saves at a common step and exits 0 itself.
    for p in procs:
      if p.poll() is None:
        p.send_signal(signum)

  signal.signal(signal.SIGINT, on_interrupt)
  signal.signal(signal.SIGTERM, on_preemption)

  start, status = time.monotonic(), 0
  try:
    while any(p.poll() is None for p in procs):
      failed = [p.returncode for p in procs if p.returncode not in (None, 0)]
      if failed:
        status = failed[0]
        break
      if timeout and time.monotonic() - start > timeout:
        status = 124
        print(f"launch/local.py: timed out after {timeout:.0f}s; stopping all processes", file=sys.stderr)
        break
      time.sleep(0.1)
  finally:
    _stop(procs)
    for t in pumps:
      t.join(timeout=5)
  if status == 0:
    status = next((p.returncode for p in procs if p.returncode != 0), 0)
  return status


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--processes", type=int, default=2, help="processes (simulated hosts)")
  parser.add_argument("--devices_per_process", type=int, default=4, help="fake CPU devices per process")
  parser.add_argument("--timeout", type=float, default=0.0, help="stop everything after this many seconds")
  parser.add_argument("--port", type=int, default=0, help="coordinator port (default: a free one)")
  parser.add_argument("command", nargs=argparse.REMAINDER, help="-- SUBCOMMAND [FLAGS...]")
  args = parser.parse_args(argv)
  command = args.command[1:] if args.command[:1] == ["--"] else args.command
  if not command:
    parser.error("no jaxpretrain command given (e.g. -- pretrain --config=configs/tiny.py --workdir=W)")
  if args.processes < 1 or args.devices_per_process < 1:
    parser.error("--processes and --devices_per_process must be positive")
  return launch(command, args.processes, args.devices_per_process, args.timeout, args.port)


if __name__ == "__main__":
  sys.exit(main())
