"""HTML evidence reports: Jinja2 templates, Grad-CAM heatmaps."""
