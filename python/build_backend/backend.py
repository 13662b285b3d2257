"""The PEP 517 build backend of selectors2-rs: maturin's, after a check.

A source build compiles Rust (1.88 or newer) and a little C. Without cargo
on PATH, maturin's backend would download a Rust toolchain (hundreds of
MB) or, offline, fail with a long traceback that never says Rust is
missing. This backend stops first, with one line that says what is
needed, and otherwise hands every hook to maturin unchanged. Pre-built
wheels need none of this.
"""

import os
import shutil

import maturin

_MISSING = (
    "selectors2-rs: building from source needs Rust 1.88+ (cargo on PATH, "
    "https://rustup.rs) and a C compiler; or install a pre-built wheel"
)


def _check():
    if shutil.which("cargo") is None:
        raise SystemExit(_MISSING)
    # Never let maturin fetch a toolchain behind the user's back.
    os.environ.setdefault("MATURIN_NO_INSTALL_RUST", "1")


def get_requires_for_build_wheel(config_settings=None):
    _check()
    return maturin.get_requires_for_build_wheel(config_settings)


def get_requires_for_build_sdist(config_settings=None):
    _check()
    return maturin.get_requires_for_build_sdist(config_settings)


def get_requires_for_build_editable(config_settings=None):
    _check()
    return maturin.get_requires_for_build_editable(config_settings)


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    _check()
    return maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)


def prepare_metadata_for_build_editable(metadata_directory, config_settings=None):
    _check()
    return maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings)


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    _check()
    return maturin.build_wheel(wheel_directory, config_settings, metadata_directory)


def build_sdist(sdist_directory, config_settings=None):
    _check()
    return maturin.build_sdist(sdist_directory, config_settings)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    _check()
    return maturin.build_editable(wheel_directory, config_settings, metadata_directory)
