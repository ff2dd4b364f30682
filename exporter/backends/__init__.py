"""Storage backends: each asks one kind of storage what its volumes really consume."""
