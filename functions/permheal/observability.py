"""Powertools singletons shared by the handlers (service name and namespace come from POWERTOOLS_*).

No Tracer: with `Tracing: Active` Lambda itself records each invocation's segment (initialization,
invocation, overhead) and Step Functions links the states, with no SDK in the function. What the
X-Ray SDK added, a subsegment per AWS call, cost every cold start about a sixth of its imports
(aws_xray_sdk, wrapt, asyncio, patching botocore: benchmarks/coldstart.py).
"""

from __future__ import annotations

from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics

logger = Logger()
metrics = Metrics()
