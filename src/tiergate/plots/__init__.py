"""Charts written to PNG files. matplotlib is imported only when a chart is drawn."""
