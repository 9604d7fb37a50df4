"""One pod as a local process: started with its own loopback address, restarted with back-off
when it exits (`restartPolicy: Always`), ready once its port accepts connections, and killed if
bastion dies (the kernel sends it SIGKILL when its parent goes)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from bastion.clock import iso_epoch
from bastion.managed import LOG_ANNOTATION, MANAGED_ANNOTATION
from bastion.services.workloads.images import Launch

log = logging.getLogger("bastion")
BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
PR_SET_PDEATHSIG = 1


# Run first in the child, a fresh single-threaded interpreter: ask for SIGKILL when bastion dies,
# then become the container's process. (A `preexec_fn` would run in the forked copy of a
# multi-threaded process, where loading libc can crash.)
ORPHAN_GUARD = (
    "import ctypes, os, signal, sys\n"
    f"ctypes.CDLL(None).prctl({PR_SET_PDEATHSIG}, signal.SIGKILL)\n"
    "if os.getppid() != int(sys.argv[1]): sys.exit(1)\n"
    "os.execvp(sys.argv[2], sys.argv[2:])\n"
)


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    owner: str  # the Deployment's name
    template_hash: str
    address: str
    ports: tuple[tuple[str, int], ...]  # (name, containerPort)
    container: str
    launch: Launch
    log_path: Path
    created: float = field(default_factory=time.time)
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    ready: bool = False
    terminating: bool = False
    started_at: float = 0.0
    next_start: float = 0.0
    backoff: float = BACKOFF_START_S
    last_exit: str = ""
    _log: IO[bytes] | None = None

    def tick(self, now: float) -> bool:
        """Start, restart or probe the process; True when readiness changed."""
        if self.launch.problem or self.terminating:
            return False
        if self.process is not None and self.process.poll() is not None:
            self.last_exit = f"exit code {self.process.returncode}"
            log.info("pod %s/%s: process %d ended (%s); restarting in %g s", self.namespace,
                     self.name, self.process.pid, self.last_exit, self.backoff)
            self.process = None
            self.restarts += 1
            self.next_start = now + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX_S)
            was_ready, self.ready = self.ready, False
            return was_ready
        if self.process is None and now >= self.next_start:
            self._start()
            return False
        if self.process is not None and not self.ready and self._accepts():
            self.ready = True
            if now - self.started_at > 10:
                self.backoff = BACKOFF_START_S
            return True
        if self.ready and now - self.started_at > 10:
            self.backoff = BACKOFF_START_S  # it ran a while: the next crash restarts at once
        return False

    def _start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - kept for the process's life
        env = {**os.environ, "HOSTNAME": self.name, "POD_NAME": self.name,
               "POD_NAMESPACE": self.namespace, "POD_IP": self.address, **dict(self.launch.env)}
        argv = [sys.executable, "-c", ORPHAN_GUARD, str(os.getpid()), *self.launch.argv]
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, env=env,
                                        start_new_session=True)
        self.started_at = time.time()
        log.info("pod %s/%s: process %d started", self.namespace, self.name, self.process.pid)

    def _accepts(self) -> bool:
        if not self.ports:
            return True
        with contextlib.suppress(OSError), socket.create_connection(
                (self.address, self.ports[0][1]), timeout=0.2):
            return True
        return False

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def body(self) -> dict[str, Any]:
        """The pod as `kubectl get pod` shows it."""
        if self.launch.problem:
            state: dict[str, Any] = {"waiting": {"reason": "RunContainerError",
                                                 "message": self.launch.problem}}
            phase = "Pending"
        elif self.process is not None:
            state = {"running": {"startedAt": iso_epoch(self.started_at)}}
            phase = "Running"
        else:
            state = {"waiting": {"reason": "CrashLoopBackOff", "message": self.last_exit}}
            phase = "Running" if self.restarts else "Pending"
        if self.terminating:
            phase = "Terminating"
        return {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": self.name, "namespace": self.namespace, "labels": dict(self.labels),
                "creationTimestamp": iso_epoch(self.created),
                "annotations": {LOG_ANNOTATION: str(self.log_path),
                                MANAGED_ANNOTATION: "a local process of bastion serve"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                     "name": f"{self.owner}-{self.template_hash}"}]},
            "spec": {"containers": [{"name": self.container,
                                     "ports": [{"name": n, "containerPort": p} if n else
                                               {"containerPort": p} for n, p in self.ports]}]},
            "status": {"phase": phase, "podIP": self.address,
                       "conditions": [{"type": "Ready", "status": str(self.ready)}],
                       "containerStatuses": [{"name": self.container, "ready": self.ready,
                                              "restartCount": self.restarts, "state": state}]},
        }
