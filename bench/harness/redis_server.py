"""A Redis server of the run's own, on a free port, that a fault drill may kill and start
again without touching the machine's shared Redis.

It keeps nothing on disk (no RDB snapshots, no append-only file), so a restart comes back
empty, as a flush would leave it: the worst case for everything that keeps state in Redis.
It is one of the deployment's processes, so it is stopped with them and listed with them
for the next run to clean up.
"""

from __future__ import annotations

import shutil
import time

from bench.harness.deployment import Deployment, Managed, free_port

READY_TIMEOUT = 15.0


class RedisServerError(RuntimeError):
    pass


class PrivateRedis:
    def __init__(self, binary: str | None = None) -> None:
        self.binary = binary or shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = free_port()
        self.process: Managed | None = None
        self.starts = 0

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, dep: Deployment) -> None:
        self.starts += 1
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(dep.config.run_dir),
            "--maxclients", "10000",
        ]  # fmt: skip
        self.process = dep.spawn(f"redis-{self.starts}", "redis", command)
        self._wait_ready()

    def _wait_ready(self) -> None:
        import redis

        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.popen.poll() is not None:
                raise RedisServerError(
                    f"redis-server exited with code {self.process.popen.returncode}:\n"
                    f"{self.process.tail()}"
                )
            client = redis.Redis(port=self.port, socket_timeout=1)
            try:
                if client.ping():
                    return
            except redis.RedisError:
                time.sleep(0.05)
            finally:
                client.close()
        raise RedisServerError(f"redis-server did not answer on port {self.port}")

    def kill(self, dep: Deployment) -> None:
        """SIGKILL: every connection drops and everything it held is gone."""
        if self.process is not None:
            dep.kill(self.process)
            self.process = None
