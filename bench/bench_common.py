"""What bench/augment_baselines.py and bench/train_baseline.py share: the CPU load of other
processes while something is timed, from /proc/stat.

The scripts run as /usr/bin/python3 bench/X.py, so this folder is on sys.path and they import
it as bench_common.
"""
import time


def busy_seconds():
    """CPU time of all processes (from /proc/stat), or None off Linux."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    steal = fields[7] if len(fields) > 7 else 0
    return (user + nice + system + irq + softirq + steal) / 100.0  # USER_HZ


class LoadMeter:
    """Started when made; stop() gives the wall seconds since, and the CPU cores other processes
    kept busy meanwhile (None off Linux)."""

    def __init__(self):
        self.busy, self.own, self.start = busy_seconds(), time.process_time(), time.perf_counter()

    def stop(self):
        wall = time.perf_counter() - self.start
        own = time.process_time() - self.own
        background = None if self.busy is None else max(0.0, (busy_seconds() - self.busy - own) / wall)
        return wall, background
