"""elfsym.find_function on real ELF files: each offset against the one
readelf's symbol and program header tables give. The files come from the
host and from make progs (oomp_rand built static, stripped, static-pie and
with musl, and a library that exports nothing); none of them is run."""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from oomkiller.bpf.elfsym import Verdict, find_function  # noqa: E402

PROGS = ROOT / "build" / "progs"
LIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")
# gcc-multilib's i386 glibc; the Makefile's .deps32 installs it.
LIBC32 = [Path("/lib32/libc.so.6"), Path("/usr/lib/i386-linux-gnu/libc.so.6")]


def readelf(*args: str) -> str:
    return subprocess.run(["readelf", "-W", *args], check=True, capture_output=True,
                          text=True, timeout=30).stdout


def expected_offset(path: Path, name: str = "rand") -> int:
    """NAME's file offset by readelf: its value through the PT_LOAD holding it."""
    values = set()
    for line in readelf("-s", "--dyn-syms", str(path)).splitlines():
        f = line.split()
        # Num: Value Size Type Bind Vis Ndx Name[@version]
        if len(f) >= 8 and f[3] == "FUNC" and f[6] != "UND" and f[7].split("@")[0] == name:
            values.add(int(f[1], 16))
    assert len(values) == 1, f"{path}: {name} at {values}"
    value = values.pop()
    for line in readelf("-l", str(path)).splitlines():
        f = line.split()
        # LOAD Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align
        if f and f[0] == "LOAD" and int(f[2], 16) <= value < int(f[2], 16) + int(f[4], 16):
            return value - int(f[2], 16) + int(f[1], 16)
    raise AssertionError(f"{path}: {name} at {value:#x} is in no PT_LOAD")


def interpreter(path: Path) -> Path:
    for line in readelf("-l", str(path)).splitlines():
        if "Requesting program interpreter:" in line:
            return Path(line.split(":", 1)[1].strip(" ]"))
    raise AssertionError(f"{path} has no PT_INTERP")


def elf_class(path: Path) -> str:
    return next(line.split()[1] for line in readelf("-h", str(path)).splitlines()
                if line.strip().startswith("Class:"))


def prog(name: str) -> Path:
    path = PROGS / name
    assert path.is_file(), f"{path} missing: run make progs"
    return path


def test_host_glibc():
    v = find_function(str(LIBC))
    assert v == Verdict("probe", expected_offset(LIBC))
    assert v.offset > 0


def test_i386_glibc():
    libc32 = [p for p in LIBC32 if p.exists()]
    assert libc32, f"no i386 glibc at {LIBC32}: run make progs (gcc-multilib)"
    assert elf_class(libc32[0]) == "ELF32"
    assert find_function(str(libc32[0])) == Verdict("probe", expected_offset(libc32[0]))


def test_musl_libc_the_musl_program_loads():
    musl = prog("oomp_rand_musl")
    # dynamically linked: rand is in musl's libc, which is also its loader
    assert find_function(str(musl)) == Verdict("none")
    libc = interpreter(musl)
    assert libc == Path("/lib/ld-musl-x86_64.so.1")
    assert find_function(str(libc)) == Verdict("probe", expected_offset(libc))
    # no DT_SONAME, but a library: a missing name is "none", not "stripped"
    assert find_function(str(libc), "oomkiller_no_such_function") == Verdict("none")


def test_static_glibc_with_symbols():
    path = prog("oomp_rand_static")
    v = find_function(str(path))
    assert v == Verdict("probe", expected_offset(path))
    # ET_EXEC's addresses are not file offsets: the segment's base is taken off
    value = int(next(line.split()[1] for line in readelf("-s", str(path)).splitlines()
                     if line.split()[7:8] == ["rand"]), 16)
    assert v.offset < value


@pytest.mark.parametrize("name", ["oomp_rand_stripped", "oomp_rand_spie"])
def test_stripped_static_program(name):
    assert find_function(str(prog(name))) == Verdict("stripped")


