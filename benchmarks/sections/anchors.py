"""Section 6 anchors (placeholder replaced below)."""
