"""The page that ``livereader --serve`` shows (static files)."""
