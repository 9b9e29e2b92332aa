"""The live terminal view of ``uprm watch --format table`` (plain text, redrawn)."""

from __future__ import annotations

from typing import Any

__all__ = ["format_clock", "render_status"]

_HEADER = ("camera", "state", "transport", "stream", "fps", "windows", "skipped", "reconn.", "P(yes)", "events", "open event")


def format_clock(seconds: float | None) -> str:
    """``3725.5`` → ``1:02:05``; ``None`` → ``-``."""
    if seconds is None:
        return "-"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _row(cam: dict[str, Any]) -> tuple[str, ...]:
    event = cam["event"]
    open_event = "-" if event is None else f"since {format_clock(event['start'])}  {event['score']:.2f}  {event['cause']}"
    p_yes = "-" if cam["p_yes"] is None else f"{cam['p_yes']:.2f}"
    return (cam["camera"], cam["state"], (cam.get("transport") or "-").upper(), format_clock(cam["stream_time"]), f"{cam['fps']:.1f}", str(cam["windows"]),
            str(cam["skipped"]), str(cam["reconnects"]), p_yes, str(cam["events"]), open_event)


def _alert_line(record: dict[str, Any]) -> str:
    stamp = (record.get("written_at") or "")[11:19]
    return (f"{stamp}  {record['type']:<5}  {record['id']}  {format_clock(record['start'])}-"
            f"{format_clock(record['end'])}  score {record['score']:.2f}  {record['cause']}")


def render_status(status: dict[str, Any], max_alerts: int = 8) -> str:
    """A table of the cameras and the latest alerts from :meth:`Watcher.status`."""
    rows = [_HEADER] + [_row(cam) for cam in status["cameras"]]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = [f"uprm watch — {format_clock(status['elapsed'])} elapsed"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    alerts = status["alerts"][-max_alerts:]
    lines += ["", "latest alerts:" if alerts else "no alerts yet"]
    lines += [_alert_line(r) for r in alerts]
    if status.get("webhook"):
        w = status["webhook"]
        lines.append(f"webhook: {w['sent']} sent, {w['retries']} retries, {w['failed']} failed, {w['dropped']} dropped")
    return "\n".join(lines)
