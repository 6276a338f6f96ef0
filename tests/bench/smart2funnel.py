#!/usr/bin/python3
"""smart2funnel.py --docs F --queries F --rels F --out DIR [--format auto|smart|time]
                  [--time-realign LO:HI:N|none] [--expect-docs N] [--expect-queries N]
                  [--expect-qrels N]

Converts a classic test collection into Funnel's three files (docs/cli.md,
../shared/data/README.md):
  DIR/corpus.jsonl  {"id", "title", "body", ...stored fields} a line
  DIR/queries.tsv   qid<TAB>text
  DIR/qrels.trec    "qid 0 docid grade" (grade 1: these collections' judgments are binary)

Two input formats (--format auto looks at the documents file's first line):

smart (ADI, CISI, MED, CACM, ...): a record starts with ".I <id>", then field
  tags on a line of their own (".T", ".A", ".W", ...), text on the lines after.
  Document id = the .I number ("82"); title = .T; body = .W, plus .K
  (keywords: content words) when present - the only difference from the
  shared cisi/corpus.jsonl, whose document 321 lacks its .K. Stored, not
  indexed: .A as "authors" (one .A per author, joined by "; "), .B "source",
  .N "entered", .C "categories" (cisi/cranfield's corpora do not index
  authors either, and names would be a collection's own vocabulary). .X
  (citation triples, numbers) is dropped. A field given twice in one record is
  kept once when both copies are the same text (ADI document 67 repeats its
  .T) and joined otherwise; both are reported. Query text = .W (.T when a
  query has no .W). REL lines: "qid docid [...]" (extra columns, e.g. ADI's
  "0 0.000000", are ignored); every pair is relevant (grade 1). On CISI this
  reproduces ../shared/data/cisi's three files (but for document 321).

time (the TIME magazine collection, Glasgow layout):
  TIME.ALL  records "*TEXT <nnn> <mm/dd/yy> PAGE <p>", then UPPERCASE text
            (blank lines between the lines), the file ends with "*STOP".
            id = the *TEXT number without leading zeros ("017" -> "17"); no
            title (the headline runs into the text with nothing to split it
            on); body = the whole text; stored fields "date" and "page".
  TIME.QUE  "*FIND <n>", then the text; "*STOP" at the end.
  TIME.REL  "qid d1 d2 ..." a line. The d's are 1-based ORDINAL positions of
            the *TEXT records (SOURCE.md), translated here to the *TEXT numbers.
            The file has 423 records but the judgments use 425 positions:
            two records are missing from TIME.ALL, and the judgments after them
            point two records too far. Evidence (query words shared with the
            record, by position): judged positions <= 370 match the record
            at that position, those >= 378 the record two before it
            (Park Chung Hee's election: judged 424 = record 422 = *TEXT 562;
            the U.N.'s new members: judged 425 = record 423 = *TEXT 563;
            Somalia: judged 410, 419 = records 408, 417). --time-realign LO:HI:N
            (default 370:378:2) keeps positions <= LO, moves positions >= HI
            back by N and drops positions in between as ambiguous (TIME has
            none there); "none" takes the positions as they are.

Lines that cannot be parsed, judgments of unknown documents or queries,
duplicates and other oddities are reported on stderr as "FILE:LINE: reason".
Prints the counts; with --expect-* it exits 1 when a count differs.
Exit status: 0 ok, 1 a count differs from --expect-* or nothing parsed, 2 usage.
"""
import argparse
import json
import os
import re
import sys

SMART_TAG = re.compile(r"^\.([A-Z])(?:\s+(.*?))?\s*$")
TIME_TEXT = re.compile(r"^\*TEXT\s+(\d+)\s+(.*?)\s+PAGE\s+(\d+)\s*$")
TIME_FIND = re.compile(r"^\*FIND\s+(\d+)\s*$")
DATE = re.compile(r"^\d\d/\d\d/\d\d$")

DOC_TEXT = {"T": "title", "W": "body", "K": "body"}
DOC_STORED = {"A": "authors", "B": "source", "N": "entered", "C": "categories"}
DOC_DROP = {"X"}


