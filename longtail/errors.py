"""The error hierarchy. Library code raises these; only the CLI turns them into messages."""

from __future__ import annotations


def printable(text: object) -> str:
    """``text`` with every non-printable character (newlines, carriage returns, escapes) written
    as its Python escape, so a name taken from a file stays on one line and visible."""
    text = str(text)
    return text if text.isprintable() else "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def one_line(text: object) -> str:
    """A message on one printable line: runs of whitespace become one space, other control
    characters their escapes."""
    return printable(" ".join(str(text).split()))


class LongtailError(Exception):
    """Root of every error longtail raises on purpose."""


class InputError(LongtailError):
    """Bad input from the user: a file, a field or an argument that is not what was expected.

    The message reads ``source: field: problem`` so one line says where to look.
    """

    def __init__(self, source: str, field: str | None, problem: str):
        source, problem = printable(source), one_line(problem)
        field = printable(field) if field is not None else None
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class DatasetError(InputError):
    """An output or input dataset directory that cannot be used as asked."""


class SamplingError(InputError):
    """A scenario requirement that no sample met within the allowed number of tries: the
    scenario asks for what its world cannot hold, so it is bad input (exit 2) like a bad field."""


class RenderError(LongtailError):
    """Rendering failed for a reason outside the input (a worker process died)."""
