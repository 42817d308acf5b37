#!/usr/bin/env python3
"""Rewrite citations of the old research notes into citations of dirsync's own docs.

Comments used to cite research notes kept outside the repository:

    maas360-api.md §4.2          (sometimes /work/shared/reference/maas360-api.md)
    maas360-api.md, Corrections (group list)
    entra-scim.md §6 Q8
    graph-api.md §2.1, §2.3

This script turns each into a citation of docs/maas360.md, docs/entra-scim.md or
docs/graph.md, with the section numbers of those files, and drops the absolute paths.

A section sign belongs to the nearest document named before it in the same comment (or
paragraph), within a short distance; one after an RFC or one of the new docs is left alone.
With --bare DOC, a section sign that no document claims cites DOC (for files whose header
says "sections cited as §n refer to …"); it is then written out in full
("§4.8" becomes "docs/entra-scim.md §4.8").

MaaS360's "Corrections" section was folded into the sections it corrects; a citation of it
goes to the section its topic (in parentheses) names, or else to the one the words around it
point at. When neither says, the citation is left as it was and reported.

Usage:
    rewrite-citations.py [--check] [--bare maas360|entra-scim|graph] FILE...
    rewrite-citations.py --table

--check reports what would change and exits 1 if anything would; without it the files are
rewritten in place. Running it twice changes nothing the second time.
"""

import argparse
import re
import sys

# old section -> new section, per document. A section not listed maps as its closest listed
# ancestor ("8.2" as "8"); the empty key is the document as a whole.
SECTIONS = {
    "maas360": {
        "": "",
        "0": "0.2",
        "1": "1",
        "2": "2",
        "2.1": "2.1",
        "2.2": "2.2",
        "2.3": "2.3",
        "2.4": "2.4",
        "2.5": "2.5",
        "3": "3",
        "4": "4",
        "4.1": "4.1",
        "4.2": "4.2",
        "4.3": "4.3",
        "4.4": "4.4",
        "4.5": "4.5",
        "4.6": "4.6",
        "5": "5",
        "5.1": "5.1",
        "5.2": "5.2",
        "5.3": "5.3",
        "5.4": "5.3",
        "5.5": "5.3",
        "5.6": "5.3",
        "5.7": "5.4",
        "6": "6",
        "7": "7",
        "8": "8",
        "9": "0.2",
        "10": "9",
        "11": "10",
    },
    "entra-scim": {
        "": "",
        "0": "0",
        "1": "1",
        "1.1": "1.1",
        "1.2": "1.2",
        "1.3": "1.3",
        "1.4": "1.4",
        "2": "2",
        "3": "3",
        "3.1": "3.1",
        "3.2": "3.2",
        "3.3": "3.3",
        "4": "4",
        **{f"4.{n}": f"4.{n}" for n in range(1, 15)},
        "5": "5",
        "6": "6",
        "7": "7",
        "8": "8",
        "10": "9",
        "12": "11",
    },
    "graph": {
        "": "",
        "0": "0",
        "1": "1",
        "1.1": "1.1",
        "1.2": "1.2",
        "1.3": "1.3",
        "2": "2",
        **{f"2.{n}": f"2.{n}" for n in range(1, 7)},
        "3": "3",
        **{f"3.{n}": f"3.{n}" for n in range(1, 7)},
        "4": "4",
        "4.1": "4.1",
        "4.2": "4.2",
        "5": "5",
        "6": "6",
        "6.1": "6.1",
        "6.2": "6.2",
        "7": "7",
        "8": "8",
        "9": "9",
    },
}

OLD_NAMES = {"maas360-api": "maas360", "entra-scim": "entra-scim", "graph-api": "graph"}
NEW_FILES = {"maas360": "docs/maas360.md", "entra-scim": "docs/entra-scim.md", "graph": "docs/graph.md"}

