"""arthur's errors: each one a line a user can act on."""


class ArthurError(Exception):
    """Root of every error arthur reports as one line."""


class TargetGone(ArthurError):
    """The target process (or one of its threads) exited."""


class NotPermitted(ArthurError):
    """The kernel refused to let arthur trace the target."""
