#!/usr/bin/env python3
"""Builds the labelled retrieval set that `nexus-bench quality` measures search on.

No registry package here ships a public labelled retrieval set (BEIR, MS MARCO and
their kin are downloaded at run time by `beir`, `ir-datasets` and `mteb`), so the set
is built from question/passage pairs whose gold passage is known: the **Python FAQ**
(`Doc/faq/*.rst` of CPython 3.11, shipped by Debian's `python3.11-doc` package). Every
question heading is a query; the section under it is its one relevant passage, and the
heading is left out of it. The other passages are distractors: every section of the
Python tutorial and HOWTOs from the same package, cut at about `MAX_WORDS` words. The
set was written by the Python community, not by us, and nothing of it was tuned for.

    scripts/retrieval-set.py SOURCES_DIR OUT_DIR

SOURCES_DIR is the package's `usr/share/doc/python3.11/html/_sources`. OUT_DIR gets
`passages.jsonl` ({"id", "title", "text"}), `queries.jsonl` ({"id", "text", "gold"})
and `README` (where it came from). The output is the same on every run.
"""

import json
import re
import sys
from pathlib import Path

# RST's section adornments.
ADORN = re.compile(r"^([=\-~^\"'`#*+:.])\1{2,}\s*$")
# Directives whose argument is prose (the rest's is a language, a path, a name).
ADMONITIONS = {
    "note", "warning", "seealso", "tip", "important", "hint", "caution", "attention",
    "danger", "impl-detail", "versionadded", "versionchanged", "deprecated",
}
# Distractor passages are cut at about this many words (at a paragraph).
MAX_WORDS = 250
# A FAQ answer shorter than this is not a passage one can retrieve by ("Yes.").
MIN_WORDS = 12


def clean(text):
    """RST markup off, words kept."""
    text = re.sub(r"`([^`<]*?)\s*<[^>]*>`__?", r"\1", text)  # `label <target>`_
    text = re.sub(r":pep:`(\d+)[^`]*`", r"PEP \1", text)
    text = re.sub(r":[\w:.-]+:`~?!?([^`]*)`", lambda m: m.group(1).split(" <")[0], text)
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r"`([^`]*)`_?_?", r"\1", text)
    text = re.sub(r"\*\*([^*]+)\*\*", r"\1", text)
    text = re.sub(r"(?<!\w)\*([^*\s][^*]*)\*", r"\1", text)
    text = re.sub(r"\|(\w+)\|", r"\1", text)
    return text


def body(lines):
    """A section's text: directives' option lines, labels and comments dropped,
    paragraphs joined."""
    out = []
    for line in lines:
        s = line.strip()
        if s.startswith(".. ") or s == "..":
            # A directive's own line (its indented content stays), a label or a comment.
            name, _, rest = s[3:].partition("::")
            if name.strip() in ADMONITIONS and rest.strip():
                out.append(rest.strip())
            continue
        if re.match(r"^:\w[\w-]*:", s) and not re.match(r"^:\w[\w-]*:`", s):
            continue  # a directive's option (:tocdepth: 2)
        out.append(s)
    paragraphs, cur = [], []
    for s in out:
        if s:
            cur.append(s)
        elif cur:
            paragraphs.append(" ".join(cur))
            cur = []
    if cur:
        paragraphs.append(" ".join(cur))
    return [clean(p).replace("::", ":") for p in paragraphs if p.strip()]


def sections(path):
    """(page title, [(heading, paragraphs)]) of one RST file."""
    lines = path.read_text(encoding="utf-8").splitlines()
    heads = []  # (index of the heading's text line, index of the first line after it)
    i = 0
    while i < len(lines) - 1:
        text, under = lines[i], lines[i + 1]
        if (
            text.strip()
            and not ADORN.match(text)
            and ADORN.match(under)
            and len(under.rstrip()) >= len(text.rstrip())
        ):
            heads.append((i, i + 2))
            i += 2
            # An overline's closing line.
            if i < len(lines) and ADORN.match(lines[i]):
                i += 1
                heads[-1] = (heads[-1][0], i)
            continue
        i += 1
    title = clean(lines[heads[0][0]].strip()) if heads else path.stem
    out = []
    for n, (at, start) in enumerate(heads):
        end = heads[n + 1][0] if n + 1 < len(heads) else len(lines)
        # An overline belongs to the next heading, not to this section.
        if n + 1 < len(heads) and end > 0 and ADORN.match(lines[end - 1]):
            end -= 1
        out.append((clean(lines[at].strip()), body(lines[start:end])))
    return title, out


def chunks(paragraphs):
    cur, n = [], 0
    for p in paragraphs:
        w = len(p.split())
        if cur and n + w > MAX_WORDS:
            yield " ".join(cur)
            cur, n = [], 0
        cur.append(p)
        n += w
    if cur:
        yield " ".join(cur)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    src, out = Path(sys.argv[1]), Path(sys.argv[2])
    if not (src / "faq" / "programming.rst.txt").is_file():
        sys.exit(f"{src}: not the python3.11-doc package's _sources (no faq/programming.rst.txt)")
    out.mkdir(parents=True, exist_ok=True)
    passages, queries = [], []
    for path in sorted((src / "faq").glob("*.rst.txt")):
        title, secs = sections(path)
        for n, (heading, paragraphs) in enumerate(secs):
            text = " ".join(paragraphs)
            if not heading.endswith("?") or len(text.split()) < MIN_WORDS:
                continue
            pid = f"faq/{path.name.split('.')[0]}#{n}"
            passages.append({"id": pid, "title": title, "text": text})
            queries.append({"id": f"q{len(queries) + 1}", "text": heading, "gold": pid})
    for folder in ("tutorial", "howto"):
        for path in sorted((src / folder).glob("*.rst.txt")):
            title, secs = sections(path)
            for n, (_, paragraphs) in enumerate(secs):
                for m, text in enumerate(chunks(paragraphs)):
                    if len(text.split()) >= MIN_WORDS:
                        pid = f"{folder}/{path.name.split('.')[0]}#{n}.{m}"
                        passages.append({"id": pid, "title": title, "text": text})
    with open(out / "passages.jsonl", "w", encoding="utf-8") as f:
        for p in passages:
            f.write(json.dumps(p, ensure_ascii=False) + "\n")
    with open(out / "queries.jsonl", "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    (out / "README").write_text(
        "The Python FAQ as a labelled retrieval set (scripts/retrieval-set.py), from\n"
        f"Debian's python3.11-doc package: {len(queries)} questions, each with one gold\n"
        f"passage (the answer under it), among {len(passages)} passages (the rest: the\n"
        "tutorial and the HOWTOs, as distractors).\n",
        encoding="utf-8",
    )
    print(f"{len(queries)} queries, {len(passages)} passages -> {out}")


if __name__ == "__main__":
    main()
