"""The embedded local AWS (moto) behind `permheal demo`, `permheal local-aws` and the tests.

It needs the `local` extra. Without it, importing this package raises a ConfigError that says how
to install it, which the CLI prints as one line with exit 2 (a wheel installs without moto).
"""

from __future__ import annotations

from importlib.util import find_spec

from permheal.errors import ConfigError

_LOCAL_EXTRA = ("moto", "cfnlint")

if missing := [name for name in _LOCAL_EXTRA if find_spec(name) is None]:
    raise ConfigError(
        f"the local AWS needs {' and '.join(missing)}: install permheal[local] "
        "(pip install 'permheal[local]')"
    )
