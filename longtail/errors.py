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
        self.message = f"{where}: {problem}"
        super().__init__(self.message)

    def __str__(self) -> str:  # the message as it is, also for subclasses that are KeyErrors
        return self.message


class ParameterError(InputError):
    """A bad value of a named parameter of a library call (``steps``, ``min_visible_px``, ...).

    Library code names the parameter, never a command-line flag; the CLI shows the error under
    the flag that set the parameter (``--min-visible-px``), other callers see the name.
    """

    def __init__(self, param: str, problem: str):
        self.param = param
        super().__init__(param, None, problem)


class UnknownNameError(ParameterError, KeyError):
    """A name a registry does not hold (a layout, asset, preset, exporter, model ...); the message
    lists the choices. Also a KeyError, as a failed lookup is."""

    def __init__(self, kind: str, name: object, choices: list[str], param: str):
        self.kind, self.name, self.choices = kind, name, list(choices)
        super().__init__(param, f"unknown {kind} {name!r}; choices: {', '.join(self.choices)}")


class DatasetError(InputError):
    """An output or input dataset directory that cannot be used as asked."""


class SamplingError(InputError):
    """A scenario requirement that no sample met within the allowed number of tries: the
    scenario asks for what its world cannot hold, so it is bad input (exit 2) like a bad field."""


class RenderError(LongtailError):
    """Rendering failed for a reason outside the input (a worker process died)."""
