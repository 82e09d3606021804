"""A network namespace of our own with only loopback up, for what starts Ray (tests, benchmarks).

Ray sends traffic to the address it finds for the machine, even when told ``127.0.0.1``: it turns a
loopback ``--node-ip-address``, ``ray.init(_node_ip_address=...)`` or cluster address into the
address of the machine's default route (``ray._private.services.resolve_ip_for_localhost``), and a
starting head probes cloud metadata servers. In a namespace where ``lo`` is the only interface
there is no other address to find and no route out: every process started in it (head node,
worker nodes, the driver) talks over loopback only.

Two ways to make one, the first that works:

- ``ip netns add gk-ray-<pid>-<n>`` (root and iproute2), commands run with ``ip netns exec``;
- ``unshare --net`` (``--map-root-user`` when not root) around a small holder process, commands
  run with ``nsenter`` into it (util-linux only).

On leaving, every process still in the namespace is killed (only ours can be there: nothing else
joins a namespace made a moment ago) and the namespace removed, each step bounded in time.

As a command: ``python tests/loopback.py [--] CMD ARGS...`` runs CMD inside a fresh one and exits
with its status.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

NETNS_DIR = Path("/run/netns")
PREFIX = "gk-ray"
STEP_TIMEOUT_S = 30
# the holder of an ``unshare`` namespace: brings lo up (SIOCGIFFLAGS/SIOCSIFFLAGS, no iproute2 needed),
# says so, then lives until its stdin closes
HOLDER = """
import fcntl, socket, struct, sys
with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
    flags = struct.unpack("16sH22x", fcntl.ioctl(s, 0x8913, struct.pack("16sH22x", b"lo", 0)))[1]
    fcntl.ioctl(s, 0x8914, struct.pack("16sH22x", b"lo", flags | 1))
