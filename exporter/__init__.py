"""clonewatch exporter: is every clone really copy-on-write? Measured, per PVC and per golden image."""

__version__ = "0.1.0"
