"""The error hierarchy. Library code raises these; only the CLI turns them into messages."""

from __future__ import annotations


class LongtailError(Exception):
    """Root of every error longtail raises on purpose."""


class InputError(LongtailError):
    """Bad input from the user: a file, a field or an argument that is not what was expected.

    The message reads ``source: field: problem`` so one line says where to look.
    """

    def __init__(self, source: str, field: str | None, problem: str):
        self.source = source
        self.field = field
        self.problem = problem
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {problem}")


class DatasetError(InputError):
    """An output or input dataset directory that cannot be used as asked."""


class SamplingError(LongtailError):
    """A scenario requirement that no sample met within the allowed number of tries."""


class RenderError(LongtailError):
    """Rendering failed for a reason outside the input (a worker process died)."""
