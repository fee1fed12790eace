"""Native code: unwinding of C stacks (CFI from .eh_frame and .debug_frame), naming of
their frames (symbol tables, build-id debug files, MiniDebugInfo), file, line and
inlined calls from DWARF, and disassembly (capstone, imported on use). Knows ELF and
x86-64, not Python: merging C frames with Python's is model/stacks.py's."""
