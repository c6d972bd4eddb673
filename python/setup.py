"""Builds the Swift library the package loads (SecretKernelC) and ships it inside.

`pip install ./python` from the repository runs `swift build` on the
repository's Package.swift (Swift 6.1+ and the system libraries of the
README's install command are needed), and copies libSecretKernelC.so into
secretc/lib/. Set SECRETC_KERNEL_LIBRARY at run time to use another build.
"""
import os
import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent.parent


class BuildWithSwift(build_py):
    def run(self):
        super().run()
        configuration = os.environ.get("SECRETC_SWIFT_CONFIGURATION", "release")
        subprocess.run(
            ["swift", "build", "-c", configuration, "--product", "SecretKernelC", "--package-path", str(ROOT)],
            check=True,
        )
        bin_path = subprocess.run(
            ["swift", "build", "-c", configuration, "--package-path", str(ROOT), "--show-bin-path"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()
        target = Path(self.build_lib) / "secretc" / "lib"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(bin_path) / "libSecretKernelC.so", target / "libSecretKernelC.so")


setup(cmdclass={"build_py": BuildWithSwift})
