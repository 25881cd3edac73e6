"""Where the compiled BPF object and the kernel BTF come from."""

from __future__ import annotations

import ctypes
import importlib.resources
import os
from pathlib import Path

from oomkiller.bpf.generation import SetupError, Source

OBJ_NAME = "oomkiller.bpf.o"
DEFAULT_BTF = "/sys/kernel/btf/vmlinux"


def read_object() -> tuple[bytes, str]:
    """The compiled BPF object and where it came from."""
    override = os.environ.get("OOMKILLER_BPF_OBJ")
    if override:
        try:
            return Path(override).read_bytes(), override
        except OSError as e:
            raise SetupError(f"cannot read BPF object {override}: {e.strerror}: "
                             "check OOMKILLER_BPF_OBJ") from None
    try:  # package data, also inside the zipapp
        return importlib.resources.files("oomkiller").joinpath(OBJ_NAME).read_bytes(), OBJ_NAME
    except (OSError, ModuleNotFoundError):
        pass
    src_tree = Path(__file__).resolve().parents[3] / "build" / OBJ_NAME
    try:
        return src_tree.read_bytes(), str(src_tree)
    except OSError:
        raise SetupError(f"BPF object {OBJ_NAME} not found: run make") from None


def btf_path() -> tuple[str, bool]:
    """(path, custom): kernel BTF for CO-RE; custom if OOMKILLER_BTF set it."""
    custom = os.environ.get("OOMKILLER_BTF")
    path = custom or DEFAULT_BTF
    if not os.path.exists(path):
        if custom:
            raise SetupError(f"no kernel BTF at {path}: fix OOMKILLER_BTF or unset it")
        raise SetupError(f"no kernel BTF at {path}: boot a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    return path, bool(custom)


def locate(lib: ctypes.CDLL) -> Source:
    """The object and BTF this run loads, each checked to be usable."""
    data, origin = read_object()
    path, custom = btf_path()
    if custom:
        # libbpf reads a custom BTF only inside bpf_object__load, and a
        # bad one would then look like a bad object: check it first.
        try:
            lib.btf__free(lib.btf__parse(path.encode(), None))
        except OSError as e:
            raise SetupError(f"OOMKILLER_BTF={path} is not usable BTF "
                             f"({e.strerror or 'unreadable'}): fix it or unset it") from None
    return Source(data, origin, path if custom else None)
