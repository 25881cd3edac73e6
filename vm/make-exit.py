#!/usr/bin/python3
"""Make the running `make` exit with STATUS instead of its own 2.

    vm/make-exit.py MAKE_PID STATUS

GNU make exits 2 whatever status a recipe failed with, but `make vm-run`
must exit with the guest command's status (other checks rely on it). So the
recipe calls this just before it exits STATUS: we attach to make with ptrace,
return once attached, and in the background wait for make's exit_group(2)
and rewrite its argument to STATUS. Only make's failure code 2 is rewritten;
anything else (an interrupt, a later success) passes unchanged. Without the
right to trace make (not root under Yama ptrace_scope >= 1), make exits 2
and we say so.
"""
import ctypes
import os
import signal
import sys

PTRACE_GETREGS, PTRACE_SETREGS, PTRACE_DETACH = 12, 13, 17
PTRACE_SYSCALL, PTRACE_SEIZE, PTRACE_INTERRUPT = 24, 0x4206, 0x4207
PTRACE_O_TRACESYSGOOD = 1
PTRACE_EVENT_STOP = 128
SYS_exit, SYS_exit_group = 60, 231  # x86_64
MAKE_FAILURE = 2
__WALL = 0x40000000
ENOSYS = 38


class Regs(ctypes.Structure):
    """struct user_regs_struct, x86_64 (arch/x86/include/asm/user_64.h)."""
    _fields_ = [(n, ctypes.c_ulonglong) for n in (
        "r15 r14 r13 r12 rbp rbx r11 r10 r9 r8 rax rcx rdx rsi rdi orig_rax "
        "rip cs eflags rsp ss fs_base gs_base ds es fs gs").split()]


libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.restype = ctypes.c_long
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
                        ctypes.c_void_p]


def ptrace(req: int, pid: int, addr: int = 0, data=0) -> None:
    if libc.ptrace(req, pid, addr, data) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def rewrite_exit(pid: int, status: int) -> None:
    """Follow make's syscalls until it exits; patch exit_group(2)."""
    regs = Regs()
    while True:
        _, st = os.waitpid(pid, __WALL)
        if os.WIFEXITED(st) or os.WIFSIGNALED(st):
            return
        sig = os.WSTOPSIG(st)
        inject = 0
        if sig == signal.SIGTRAP | 0x80:  # syscall stop (TRACESYSGOOD)
            ptrace(PTRACE_GETREGS, pid, 0, ctypes.addressof(regs))
            entry = ctypes.c_longlong(regs.rax).value == -ENOSYS
            if entry and regs.orig_rax in (SYS_exit, SYS_exit_group):
                if regs.rdi == MAKE_FAILURE:
                    regs.rdi = status
                    ptrace(PTRACE_SETREGS, pid, 0, ctypes.addressof(regs))
                ptrace(PTRACE_DETACH, pid)
                return
        elif (st >> 16) != PTRACE_EVENT_STOP and sig != signal.SIGTRAP:
            inject = sig  # a real signal for make: deliver it
        ptrace(PTRACE_SYSCALL, pid, 0, inject)


def main() -> int:
    pid, status = int(sys.argv[1]), int(sys.argv[2])
    if status in (0, MAKE_FAILURE) or not 0 < status < 256:
        return 0
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        try:
            os.setsid()
            ptrace(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD)
            ptrace(PTRACE_INTERRUPT, pid)
            os.write(w, b"1")
            os.close(w)
            rewrite_exit(pid, status)
        except OSError as e:
            os.write(w, f"0{e.strerror}".encode())
        os._exit(0)
    os.close(w)
    said = os.read(r, 200).decode()
    if not said.startswith("1"):
        print(f"vm: make will exit {MAKE_FAILURE}, not {status}: "
              f"cannot trace make ({said[1:] or 'helper died'})",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
