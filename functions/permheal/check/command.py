"""The `permheal check` subcommand (cli.py parses its arguments): the one-line-error promise."""

from __future__ import annotations

import argparse
from typing import TextIO

from permheal.errors import ConfigError, PermhealError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2


def run(args: argparse.Namespace, out: TextIO) -> int:
    try:
        from permheal.check import check_paths
        from permheal.check.render import to_json, to_sarif, to_table
    except ImportError as exc:  # PyYAML is not a dependency of the Lambda package
        raise ConfigError(f"permheal check needs {exc.name}: pip install 'permheal[check]'") from exc
    try:
        findings = check_paths(args.paths)
    except PermhealError:
        raise
    except RecursionError as exc:
        raise ConfigError("check: the template nests too deeply to read") from exc
    except Exception as exc:  # a template we mis-read must still end in one line, never a traceback
        raise PermhealError(f"check: {type(exc).__name__}: {exc}") from exc
    if args.format == "json":
        out.write(to_json(findings))
    elif args.format == "sarif":
        out.write(to_sarif(findings, _version()))
    else:
        out.write(to_table(findings))
    return EXIT_FINDINGS if findings else EXIT_OK


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("permheal")
    except PackageNotFoundError:
        return "0+unknown"
