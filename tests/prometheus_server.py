"""A real Prometheus server on loopback, scraping a wsload ``/metrics`` endpoint every second.

``prometheus_skip_reason`` installs Debian's ``prometheus`` when it is missing (``apt-get``, as
root, bounded in time; the package's service is not started: Docker images forbid it through
``policy-rc.d``, and nothing here relies on it) or says why it cannot. ``Prometheus`` runs the
binary on a throw-away data directory with a one-job configuration and answers instant queries
through the HTTP API. Every wait is bounded; the process is always ended.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from debian_packages import apt_install_skip_reason

from wsload.runner.targets.managed import free_port

__all__ = ["PROMETHEUS", "Prometheus", "free_port", "prometheus_skip_reason"]

PROMETHEUS = "/usr/bin/prometheus"
_INSTALL_TIMEOUT = 600.0

CONFIG = """\
global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: wsload
    static_configs:
      - targets: ["127.0.0.1:{port}"]
"""


def prometheus_skip_reason() -> str | None:
    """None when Prometheus is there (installing it first if possible), else why not."""
    return apt_install_skip_reason("prometheus", PROMETHEUS, _INSTALL_TIMEOUT)


class Prometheus:
    """Prometheus scraping ``127.0.0.1:target_port`` every second; a context manager.

    Args:
        target_port: the wsload ``--metrics-port``.
        timeout: bound of every wait (start-up, queries).
    """

    def __init__(self, target_port: int, timeout: float = 30.0) -> None:
        self.target_port = target_port
        self.timeout = timeout
        self.port = free_port()
        self._dir = tempfile.TemporaryDirectory(prefix="wsload-prometheus-")
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Prometheus:
        root = Path(self._dir.name)
        config = root / "prometheus.yml"
        config.write_text(CONFIG.format(port=self.target_port), encoding="utf-8")
        self._log = (root / "prometheus.log").open("wb")
        self._proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            self._wait_ready()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        self._log.close()
        self._dir.cleanup()

    def wait_first_scrape(self) -> None:
        """Return once the target has been scraped (``up`` recorded, even as 0): Prometheus
        applies new targets in batches every 5 s, so the first scrape comes some seconds after
        start-up, and a run started before it would be seen late."""
        deadline = time.monotonic() + self.timeout
        while not self.query('up{job="wsload"}'):
            if time.monotonic() > deadline:
                raise TimeoutError(f"prometheus never scraped its target:\n{self.log_tail()}")
            time.sleep(0.2)

    def log_tail(self) -> str:
        """The end of the server's own log (for assertion messages)."""
        text = (Path(self._dir.name) / "prometheus.log").read_text(errors="replace")
        return text[-2000:]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.timeout
        url = f"http://127.0.0.1:{self.port}/-/ready"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self._proc.returncode}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise TimeoutError("prometheus did not become ready")

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (``[{"metric": {...}, "value": [t, "v"]}]``), now
        or at epoch ``at``. A query Prometheus refuses (bad PromQL) raises ``HTTPError``."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=self.timeout) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result
