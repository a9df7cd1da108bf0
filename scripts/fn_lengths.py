#!/usr/bin/env python3
"""Lists the production functions of Rust sources by length, and counts their assertions.

    scripts/fn_lengths.py [--over N] [--top N] [--exclude NAME ...] PATH...

A function's length is its lines from the `fn` keyword to its closing brace. Test code is left
out: files named tests.rs, `#[cfg(test)]` items (modules included) and `#[test]` functions.
Assertions are the `assert!`, `assert_eq!` and `assert_ne!` macros and their `debug_` forms
inside production functions; density is assertions per production function. Compile-time
assertions (`const _: () = assert!(…)`) outside functions are counted on their own line.

The project keeps every production function to 70 lines at most; `--over 70` exits non-zero
if one is longer.
"""

import argparse
import os
import re
import sys

ASSERT = re.compile(r"\b(?:debug_)?assert(?:_eq|_ne)?!")
CONST_ASSERT = re.compile(r"\bconst\s+_\s*:\s*\(\)\s*=\s*(?:\{\s*)?assert!")


def blank(text):
    """The text with comments, strings and char literals replaced by spaces (newlines kept)."""
    out = []
    i, n = 0, len(text)

    def keep_newlines(segment):
        return "".join("\n" if c == "\n" else " " for c in segment)

    while i < n:
        c = text[i]
        if text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(keep_newlines(text[i:j]))
            i = j
        elif re.match(r'b?r#*"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            hashes = m.group(1)
            close = '"' + hashes
            end = text.find(close, i + m.end())
            end = n if end < 0 else end + len(close)
            out.append(keep_newlines(text[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(keep_newlines(text[i:j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a).
            m = re.match(r"'(?:\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def matching_brace(text, open_index):
    depth = 0
    for j in range(open_index, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text) - 1


def test_ranges(code):
    """Character ranges of `#[cfg(test)]` items and `#[test]` functions."""
    ranges = []
    for m in re.finditer(r"#\[(?:cfg\(test\)|test)\]", code):
        # The item the attribute applies to: up to its first `{` or `;` (after more attributes).
        j = m.end()
        while j < len(code) and code[j] not in "{;":
            j += 1
        if j < len(code) and code[j] == "{":
            ranges.append((m.start(), matching_brace(code, j)))
        else:
            ranges.append((m.start(), j))
    return ranges


def functions(path):
    with open(path, encoding="utf-8") as file:
        code = blank(file.read())
    skip = test_ranges(code)
    line_of = lambda index: code.count("\n", 0, index) + 1
    found = []
    for m in re.finditer(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)", code):
        if any(start <= m.start() <= end for start, end in skip):
            continue
        # The body starts at the first `{` outside parentheses, angle brackets aside; a `;`
        # first means a declaration without a body (a trait method).
        depth, j = 0, m.end()
        while j < len(code):
            ch = code[j]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth == 0 and ch in "{;":
                break
            j += 1
        if j >= len(code) or code[j] == ";":
            continue
        end = matching_brace(code, j)
        body = code[j:end + 1]
        found.append({
            "path": path,
            "name": m.group(1),
            "line": line_of(m.start()),
            "length": line_of(end) - line_of(m.start()) + 1,
            "asserts": len(ASSERT.findall(body)),
        })
    const_asserts = len(CONST_ASSERT.findall(code))
    return found, const_asserts


def rust_files(paths, excluded):
    for root in paths:
        if os.path.isfile(root):
            yield root
            continue
        for directory, _, names in sorted(os.walk(root)):
            for name in sorted(names):
                if name.endswith(".rs") and name != "tests.rs" and name not in excluded:
                    yield os.path.join(directory, name)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+")
    parser.add_argument("--over", type=int, help="fail if any function is longer")
    parser.add_argument("--top", type=int, default=15, help="how many of the longest to list")
    parser.add_argument("--exclude", action="append", default=[], help="a file name to skip")
    args = parser.parse_args()

    all_functions, const_asserts = [], 0
    for path in rust_files(args.paths, set(args.exclude)):
        found, consts = functions(path)
        all_functions.extend(found)
        const_asserts += consts
    all_functions.sort(key=lambda f: -f["length"])
    for f in all_functions[: args.top]:
        print(f"{f['length']:5} {f['path']}:{f['line']} {f['name']}")
    asserts = sum(f["asserts"] for f in all_functions)
    count = len(all_functions)
    print(
        f"{count} production functions, longest {all_functions[0]['length'] if count else 0} "
        f"lines; {asserts} assertions ({asserts / max(count, 1):.2f} per function); "
        f"{const_asserts} compile-time assertions"
    )
    if args.over is not None:
        over = [f for f in all_functions if f["length"] > args.over]
        if over:
            print(f"{len(over)} functions are longer than {args.over} lines", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
