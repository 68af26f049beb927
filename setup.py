"""Build hook: ship template.yaml and statemachine/*.asl.json inside the wheel.

They stay at the repository root, where SAM expects them; `permheal demo` from an installed wheel
deploys the same files from permheal_local/stack_files/ (see permheal_local.stack.stack_files).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
STACK_FILES = [
    "template.yaml",
    *(p.relative_to(ROOT).as_posix() for p in ROOT.glob("statemachine/*.asl.json")),
]


class BuildWithStackFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads them from the checkout
            return
        target = Path(self.build_lib) / "permheal_local" / "stack_files"
        for name in STACK_FILES:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(ROOT / name, target / name)


setup(cmdclass={"build_py": BuildWithStackFiles})
