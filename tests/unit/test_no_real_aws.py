"""The suite's safety net: a call moto does not intercept fails instead of reaching AWS."""

from __future__ import annotations

import boto3
import pytest


def test_a_call_outside_moto_is_refused_before_it_leaves_the_machine() -> None:
    # Given a client created outside any moto mock
    sts = boto3.client("sts", region_name="us-east-1")
    # When it is used, Then the request is refused locally
    with pytest.raises(RuntimeError, match="tried to call real AWS"):
        sts.get_caller_identity()
