"""The AWS ports a run uses, each real one built on first use.

A step builds only the clients it calls: the resolve Lambda never builds a Lambda client, the
repair Lambda never an API Gateway one (each client costs a cold start tens of milliseconds). A
port's module is imported when the port is first used, for the same reason: the repair Lambda
never loads the API Gateway and OpenAPI code. Tests and the local AWS pass their own doubles.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from permheal.adapters.account import Allowlist, Identity, caller_identity, read_allowlist
from permheal.pacing import Pacer, unlimited

if TYPE_CHECKING:
    from permheal.adapters.access_logs import AccessLogStages
    from permheal.adapters.apigateway import ApiGateway
    from permheal.adapters.lambda_policy import LambdaPolicies
    from permheal.adapters.ledger import Ledger


class Adapters:
    """API Gateway, Lambda policies, the caller's identity, the allowlist and the audit ledger."""

    def __init__(
        self,
        gateway: ApiGateway | None = None,
        policies: LambdaPolicies | None = None,
        identity: Callable[[], Identity] = caller_identity,
        allowlist: Callable[[str], Allowlist] = read_allowlist,
        sleep: Callable[[float], None] = time.sleep,
        ledger: Ledger | None = None,
        *,
        ledger_table: str | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self._gateway = gateway
        self._policies = policies
        self.identity = identity
        self.allowlist = allowlist
        self.sleep = sleep
        self._ledger = ledger
        self._ledger_table = None if ledger is not None else ledger_table
        self._access_logs: AccessLogStages | None = None
        self.pacer = pacer or unlimited()
        """This account+region's quotas, shared by the gateway and policies adapters built here."""

    @classmethod
    def default(cls, ledger_table: str | None = None, pacer: Pacer | None = None) -> Adapters:
        """Real adapters (no client built yet); without a ledger table nothing is recorded."""
        return cls(ledger_table=ledger_table, pacer=pacer)

    @property
    def gateway(self) -> ApiGateway:
        if self._gateway is None:
            from permheal.adapters.apigateway import ApiGateway

            self._gateway = ApiGateway(pacer=self.pacer)
        return self._gateway

    @property
    def policies(self) -> LambdaPolicies:
        if self._policies is None:
            from permheal.adapters.lambda_policy import LambdaPolicies

            self._policies = LambdaPolicies(pacer=self.pacer)
        return self._policies

    @property
    def access_logs(self) -> AccessLogStages:
        """v2 stages by access-log destination (only access-log incidents need it)."""
        if self._access_logs is None:
            from permheal.adapters.access_logs import AccessLogStages

            self._access_logs = AccessLogStages(region=self.gateway.region)
        return self._access_logs

    @property
    def ledger(self) -> Ledger | None:
        if self._ledger is None and self._ledger_table:
            from permheal.adapters.ledger import Ledger

            self._ledger = Ledger(self._ledger_table)
        return self._ledger
