#!/usr/bin/python3
"""stalls.py DIR [BIN_S]: a publish run's stalls beside what the machine did then.

DIR is publish.sh's timeline folder ($CACHE/publish-last) from a SAMPLE=1 run. For each window,
BIN_S bins (default 1) of its timeline; a bin is shown when a request in it failed or its p99
is over 2x the window's, with the bin before and after it. Per bin: requests,
failed, p99 and max (ms); the machine's CPU split (user/sys/iowait/steal, % of all cores), major
faults and KiB read; each server's CPU (% of one core) and minor/major faults; and the servers'
log lines stamped in it.
"""
import collections
import datetime
import glob
import os
import statistics
import sys

d = sys.argv[1]
B = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count()

starts, actions = {}, {}
for line in open(os.path.join(d, "starts")):
    f = line.split()
    if f[0].endswith(".action"):
        actions[f[0][:-7]] = (float(f[1]), float(f[2]))
    else:
        starts[f[0]] = float(f[1])

samples = []   # (t, kind, fields)
names = {}
if os.path.exists(os.path.join(d, "procs.log")):
    for line in open(os.path.join(d, "procs.log")):
        f = line.split()
        if len(f) < 3:
            continue
        if f[1] == "machine":
            samples.append((float(f[0]), "machine", [int(x) for x in f[2:]]))
        else:
            names[f[1]] = f[2]
            samples.append((float(f[0]), f[1], [int(x) for x in f[3:]]))

events = []
for p in glob.glob(os.path.join(d, "*.log")):
    if p.endswith("procs.log"):
        continue
    who = os.path.basename(p)[:-4]
    for line in open(p, errors="replace"):
        if " INFO " not in line and " WARN " not in line and " ERROR " not in line:
            continue
        try:
            ts = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(
                tzinfo=datetime.timezone.utc).timestamp()
        except ValueError:
            continue
        events.append((ts, who, line[24:].strip()[:160]))
events.sort()


def pct(v, p):
    v = sorted(v)
    return v[max(0, -(-p * len(v) // 100) - 1)] if v else 0.0


for name in sorted(starts, key=starts.get):
    tl = os.path.join(d, name + ".tl")
    if not os.path.exists(tl):
        continue
    t0 = starts[name]
    reqs = []
    for line in open(tl):
        f = line.split("\t")
        reqs.append((float(f[0]), float(f[1]), f[2].strip() if len(f) > 2 else "OK"))
    if not reqs:
        continue
    med = statistics.median(r[1] for r in reqs)
    wp99 = pct([r[1] for r in reqs], 99)
    bins = collections.defaultdict(list)
    for due, lat, st in reqs:
        bins[int(due // B)].append((lat, st))
    hot = {b for b, v in bins.items()
           if any(st != "OK" for _, st in v) or pct([x for x, _ in v], 99) > 2 * wp99}
    show = sorted({b + k for b in hot for k in (-1, 0, 1) if b + k in bins})
    a = actions.get(name)
    print("== %s: %d requests, median %.2f ms, p99 %.2f ms%s; %d of %d bins stalled" % (
        name, len(reqs), med, wp99, ", action %.1f-%.1f s" % (a[0] - t0, a[1] - t0) if a else "", len(hot), len(bins)))
    last = None
    for b in show:
        if last is not None and b != last + 1:
            print("   ...")
        last = b
        lo, hi = t0 + b * B, t0 + (b + 1) * B
        v = bins[b]
        lat = [x for x, _ in v]
        m = collections.defaultdict(lambda: [0] * 8)
        for t, kind, f in samples:
            if lo <= t < hi:
                acc = m[kind]
                for i, x in enumerate(f[:7] if kind == "machine" else f[:4]):
                    acc[i] += x
        mc = m.get("machine")
        ticks = max(1, sum(mc[:4]) + 0) if mc else 1
        line = "%s%6.1f s  n %4d  fail %3d  p99 %7.1f  max %7.1f" % (
            "*" if b in hot else " ", b * B, len(v), sum(st != "OK" for _, st in v), pct(lat, 99), max(lat))
        if mc:
            tot = B * HZ * NCPU / 100.0
            line += " | cpu u%3.0f s%3.0f io%3.0f st%3.0f  majf %5d  readKiB %6d" % (
                mc[0] / tot, mc[1] / tot, mc[2] / tot, mc[3] / tot, mc[4], mc[6])
        for pid in sorted(k for k in m if k != "machine"):
            f = m[pid]
            line += " | %s %3.0f%% minf %5d majf %4d" % (
                "c" if names[pid].startswith("funnel-coord") else "s" + pid[-3:], (f[0] + f[1]) / (B * HZ) * 100,
                f[2], f[3])
        print(line)
        for ts, who, msg in events:
            if lo <= ts < hi:
                print("            %s: %s" % (who, msg))
