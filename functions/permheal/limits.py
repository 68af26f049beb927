"""Size budgets for what crosses Step Functions and SNS, so no execution ever hits their limits.

On AWS a state's input or output, or a task's result, over 256 KiB fails the execution with
`States.DataLimitExceeded`, which `States.ALL` does not catch: on-call would hear nothing. SNS
refuses messages over 256 KiB, and a Fail state's cause holds 32,768 characters. So each producer
of workflow data keeps to a share computed here, and the shares add up to less than the limits:

- the state "Summarize for on-call" reads holds the request, the resolution, the repairs and at
  most one caught error (REQUEST + RESOLUTION + REPAIRS + ERROR);
- the summary then *replaces* the state: message + result + cause (+ a caught notification error).

Lists are cut with a count of what was left out (never JSON cut mid-way); the full details of every
change, removed statements included, are in the audit ledger (`permheal history`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

from permheal.errors import PermhealError

STEP_FUNCTIONS_DATA_LIMIT = 262_144
"""Bytes: a state's input/output, a task's result, an execution's input/output."""
SNS_MESSAGE_LIMIT = 262_144
"""Bytes: one SNS message, attributes included."""
FAIL_CAUSE_LIMIT = 32_768
"""Characters: a Fail state's (and a caught error's) cause."""

REQUEST_BUDGET = 8_192
"""The execution input, which the state carries to the end: Resolve refuses a larger one."""
RESOLUTION_BUDGET = 98_304
"""Resolve's result: the function groups the Map iterates over, findings, context."""
REPAIRS_BUDGET = 98_304
"""The Map's result: every iteration's repair result together."""
ERROR_BUDGET = FAIL_CAUSE_LIMIT + 4_096
"""A caught error: its name (≤ 256 characters) and cause."""
MIN_REPAIR_BUDGET = 768
"""The least one iteration's result needs: the function, counts and a clipped error."""
MAX_GROUPS = REPAIRS_BUDGET // MIN_REPAIR_BUDGET
"""Most function+qualifier groups one execution can repair within REPAIRS_BUDGET."""

MESSAGE_BUDGET = 98_304
"""The SNS message: the human summary and the JSON result (`default`), and the chat payload (`https`)."""
CHAT_BUDGET = 16_384
"""The chat payload's share of MESSAGE_BUDGET, as the escaped JSON string SNS carries (permheal.chat)."""
CHAT_DESCRIPTION_LIMIT = 3_000
"""Characters of the chat description: Slack shows at most 3,000 in one text block."""
RESULT_BUDGET = 49_152
"""The result as the execution's output (what `permheal remediate` prints)."""
CAUSE_BUDGET = 30_000
"""The result as a Fail state's cause: under FAIL_CAUSE_LIMIT with room for escaping differences."""
REPORT_OVERHEAD = 2_048
"""Subject, outcome, API id, the SNS publish result and JSON punctuation."""
ERROR_TEXT_LIMIT = 4_000
"""Characters of error text a result carries; the rest is in the execution history and the logs."""

SUMMARIZE_INPUT = REQUEST_BUDGET + RESOLUTION_BUDGET + REPAIRS_BUDGET + ERROR_BUDGET + REPORT_OVERHEAD
REPORT = MESSAGE_BUDGET + RESULT_BUDGET + CAUSE_BUDGET + ERROR_BUDGET + REPORT_OVERHEAD

T = TypeVar("T")


class TooLargeError(PermhealError):
    """Work that cannot be described within Step Functions' limits, refused before it starts."""


def json_size(value: Any) -> int:
    """UTF-8 bytes of `value` as compact JSON, as Step Functions stores it."""
    return text_size(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def text_size(value: str) -> int:
    """UTF-8 bytes; a lone surrogate (invalid, but Python strings can hold one) counts 3."""
    return len(value.encode(errors="surrogatepass"))


def fit(render: Callable[[int], T], budget: int, most: int, size: Callable[[T], int] = json_size) -> T:
    """`render(k)` with the largest k ≤ `most` (entries kept per list) whose size fits `budget`.

    `render` must grow with k. Raises TooLargeError when even `render(0)` does not fit.
    """
    full = render(most)
    if size(full) <= budget:
        return full
    low, high = 0, most - 1
    if size(render(low)) > budget:
        raise TooLargeError(f"cannot fit {budget} bytes even with every list left out")
    while low < high:
        middle = (low + high + 1) // 2
        if size(render(middle)) <= budget:
            low = middle
        else:
            high = middle - 1
    return render(low)


def clip(text: str | None, limit: int = ERROR_TEXT_LIMIT) -> str | None:
    """At most `limit` characters, saying how many were cut."""
    if text is None or len(text) <= limit:
        return text
    marker = f"… ({len(text) - limit} more characters)"
    return text[: max(0, limit - len(marker))] + marker


def repair_budget(groups: int) -> int:
    """One Map iteration's share of REPAIRS_BUDGET."""
    return max(MIN_REPAIR_BUDGET, REPAIRS_BUDGET // max(1, groups))
