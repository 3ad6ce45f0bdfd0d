"""Start processes in sessions of their own, stop their whole tree, read their figures in /proc."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import progress

CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcInfo:
    """One line of /proc/PID/stat, reduced to what the benchmarks use."""

    pid: int
    ppid: int
    own_cpu: float  # utime + stime, seconds
    reaped_cpu: float  # cutime + cstime: children that exited and were waited for
    start_ticks: int


def proc_info(pid: int) -> ProcInfo | None:
    """Return the stat of a live process, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw.rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return ProcInfo(
        pid, int(fields[1]), (utime + stime) / CLK_TCK, (cutime + cstime) / CLK_TCK,
        int(fields[19]),
    )


def all_processes() -> dict[int, ProcInfo]:
    """Return the stat of every live process."""
    found = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (info := proc_info(int(entry.name))) is not None:
            found[info.pid] = info
    return found


def descendants(root: int, procs: Mapping[int, ProcInfo]) -> list[int]:
    """Return the pids below root, parents before children."""
    children: dict[int, list[int]] = {}
    for info in procs.values():
        children.setdefault(info.ppid, []).append(info.pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop(0)
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_cpu(root: int, procs: Mapping[int, ProcInfo]) -> float:
    """Return the CPU seconds of root and everything below it, reaped children included."""
    pids = [root, *descendants(root, procs)]
    return sum(procs[pid].own_cpu + procs[pid].reaped_cpu for pid in pids if pid in procs)


def machine_busy() -> float:
    """Return the CPU seconds all cores have spent busy since boot (/proc/stat), steal included."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def status_kb(pid: int, field: str) -> int | None:
    """Return a kB field of /proc/PID/status (VmRSS, VmHWM…), or None."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return None


def cmdline(pid: int) -> str:
    """Return the command line of a process, or '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def executable(pid: int) -> str:
    """Return the program file a process runs, or '' when it cannot be read."""
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return ""


@dataclass(frozen=True)
class Started:
    """A process started in a session of its own, logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log_tail(self, lines: int = 12) -> str:
        """Return the last lines of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise RuntimeError with the log's tail when the process has exited."""
        code = self.popen.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with status {code}:\n{self.log_tail()}")


def start(name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str]) -> Started:
    """Start argv in a new session with stdout and stderr appended to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            list(argv), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=dict(env), start_new_session=True,
        )
    return Started(name, popen, log_path)


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _kill_leftovers(name: str, tree: Sequence[tuple[int, int]]) -> int:
    """SIGKILL processes of the tree still alive (same pid and start time); return how many."""
    killed = 0
    for pid, start_ticks in tree:
        info = proc_info(pid)
        if info is not None and info.start_ticks == start_ticks:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed += 1
    if killed:
        progress(f"warning: {killed} processes of {name} outlived it and were killed")
    return killed


def stop(proc: Started, sig: int = signal.SIGINT, timeout: float = 25.0) -> float:
    """Signal the process group, wait, kill whatever is left; return the seconds it took."""
    if proc.popen.poll() is not None:
        return 0.0
    procs = all_processes()
    tree = [(pid, procs[pid].start_ticks) for pid in descendants(proc.pid, procs)]
    started = time.monotonic()
    _signal_group(proc.pid, sig)
    try:
        proc.popen.wait(timeout)
    except subprocess.TimeoutExpired:
        progress(f"warning: {proc.name} did not stop within {timeout:g} s; killing it")
        _signal_group(proc.pid, signal.SIGKILL)
        proc.popen.wait(10)
    took = time.monotonic() - started
    # Children in process groups of their own (supervisord's programs) must go too.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(
        (info := proc_info(pid)) is not None and info.start_ticks == ticks for pid, ticks in tree
    ):
        time.sleep(0.1)
    _kill_leftovers(proc.name, tree)
    return took
