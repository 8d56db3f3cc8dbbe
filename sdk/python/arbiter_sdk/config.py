"""Plugin settings: string keys and values as the operator wrote them for one pipeline."""

from __future__ import annotations

from typing import Callable, Iterable, List, Optional, Sequence, Tuple, TypeVar

from .types import InvalidConfig

T = TypeVar("T")

__all__ = ["Config"]


class Config:
    """The plugin's settings for one pipeline (the contract's `config`).

    Values that need structure are JSON text; `parse_or` and `list` cover the common
    scalar and comma-separated cases and raise `InvalidConfig` naming the key, so a bad
    setting refuses the pipeline at load time (`check-config`).
    """

    __slots__ = ("_pairs",)

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()) -> None:
        self._pairs: List[Tuple[str, str]] = [(str(k), str(v)) for k, v in pairs]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self._pairs == other._pairs

    def __hash__(self) -> int:
        return hash(tuple(self._pairs))

    def __repr__(self) -> str:
        return f"Config({self._pairs!r})"

    def get(self, key: str) -> Optional[str]:
        """The last value given for `key` (later settings override earlier ones)."""
        for k, v in reversed(self._pairs):
            if k == key:
                return v
        return None

    def require(self, key: str) -> str:
        """The value of `key`, or `InvalidConfig` naming it."""
        value = self.get(key)
        if value is None:
            raise InvalidConfig(f"missing required setting `{key}`")
        return value

    def parse_or(self, key: str, default: T, parse: Optional[Callable[[str], T]] = None) -> T:
        """Parses `key` with `parse` (default: the type of `default`; for `bool`, accepts
        true/false/yes/no/1/0), falling back to `default` when it is absent."""
        raw = self.get(key)
        if raw is None:
            return default
        text = raw.strip()
        try:
            if parse is not None:
                return parse(text)
            if isinstance(default, bool):
                return _parse_bool(text)  # type: ignore[return-value]
            return type(default)(text)  # type: ignore[call-arg]
        except (TypeError, ValueError) as e:
            raise InvalidConfig(f"setting `{key}` = {raw!r}: {e}") from None

    def list(self, key: str) -> List[str]:
        """A comma-separated list setting; empty items are skipped."""
        raw = self.get(key)
        if raw is None:
            return []
        return [item.strip() for item in raw.split(",") if item.strip()]

    def deny_unknown(self, known: Sequence[str]) -> None:
        """Raises `InvalidConfig` when a key outside `known` is present, so typos in a
        pipeline configuration are caught at load time rather than silently ignored."""
        for k, _ in self._pairs:
            if k not in known:
                raise InvalidConfig(f"unknown setting `{k}` (known: {', '.join(known)})")

    def pairs(self) -> List[Tuple[str, str]]:
        return list(self._pairs)


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("true", "yes", "on", "1"):
        return True
    if lowered in ("false", "no", "off", "0"):
        return False
    raise ValueError("expected true or false")
