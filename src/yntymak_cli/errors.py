"""One exception hierarchy; the CLI turns it into a message and an exit code at one place."""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130  # as a shell reports a process stopped by Ctrl-C


class YntymakError(Exception):
    """Base of every error the core raises on purpose. Exit code 1."""

    exit_code = EXIT_FAILURE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(YntymakError):
    """A file, an option or an answer the user gave is not acceptable. Exit code 2."""

    exit_code = EXIT_INVALID


class NotFound(YntymakError):
    """A form, submission or key asked for by name does not exist."""

    exit_code = EXIT_INVALID


@dataclass(frozen=True)
class Problem:
    """One validation finding, located in a file."""

    file: str
    line: int
    col: int
    message: str
    severity: str = "error"  # or "warning"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def __str__(self) -> str:
        if self.is_error:
            return f"{self.file}:{self.line}:{self.col}: {self.message}"
        from yntymak_cli.i18n import current_lang, t  # "warning: " in the reader's language

        return f"{self.file}:{self.line}:{self.col}: " + t(
            "warning", current_lang(), message=self.message
        )


class ProblemsError(InvalidInput):
    """Several problems at once (form validation, answers files)."""

    def __init__(self, problems: list[Problem] | list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
