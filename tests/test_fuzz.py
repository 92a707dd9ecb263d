"""Property-based fuzzing of the running API from its own OpenAPI schema (schemathesis): never a 5xx,
and every response matches the documented status codes, content types and schemas."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is part of the [test] extra")
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


def schemathesis_command() -> list[str]:
    beside_python = Path(sys.executable).with_name("schemathesis")
    return [str(beside_python)] if beside_python.exists() else [shutil.which("schemathesis") or "schemathesis"]


def test_api_never_fails_and_matches_its_schema(live_server):
    result = subprocess.run(
        [
            *schemathesis_command(),
            "run",
            f"{live_server}/openapi.json",
            "--checks",
            CHECKS,
            "--max-examples",
            "25",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in result.stdout.lower()