# Where MaaS360's "Corrections and further evidence" went: by the topic in parentheses
# first, else by the words around the citation. Earlier rules win.
CORRECTION_TOPICS = [
    (r"refresh", "2.3"),
    (r"1009|token invalid|token expired|expired|invalid token", "2.5"),
    (r"single quote|quotes|authorization header|MaaS token", "2.4"),
    (r"1002|invalid credentials", "2.2"),
    (r"X-Rate-Limit|rate.limit|limit reached|throttl|429|ResetWindow|Remaining", "7"),
    (r"active device|delet|queued|deactivat|reactivat|daily job", "4.5"),
    (r"groupType|groupID|group list|user group|device group|searchByGroup", "5.1"),
    (r"addUser|form fields|userIdentifier", "4.3"),
    (r"actionStatus|actionResponse|write route", "3.4"),
    (r"authType", "4.3"),
    (r"still no public evidence|gap", "10"),
]

MENTION = re.compile(
    r"(?<![\w/.-])(?:/work/shared/reference/|shared/reference/)?"
    r"(maas360-api|entra-scim|graph-api)\.md"
)
# Documents whose section signs are not ours to rewrite.
BLOCKER = re.compile(r"\bRFC\s*\d+|(?<![\w/.-])docs/(?:maas360|entra-scim|graph)\.md")
SECTION = re.compile(r"§\s?(\d+(?:\.\d+)*)")
# "Corrections" as a citation; the section's full title is prose, not a citation.
CORRECTIONS = re.compile(r"Corrections(?! and further evidence)(?:\s*\(([^)]*)\))?")
# A comment line continues the same citation; anything else ends it.
COMMENT_START = re.compile(r"\s*(?://|#|\*|/\*|--|;)")

MAX_DISTANCE = 200


def map_section(doc, old):
    table = SECTIONS[doc]
    parts = old.split(".")
    while parts:
        key = ".".join(parts)
        if key in table:
            return table[key]
        parts.pop()
    return None


def same_citation(text, start, end, markdown):
    """Whether text[start:end] stays within one comment (or one paragraph)."""
    between = text[start:end]
    if end - start > MAX_DISTANCE or re.search(r"\n\s*\n", between):
        return False
    if markdown:
        return True
    for line in between.split("\n")[1:]:
        if not COMMENT_START.match(line):
            return False
    return True


def correction_target(text, at, end, topic):
    if topic:
        for pattern, section in CORRECTION_TOPICS:
            if re.search(pattern, topic, re.IGNORECASE):
                return section
    # The citation's own line, then with the line before it, then a wider window.
    line_begin = text.rfind("\n", 0, at)
    previous_begin = text.rfind("\n", 0, line_begin) if line_begin > 0 else -1
    line_end = text.find("\n", end)
    line_end = line_end if line_end >= 0 else len(text)
    own = text[line_begin + 1 : line_end]
    near = text[previous_begin + 1 : line_end]
    wide = text[max(0, at - 400) : end + 200]
    for window in (own, near, wide):
        for pattern, section in CORRECTION_TOPICS:
            if re.search(pattern, window, re.IGNORECASE):
                return section
    return None


