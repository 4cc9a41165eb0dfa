"""`fleetlog serve --syslog-port --gelf-port` with several server processes on the same ports."""

import json
import subprocess
from pathlib import Path

import httpx

from fleetlog.localstack import free_port, wait_until
from tests.fixtures.process import Server
from tests.listeners.conftest import send_udp

# A socket's state in /proc/net/tcp: listening; UDP sockets are all "closed" (07).
LISTEN = {"tcp": "0A", "udp": "07"}


def sockets_bound(protocol: str, port: int) -> int:
    """How many sockets of the machine are bound to `port` (listening, for TCP)."""
    count = 0
    for line in Path(f"/proc/net/{protocol}").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].rsplit(":", 1)[1], 16)
        count += local_port == port and fields[3] == LISTEN[protocol]
    return count


def test_every_server_process_listens_on_the_same_ports(tmp_path):
    syslog_port, gelf_port = free_port(), free_port()
    server = Server(tmp_path / "data", workers=2)
    server.args += ["--syslog-port", str(syslog_port), "--gelf-port", str(gelf_port)]
    server.start()
    try:
        server.wait_ready()
        wait_until(
            lambda: (
                [
                    sockets_bound("tcp", syslog_port),
                    sockets_bound("udp", syslog_port),
                    sockets_bound("udp", gelf_port),
                ]
                == [2, 2, 2]
            ),
            what="both processes to listen on both ports",
            timeout=30,
        )
        for n in range(10):
            logger = ["logger", "-n", "127.0.0.1", "-P", str(syslog_port), "-T", f"line {n}"]
            subprocess.run(logger, check=True)
        gelf = {"version": "1.1", "host": "cam-1", "short_message": "line gelf"}
        send_udp(gelf_port, json.dumps(gelf).encode())

        def messages() -> list[str]:
            answer = httpx.get(f"{server.url}/api/logs", params={"q": "line", "limit": 100})
            return sorted(log["message"] for log in answer.json()["data"])

        wait_until(lambda: len(messages()) >= 11, what="every line stored", timeout=30)
        assert messages() == sorted([f"line {n}" for n in range(10)] + ["line gelf"])
    finally:
        server.stop()
