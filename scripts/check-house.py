#!/usr/bin/env python3
"""The house rules of src/, checked in `make lint` (so in CI):

- no import cycle between the crate's top-level modules (a `crate::a` path in module b is an
  edge b -> a; a strongly connected component of two or more modules is a cycle);
- no source file over 800 lines and no function over 150 lines (test modules aside);
- src/main.rs at most 200 lines.

    scripts/check-house.py [SRC]      exit 1 and one line per finding when a rule is broken
"""
import os
import re
import sys

FILE_MAX, FN_MAX, MAIN_MAX = 800, 150, 200

# Comments, strings and char literals, so braces and paths inside them are not counted.
TOKEN = re.compile(
    r"""//[^\n]*|/\*.*?\*/|b?r(#*)".*?"\1|b?"(?:\\.|[^"\\])*"|b?'(?:\\.|[^'\\\n])'""", re.S
)
FN = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?fn\s+(\w+)")


def blank(m):
    text = m.group(0)
    return "\n" * text.count("\n") + ("''" if text[-1:] in "'\"" else "")


def module_of(src, path):
    parts = os.path.relpath(path, src)[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts[0] if parts else "crate"


def long_functions(code):
    lines = code.split("\n")
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, started = 0, False
        for j in range(i, len(lines)):
            depth += lines[j].count("{") - lines[j].count("}")
            started = started or "{" in lines[j]
            if not started and lines[j].rstrip().endswith(";"):
                break
            if started and depth <= 0:
                if j - i + 1 > FN_MAX:
                    yield i + 1, m.group(1), j - i + 1
                break


def cycles(edges):
    """Tarjan's strongly connected components of two or more nodes."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "src"
    problems = []
    edges = {}
    for root, _, names in os.walk(src):
        for name in sorted(names):
            if not name.endswith(".rs"):
                continue
            path = os.path.join(root, name)
            rel = os.path.relpath(path, src)
            text = open(path, encoding="utf-8").read().split("#[cfg(test)]")[0]
            code = TOKEN.sub(blank, text)
            n = code.count("\n") + 1
            if n > FILE_MAX:
                problems.append(f"{rel}: {n} lines (at most {FILE_MAX})")
            if rel == "main.rs" and n > MAIN_MAX:
                problems.append(f"main.rs: {n} lines (at most {MAIN_MAX})")
            for line, fn, length in long_functions(code):
                problems.append(f"{rel}:{line}: fn {fn} is {length} lines (at most {FN_MAX})")
            me = module_of(src, path)
            for m in re.findall(r"\bcrate::(\w+)", code):
                if m != me:
                    edges.setdefault(me, set()).add(m)
    for c in cycles(edges):
        problems.append("import cycle between modules: " + " <-> ".join(c))
    for p in problems:
        print(f"check-house: {p}")
    if problems:
        sys.exit(1)
    print(f"check-house: {src}: no import cycle, no file over {FILE_MAX} lines, "
          f"no function over {FN_MAX} lines, main.rs within {MAIN_MAX}")


if __name__ == "__main__":
    main()
