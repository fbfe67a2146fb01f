from __future__ import annotations

from exporthub.web.console_live import SharedFragments


def test_each_event_is_rendered_once_and_old_ones_are_dropped() -> None:
    fragments = SharedFragments(size=2)
    renders: list[str] = []

    def render(text: str) -> str:
        renders.append(text)
        return f"<li>{text}</li>"

    for key in ["a", "a", "b", "a", "c", "a", "b"]:
        assert fragments.get_or_render(key, lambda key=key: render(key)) == f"<li>{key}</li>"
    # a, b rendered; a again cached; c evicts a (the oldest); a re-rendered evicts b; b re-rendered
    assert renders == ["a", "b", "c", "a", "b"]
