"""IAM ``ArnLike`` / ``StringLike`` matching and exact coverage between patterns.

permheal decides whether an invoke-permission statement is redundant (another statement already
grants everything it grants). Guessing wrong would either leave clutter or, worse, delete a
statement that was still needed, so coverage here is decided exactly: each glob is an NFA and
inclusion is checked by subset construction, which also yields a concrete counterexample ARN.

Pure module: stdlib only, no I/O, no environment reads.
"""

from __future__ import annotations

import functools
import re
import string
from collections import deque

from permheal.errors import ParseError

__all__ = [
    "arn_like",
    "coverage_counterexample",
    "covers",
    "is_arn_pattern",
    "string_like",
    "string_like_counterexample",
    "string_like_covers",
]

_ARN_PARTS = 6
_RESOURCE = _ARN_PARTS - 1
_WILDCARDS = frozenset("*?")
# Stands in for a `?` when a witness needs *some* character; never a colon so ARNs re-split cleanly.
_FILLER = "x"
_FRESH_CANDIDATES = string.ascii_lowercase + string.digits + string.ascii_uppercase + "-_./"


def _split_arn(text: str) -> tuple[str, ...] | None:
    """Split at the first five colons, as IAM does; None when it is not a six-part ``arn:`` string."""
    parts = text.split(":", _RESOURCE)
    if len(parts) != _ARN_PARTS or parts[0] != "arn":
        return None
    return tuple(parts)


def _collapse_stars(glob: str) -> str:
    """``**`` means the same as ``*``; collapsing keeps regexes and NFAs small."""
    return re.sub(r"\*{2,}", "*", glob)


def _glob_regex(glob: str, any_char: str) -> str:
    """Translate one glob to regex source; ``any_char`` decides whether ``*``/``?`` may cross colons."""
    out: list[str] = []
    for ch in _collapse_stars(glob):
        if ch == "*":
            out.append(any_char + "*")
        elif ch == "?":
            out.append(any_char)
        else:
            out.append(re.escape(ch))
    return "".join(out)


@functools.lru_cache(maxsize=1024)
def _arn_regex(pattern: str) -> re.Pattern[str] | None:
    """One regex per ARN pattern, cached: policies are re-evaluated against many ARNs in hot loops.

    Wildcards in the first five components exclude the colon, which is exactly equivalent to
    splitting the value at its first five colons and matching component by component.
    """
    parts = _split_arn(pattern)
    if parts is None:
        return None
    head = [_glob_regex(part, "[^:]") for part in parts[:_RESOURCE]]
    return re.compile(":".join([*head, _glob_regex(parts[_RESOURCE], ".")]), re.DOTALL)


@functools.lru_cache(maxsize=1024)
def _string_regex(pattern: str) -> re.Pattern[str]:
    """Whole-string glob regex, cached for the same hot-loop reason as ``_arn_regex``."""
    return re.compile(_glob_regex(pattern, "."), re.DOTALL)


def arn_like(pattern: str, value: str) -> bool:
    """IAM ``ArnLike``: component-wise, case-sensitive glob; a ``*`` never spans a component colon."""
    regex = _arn_regex(pattern)
    return regex is not None and regex.fullmatch(value) is not None


def string_like(pattern: str, value: str) -> bool:
    """IAM ``StringLike``: whole-string, case-sensitive glob (``*`` any run, ``?`` one character)."""
    return _string_regex(pattern).fullmatch(value) is not None


def is_arn_pattern(pattern: str) -> bool:
    """True when ``pattern`` can be used with ``ArnLike`` at all (six components, starting ``arn``)."""
    return _split_arn(pattern) is not None


# --- exact coverage --------------------------------------------------------------------------------
#
# A glob with tokens t[0..n-1] is an NFA whose state i means "the first i tokens are consumed";
# state n accepts. A `*` token at i has an epsilon move to i+1 and a self-loop on every character.


def _closure(glob: str, states: set[int]) -> frozenset[int]:
    """Add the epsilon moves: a ``*`` may match the empty string."""
    out: set[int] = set()
    for state in states:
        while state not in out:
            out.add(state)
            if state < len(glob) and glob[state] == "*":
                state += 1
    return frozenset(out)


def _step(glob: str, states: frozenset[int], ch: str) -> frozenset[int]:
    """NFA successor set on one character (already epsilon-closed)."""
    nxt: set[int] = set()
    for state in states:
        if state == len(glob):
            continue
        token = glob[state]
        if token == "*":
            nxt.add(state)
        elif token in ("?", ch):
            nxt.add(state + 1)
    return _closure(glob, nxt)


def _fresh_char(used: set[str]) -> str:
    """One character no pattern mentions: all such characters behave alike, so one stands for all."""
    for ch in _FRESH_CANDIDATES:
        if ch not in used:
            return ch
    code = 0x100
    while chr(code) in used:
        code += 1
    return chr(code)


