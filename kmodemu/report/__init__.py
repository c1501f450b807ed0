"""Self-contained HTML reports: inline SVG charts, inline CSS, no external references,
so a report opens offline, from a mail attachment or a CI artifact."""
