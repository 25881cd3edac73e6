"""oomkiller: a process killer whose whole policy runs in the kernel as BPF."""

__version__ = "0.1.0"