@functools.lru_cache(maxsize=4096)
def _glob_counterexample(broad: str, narrow: str, allow_colon: bool) -> str | None:
    """Shortest word matched by ``narrow`` but not ``broad``, or None when ``narrow`` ⊆ ``broad``.

    BFS over (narrow state, epsilon-closed set of broad states) — an on-the-fly product of the
    narrow NFA with the subset construction of the broad one. The alphabet is every literal of
    either pattern plus one fresh character, which is exhaustive because characters absent from
    both patterns are indistinguishable to them. Colons are left out unless ``allow_colon``,
    since only the resource component of an ARN can contain one.
    """
    broad, narrow = _collapse_stars(broad), _collapse_stars(narrow)
    if broad == narrow or broad == "*":
        return None
    used = set(broad) | set(narrow)
    alphabet = sorted(ch for ch in used - _WILDCARDS if allow_colon or ch != ":")
    alphabet.append(_fresh_char(used | {":"}))

    start_broad = _closure(broad, {0})
    words: dict[tuple[int, frozenset[int]], str] = {}
    queue: deque[tuple[int, frozenset[int]]] = deque()
    for state in sorted(_closure(narrow, {0})):
        node = (state, start_broad)
        words[node] = ""
        queue.append(node)
    while queue:
        node = queue.popleft()
        state, broad_states = node
        word = words[node]
        if state == len(narrow) and len(broad) not in broad_states:
            return word
        for ch in alphabet:
            next_broad = _step(broad, broad_states, ch)
            for next_state in sorted(_step(narrow, frozenset({state}), ch)):
                nxt = (next_state, next_broad)
                if nxt not in words:
                    words[nxt] = word + ch
                    queue.append(nxt)
    return None


def _some_match(glob: str) -> str:
    """Any word the glob matches; used for the components that are not the counterexample."""
    return glob.replace("*", "").replace("?", _FILLER)


def _require_arn(pattern: str, role: str) -> tuple[str, ...]:
    parts = _split_arn(pattern)
    if parts is None:
        raise ParseError(f"{role} pattern is not an ARN pattern (need arn:p:s:r:a:resource): {pattern!r}")
    return parts


def coverage_counterexample(broad: str, narrow: str) -> str | None:
    """An ARN matched by ``narrow`` but not by ``broad``, or None when ``broad`` covers ``narrow``.

    ArnLike matches components independently, so the ARN languages are products and inclusion
    holds iff it holds in every component; a failing component's witness, padded with any
    matching words for the other components, is a witness for the whole ARN.
    Raises ParseError when either pattern is not an ARN pattern.
    """
    broad_parts = _require_arn(broad, "broad")
    narrow_parts = _require_arn(narrow, "narrow")
    for index, (broad_part, narrow_part) in enumerate(zip(broad_parts, narrow_parts, strict=True)):
        witness = _glob_counterexample(broad_part, narrow_part, index == _RESOURCE)
        if witness is not None:
            parts = [_some_match(part) for part in narrow_parts]
            parts[index] = witness
            return ":".join(parts)
    return None


def covers(broad: str, narrow: str) -> bool:
    """Whether every ARN ``narrow`` matches is matched by ``broad``.

    Non-ARN input yields False rather than an error: callers use this to drop redundant
    statements, and anything we cannot reason about must count as "not covered".
    """
    if not (is_arn_pattern(broad) and is_arn_pattern(narrow)):
        return False
    if not _literal_ends_fit(broad, narrow):
        return False
    # One ARN narrow matches that broad rejects settles it with a regex match; most pairs of grants
    # (other methods, other paths) end here instead of in the exact search below.
    if not arn_like(broad, _some_match(narrow)):
        return False
    return coverage_counterexample(broad, narrow) is None


def _literal_ends_fit(broad: str, narrow: str) -> bool:
    """Cheap necessary condition for coverage, so big policies are not an O(n²) of exact checks.

    Every word ``broad`` matches starts with its literal prefix; a wildcard of ``narrow`` before
    that prefix ends can always pick another character, so ``narrow``'s literal prefix must extend
    ``broad``'s. The same holds for suffixes.
    """
    broad_parts, narrow_parts = _WILDCARD_RE.split(broad), _WILDCARD_RE.split(narrow)
    return narrow_parts[0].startswith(broad_parts[0]) and narrow_parts[-1].endswith(broad_parts[-1])


_WILDCARD_RE = re.compile(r"[*?]")


def string_like_counterexample(broad: str, narrow: str) -> str | None:
    """A string matched by ``narrow`` but not ``broad`` under StringLike, or None when covered."""
    return _glob_counterexample(broad, narrow, True)


def string_like_covers(broad: str, narrow: str) -> bool:
    """Whether every string ``narrow`` matches under StringLike is matched by ``broad``."""
    return string_like_counterexample(broad, narrow) is None
