#!/usr/bin/env python3
"""Write docs/commands.md from the command table (the same table -c, --json and the shell
use). A test checks that the committed file is current: re-run after changing a command."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def render():
    from nsdebug.commands import COMMANDS, load_all
    load_all()
    out = ["# Command reference", "",
           "Generated from the command table by `tools/gen_command_docs.py`. Every command "
           "runs in the shell (`nsdebug CORE`), in batch (`nsdebug CORE -c CMD`, repeatable) "
           "and as JSON (`--json`: one document per command). Addresses are written "
           "`0x7f...`, as symbols (`Py_Initialize+0x10`), registers (`$pc`, `$sp`), or "
           "DevTools snapshot ids (`@1536025458`); Python commands also take names visible "
           "in the selected frame.", ""]
    titles = {"general": "Process and native code", "python": "Python stacks and values",
              "heap": "The heap"}
    for cat in ("general", "python", "heap"):
        out += [f"## {titles[cat]}", ""]
        for c in sorted((c for c in COMMANDS.values() if c.category == cat),
                        key=lambda c: c.name):
            out.append(f"### `{c.name}`" + (f" (also {', '.join(f'`{a}`' for a in c.aliases)})"
                                             if c.aliases else ""))
            out.append("")
            out.append(c.description)
            out.append("")
            out.append("```")
            out.append(c.help_text().rstrip())
            out.append("```")
            out.append("")
    return "\n".join(out)


def main():
    path = os.path.join(ROOT, "docs", "commands.md")
    with open(path, "w") as f:
        f.write(render())
    print(path)


if __name__ == "__main__":
    # Run from the checkout: its nsdebug. (Only then: a test imports this module, and a
    # path put first in the test process stays for every process it spawns later.)
    sys.path.insert(0, ROOT)
    main()
