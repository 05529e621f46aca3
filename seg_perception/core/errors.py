"""The package's error for rejected input: a counted, named drop rather than a crash."""

from __future__ import annotations


class InputRejected(ValueError):
    """An input message or value that breaks a rule; ``reason`` is the stable drop reason a node counts it under.

    Args:
        reason: short key (``"label_info_color"``, ``"field_offset"``), the same for every instance of the rule.
        detail: what was wrong, with the actual and expected values (plain numbers, no numpy reprs).
    """

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
