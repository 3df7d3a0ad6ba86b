"""flowlang: a flow language and engine for contact-center message routing."""

__version__ = "0.1.0"
