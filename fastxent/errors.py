"""Error classes. Each subclasses the matching builtin, so ``except ValueError`` still works."""


class FastxentError(Exception):
    """Base of every error fastxent raises about its input."""


class InputValueError(FastxentError, ValueError):
    """An argument or a column has a bad value, shape or length."""


class InputTypeError(FastxentError, TypeError):
    """An argument or a column has a type or dtype fastxent cannot score."""
