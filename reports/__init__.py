"""Customer attack reports: data, text, rendering, PDF, sharing and delivery."""
