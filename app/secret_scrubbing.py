"""Keeping secrets out of logs and stored messages."""
import logging

from connectors.scrubbing import MASK, SECRET_KEY_PATTERN, scrub_text, secret_values

__all__ = ["MASK", "SECRET_KEY_PATTERN", "scrub_text", "secret_values", "ScrubbingFilter", "install_log_filter"]


class ScrubbingFilter(logging.Filter):
    """A logging filter that scrubs credential-shaped text from every record."""

    def filter(self, record):
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is left as is
            return True
        scrubbed = scrub_text(message)
        if scrubbed != message:
            record.msg, record.args = scrubbed, ()
        return True


def install_log_filter(app):
    """Attach :class:`ScrubbingFilter` to the app's and the root logger's handlers."""
    log_filter = ScrubbingFilter()
    for logger in (app.logger, logging.getLogger()):
        logger.addFilter(log_filter)
        for handler in logger.handlers:
            handler.addFilter(log_filter)