def test_library_that_exports_nothing():
    # no PT_INTERP, no .symtab, nothing defined in .dynsym: only its
    # DT_NEEDED says it is a library, not a static-pie
    path = prog("oomp_rand_hidden.so")
    assert "NEEDED" in readelf("-d", str(path))
    assert find_function(str(path)) == Verdict("none")


def test_global_preferred_to_local():
    # Rename a LOCAL function listed before the GLOBAL rand in .symtab (locals
    # come first) to "rand": the GLOBAL one must still win.
    path = prog("oomp_rand_static")
    sec = next(line.split("]", 1)[1].split() for line in readelf("-S", str(path)).splitlines()
               if " .symtab " in line)
    symoff, entsize = int(sec[3], 16), int(sec[5], 16)
    # Num: Value Size Type Bind Vis Ndx Name, by Num
    syms = {int(f[0][:-1]): f for f in map(str.split, readelf("-s", str(path)).splitlines())
            if len(f) == 8 and f[0][:-1].isdigit()}
    glob = next(n for n, f in syms.items() if f[7] == "rand" and f[4] == "GLOBAL")
    loc = next(n for n, f in syms.items() if f[3] == "FUNC" and f[4] == "LOCAL"
               and f[6] != "UND" and int(f[1], 16) not in (0, int(syms[glob][1], 16)))
    assert loc < glob
    data = bytearray(path.read_bytes())
    st_name = data[symoff + glob * entsize:][:4]
    data[symoff + loc * entsize:symoff + loc * entsize + 4] = st_name
    assert find_function(io.BytesIO(bytes(data))) == Verdict("probe", expected_offset(path))


@pytest.mark.parametrize("path", [Path("/bin/true"), PROGS / "oomp_rand"])
def test_dynamic_program_without_rand(path):
    assert path.is_file(), path
    assert find_function(str(path)) == Verdict("none")


def test_ifunc_is_no_match():
    # glibc's strlen is an IFUNC only: its value is the resolver's
    assert any(f[3:4] == ["IFUNC"] and f[7:8] == ["strlen@@GLIBC_2.2.5"]
               for f in map(str.split, readelf("--dyn-syms", str(LIBC)).splitlines()))
    assert find_function(str(LIBC), "strlen") == Verdict("none")


def test_file_object_and_name():
    data = LIBC.read_bytes()
    assert find_function(io.BytesIO(data)) == find_function(str(LIBC))
    assert find_function(io.BytesIO(data), "srand") == Verdict("probe", expected_offset(LIBC, "srand"))
    # "ran" is a prefix of "rand", not a symbol
    assert find_function(io.BytesIO(data), "ran") == Verdict("none")


def test_not_elf(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("rand\n" * 100)
    assert find_function(str(text)) == Verdict("not-elf")
    assert find_function(io.BytesIO(b"")) == Verdict("not-elf")
    big = bytearray(LIBC.read_bytes())
    big[5] = 2  # EI_DATA: big-endian
    assert find_function(io.BytesIO(bytes(big))) == Verdict("not-elf")


def test_truncated_and_corrupt_libc(tmp_path):
    data = LIBC.read_bytes()
    for n in (3, 16, 40, 64, 4096, len(data) // 2, len(data) - 1):
        v = find_function(io.BytesIO(data[:n]))
        assert v.kind in ("not-elf", "none"), (n, v)
    cut = tmp_path / "libc.so.6"
    shutil.copyfile(LIBC, cut)
    with open(cut, "r+b") as f:
        f.truncate(len(data) // 2)
    assert find_function(str(cut)).kind in ("not-elf", "none")
    # e_shoff (ELF64: 8 bytes at 40) far past the end
    bad = bytearray(data)
    bad[40:48] = (1 << 62).to_bytes(8, "little")
    assert find_function(io.BytesIO(bytes(bad))) == Verdict("not-elf")


def test_unopenable_path_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        find_function(str(tmp_path / "missing"))
