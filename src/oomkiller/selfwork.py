"""The workload `oomkiller selftest` runs for each rule, as `python3 -c
WORKLOAD NAME RULE COUNT PORT STAMP`: standard library only, so it runs from
the installed zipapp with nothing else present.

It imports and opens everything first, then renames itself to NAME
(prctl(PR_SET_NAME): a target is counted from its rename on, fds as the level
it has then), then does COUNT units of RULE and exits 0 with os._exit (no
flush, no further counted call). Just before the last unit it stores
CLOCK_BOOTTIME in the STAMP file's shared mapping (no syscall), so the
driver can time the kill from there.
"""

WORKLOAD = r'''
import ctypes, mmap, os, socket, sys, threading, time
name, rule, count, port, stamp_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
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

libc.prctl(15, name.encode(), 0, 0, 0)
for i in range(units):
    if i == units - 1:
        stamp()
    unit(i)
os._exit(0)
'''
