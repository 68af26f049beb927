"""Powertools singletons shared by the handlers (service name and namespace come from POWERTOOLS_*)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger()
# botocore is the only I/O permheal does; patching every library X-Ray supports (the default) imports
# the ones that happen to be installed (sqlite3, requests, httplib, ...) at every cold start.
tracer = Tracer(patch_modules=("botocore",))
metrics = Metrics()
