"""Real-time watching of videos, webcams and streams: tracks, a label per person, events and alerts."""

from .watcher import FrameResult, Watcher

__all__ = ["FrameResult", "Watcher"]
