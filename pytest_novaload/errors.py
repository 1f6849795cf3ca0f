"""The exception tree of pytest-novaload.

Every error a user can cause names the value, what was expected and how to fix it.
"""

from __future__ import annotations


class NovaloadError(Exception):
    """Base class of every error raised by pytest-novaload."""


class ConfigError(NovaloadError, ValueError):
    """A bad value in a marker, an option or a client call.

    ``problems`` holds every problem found, so that all of them are reported at once.
    """

    def __init__(self, problems: str | list[str]) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(f"- {p}" for p in self.problems) if len(self.problems) > 1
                         else self.problems[0])


class ThresholdSyntaxError(ConfigError):
    """A threshold expression that does not follow the k6 grammar."""


class TargetRefused(ConfigError):
    """A target host outside the allowlist (see ``pytest_novaload.allowlist``), refused before
    any DNS lookup or connection. The message names the host, the URL (redacted) and the
    option that allows it."""

    def __init__(self, message: str, *, host: str, url: str, option: str) -> None:
        super().__init__(message)
        self.host = host
        self.url = url
        """The target as shown: password replaced by ``***``."""
        self.option = option


class UsageError(NovaloadError):
    """The plugin was used the wrong way (``load.run`` twice, never, ...)."""


class ThresholdsFailed(AssertionError):
    """Raised by ``load.run`` when one or more thresholds are broken."""


class LoadAborted(ThresholdsFailed):
    """A threshold with ``abort_on_fail`` broke and stopped the run early."""


class LoadCrashed(NovaloadError):
    """The load run itself failed (a bug, a broken set-up), not the scenario: raised by
    ``load.run`` in place of the original exception, whose traceback (and chained causes) its
    message carries redacted, so no secret the exception quoted reaches the terminal, the
    JUnit XML or run.log. What was measured until then is kept in the artifacts."""

    @staticmethod
    def story(nodeid: str, exc: BaseException) -> str:
        """The message (to redact before use): the test, and the crash's whole traceback with
        its chained causes. The original is never re-raised, so pytest shows no unredacted
        message, argument or chained exception of it."""
        import traceback

        text = "".join(traceback.format_exception(exc)).rstrip()
        return (f"the load run of {nodeid} crashed (a bug in the plugin or a broken set-up, "
                f"not the scenario; what it measured until then is in the artifacts):\n{text}")


class ShardError(NovaloadError):
    """A generator shard (xdist worker) crashed or left before its result arrived."""


class RuleSyntaxError(ConfigError):
    """A regression rule (``regressions=``, the session default) that does not parse."""


class BaselineError(UsageError):
    """A baseline or run to compare with that is missing, unreadable or not one."""


class RegressionFailed(AssertionError):
    """A load test regressed against its baseline (every regressed statistic listed)."""
