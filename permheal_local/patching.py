"""Swap moto's methods for faithful ones and back: the mechanism every `faithful_*` double shares."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

Patch = tuple[type[Any], str, Callable[..., Any]]
Originals = dict[tuple[type[Any], str], Any]


def apply(patches: Iterable[Patch], originals: Originals, lock: threading.RLock) -> bool:
    """Install every patch, keeping what it replaces; False (and nothing done) if already installed.

    A method moto lacks is recorded as None, so `restore` removes it instead of leaving it behind.
    """
    with lock:
        if originals:
            return False
        for cls, name, replacement in patches:
            originals[(cls, name)] = cls.__dict__.get(name)
            setattr(cls, name, replacement)
        return True


def restore(originals: Originals, lock: threading.RLock) -> None:
    """Put moto's own methods back (and remove the ones moto does not have)."""
    with lock:
        for (cls, name), original in originals.items():
            if original is None:
                delattr(cls, name)
            else:
                setattr(cls, name, original)
        originals.clear()
