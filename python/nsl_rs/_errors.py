"""The exception classes of nsl_rs (re-exported by the package; the extension raises them)."""


class NslError(RuntimeError):
    """Base of every error nsl_rs raises; the message is nsl's (naming the file, row or value)."""


class NslValueError(NslError, ValueError):
    """A bad argument: an option out of range, mismatched ids, a non-finite feature, a missing label."""


class NslFileError(NslError, OSError):
    """A file that cannot be opened, read or written."""


class NslTypeError(NslError, TypeError):
    """An argument of the wrong type: features that are not numbers, sparse matrices."""
