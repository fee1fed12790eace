"""Native code: disassembly of machine code from the core (capstone, imported on use)."""
