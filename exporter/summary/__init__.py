"""clonewatch-summary: what a running exporter serves, as tables (`cli`: the command; `tables`: fetch and render)."""