class Report:
    def __init__(self):
        self.problems = 0
        self.notes = 0

    def bad(self, path, line, why):
        """a line or record that could not be used"""
        self.problems += 1
        print("%s:%d: %s" % (path, line, why), file=sys.stderr)

    def note(self, path, line, why):
        """parsed, but odd"""
        self.notes += 1
        print("%s:%d: note: %s" % (path, line, why), file=sys.stderr)


def squash(lines):
    return " ".join(" ".join(lines).split())


def read_smart(path, rep, kind):
    """[(id, line, {tag: [(line, text)]})] for a SMART tagged file"""
    recs = []
    cur = None
    tag = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            m = SMART_TAG.match(line)
            if m and m.group(1) == "I":
                rid = (m.group(2) or "").strip()
                if not re.fullmatch(r"\d+", rid):
                    rep.bad(path, n, ".I without a number: %r" % line)
                    cur = None
                    tag = None
                    continue
                cur = (str(int(rid)), n, {})
                recs.append(cur)
                tag = None
                continue
            if m:
                if cur is None:
                    rep.bad(path, n, "field .%s before the first .I" % m.group(1))
                    continue
                tag = m.group(1)
                if tag in cur[2]:
                    cur[2][tag].append([n, []])
                else:
                    cur[2][tag] = [[n, []]]
                if m.group(2):  # text on the tag's own line (".T Title")
                    cur[2][tag][-1][1].append(m.group(2))
                continue
            if cur is None or tag is None:
                if line.strip():
                    rep.bad(path, n, "text outside a %s field: %r" % (kind, line[:60]))
                continue
            cur[2][tag][-1][1].append(line)
    return recs


def field_text(path, rid, tag, copies, rep):
    """one text for a field that may repeat in a record (.A repeats once per author: joined by '; ')"""
    texts = [(n, squash(lines)) for n, lines in copies]
    if tag == "A":
        return "; ".join(t for _, t in texts if t)
    out = []
    for n, t in texts:
        if not t:
            continue
        if t in out:
            rep.note(path, n, "record %s repeats its .%s field with the same text: kept once" % (rid, tag))
            continue
        if out:
            rep.note(path, n, "record %s has a second, different .%s field: joined" % (rid, tag))
        out.append(t)
    return " ".join(out)


def smart_docs(path, rep):
    docs = []
    for rid, n, fields in read_smart(path, rep, "document"):
        d = {"id": rid, "title": "", "body": ""}
        body = []
        for tag, copies in fields.items():
            if tag in DOC_DROP:
                continue
            t = field_text(path, rid, tag, copies, rep)
            if tag == "T":
                d["title"] = t
            elif tag in ("W", "K"):
                body.append((0 if tag == "W" else 1, t))
            elif tag in DOC_STORED:
                d[DOC_STORED[tag]] = t
            else:
                rep.note(path, copies[0][0], "record %s: unknown field .%s kept as stored field %r"
                         % (rid, tag, "field_" + tag))
                d["field_" + tag] = t
        d["body"] = " ".join(t for _, t in sorted(body) if t)
        if not d["title"] and not d["body"]:
            rep.bad(path, n, "document %s has neither .T nor .W text: skipped" % rid)
            continue
        docs.append((d, n))
    return docs


def smart_queries(path, rep):
    qs = []
    ids = []
    for rid, n, fields in read_smart(path, rep, "query"):
        ids.append(int(rid))
        t = ""
        for tag in ("W", "T"):
            if tag in fields:
                t = field_text(path, rid, tag, fields[tag], rep)
                if t:
                    break
        if not t:
            rep.bad(path, n, "query %s has no .W or .T text: skipped" % rid)
            continue
        qs.append((rid, t, n))
    if ids and ids != list(range(1, len(ids) + 1)):
        rep.note(path, 1, "query .I numbers are not 1..%d in order: check whether the judgments number "
                 "queries by position (as cranfield's do)" % len(ids))
    return qs


