"""The committed Loki protobuf code is exactly what protoc makes of the committed .proto."""

import subprocess
import sys
from pathlib import Path

import grpc_tools
import pytest

import fleetlog

SRC = Path(fleetlog.__file__).parent.parent
PROTO = "fleetlog/shippers/loki_push.proto"
WELL_KNOWN = Path(grpc_tools.__file__).parent / "_proto"


@pytest.mark.parametrize("generated", ["loki_push_pb2.py", "loki_push_pb2.pyi"])
def test_the_generated_code_is_regenerated_unchanged(tmp_path, generated):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{SRC}",
            f"-I{WELL_KNOWN}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(SRC / PROTO),
        ],
        check=True,
    )
    committed = SRC / "fleetlog/shippers" / generated
    regenerated = tmp_path / "fleetlog/shippers" / generated
    assert regenerated.read_text() == committed.read_text(), (
        f"{generated} differs from what {PROTO} generates: regenerate it (see the .proto's header)"
    )
