"""Reading finished spans back as a tree, for assertions and for printing."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from opentelemetry.sdk.trace import ReadableSpan


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    span_id = parent.context.span_id
    return [s for s in spans if s.parent is not None and s.parent.span_id == span_id]


def render(spans: Iterable[ReadableSpan]) -> str:
    """The spans as an indented tree per trace: name, kind, links, key attributes."""
    spans = sorted(spans, key=lambda s: s.start_time or 0)
    by_id = {s.context.span_id: s for s in spans}
    lines: list[str] = []

    def walk(span: ReadableSpan, depth: int) -> None:
        attributes = span.attributes or {}
        notes = [span.kind.name]
        for key in ("fnevents.role", "messaging.consumer.group.name", "http.response.status_code"):
            if key in attributes:
                notes.append(f"{key}={attributes[key]}")
        if span.links:
            notes.append(f"links={[f'{link.context.span_id:016x}' for link in span.links]}")
        if not span.status.is_ok:
            notes.append("ERROR")
        lines.append(f"{'  ' * depth}{span.name} [{span.context.span_id:016x}] {' '.join(notes)}")
        for child in children(spans, span):
            walk(child, depth + 1)

    for span in spans:
        if span.parent is None or span.parent.span_id not in by_id:
            remote = f" (parent {span.parent.span_id:016x}, remote)" if span.parent else ""
            lines.append(f"trace {span.context.trace_id:032x}{remote}")
            walk(span, 1)
    return "\n".join(lines)
