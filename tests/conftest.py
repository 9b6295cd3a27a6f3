"""Fixtures shared across test folders."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from s3_server import S3Server, running_s3_server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's S3-compatible server on a free loopback port, for the whole session."""
    with running_s3_server() as server:
        yield server