def smart_rels(path, rep):
    rels = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            p = raw.split()
            if not p:
                continue
            if len(p) < 2 or not p[0].isdigit() or not p[1].isdigit():
                rep.bad(path, n, "not 'qid docid ...': %r" % raw.strip()[:60])
                continue
            rels.append((str(int(p[0])), str(int(p[1])), 1, n))
    return rels


def time_docs(path, rep):
    docs = []
    cur = None
    stopped = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if line.startswith("*TEXT"):
                m = TIME_TEXT.match(line)
                if not m:
                    rep.bad(path, n, "unreadable record header %r: its text goes to the record before" % line)
                    continue
                date = " ".join(m.group(2).split())
                if not DATE.match(date):
                    fixed = re.sub(r"^(\d\d/\d\d) (\d\d)$", r"\1/\2", date)
                    rep.note(path, n, "*TEXT %s: date %r is not mm/dd/yy%s"
                             % (m.group(1), m.group(2), " (stored as %s)" % fixed if fixed != date else ""))
                    date = fixed
                elif m.group(2) != date:
                    rep.note(path, n, "*TEXT %s: extra spaces in the header" % m.group(1))
                cur = ({"id": str(int(m.group(1))), "title": "", "body": "", "date": date,
                        "page": str(int(m.group(3)))}, n, [])
                docs.append(cur)
                continue
            if line.startswith("*STOP"):
                stopped = True
                cur = None
                continue
            if line.startswith("*"):
                rep.bad(path, n, "unknown directive %r" % line[:60])
                continue
            if cur is None:
                if line.strip():
                    rep.bad(path, n, "text outside a *TEXT record: %r" % line[:60])
                continue
            cur[2].append(line)
    if not stopped:
        rep.note(path, n, "no *STOP at the end")
    out = []
    for d, n, lines in docs:
        d["body"] = squash(lines)
        if not d["body"]:
            rep.bad(path, n, "*TEXT %s has no text: skipped" % d["id"])
            continue
        out.append((d, n))
    return out


def time_queries(path, rep):
    qs = []
    cur = None
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            m = TIME_FIND.match(line)
            if m:
                cur = [str(int(m.group(1))), [], n]
                qs.append(cur)
                continue
            if line.startswith("*STOP"):
                cur = None
                continue
            if line.startswith("*"):
                rep.bad(path, n, "unknown directive %r" % line[:60])
                continue
            if cur is None:
                if line.strip():
                    rep.bad(path, n, "text outside a *FIND record: %r" % line[:60])
                continue
            cur[1].append(line)
    out = []
    for qid, lines, n in qs:
        t = squash(lines)
        if not t:
            rep.bad(path, n, "query %s has no text: skipped" % qid)
            continue
        out.append((qid, t, n))
    return out


def time_rels(path, rep, ordinals, realign):
    """ordinals: the *TEXT ids by position (1-based)"""
    rels = []
    moved = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for n, raw in enumerate(f, 1):
            p = raw.split()
            if not p:
                continue
            if not all(x.isdigit() for x in p) or len(p) < 2:
                rep.bad(path, n, "not 'qid d1 d2 ...': %r" % raw.strip()[:60])
                continue
            qid = str(int(p[0]))
            for x in p[1:]:
                pos = int(x)
                if realign:
                    lo, hi, shift = realign
                    if lo < pos < hi:
                        rep.bad(path, n, "query %s: position %d lies where the two missing records were "
                                "(between %d and %d): ambiguous, dropped" % (qid, pos, lo, hi))
                        continue
                    if pos >= hi:
                        pos -= shift
                        moved += 1
                if not 1 <= pos <= len(ordinals):
                    rep.bad(path, n, "query %s: record position %s does not exist (%d records)"
                            % (qid, x, len(ordinals)))
                    continue
                rels.append((qid, ordinals[pos - 1], 1, n))
    if realign:
        print("time: %d judgments at positions >= %d moved back by %d (--time-realign %d:%d:%d)"
              % (moved, realign[1], realign[2], *realign), file=sys.stderr)
    return rels


