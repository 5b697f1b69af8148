"""--help with each option's default, as argparse.ArgumentDefaultsHelpFormatter shows it, but in
words for a switch: '--no-progress ... (default: True)' read as if the bar were off by default."""
from __future__ import annotations

import argparse


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """A switch's default as 'on' or 'off' ('<what> on' for a --no-<what> flag); none added where
    its help already says what happens by default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.nargs != 0 or not isinstance(action.default, bool):
            return super()._get_help_string(action)
        if "(default" in text:
            return text
        flag = max(action.option_strings, key=len)  # the long form
        if action.default and flag.startswith("--no-"):
            return f"{text} (default: {flag[len('--no-'):]} on)"
        return f"{text} (default: {'on' if action.default else 'off'})"
