#!/usr/bin/env python3
"""Checks the shape of the code (issue 11): no import cycle between source
files, no module importing a layer above its own, no file over the line
limit. Run by scripts/test; prints what it found and exits 1 on a breach.

It reads `use` paths and inline `crate::`/`super::`/`sagemaker_flight::`
paths, outside comments, and resolves each to the file that defines the
module (the longest prefix of the path that is a file). Test modules count
too: a test reaching a layer above is still an edge."""

import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Most lines a source file may have.
MAX_LINES = 600

# Each layer of the library and the layers it may import (below it).
LAYERS = {
    "task": set(),
    "obs": {"task"},
    "source": {"obs", "task"},
    "table": {"source", "obs", "task"},
    "replica": {"table", "source", "obs", "task"},
    "query": {"replica", "table", "source", "obs", "task"},
    "auth": {"source", "obs", "task"},
    "flight": {"query", "replica", "table", "source", "auth", "obs", "task"},
    "server": {"flight", "query", "replica", "table", "source", "auth", "obs", "task"},
}

# The crates: (name as other crates spell it, source folder, root file).
CRATES = [
    ("sagemaker_flight", "src", "src/lib.rs"),
    ("bin", "src", "src/main.rs"),
    ("sagemaker_emulator", "emulator/src", "emulator/src/lib.rs"),
]

# Folders whose files must stay under MAX_LINES.
SIZED = ["src", "emulator/src", "benches"]

PATH = re.compile(r"\b(crate|super|self|sagemaker_flight|sagemaker_emulator)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")


def rust_files(folder):
    for base, _, names in os.walk(os.path.join(ROOT, folder)):
        for name in sorted(names):
            if name.endswith(".rs"):
                yield os.path.relpath(os.path.join(base, name), ROOT)


def crate_of(path):
    """The crate a file belongs to: the binary owns main.rs and src/cli/."""
    if path == "src/main.rs" or path.startswith("src/cli/"):
        return "bin"
    if path.startswith("emulator/"):
        return "sagemaker_emulator"
    return "sagemaker_flight"


def module_of(path):
    """The module path of a file, inside its crate (a list of names)."""
    crate = crate_of(path)
    folder = "emulator/src" if crate == "sagemaker_emulator" else "src"
    relative = os.path.relpath(path, os.path.join(ROOT, folder) if os.path.isabs(path) else folder)
    parts = relative[:-3].split(os.sep)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


FOLDERS = {"bin": "src", "sagemaker_flight": "src", "sagemaker_emulator": "emulator/src"}
ROOTS = {"bin": "src/main.rs", "sagemaker_flight": "src/lib.rs", "sagemaker_emulator": "emulator/src/lib.rs"}


def file_of(crate, module):
    """The file defining the longest prefix of `module` in `crate`; an item
    a `mod.rs` (or the crate root) re-exports from a child module resolves
    to the child's file, where it is defined."""
    folder = FOLDERS[crate]
    found, end = ROOTS[crate], 0
    for length in range(len(module), 0, -1):
        base = os.path.join(folder, *module[:length])
        candidates = [base + ".rs", os.path.join(base, "mod.rs")]
        hit = next((c for c in candidates if os.path.isfile(os.path.join(ROOT, c))), None)
        if hit:
            found, end = hit, length
            break
    rest = module[end:]
    if rest and (found.endswith("mod.rs") or found == ROOTS[crate]):
        child = reexports(found).get(rest[0])
        if child is not None:
            return file_of(crate, module[:end] + child + rest[1:])
    return found


def reexports(path):
    """The items `path` re-exports from its child modules: name -> the
    module path (relative to `path`'s module) it comes from."""
    text = "\n".join(code_lines(open(os.path.join(ROOT, path), encoding="utf-8").read()))
    children = set(re.findall(r"\bmod\s+([a-z_][a-z0-9_]*)\s*;", text))
    items = {}
    for match in re.finditer(r"\bpub\s+use\s+([^;]+);", text):
        for use in expand(match.group(1).replace("\n", " ")):
            names = [n.strip() for n in use.split("::") if n.strip()]
            if len(names) >= 2 and names[0] in children:
                items[names[-1]] = names[:-1]
    return items


