"""The workload `oomkiller selftest` runs for each rule, as `python3 -c
WORKLOAD NAME RULE COUNT PORT STAMP [KEY=VALUE...]`: standard library only, so
it runs from the installed zipapp with nothing else present.

It imports and opens everything first, then renames itself to NAME
(prctl(PR_SET_NAME): a target is counted from its rename on, fds as the level
it has then), then does COUNT units of RULE and exits 0 with os._exit (no
flush, no further counted call). Just before the last unit it stores
CLOCK_BOOTTIME in the STAMP file's shared mapping (no syscall), so the
driver can time the kill from there.

For the selector rows (selftest_policies.py), before the rename:
cgroup=PROCS moves it into that cgroup (its cgroup.procs file), uid=N makes
it run as uid N (setuid: the real uid, which the user selector reads); a
policy is chosen again at the rename, so both count. RULE `tree` (with
child=CHILD) does no units itself: it forks a child that execs this
workload again, named CHILD, for COUNT writes (-B: no .pyc written, so no
write before the child's first unit), and waits for it. It exits 0 if the
child lived; if the child was killed it waits 10 s for its own kill (the
loader may send it a moment later), then exits 1.
"""

WORKLOAD = r'''
import ctypes, mmap, os, socket, sys, threading, time
name, rule, count, port, stamp_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
opts = dict(a.split("=", 1) for a in sys.argv[6:])
libc = ctypes.CDLL("libc.so.6")
fd = os.open(stamp_path, os.O_RDWR)
stamp_map = mmap.mmap(fd, 8)
os.close(fd)
null = os.open("/dev/null", os.O_WRONLY)
zero = os.open("/dev/zero", os.O_RDONLY)
sock = None
if rule == "tcp-packets":
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
level = len(os.listdir("/proc/self/fd")) - 1  # less the listing's own fd
noop = lambda: None
units = {"fds": max(count - level, 0), "read-bytes": -(-count // 65536)}.get(rule, count)

def stamp():
    stamp_map[0:8] = time.clock_gettime_ns(time.CLOCK_BOOTTIME).to_bytes(8, "little")

def unit(i):
    if rule == "fds":
        os.open("/dev/null", os.O_RDONLY)
    elif rule == "writes":
        os.write(null, b"x")
    elif rule == "read-bytes":
        os.read(zero, min(65536, count - i * 65536))
    elif rule == "threads":
        t = threading.Thread(target=noop)
        t.start()
        t.join()
    elif rule == "rand":
        libc.rand()
    elif rule == "tcp-packets":
        sock.send(b"x")

if rule == "tree":
    with open("/proc/self/cmdline", "rb") as f:
        argv = f.read().split(b"\0")
    source = argv[argv.index(b"-c") + 1]
    child = [sys.executable, "-B", "-c", source, opts["child"], "writes", str(count), str(port),
             stamp_path]
if "cgroup" in opts:
    with open(opts["cgroup"], "w") as f:
        f.write(str(os.getpid()))
if "uid" in opts:
    os.setgroups([])
    os.setgid(int(opts["uid"]))
    os.setuid(int(opts["uid"]))

libc.prctl(15, name.encode(), 0, 0, 0)
if rule == "tree":
    pid = os.fork()
    if pid == 0:
        os.execv(sys.executable, child)
    if os.waitpid(pid, 0)[1] == 9:  # killed: we are next, maybe at the loader's sweep
        time.sleep(10)
        os._exit(1)
    os._exit(0)
for i in range(units):
    if i == units - 1:
        stamp()
    unit(i)
os._exit(0)
'''
