"""Where a function starts in an ELF file, as the file offset a uprobe takes.

The killer counts a target's rand() calls with a uprobe on each ELF it maps: a
container's glibc, musl, a 32-bit libc, a static program. A uprobe is placed by
file offset, so a symbol's value goes through the PT_LOAD segment that holds it.
Only the headers, the symbol tables and their strings are read.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import BinaryIO, Iterator

ET_EXEC, ET_DYN = 2, 3
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
SHT_SYMTAB, SHT_DYNSYM = 2, 11
DT_NULL, DT_NEEDED, DT_SONAME = 0, 1, 14
STT_FUNC, STB_LOCAL, SHN_UNDEF = 2, 0, 0

# By EI_CLASS (1: ELF32, 2: ELF64), little-endian: the ELF header after
# e_ident, a program header, a section header, a symbol, a dynamic entry.
_FMT = {
    1: ("<HHIIIIIHHHHHH", "<IIIIIIII", "<IIIIIIIIII", "<IIIBBH", "<iI"),
    2: ("<HHIQQQIHHHHHH", "<IIQQQQQQ", "<IIQQQQIIQQ", "<IBBHQQ", "<qQ"),
}
# Where the fields used sit, as the classes order them differently:
# p_type, p_offset, p_vaddr, p_filesz; st_name, st_info, st_shndx, st_value.
_PH = {1: (0, 1, 2, 4), 2: (0, 2, 3, 5)}
_SYM = {1: (0, 3, 5, 1), 2: (0, 1, 3, 4)}
# Section headers share one order: sh_type 1, sh_offset 4, sh_size 5,
# sh_link 6, sh_entsize 9.


@dataclass(frozen=True)
class Verdict:
    kind: str  # "probe", "none", "stripped" or "not-elf": see find_function
    offset: int = 0  # for "probe": the file offset to give the uprobe


def find_function(f: BinaryIO | str, name: str = "rand") -> Verdict:
    """What a uprobe on function NAME in the ELF file F would be.

    "probe": .dynsym or .symtab defines NAME as an STT_FUNC (GLOBAL or WEAK
    preferred to LOCAL); offset is st_value - p_vaddr + p_offset of the PT_LOAD
    that holds it. "stripped": no such symbol in a statically linked program
    without .symtab, which may well call NAME but cannot be probed. Statically
    linked means no PT_INTERP, and ET_EXEC, or ET_DYN (static-pie) with neither
    DT_NEEDED nor DT_SONAME nor a global symbol defined in .dynsym (musl's
    libc.so has no DT_SONAME, but it exports its functions: a library).
    "none": any other ELF without NAME. "not-elf": not an ELF32 or ELF64
    little-endian file, or one malformed or truncated. Only opening a path
    raises (OSError). Symbol versions are not read: glibc has one rand
    (GLIBC_2.2.5; i386 GLIBC_2.0), and of several the first FUNC wins.
    """
    if isinstance(f, str):
        with open(f, "rb") as fp:
            return find_function(fp, name)
    try:
        return _find(f, name.encode())
    except (struct.error, OSError, ValueError, IndexError):
        return Verdict("not-elf")


def _read(f: BinaryIO, off: int, n: int, size: int) -> bytes:
    # Bounds first: a corrupt size must not become a huge read.
    if off < 0 or n < 0 or off + n > size:
        raise ValueError("past the end of the file")
    f.seek(off)
    data = f.read(n)
    if len(data) != n:
        raise ValueError("short read")
    return data


def _table(f: BinaryIO, off: int, entsize: int, num: int, fmt: str,
           size: int) -> Iterator[tuple]:
    if num and entsize < struct.calcsize(fmt):
        raise ValueError("entries smaller than their struct")
    data = _read(f, off, entsize * num, size)
    for i in range(num):
        yield struct.unpack_from(fmt, data, i * entsize)


def _find(f: BinaryIO, name: bytes) -> Verdict:
    size = f.seek(0, 2)
    ident = _read(f, 0, 16, size)
    cls = ident[4]
    if ident[:4] != b"\x7fELF" or cls not in _FMT or ident[5] != 1:
        return Verdict("not-elf")
    ehdr, phdr, shdr, symfmt, dynfmt = _FMT[cls]
    (e_type, _, _, _, phoff, shoff, _, _, phentsize, phnum, shentsize, shnum,
     _) = struct.unpack(ehdr, _read(f, 16, struct.calcsize(ehdr), size))

    loads, interp, library = [], False, False
    for p in _table(f, phoff, phentsize, phnum, phdr, size):
        ptype, poff, vaddr, filesz = (p[i] for i in _PH[cls])
        interp |= ptype == PT_INTERP
        if ptype == PT_LOAD:
            loads.append((poff, vaddr, filesz))
        elif ptype == PT_DYNAMIC:
            n = filesz // struct.calcsize(dynfmt)
            for tag, _ in _table(f, poff, struct.calcsize(dynfmt), n, dynfmt, size):
                if tag == DT_NULL:
                    break
                library |= tag in (DT_NEEDED, DT_SONAME)

    secs = list(_table(f, shoff, shentsize, shnum, shdr, size))
    best = None  # (is LOCAL, st_value)
    has_symtab = exports = False
    for s in secs:
        if s[1] not in (SHT_DYNSYM, SHT_SYMTAB) or s[9] == 0:
            continue
        has_symtab |= s[1] == SHT_SYMTAB
        strtab = secs[s[6]]
        strs = _read(f, strtab[4], strtab[5], size)
        for st in _table(f, s[4], s[9], s[5] // s[9], symfmt, size):
            st_name, info, shndx, value = (st[i] for i in _SYM[cls])
            if shndx == SHN_UNDEF:
                continue
            local = info >> 4 == STB_LOCAL
            exports |= s[1] == SHT_DYNSYM and not local
            # Not STT_GNU_IFUNC either: its value is the resolver's, which
            # runs once per lookup, not once per call.
            if info & 0xF != STT_FUNC or strs[st_name:st_name + len(name) + 1] != name + b"\0":
                continue
            if best is None or (best[0] and not local):
                best = (local, value)

    if best is not None:
        for poff, vaddr, filesz in loads:
            if vaddr <= best[1] < vaddr + filesz:
                return Verdict("probe", best[1] - vaddr + poff)
        return Verdict("none")  # in no file-backed part of a segment: no offset
    static = not interp and (e_type == ET_EXEC or
                             (e_type == ET_DYN and not library and not exports))
    return Verdict("stripped" if static and not has_symtab else "none")