def sniff(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                return "time" if line.startswith("*TEXT") else "smart"
    return "smart"


def main():
    ap = argparse.ArgumentParser(usage=argparse.SUPPRESS, description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--rels", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=["auto", "smart", "time"], default="auto")
    ap.add_argument("--time-realign", default="370:378:2")
    ap.add_argument("--expect-docs", type=int)
    ap.add_argument("--expect-queries", type=int)
    ap.add_argument("--expect-qrels", type=int)
    a = ap.parse_args()

    fmt = sniff(a.docs) if a.format == "auto" else a.format
    realign = None
    if fmt == "time" and a.time_realign != "none":
        try:
            realign = tuple(int(x) for x in a.time_realign.split(":"))
            assert len(realign) == 3 and realign[0] < realign[1] and realign[2] >= 0
        except (ValueError, AssertionError):
            ap.error("--time-realign: LO:HI:N with LO < HI, or none")

    rep = Report()
    if fmt == "time":
        docs = time_docs(a.docs, rep)
        queries = time_queries(a.queries, rep)
        rels = time_rels(a.rels, rep, [d["id"] for d, _ in docs], realign)
    else:
        docs = smart_docs(a.docs, rep)
        queries = smart_queries(a.queries, rep)
        rels = smart_rels(a.rels, rep)

    seen = {}
    kept_docs = []
    for d, n in docs:
        if d["id"] in seen:
            rep.bad(a.docs, n, "document id %s also at line %d: skipped" % (d["id"], seen[d["id"]]))
            continue
        seen[d["id"]] = n
        kept_docs.append(d)
    qseen = {}
    kept_q = []
    for qid, t, n in queries:
        if qid in qseen:
            rep.bad(a.queries, n, "query id %s also at line %d: skipped" % (qid, qseen[qid]))
            continue
        qseen[qid] = n
        kept_q.append((qid, t.replace("\t", " ")))
    pairs = {}
    kept_r = []
    for qid, did, g, n in rels:
        if qid not in qseen:
            rep.bad(a.rels, n, "judgment for unknown query %s (doc %s): dropped" % (qid, did))
            continue
        if did not in seen:
            rep.bad(a.rels, n, "judgment of unknown document %s (query %s): dropped" % (did, qid))
            continue
        if (qid, did) in pairs:
            rep.note(a.rels, n, "query %s, document %s judged again (line %d): kept once"
                     % (qid, did, pairs[(qid, did)]))
            continue
        pairs[(qid, did)] = n
        kept_r.append((qid, did, g))

    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for d in kept_docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    with open(os.path.join(a.out, "queries.tsv"), "w", encoding="utf-8") as f:
        for qid, t in kept_q:
            f.write("%s\t%s\n" % (qid, t))
    key = lambda r: (int(r[0]) if r[0].isdigit() else r[0], int(r[1]) if r[1].isdigit() else r[1])
    with open(os.path.join(a.out, "qrels.trec"), "w", encoding="utf-8") as f:
        for qid, did, g in sorted(kept_r, key=key):
            f.write("%s 0 %s %d\n" % (qid, did, g))

    judged_q = {r[0] for r in kept_r}
    judged_d = {r[1] for r in kept_r}
    print("%s (%s): %d documents (%d without title), %d queries (%d judged), %d qrels "
          "(%d distinct documents); %d problem lines, %d notes"
          % (a.out, fmt, len(kept_docs), sum(1 for d in kept_docs if not d["title"]), len(kept_q),
             len(judged_q), len(kept_r), len(judged_d), rep.problems, rep.notes))
    ok = bool(kept_docs and kept_q and kept_r)
    for what, want, got in (("documents", a.expect_docs, len(kept_docs)),
                            ("queries", a.expect_queries, len(kept_q)),
                            ("qrels", a.expect_qrels, len(kept_r))):
        if want is not None and want != got:
            print("count mismatch: %d %s, expected %d" % (got, what, want), file=sys.stderr)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
