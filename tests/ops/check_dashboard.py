#!/usr/bin/python3
"""check_dashboard.py DASHBOARD.json METRICS.txt... - is every metric the
dashboard queries exported by the given /metrics texts?

Every PromQL expression of the dashboard (panel targets' "expr", nested rows
included, and templating queries, label_values(METRIC, label) too) is reduced
to the metric names it selects: string literals, label matchers {...}, range
and subquery brackets [...], $variables, function names, aggregation clauses
(by/without/on/ignoring/group_left/group_right (...)) and keywords are
dropped, and what is left that looks like a metric name is one. A name is
exported when some text has a series of that name, or a # TYPE line for it; a
histogram family X also exports X_bucket, X_sum and X_count.

  --prefix P     check only names starting with P (repeatable; default: all)
  --optional N   a name that may be missing (repeatable)
  --list         print the dashboard's names and exit

Exit 0 when every checked name is exported, 1 otherwise (the missing ones are
listed), 2 on a usage or input error.
"""
import json
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
            "unless", "offset", "inf", "nan", "atan2", "start", "end"}
CLAUSES = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")


def exprs(node):
    """Every PromQL expression in a dashboard (any depth)."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "expr" and isinstance(v, str):
                yield v
            elif k == "query" and isinstance(v, str) and node.get("type") == "query":
                yield v          # a templating variable's query
            elif k == "query" and isinstance(v, dict) and isinstance(v.get("query"), str):
                yield v["query"]
            else:
                yield from exprs(v)
    elif isinstance(node, list):
        for v in node:
            yield from exprs(v)


def names_of(expr):
    """The metric names one expression selects."""
    e = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    # Grafana's label_values(METRIC, label) / label_values(label): only the metric
    e = re.sub(r"\blabel_values\s*\(\s*([^,()]*(?:\{[^}]*\})?)\s*,[^)]*\)", r" \1 ", e)
    e = re.sub(r"\blabel_values\s*\([^)]*\)", " ", e)
    e = re.sub(r"\b(metrics|query_result)\s*\(", "(", e)
    e = re.sub(r"\{[^}]*\}", " ", e)
    e = re.sub(r"\[[^\]]*\]", " ", e)
    e = re.sub(r"\$\{[^}]*\}|\$[a-zA-Z_][a-zA-Z0-9_]*", " ", e)
    e = CLAUSES.sub(" ", e)
    out = set()
    for m in NAME.finditer(e):
        n = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("("):             # a function or aggregation
            continue
        if n.lower() in KEYWORDS or re.fullmatch(r"\d.*", n):
            continue
        if m.start() > 0 and (e[m.start() - 1].isdigit() or e[m.start() - 1] == "."):
            continue                         # 1e3, 0.99's tail
        out.add(n)
    return out


def exported(texts):
    have = set()
    for t in texts:
        for line in t.splitlines():
            if line.startswith("# TYPE "):
                parts = line.split()
                if len(parts) >= 4:
                    have.add(parts[2])
                    if parts[3] == "histogram":
                        have.update(parts[2] + s for s in ("_bucket", "_sum", "_count"))
            elif line and not line.startswith("#"):
                m = NAME.match(line)
                if m:
                    have.add(m.group(0))
    return have


def main(argv):
    prefixes, optional, files, listing = [], set(), [], False
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("--prefix", "--optional") and i + 1 < len(argv):
            (prefixes.append if a == "--prefix" else optional.add)(argv[i + 1])
            i += 2
            continue
        if a == "--list":
            listing = True
        elif a.startswith("--"):
            print(__doc__, file=sys.stderr)
            return 2
        else:
            files.append(a)
        i += 1
    if not files or (not listing and len(files) < 2):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        dash = json.load(open(files[0]))
        texts = [open(f).read() for f in files[1:]]
    except (OSError, ValueError) as e:
        print("check_dashboard: %s" % e, file=sys.stderr)
        return 2
    used = set()
    for e in exprs(dash):
        used |= names_of(e)
    if listing:
        print("\n".join(sorted(used)))
        return 0
    want = sorted(n for n in used if not prefixes or any(n.startswith(p) for p in prefixes))
    have = exported(texts)
    missing = [n for n in want if n not in have and n not in optional]
    for n in want:
        print("%s %s" % ("ok     " if n in have else "OPTIONAL" if n in optional else "MISSING", n))
    print("%d names checked, %d missing" % (len(want), len(missing)))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
