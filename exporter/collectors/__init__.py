"""One collector per module; a module that declares `SPEC = CollectorSpec(...)` is a collector
(`registry.specs()` finds it, as backends are found). `base` says what collectors are."""
