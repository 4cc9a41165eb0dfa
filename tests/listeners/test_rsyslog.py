"""rsyslog from Debian forwarding to the listener: omfwd, RFC 5424 over TCP, octet-counted.

rsyslogd runs in the foreground with its own configuration and work directory: no system
socket (imuxsock and imklog are not loaded), an imtcp input on a free port that `logger`
writes RFC 3164 to, and one omfwd action to fleetlog.
"""

import asyncio
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from fleetlog.localstack import free_port, port_is_open
from tests.fixtures.pipeline import wait_for
from tests.listeners.conftest import Counted, Fleetlog, run

RSYSLOGD = "/usr/sbin/rsyslogd"

CONFIG = """\
global(workDirectory="{work}")
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="{input_port}")
action(type="omfwd" target="127.0.0.1" port="{fleetlog_port}" protocol="tcp"
       template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
"""


def write_config(work: Path, *, input_port: int, fleetlog_port: int) -> Path:
    if not Path(RSYSLOGD).exists():
        pytest.fail(f"{RSYSLOGD} is missing: run scripts/ensure-services")
    config = work / "rsyslog.conf"
    config.write_text(CONFIG.format(work=work, input_port=input_port, fleetlog_port=fleetlog_port))
    return config


@pytest.fixture
async def rsyslog(fleetlog: Fleetlog, tmp_path: Path) -> AsyncIterator[int]:
    """rsyslogd forwarding to `fleetlog`; yields the port of its TCP input."""
    input_port = free_port()
    config = write_config(tmp_path, input_port=input_port, fleetlog_port=fleetlog.syslog_port)
    with (tmp_path / "rsyslogd.out").open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            *(RSYSLOGD, "-n", "-f", str(config), "-i", str(tmp_path / "rsyslogd.pid")),
            stdout=output,
            stderr=output,
        )

    async def listening() -> bool:
        assert process.returncode is None, (tmp_path / "rsyslogd.out").read_text()
        return port_is_open(input_port)

    try:
        await wait_for(listening, what="rsyslogd to listen")
        yield input_port
    finally:
        process.terminate()
        await process.wait()


async def test_rsyslog_forwards_every_line_once_as_rfc5424(fleetlog: Fleetlog, rsyslog: int):
    counted = Counted()
    before = datetime.now(UTC)
    lines = b"".join(b"relay %d says hello\n" % n for n in range(5))
    options = ["-T", "--rfc3164", "-t", "gate", "-i", "-p", "daemon.warning"]
    await run("logger", "-n", "127.0.0.1", "-P", str(rsyslog), *options, stdin=lines)
    await counted.reach("syslog_tcp", "accepted", 5)
    after = datetime.now(UTC)

    logs = await fleetlog.search("relay")
    assert [log["message"] for log in logs] == [f"relay {n} says hello" for n in range(5)]
    for log in logs:
        assert log["device_id"] == socket.gethostname().split(".")[0]
        assert log["log_level"] == "WARNING"
        assert log["log_data"]["facility"] == "daemon"
        assert log["log_data"]["app_name"] == "gate"
        assert log["log_data"]["procid"].isdigit()
        created_at = datetime.fromisoformat(log["created_at"])
        assert before.replace(microsecond=0) <= created_at <= after
    assert counted.moves() == {"syslog_tcp.accepted": 5}
