"""4. Planner scaling: evaluate and plan one function's policy as the policy and the target list grow.

Policies grow from 1 statement to the 20 KB limit with method-scoped API Gateway grants of other
APIs (what a busy shared function accumulates), plus the odd console-added duplicate. Target lists
grow from 1 to 100 methods of one API calling the same function, against an empty policy (the
worst case: every target needs a grant and every new grant is checked against every other).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from permheal import arnlike
from permheal.arns import ApiRef, FunctionRef
from permheal.models import Scope, Target, TargetKind
from permheal.planner import PlanOptions, permheal_sid, plan_repair
from permheal.policy import POLICY_SIZE_LIMIT, InvokeRequest, Policy, evaluate, invoke_statement

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION = FunctionRef("aws", REGION, ACCOUNT, "orders", "live")
API = ApiRef("aws", REGION, ACCOUNT, "a1b2c3d4e5")
VERBS = ("GET", "POST", "PUT", "DELETE")


def _api(index: int) -> ApiRef:
    return ApiRef("aws", REGION, ACCOUNT, f"api{index:07d}")


def policy_with(statements: int) -> Policy:
    """`statements` grants for other APIs' methods; every 10th duplicates the one before it."""
    found: list[dict[str, Any]] = []
    for index in range(statements):
        source = f"{_api(index // 4).prefix}/*/{VERBS[index % 4]}/items/*"
        if index % 10 == 9:
            source = str(found[-1]["Condition"]["ArnLike"]["AWS:SourceArn"])
        found.append(invoke_statement(f"s{index}", FUNCTION.arn, source))
    return Policy(tuple(found), "rev-1")


def largest_policy() -> Policy:
    """The most statements that still fit under the limit together with one more grant."""
    count = 1
    while policy_with(count + 2).size_bytes <= POLICY_SIZE_LIMIT:
        count += 1
    return policy_with(count)


def targets(count: int) -> list[Target]:
    return [
        Target(TargetKind.INTEGRATION, API, "prod", FUNCTION, VERBS[i % 4], f"/r{i // 4:03d}/{{id}}")
        for i in range(count)
    ]


def clear_caches() -> None:
    """Forget compiled patterns and coverage answers: each timed call starts as a fresh Lambda would."""
    for cached in (arnlike._arn_regex, arnlike._string_regex, arnlike._glob_counterexample):
        cached.cache_clear()


def _time(run: Callable[[], Any], budget: float, limit: int = 50) -> tuple[float, Any]:
    """Median seconds per call with cold caches (at least 3 calls, about `budget` seconds in all)."""
    times: list[float] = []
    result: Any = None
    while len(times) < 3 or (sum(times) < budget and len(times) < limit):
        clear_caches()
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def run(quick: bool = False) -> dict[str, Any]:
    budget = 0.05 if quick else 0.4
    options = PlanOptions(Scope.METHOD, removable_apis=None, existing_api_ids=None)
    biggest = largest_policy()
    sizes = sorted({1, 10, 25, len(biggest.statements)}) if not quick else [1, 10]
    one_target = targets(1)
    by_policy = []
    for count in sizes:
        policy = policy_with(count)
        request = InvokeRequest(FUNCTION.arn, one_target[0].source_arn, ACCOUNT)
        evaluate_s, _ = _time(partial(evaluate, policy, request), budget)
        plan_s, plan = _time(partial(plan_repair, FUNCTION, policy, one_target, options), budget)
        by_policy.append(
            {
                "statements": count,
                "policy_bytes": policy.size_bytes,
                "evaluate_ms": round(evaluate_s * 1000, 3),
                "plan_ms": round(plan_s * 1000, 3),
                "plan_adds": len(plan.add),
                "plan_removes": len(plan.removals),
                "refused": plan.refusal is not None,
            }
        )
    by_targets = []
    for count in (1, 10) if quick else (1, 10, 25, 50, 100):
        group = targets(count)
        plan_s, plan = _time(partial(plan_repair, FUNCTION, Policy(), group, options), budget)
        by_targets.append(
            {
                "targets": count,
                "plan_ms": round(plan_s * 1000, 3),
                "ms_per_target": round(plan_s * 1000 / count, 3),
                "plan_adds": len(plan.add),
                "refused": plan.refusal is not None,
                "bytes_after": plan.bytes_after,
            }
        )
    return {
        "limit_bytes": POLICY_SIZE_LIMIT,
        "by_policy_size": by_policy,
        "by_targets": by_targets,
        "sid_example": permheal_sid(one_target[0].grant_pattern(Scope.METHOD), FUNCTION.qualifier),
    }