def rewrite(text, bare, markdown, report):
    tokens = []
    for match in MENTION.finditer(text):
        tokens.append((match.start(), match.end(), "mention", match))
    for match in BLOCKER.finditer(text):
        tokens.append((match.start(), match.end(), "blocker", match))
    for match in SECTION.finditer(text):
        tokens.append((match.start(), match.end(), "section", match))
    for match in CORRECTIONS.finditer(text):
        tokens.append((match.start(), match.end(), "corrections", match))
    tokens.sort(key=lambda token: token[0])

    edits = []  # (start, end, replacement)
    # The citation being read: (doc, or None after a blocker; end of its last token; whether
    # that token named the document; the last section written for it).
    owner = None
    for start, end, kind, match in tokens:
        if kind == "mention":
            doc = OLD_NAMES[match.group(1)]
            owner = (doc, end, True, None)
            edits.append((start, end, NEW_FILES[doc]))
            continue
        if kind == "blocker":
            owner = (None, end, False, None)
            continue
        doc = None
        qualify = False
        if owner and same_citation(text, owner[1], start, markdown):
            doc = owner[0]
            if doc is None:
                owner = (None, end, False, None)
                continue
        elif bare:
            # A bare "Corrections" is a citation only in the forms the notes used.
            if kind == "corrections" and not (
                match.group(1) or re.search(r"[(;]\s*$", text[max(0, start - 3) : start])
            ):
                continue
            doc, qualify = bare, True
        if doc is None:
            continue
        if kind == "corrections":
            if doc != "maas360":
                continue
            section = correction_target(text, start, end, match.group(1))
            line = text.count("\n", 0, start) + 1
            if section is None:
                report.append(f"line {line}: cannot place '{match.group(0)}'; left as it was")
                continue
            replacement = f"§{section}"
            named_here = owner and owner[0] == doc and owner[2]
            between = text[owner[1] : start] if owner else ""
            if named_here and re.fullmatch(r",(\s*(//[/!]?|#|\*)?\s*)", text[owner[1] : start]):
                # "maas360-api.md, Corrections" reads "docs/maas360.md §2.5".
                edits.append((owner[1], owner[1] + 1, ""))
            elif owner and owner[0] == doc and owner[3] == section and re.fullmatch(r"[;,]\s*", between):
                # "§4.3; Corrections (addUser)": the section is already cited.
                edits.append((owner[1], end, ""))
                owner = (doc, end, False, section)
                continue
            elif qualify:
                replacement = f"{NEW_FILES[doc]} {replacement}"
            edits.append((start, end, replacement))
            owner = (doc, end, False, section)
            continue
        new = map_section(doc, match.group(1))
        if new is None:
            line = text.count("\n", 0, start) + 1
            report.append(f"line {line}: no section for {doc} '{match.group(0)}'; left as it was")
            continue
        replacement = f"§{new}" if new else ""
        if qualify:
            replacement = f"{NEW_FILES[doc]} {replacement}"
        edits.append((start, end, replacement))
        owner = (doc, end, False, new)

    for match in re.finditer(r"/work/shared/reference/?", text):
        if not any(s <= match.start() < e for s, e, _ in edits):
            line = text.count("\n", 0, match.start()) + 1
            report.append(f"line {line}: absolute path left: rewrite by hand")

    out = []
    last = 0
    for start, end, replacement in sorted(edits):
        if start < last:
            continue
        out.append(text[last:start])
        out.append(replacement)
        last = end
    out.append(text[last:])
    return "".join(out)


def print_table():
    print("| old citation | new citation |")
    print("| --- | --- |")
    for old_name, doc in OLD_NAMES.items():
        for old, new in SECTIONS[doc].items():
            if not old:
                print(f"| `{old_name}.md` | `{NEW_FILES[doc]}` |")
            else:
                print(f"| `{old_name}.md §{old}` | `{NEW_FILES[doc]} §{new}` |")
    for pattern, section in CORRECTION_TOPICS:
        print(f"| `maas360-api.md, Corrections` about /{pattern}/ | `docs/maas360.md §{section}` |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report only; exit 1 on changes")
    parser.add_argument("--bare", choices=sorted(NEW_FILES), help="document a bare §n cites")
    parser.add_argument("--table", action="store_true", help="print the mapping and exit")
    parser.add_argument("files", nargs="*")
    args = parser.parse_args()
    if args.table:
        print_table()
        return 0
    changed = False
    for path in args.files:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        report = []
        new = rewrite(text, args.bare, path.endswith(".md"), report)
        for line in report:
            print(f"{path}: {line}", file=sys.stderr)
        if new != text:
            changed = True
            if args.check:
                print(f"{path}: would change")
            else:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(new)
                print(f"{path}: rewritten")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