def code_lines(text):
    """The lines of `text` without comments (`//`, `///`, `//!`)."""
    for line in text.split("\n"):
        yield re.sub(r"//.*", "", line)


def expand_uses(text):
    """Every path a `use` tree names, flattened (`a::{b, c::d}` gives
    `a::b` and `a::c::d`), with where its `use` stands."""
    paths = []
    for match in re.finditer(r"\buse\s+([^;]+);", text):
        paths.extend((match.start(), path) for path in expand(match.group(1).replace("\n", " ")))
    return paths


def expand(tree):
    tree = tree.strip()
    if "{" not in tree:
        return [tree.split(" as ")[0].strip()]
    prefix, rest = tree.split("{", 1)
    inner = rest[: rest.rfind("}")]
    parts, depth, current = [], 0, ""
    for char in inner:
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += char == "{"
        depth -= char == "}"
        current += char
    parts.append(current)
    out = []
    for part in parts:
        if part.strip():
            out.extend(prefix + p for p in expand(part))
    return out


def edges_of(path):
    """The files `path` imports."""
    text = open(os.path.join(ROOT, path), encoding="utf-8").read()
    code = "\n".join(code_lines(text))
    crate = crate_of(path)
    here = module_of(path)
    # `super::` inside an inline `mod tests` means this file.
    test_start = code.find("mod tests {")
    children = set(re.findall(r"\bmod\s+([a-z_][a-z0-9_]*)\s*;", code))
    found = set()
    candidates = []
    candidates.extend(expand_uses(code))
    for match in PATH.finditer(code):
        # `use a::{...}`: the use tree's own paths are read above.
        if not code.startswith("::{", match.end()):
            candidates.append((match.start(), match.group(0)))
    for position, use in candidates:
        names = [name for name in use.split("::") if name]
        if not names:
            continue
        head, rest = names[0], names[1:]
        if head == "crate":
            target = file_of(crate, rest)
        elif head in ("sagemaker_flight", "sagemaker_emulator"):
            target = file_of(head, rest)
        elif head == "super":
            if test_start >= 0 and position > test_start:
                continue
            parent = here[:-1]
            while rest and rest[0] == "super":
                parent, rest = parent[:-1], rest[1:]
            target = file_of(crate, parent + rest)
        elif head == "self":
            target = file_of(crate, here + rest)
        elif head in children:
            target = file_of(crate, here + names)
        else:
            continue
        if target != path:
            found.add(target)
    return found


def layer_of(path):
    if crate_of(path) != "sagemaker_flight":
        return None
    module = module_of(path)
    return module[0] if module and module[0] in LAYERS else None


def cycles(graph):
    """Strongly connected components with more than one file (Tarjan)."""
    index, low, stack, on_stack, result = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    sys.setrecursionlimit(10000)
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return result


def main():
    files = [f for folder in ("src", "emulator/src") for f in rust_files(folder)]
    graph = {path: edges_of(path) for path in files}
    problems = []
    for component in cycles(graph):
        problems.append("import cycle: " + " <-> ".join(component))
    for path, targets in sorted(graph.items()):
        layer = layer_of(path)
        if layer is None:
            continue
        for target in sorted(targets):
            other = layer_of(target)
            if other is None:
                if crate_of(target) == "sagemaker_flight" and target != "src/lib.rs":
                    problems.append(f"{path} ({layer}) imports {target}, which is in no layer")
                continue
            if other != layer and other not in LAYERS[layer]:
                problems.append(f"{path} ({layer}) imports {target} ({other}), a layer above or beside it")
    for folder in SIZED:
        for path in rust_files(folder):
            lines = sum(1 for _ in open(os.path.join(ROOT, path), encoding="utf-8"))
            if lines > MAX_LINES:
                problems.append(f"{path}: {lines} lines (most: {MAX_LINES})")
    edges = sum(len(targets) for targets in graph.values())
    print(f"layout: {len(files)} files, {edges} imports between them, {len(problems)} problems")
    for problem in problems:
        print(f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
