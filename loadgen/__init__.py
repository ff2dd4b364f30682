"""clonewatch loadgen: creates clones of a golden image, writes known drift into them, measures
what the storage really holds, and cleans up only what it created."""