print("ready", flush=True)
sys.stdin.read()
"""
ONLY_LO = "import socket; print(sorted(name for _, name in socket.if_nameindex()))"


class LoopbackUnavailable(RuntimeError):
    """No network namespace can be made here (not root and no user namespaces, or tools missing)."""


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S)


def only_loopback() -> bool:
    """Whether this process sees no network interface but ``lo``."""
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]


class LoopbackNamespace:
    """A fresh network namespace whose only interface is ``lo`` (up); a context manager.

    Parameters
    ----------
    method : ``"auto"`` (``ip netns`` when root and iproute2 work, else ``unshare``), ``"netns"`` or ``"unshare"``

    Raises
    ------
    LoopbackUnavailable
        on entering: no method works here (the message says why)
    """

    _count = 0

    def __init__(self, *, method: str = "auto"):
        if method not in ("auto", "netns", "unshare"):
            raise ValueError(f"unknown method '{method}'")
        self.method, self.name, self.prefix = method, "", []
        self._holder: subprocess.Popen | None = None

    def __enter__(self) -> LoopbackNamespace:
        reasons = []
        for method in ("netns", "unshare") if self.method == "auto" else (self.method,):
            try:
                getattr(self, f"_make_{method}")()
                self.method = method
                break
            except (OSError, subprocess.SubprocessError, RuntimeError) as exc:
                reasons.append(f"{method}: {exc}")
                self.close()
        else:
            why = "; ".join(reasons)
            raise LoopbackUnavailable(f"no network namespace with only loopback can be made here ({why})")
        names = _run(self.wrap([sys.executable, "-c", ONLY_LO]))
        if names.returncode != 0 or names.stdout.split() != ["['lo']"]:
            self.close()
            seen = f"{names.stdout.strip()} {names.stderr.strip()}"
            raise LoopbackUnavailable(f"the namespace is not loopback-only: {seen}")
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _make_netns(self) -> None:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            raise RuntimeError("needs root and iproute2's ip")
        _remove_stale()
        LoopbackNamespace._count += 1
        name = f"{PREFIX}-{os.getpid()}-{LoopbackNamespace._count}"
        made = _run(["ip", "netns", "add", name])
        if made.returncode != 0:
            raise RuntimeError(f"ip netns add: {made.stderr.strip()}")
        self.name, self.prefix = name, ["ip", "netns", "exec", name]
        up = _run([*self.prefix, "ip", "link", "set", "lo", "up"])
        if up.returncode != 0:
            raise RuntimeError(f"ip link set lo up: {up.stderr.strip()}")

    def _make_unshare(self) -> None:
        if shutil.which("unshare") is None or shutil.which("nsenter") is None:
            raise RuntimeError("needs util-linux's unshare and nsenter")
        user = [] if os.geteuid() == 0 else ["--map-root-user"]
        self._holder = subprocess.Popen(
            ["unshare", "--net", *user, "--", sys.executable, "-c", HOLDER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        line = self._holder.stdout.readline()  # the holder prints at once, or dies
        if line.strip() != "ready":
            self._holder.wait(timeout=STEP_TIMEOUT_S)
            raise RuntimeError(f"unshare: {self._holder.stderr.read().strip() or 'the holder did not start'}")
        self.name = f"unshare:{self._holder.pid}"
        joins = ["--user", "--preserve-credentials"] if user else []
        self.prefix = ["nsenter", f"--target={self._holder.pid}", "--net", *joins, "--"]

    def wrap(self, cmd: list[str]) -> list[str]:
        """``cmd`` run inside the namespace."""
        return [*self.prefix, *cmd]

    def _inode(self) -> int | None:
        try:
            if self._holder is not None:
                return os.stat(f"/proc/{self._holder.pid}/ns/net").st_ino
            return os.stat(NETNS_DIR / self.name).st_ino if self.name else None
        except OSError:
            return None

    def pids(self) -> list[int]:
        """The processes in the namespace (the holder included)."""
        inode = self._inode()
        return [] if inode is None else _pids_in(inode)

    def close(self) -> None:
        """Kill what is left in the namespace and remove it (each step bounded in time); idempotent."""
        inode = self._inode()
        if inode is not None:
            _kill_all(inode)
        if self._holder is not None:
            with _suppress():
                self._holder.stdin.close()
            with _suppress():
                self._holder.wait(timeout=STEP_TIMEOUT_S)
            self._holder = None
        elif self.name:
            with _suppress():
                _run(["ip", "netns", "delete", self.name])
        self.name, self.prefix = "", []


class _suppress:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        return kind is not None and issubclass(kind, (OSError, subprocess.SubprocessError, ValueError))


def _pids_in(inode: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if os.readlink(entry / "ns" / "net") == f"net:[{inode}]":
                    pids.append(int(entry.name))
            except OSError:
                pass  # gone, or not ours to look at
    return pids


def _kill_all(inode: int) -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while (pids := _pids_in(inode)) and time.monotonic() < deadline:
        for pid in pids:
            with _suppress():
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def _remove_stale() -> None:
    """Remove the ``gk-ray-<pid>-<n>`` namespaces left by runs that were killed (their pid is gone)."""
    if not NETNS_DIR.is_dir():
        return
    for path in NETNS_DIR.glob(f"{PREFIX}-*-*"):
        pid = path.name.split("-")[2]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            with _suppress():
                _kill_all(os.stat(path).st_ino)
                _run(["ip", "netns", "delete", path.name])


def main(argv: list[str]) -> int:
    """Run ``argv`` (``--`` first, optionally) inside a fresh loopback-only namespace; its exit status."""
    cmd = argv[1:] if argv[:1] == ["--"] else argv
    if not cmd:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with LoopbackNamespace() as ns:
            print(f"loopback.py: running in network namespace {ns.name} ({ns.method}), only lo", file=sys.stderr)
            child = subprocess.Popen(ns.wrap(cmd))
            try:
                return child.wait()
            except KeyboardInterrupt:
                child.send_signal(signal.SIGINT)
                return child.wait(timeout=STEP_TIMEOUT_S)
    except LoopbackUnavailable as exc:
        print(f"loopback.py: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
