"""icalproxy: leak-free per-client calendar feeds from an internal iCalendar feed."""

__version__ = "0.1.0"
