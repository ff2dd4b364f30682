"""clonewatch loadgen: creates clones of a golden image, drifts them, measures (see issue: loadgen)."""
