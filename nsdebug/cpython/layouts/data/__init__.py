"""The layout tables nsdebug ships, one module per CPython build (tools/gen_layouts.py
writes them): plain data, imported from their compiled form in a fraction of the time
parsing JSON took."""
