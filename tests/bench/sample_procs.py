#!/usr/bin/python3
"""sample_procs.py OUT [INTERVAL_S]: where a latency stall came from.

Every INTERVAL_S (default 0.1) until killed, one line to OUT for the machine and one per
funnel-shard / funnel-coordinator process, each stamped with the wall clock (to line up with
`funnel bench --timeline` and the servers' logs):
  T  machine  user sys iowait steal (jiffies since the last line)  pgmajfault pgminfault  pgpgin (KiB)
  T  PID NAME  utime stime (jiffies)  minflt majflt (since the last line)  threads  rss_kb
publish.sh runs it with SAMPLE=1; stalls.py reads it beside the timelines.
"""
import os
import sys
import time


def machine():
    with open("/proc/stat") as f:
        c = f.readline().split()
    user, nice, sys_, idle, iow, irq, sirq, steal = (int(x) for x in c[1:9])
    v = {}
    with open("/proc/vmstat") as f:
        for line in f:
            k, x = line.split()
            if k in ("pgmajfault", "pgfault", "pgpgin"):
                v[k] = int(x)
    return [user + nice, sys_ + irq + sirq, iow, steal, v.get("pgmajfault", 0), v.get("pgfault", 0), v.get("pgpgin", 0)]


def procs():
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        if name != "funnel-shard" and not name.startswith("funnel-coord"):   # (comm: 15 bytes)
            continue
        f = s[s.rindex(")") + 2:].split()
        # fields after the name: state(0) ... minflt(7) majflt(9) utime(11) stime(12) threads(17) rss(21)
        out[int(d)] = (name, [int(f[11]), int(f[12]), int(f[7]), int(f[9])], int(f[17]), int(f[21]) * 4)
    return out


def main():
    out = open(sys.argv[1], "w", buffering=1)
    dt = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
    pm, pp = machine(), procs()
    while True:
        time.sleep(dt)
        t = time.time()
        m, p = machine(), procs()
        d = [a - b for a, b in zip(m, pm)]
        out.write("%.3f machine %s\n" % (t, " ".join(str(x) for x in d)))
        for pid, (name, v, thr, rss) in p.items():
            if pid in pp:
                d = [a - b for a, b in zip(v, pp[pid][1])]
                out.write("%.3f %d %s %s %d %d\n" % (t, pid, name, " ".join(str(x) for x in d), thr, rss))
        pm, pp = m, p


if __name__ == "__main__":
    main()
